"""The `wanmock` command line: `serve`, `contracts`.

    wanmock serve [--host 127.0.0.1] [--port 8000] [--seed N] [--timing fast] [--api-key K] ...
    wanmock contracts [list | validate | show FAMILY [--format yaml|json]]
    wanmock check BASE_URL [--family F] [--budget N] [--junit FILE] [--report FILE] ...
    wanmock tls [env | info] [--tls-dir DIR] [--shell sh|fish|powershell|dotenv]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from mockserver import tls_cli
from mockserver.cli_args import (
    control_flags,
    control_token,
    family_choices,
    print_control,
    timing_arg,
)
from mockserver.core.store.base import StoreUnavailable
from mockserver.envconfig import EnvParser
from mockserver.errors import MockServerError
from mockserver.version import __version__

# `wanmock serve` flags written by hand; every other option's flag comes from the option table
# (mockserver.options.CORE and each family's family.py).
HAND_FLAGS = ("families", "api_keys", "allowed_hosts", "mounts")


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
            kwargs["type"] = timing_arg
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
                       choices=family_choices(), help="serve only these families")
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
    control_flags(serve)
    tls_cli.add_serve_flags(serve)

    check = sub.add_parser(
        "check", help="test a server (the fake or a real provider) against the contracts",
        description="Schemathesis-driven contract checks. Exit code 0 only when the server "
                    "conforms. Keys: --api-key, else the family's variable "
                    f"({_key_variables()}).")
    check.add_argument("base_url",
                       help="e.g. http://127.0.0.1:8000, or a provider's own https base URL")
    check.add_argument("--family", action="append", dest="families", default=None,
                       choices=family_choices(), help="families to check (repeatable)")
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

    from mockserver.cli_loop import add_parsers

    add_parsers(sub)

    tls_cli.add_command(sub)

    contracts = sub.add_parser("contracts", help="list, validate or print the contracts")
    contracts.add_argument("action", nargs="?", choices=["list", "validate", "show"],
                           default="list")
    contracts.add_argument("family", nargs="?", help="family for `show`")
    contracts.add_argument("--format", choices=["yaml", "json"], default="yaml")
    contracts.add_argument("--contracts", dest="contracts_dir", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "check":
            return check_command(args)
        if args.command in ("proxy", "diff", "calibrate"):
            from mockserver import cli_loop

            return cli_loop.COMMANDS[args.command](args)  # type: ignore[no-any-return]
        if args.command == "tls":
            return tls_cli.command(args)
        return contracts_command(args)
    except MockServerError as exc:
        print(f"wanmock: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:  # the store went away while starting: one line, not a trace
        print(f"wanmock: the store cannot be reached: {exc}", file=sys.stderr)
        return 2


def serve_app(args: argparse.Namespace, brought: Any = None) -> Any:
    """The app `wanmock serve` runs for these arguments (checked: bind address, workers and
    store, the store reachable), without serving it (the docs' test harness serves it too).
    `brought`: the certificate `--tls-cert` loaded (`tls_cli.check`), whose names join the hosts
    the control plane answers to, as the local CA's names do under `--tls`."""
    from mockserver.reach import require_store
    from mockserver.server import LOOPBACK, create_app

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
    require_store(store)
    options["control_token"] = control_token(args)
    # The control plane answers to every name the certificate covers (harden's Host check).
    options["allowed_hosts"] = [*(options.get("allowed_hosts") or ()),
                                *tls_cli.guard_hosts(args, brought)]
    return create_app(families, **options)


def banner(args: argparse.Namespace, app: Any, tls: Any) -> None:
    """What `wanmock serve` prints at start: where it serves, each family's base URL, the
    control API, a replay's cassette and the jobs it never saw end, the dashboard's link."""
    from mockserver.core.store import store_label
    from mockserver.families import spec

    opts = app.state.backend.options
    bound = f"{'https' if tls else 'http'}://{args.host}:{args.port}"
    url = opts.public_url or bound  # what clients use, as the links the fake renders
    public = f", public_url={opts.public_url}" if opts.public_url else ""
    print(f"wanmock {__version__} serving on {bound}  (timing={opts.timing}, mode={opts.mode}, "
          f"clock={opts.clock}, seed={opts.seed}, store={store_label(opts.store)}, "
          f"workers={args.workers}{public})")
    for family in opts.families:
        print(f"  {family:<10} {spec(family).base_url_hint.format(url=url)}")
    for family, prefix, gateway in app.state.path_mounts:
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
    for line in tls_cli.banner(tls) if tls else ():
        print(line)
    print("Press Ctrl-C to stop.", flush=True)


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401  # only to print the hint when it is missing
    except ImportError:  # pragma: no cover - uvicorn is a dependency
        print("wanmock serve needs uvicorn: pip install 'uvicorn[standard]'", file=sys.stderr)
        return 2
    from mockserver.server import serve_forever
    from mockserver.serving import uvicorn_settings

    brought = tls_cli.check(args)  # before the app is built: a mistake is one line at once
    app = serve_app(args, brought)
    opts = app.state.backend.options
    tls = brought or tls_cli.from_local_ca(args, opts.public_url)
    banner(args, app, tls)
    tls_uvicorn = tls.uvicorn() if tls else {}
    if args.workers > 1:
        # Each worker builds its own app from the same options (an app factory reading them
        # from the environment, which the worker processes inherit).
        from mockserver.app import OPTIONS_ENV, encode_options

        app.state.backend.state.close()
        os.environ[OPTIONS_ENV] = encode_options(app.state.backend.options)
        # (the protocol class by name: the workers are spawned; each reads read_timeout there)
        uvicorn.run("mockserver.server:app_from_env", factory=True, workers=args.workers,
                    host=args.host, port=args.port, **uvicorn_settings(**tls_uvicorn))
        return 0
    # The contracts and compiled validators live as long as the server: keep them out of every
    # garbage collection (shorter pauses, lower p99 latency under load).
    gc.collect()
    gc.freeze()
    # Every stored task is a handful of tracked objects; with the default gen-0 threshold (700)
    # a busy server runs full collections over tens of thousands of tasks (p99 spikes of 100 ms
    # under POST load). Collect young objects ten times less often.
    gc.set_threshold(7000, 10, 10)
    serve_forever(app, host=args.host, port=args.port,
                  **uvicorn_settings(opts.read_timeout, **tls_uvicorn))
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
    families = args.families or family_choices()
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
