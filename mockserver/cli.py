"""The `wanmock` command line: `serve`, `contracts`.

    wanmock serve [--host 127.0.0.1] [--port 8000] [--seed N] [--timing fast] [--api-key K] ...
    wanmock contracts [list | validate | show FAMILY [--format yaml|json]]
    wanmock check BASE_URL [--family F] [--budget N] [--junit FILE] [--report FILE] ...
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from mockserver.core.store.base import StoreUnavailable
from mockserver.envconfig import EnvParser
from mockserver.errors import MockServerError
from mockserver.version import __version__

# `wanmock serve` flags written by hand; every other option's flag comes from the option table
# (mockserver.options.CORE and each family's family.py).
HAND_FLAGS = ("families", "api_keys", "allowed_hosts", "mounts")


def _families() -> list[str]:
    from mockserver.families import family_names

    return sorted(family_names())


def _key_variables() -> str:
    from mockserver.families import key_variables

    return key_variables()


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per option of the table (`--jiekou-bare-key`, `--timing`...), default None:
    an option not given keeps the fake's default."""
    from mockserver.families import option_table

    types: dict[str, Any] = {"int": int, "float": float}
    for option in option_table().values():
        flag = option.cli_flag
        if flag is None:
            continue
        text = option.help
        if "default" not in text and option.default not in (None, ""):
            text += f" (default: {option.default})"
        kwargs: dict[str, Any] = {"dest": option.name, "default": None, "help": text}
        if option.name == "timing":
            kwargs["type"] = _timing
        elif option.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif option.kind in types:
            kwargs["type"] = types[option.kind]
        if option.choices:
            kwargs["choices"] = list(option.choices)
        if option.metavar and option.kind != "bool":
            kwargs["metavar"] = option.metavar
        parser.add_argument(flag, **kwargs)


def option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options the command line set (`add_option_flags` and the hand-written flags)."""
    from mockserver.families import option_table

    out = {name: getattr(args, name) for name in option_table()
           if getattr(args, name, None) is not None}
    if out.get("api_keys") is not None:
        out["api_keys"] = frozenset(out["api_keys"])
    return out


def _timing(value: str) -> str:
    """`--timing`: a built-in profile name or a timing profile file."""
    from mockserver.core.profiles import is_profile
    from mockserver.core.tasks import TIMINGS

    if value in TIMINGS or is_profile(value):  # a profile file is read (and checked) at start
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} is neither {', '.join(TIMINGS)} nor a timing profile file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wanmock", description="Contract tests and a stateful fake for the Wan video APIs."
    )
    parser.add_argument("--version", action="version", version=f"wanmock {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=EnvParser)

    serve = sub.add_parser(
        "serve", help="run the fake server (all families on one port)", env_prefix="WANMOCK_",
        epilog="Every option also reads the environment variable WANMOCK_<OPTION> "
               "(--public-url: WANMOCK_PUBLIC_URL; booleans true/false, repeatable options "
               "comma-separated) when the command line does not set it.")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000,
                       help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--api-key", action="append", dest="api_keys", default=[],
                       help="accept only this key (repeatable; default: any non-empty key)")
    serve.add_argument("--family", action="append", dest="families", default=None,
                       choices=_families(), help="serve only these families")
    serve.add_argument("--workers", type=int, default=1,
                       help="uvicorn worker processes over one store (needs --store sqlite "
                            "or redis when > 1)")
    serve.add_argument("--mount", action="append", dest="mounts", default=None,
                       metavar="FAMILY=/PREFIX",
                       help="serve a family under an extra path prefix as well, as resellers "
                            "do (dashscope=/alibailian: /alibailian/api/v1/...), or comfyui "
                            "(dashscope at /proxy/wan with comfy.org's proxy manners: no "
                            "X-DashScope-Async needed, X-API-KEY accepted) (repeatable)")
    add_option_flags(serve)
    _control_flags(serve)

    check = sub.add_parser(
        "check", help="test a server (the fake or a real provider) against the contracts",
        description="Schemathesis-driven contract checks. Exit code 0 only when the server "
                    "conforms. Keys: --api-key, else the family's variable "
                    f"({_key_variables()}).")
    check.add_argument("base_url",
                       help="e.g. http://127.0.0.1:8000, or a provider's own https base URL")
    check.add_argument("--family", action="append", dest="families", default=None,
                       choices=_families(), help="families to check (repeatable)")
    check.add_argument("--api-key", default=None, help="key to send (never printed)")
    check.add_argument("--budget", type=int, default=0,
                       help="billable submissions allowed (default 0: negative and read-only "
                            "checks still run)")
    check.add_argument("--unlimited", action="store_true",
                       help="no budget (for the fake, where nothing is billed)")
    check.add_argument("--profile", choices=["ci", "thorough"], default="ci",
                       help="ci: a few examples per operation; thorough: many")
    check.add_argument("--max-examples", type=int, default=None, help="override the profile")
    check.add_argument("--phase", action="append", dest="phases", default=None,
                       choices=["examples", "coverage", "fuzzing", "stateful"],
                       help="phases to run (repeatable; default all)")
    check.add_argument("--seed", type=int, default=0, help="Hypothesis seed (reproducible runs)")
    check.add_argument("--rate-limit", default=None,
                       help="e.g. 10/s; 429 answers are retried after Retry-After")
    check.add_argument("--junit", default=None, help="write a JUnit XML report here")
    check.add_argument("--report", default=None, help="write a Markdown drift report here")
    check.add_argument("--quiet", action="store_true", help="no progress lines")

    proxy = sub.add_parser(
        "proxy", help="a validating, recording reverse proxy in front of a real provider",
        description="Forward every request to --target, validate requests and answers against "
                    "the contracts, print each violation, record a cassette (--record) and "
                    "write a report at exit. Billable submits forwarded: --budget (default 0).")
    proxy.add_argument("--target", action="append", dest="targets", default=[], required=True,
                       help="URL to forward to, or FAMILY=URL (repeatable: one port for "
                            "several providers, routed by the contract operation's family)")
    proxy.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=int(os.environ.get("WANMOCK_PORT", "8000")),
                       help="port (default 8000, or $WANMOCK_PORT; 0 picks a free one)")
    proxy.add_argument("--family", action="append", dest="families", default=None,
                       choices=_families(),
                       help="match requests against these families' contracts only")
    proxy.add_argument("--record", default=None, help="write a cassette (JSON lines) here")
    proxy.add_argument("--guard", action="store_true",
                       help="answer requests the contract rejects locally (never forwarded)")
    proxy.add_argument("--budget", type=int, default=0,
                       help="submits to forward (default 0): every forwarded submit counts, "
                            "given back only on a non-2xx answer; beyond it a submit gets the "
                            "family's own 429 quota answer, made locally")
    proxy.add_argument("--unlimited", action="store_true", help="no budget")
    proxy.add_argument("--report", default=None,
                       help="exit report base path: writes .md and .json (default: next to "
                            "the cassette, NAME.report.md/.json; none without --record)")
    proxy.add_argument("--timeout", type=float, default=60.0, help="upstream timeout (s)")
    proxy.add_argument("--quiet", action="store_true", help="do not print violations")
    _control_flags(proxy)
    proxy.add_argument("--control-token", default=None, metavar="T",
                       help="the token its /_wanmock/ pages require (default: none on "
                            "loopback; generated and printed with --allow-remote)")

    diff = sub.add_parser(
        "diff", help="compare a cassette (what the provider answered) with the fake",
        description="Send each recorded request to the fake in process, at its recorded time, "
                    "and report every difference: status, envelope, fields, types, words, "
                    "error codes, state sequences, timings. Exit code 1 on drift.")
    diff.add_argument("cassette", help="a cassette (wanmock proxy --record)")
    diff.add_argument("--timing", default="realistic", type=_timing,
                      help="the fake's timing profile to hold recorded times against "
                           "(default realistic; a file from wanmock calibrate)")
    diff.add_argument("--junit", default=None, help="write a JUnit XML report here")
    diff.add_argument("--report", default=None, help="write a Markdown drift report here")
    diff.add_argument("--strict", action="store_true", help="refuse a cassette with bad lines")

    calibrate = sub.add_parser(
        "calibrate", help="per-model queue/run times from a cassette, as a timing profile",
        description="Read the recorded tasks' queue and run times and write a timing profile "
                    "that `wanmock serve --timing FILE` draws from (seeded).")
    calibrate.add_argument("cassette", nargs="+", help="one or more cassettes")
    calibrate.add_argument("-o", "--output", default=None,
                           help="profile file (.yaml or .json; default: next to the first "
                                "cassette, NAME.timing-profile.yaml)")

    contracts = sub.add_parser("contracts", help="list, validate or print the contracts")
    contracts.add_argument("action", nargs="?", choices=["list", "validate", "show"],
                           default="list")
    contracts.add_argument("family", nargs="?", help="family for `show`")
    contracts.add_argument("--format", choices=["yaml", "json"], default="yaml")
    contracts.add_argument("--contracts", dest="contracts_dir", default=None)
    return parser


def _control_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow binding a non-loopback address; the control API and "
                             "dashboard then require a control token (--control-token, else "
                             "one is generated and printed)")
    parser.add_argument("--allowed-host", action="append", dest="allowed_hosts", default=None,
                        metavar="H",
                        help="a Host name the control plane answers besides IP addresses and "
                             "localhost (repeatable; .example.com: its subdomains; *: any)")


def control_token(args: argparse.Namespace) -> str | None:
    """The control token: the one given, else a new one under --allow-remote, else None."""
    import secrets

    given = getattr(args, "control_token", None)
    if given is None and args.allow_remote:
        return secrets.token_urlsafe(24)
    return given  # type: ignore[no-any-return]


def print_control(url: str, token: str | None) -> None:
    """The dashboard's address at start (with the token, which a browser turns into a cookie)."""
    if token is None:
        print(f"  dashboard  {url}/_wanmock/ui")
        return
    print(f"  dashboard  {url}/_wanmock/ui?token={token}")
    print(f"  control    token required: X-Wanmock-Token: {token}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "check":
            return check_command(args)
        if args.command == "proxy":
            return proxy_command(args)
        if args.command == "diff":
            return diff_command(args)
        if args.command == "calibrate":
            return calibrate_command(args)
        return contracts_command(args)
    except MockServerError as exc:
        print(f"wanmock: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:  # the store went away while starting: one line, not a trace
        print(f"wanmock: the store cannot be reached: {exc}", file=sys.stderr)
        return 2


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401  # only to print the hint when it is missing
    except ImportError:  # pragma: no cover - uvicorn is a dependency
        print("wanmock serve needs uvicorn: pip install 'uvicorn[standard]'", file=sys.stderr)
        return 2
    from mockserver.server import LOOPBACK, create_app, serve_forever
    from mockserver.serving import uvicorn_settings

    if args.host not in LOOPBACK and not args.allow_remote:
        raise MockServerError(f"refusing to bind {args.host!r} without --allow-remote")
    options = option_values(args)
    families = options.pop("families", None)
    store = options.get("store") or "memory"
    if args.workers < 1:
        raise MockServerError("--workers must be >= 1")
    if args.workers > 1 and store.strip() in ("memory", "memory://", "mem"):
        raise MockServerError(
            f"--workers {args.workers} needs a shared store: each worker process would have "
            "its own memory (a task created on one unknown to the others); add --store "
            "sqlite:///PATH.db (one host) or --store redis://HOST:PORT/DB")
    from mockserver.core.store import store_label
    from mockserver.families import spec
    from mockserver.reach import require_store

    require_store(store)

    options["control_token"] = control_token(args)
    app = create_app(families, **options)
    opts = app.state.backend.options
    bound = f"http://{args.host}:{args.port}"
    url = opts.public_url or bound  # what clients use, as the links the fake renders
    public = f", public_url={opts.public_url}" if opts.public_url else ""
    print(f"wanmock {__version__} serving on {bound}  (timing={opts.timing}, mode={opts.mode}, "
          f"clock={opts.clock}, seed={opts.seed}, store={store_label(opts.store)}, "
          f"workers={args.workers}{public})")
    for family in opts.families:
        print(f"  {family:<10} {spec(family).base_url_hint.format(url=url)}")
    for family, prefix, gateway in app.state.mounts:
        manners = "  (comfy.org proxy manners)" if gateway else ""
        print(f"  {family:<10} {spec(family).base_url_hint.format(url=url + prefix).split()[0]}"
              f"   (mounted){manners}")
    print(f"  control    {url}/_wanmock/  (reset, tasks, clock, journal, webhooks, contracts)")
    book = app.state.backend.replay
    if book is not None:
        print(f"  replay     {args.replay}: {len(book.jobs)} recorded job(s)"
              f"{' (strict)' if args.replay_strict else ''}")
        for problem in book.problems:
            print(f"  replay     skipped {problem}", file=sys.stderr)
        for line in book.unfinished:
            print(f"  replay     {line}")
    print_control(url, opts.control_token)
    print("Press Ctrl-C to stop.", flush=True)
    if args.workers > 1:
        # Each worker builds its own app from the same options (an app factory reading them
        # from the environment, which the worker processes inherit).
        from mockserver.app import OPTIONS_ENV, encode_options

        app.state.backend.state.close()
        os.environ[OPTIONS_ENV] = encode_options(app.state.backend.options)
        # (the protocol class by name: the workers are spawned; each reads read_timeout there)
        uvicorn.run("mockserver.server:app_from_env", factory=True, workers=args.workers,
                    host=args.host, port=args.port, **uvicorn_settings())
        return 0
    # The contracts and compiled validators live as long as the server: keep them out of every
    # garbage collection (shorter pauses, lower p99 latency under load).
    gc.collect()
    gc.freeze()
    # Every stored task is a handful of tracked objects; with the default gen-0 threshold (700)
    # a busy server runs full collections over tens of thousands of tasks (p99 spikes of 100 ms
    # under POST load). Collect young objects ten times less often.
    gc.set_threshold(7000, 10, 10)
    serve_forever(app, host=args.host, port=args.port, **uvicorn_settings(opts.read_timeout))
    return 0


def proxy_command(args: argparse.Namespace) -> int:
    """Run `wanmock proxy` until Ctrl-C, then write the report."""
    from mockserver.proxy import Proxy, parse_targets, stderr_echo
    from mockserver.server import LOOPBACK, serve_forever
    from mockserver.serving import uvicorn_settings

    if args.host not in LOOPBACK and not args.allow_remote:
        raise MockServerError(f"refusing to bind {args.host!r} without --allow-remote")
    if args.budget < 0:
        raise MockServerError("--budget must be >= 0 (or --unlimited)")
    targets = parse_targets(args.targets)
    from mockserver.reach import require_reachable

    for target in targets.values():
        require_reachable(target)
    budget = None if args.unlimited else args.budget
    # Reports go where the user said, else next to the cassette; never unasked into the CWD.
    report = args.report or (beside(args.record, ".report") if args.record else None)
    proxy = Proxy(targets, families=args.families, record=args.record, guard=args.guard,
                  budget=budget, report=report, timeout=args.timeout,
                  echo=None if args.quiet else stderr_echo)
    url = f"http://{args.host}:{args.port}"
    print(f"wanmock {__version__} proxy on {url}")
    for family, target in proxy._target_names().items():
        print(f"  {family:<10} -> {target}")
    print(f"  guard: {'on' if args.guard else 'off'}; billable submits: "
          f"{'unlimited' if budget is None else budget} (--budget N); "
          f"cassette: {args.record or '(none)'}; report: "
          f"{f'{report}.md/.json' if report else '(none: add --record or --report)'}")
    print(f"  journal    {url}/_wanmock/journal   status {url}/_wanmock/proxy")
    token = control_token(args)
    print_control(url, token)
    print("Press Ctrl-C to stop.", flush=True)
    from mockserver.guard import ControlGuard, Guarded

    guard = ControlGuard(token=token, allowed_hosts=args.allowed_hosts or ())
    # serve_forever, not uvicorn.run: an open dashboard page must not hold the shutdown.
    app = proxy.app()
    serve_forever(Guarded(app, guard), host=args.host, port=args.port,
                  **uvicorn_settings(**app.state.uvicorn))
    proxy.close()
    return 0


def beside(path: str, suffix: str) -> str:
    """A file next to `path`, named after it: `cassettes/nightly.jsonl` + `.report` ->
    `cassettes/nightly.report`."""
    from pathlib import Path

    base = Path(path)
    stem = base.name[: -len(base.suffix)] if base.suffix else base.name
    return str(base.with_name(stem + suffix))


def _read_cassette(path: str, strict: bool = False) -> Any:
    from mockserver.cassette import read

    tape = read(path, strict=strict)
    for problem in tape.problems:
        print(f"wanmock: {path}: skipped {problem}", file=sys.stderr)
    return tape


def diff_command(args: argparse.Namespace) -> int:
    """`wanmock diff`: 0 no drift, 1 drift, 2 a cassette that cannot be read."""
    from mockserver.diff import diff
    from mockserver.diff_report import summary, write_junit, write_markdown

    result = diff(_read_cassette(args.cassette, args.strict), timing=args.timing)
    print(summary(result))
    if args.junit:
        print(f"JUnit report: {write_junit(result, args.junit)}")
    if args.report:
        print(f"Markdown report: {write_markdown(result, args.report)}")
    return 0 if result.ok else 1


def calibrate_command(args: argparse.Namespace) -> int:
    from mockserver.calibrate import calibrate, write_profile
    from mockserver.cassette import Cassette

    tapes = [_read_cassette(path) for path in args.cassette]
    merged = Cassette(tapes[0].path, tapes[0].header, [], [])
    for n, tape in enumerate(tapes):  # task ids are per provider: keep each file's apart
        for ex in tape.exchanges:
            if ex.task is not None and n:
                ex.task = f"{n}:{ex.task}"
            merged.exchanges.append(ex)
    profile = calibrate(merged)
    if "default" not in profile:
        raise MockServerError("no task left the queue in the cassette(s): nothing to calibrate")
    path = write_profile(profile, args.output or beside(args.cassette[0], ".timing-profile.yaml"))
    for model, entry in [("(all)", profile["default"]), *profile["models"].items()]:
        queue = entry["queue_s"]
        run = entry.get("run_s")
        ran = (f"run p50 {run['p50']:g} s (max {run['max']:g}, {run['samples']} succeeded)"
               if run else "run: none succeeded (the next entry's, else the built-in "
                           "realistic run time)")
        print(f"{model:<28} {entry['samples']:>4} tasks  queue p50 {queue['p50']:g} s "
              f"(max {queue['max']:g})  {ran}")
    print(f"timing profile: {path}  (wanmock serve --timing {path})")
    return 0


def contracts_command(args: argparse.Namespace) -> int:
    from mockserver.contracts import load, validate_document

    if args.action == "validate":
        contract_set = load(args.contracts_dir, validate=False)
        failed = 0
        for contract in contract_set:
            try:
                validate_document(contract.document, contract.path)
            except MockServerError as exc:
                failed += 1
                print(f"FAIL {contract.family}: {exc}")
            else:
                print(f"ok   {contract.family}: {len(contract.operations)} operations "
                      f"({contract.path})")
        models = len({e.model for e in contract_set.catalogue.models()})
        print(f"catalogue: {models} models ({contract_set.catalogue.path})")
        return 1 if failed else 0
    contract_set = load(args.contracts_dir)
    if args.action == "show":
        if not args.family:
            raise MockServerError("wanmock contracts show FAMILY")
        contract = contract_set[args.family]
        if args.format == "json":
            print(json.dumps(contract.document, indent=2, ensure_ascii=False))
        else:
            print(contract.path.read_text(encoding="utf-8"), end="")
        return 0
    for contract in contract_set:
        print(f"{contract.family}  ({contract.path.name}, "
              f"{contract.document.get('info', {}).get('title', '')})")
        for op in contract.operations.values():
            print(f"  {op.method:<5} {op.path:<62} {op.operation_id:<28} {op.role}")
    return 0


def check_command(args: argparse.Namespace) -> int:
    from mockserver.conformance import PROFILES, check
    from mockserver.live import available_keys
    from mockserver.reach import require_reachable

    require_reachable(args.base_url)
    families = args.families or _families()
    key = args.api_key
    if key is None:
        keys = available_keys()
        found = {keys[f] for f in families if f in keys}
        if len(found) > 1:
            raise MockServerError("families with different keys: check one --family at a time")
        key = found.pop() if found else "sk-wanmock-check"
    max_examples, _ = PROFILES[args.profile]
    progress = None if args.quiet else (lambda line: print(line, flush=True))
    report = check(
        args.base_url, families=families, api_key=key,
        budget=None if args.unlimited else args.budget,
        max_examples=args.max_examples or max_examples,
        phases=args.phases or ("examples", "coverage", "fuzzing", "stateful"),
        seed=args.seed, rate_limit=args.rate_limit, progress=progress,
    )
    print(report.summary())
    for finding in report.findings:
        print(f"- {finding.family}.{finding.operation} [{finding.check}] {finding.title}: "
              f"{finding.message.strip().splitlines()[0] if finding.message.strip() else ''}")
    for error in report.errors:
        print(f"- error: {error}")
    if args.junit:
        print(f"JUnit report: {report.write_junit(args.junit)}")
    if args.report:
        print(f"Markdown report: {report.write_markdown(args.report)}")
    return 0 if report.ok else 1
