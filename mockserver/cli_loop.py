"""The differential loop's commands: `wanmock proxy`, `wanmock diff`, `wanmock calibrate`.

    wanmock proxy --target [FAMILY=]URL [--record FILE] [--budget N] [--guard] ...
    wanmock diff CASSETTE [--timing realistic|FILE] [--junit FILE] [--report FILE]
    wanmock calibrate CASSETTE... [-o profile.yaml]

`mockserver.cli` builds the parser (these three through `add_parsers`) and dispatches here.
Files a command writes unasked (the proxy's exit report, the calibrated profile) go next to
the cassette they come from (`beside`), never into the working directory.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mockserver import tls_cli
from mockserver.cli_args import (
    control_flags,
    control_token,
    family_choices,
    print_control,
    timing_arg,
)
from mockserver.errors import MockServerError
from mockserver.version import __version__


def add_parsers(sub: Any) -> None:
    """The `proxy`, `diff` and `calibrate` subcommands."""
    proxy = sub.add_parser(
        "proxy", env_prefix="WANMOCK_", env_only=("port",),
        help="a validating, recording reverse proxy in front of a real provider",
        description="Forward every request to --target, validate requests and answers against "
                    "the contracts, print each violation, record a cassette (--record) and "
                    "write a report at exit. Billable submits forwarded: --budget (default 0).")
    proxy.add_argument("--target", action="append", dest="targets", default=[], required=True,
                       help="URL to forward to, or FAMILY=URL (repeatable: one port for "
                            "several providers, routed by the contract operation's family)")
    proxy.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=8000,
                       help="port (default 8000, or $WANMOCK_PORT; 0 picks a free one)")
    proxy.add_argument("--family", action="append", dest="families", default=None,
                       choices=family_choices(),
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
    control_flags(proxy)
    tls_cli.add_serve_flags(proxy)  # HTTPS, for SDKs that speak nothing else
    proxy.add_argument("--control-token", default=None, metavar="T",
                       help="the token its /_wanmock/ pages require (default: none on "
                            "loopback; generated and printed with --allow-remote)")

    diff = sub.add_parser(
        "diff", help="compare a cassette (what the provider answered) with the fake",
        description="Send each recorded request to the fake in process, at its recorded time, "
                    "and report every difference: status, envelope, fields, types, words, "
                    "error codes, state sequences, timings. Exit code 1 on drift.")
    diff.add_argument("cassette", help="a cassette (wanmock proxy --record)")
    diff.add_argument("--timing", default="realistic", type=timing_arg,
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


def beside(path: str, suffix: str) -> str:
    """A file next to `path`, named after it: `cassettes/nightly.jsonl` + `.report` ->
    `cassettes/nightly.report`."""
    from pathlib import Path

    base = Path(path)
    stem = base.name[: -len(base.suffix)] if base.suffix else base.name
    return str(base.with_name(stem + suffix))


def make_proxy(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The `Proxy` for these arguments and the base path of its exit report, without serving
    it; every target must answer (one line and exit status 2 otherwise)."""
    from mockserver.proxy import Proxy, parse_targets, stderr_echo
    from mockserver.reach import require_reachable
    from mockserver.server import LOOPBACK

    if args.host not in LOOPBACK and not args.allow_remote:
        raise MockServerError(f"refusing to bind {args.host!r} without --allow-remote")
    if args.budget < 0:
        raise MockServerError("--budget must be >= 0 (or --unlimited)")
    targets = parse_targets(args.targets)
    for target in targets.values():
        require_reachable(target)
    budget = None if args.unlimited else args.budget
    # Reports go where the user said, else next to the cassette; never unasked into the CWD.
    report = args.report or (beside(args.record, ".report") if args.record else None)
    proxy = Proxy(targets, families=args.families, record=args.record, guard=args.guard,
                  budget=budget, report=report, timeout=args.timeout,
                  echo=None if args.quiet else stderr_echo)
    return proxy, report


def proxy_command(args: argparse.Namespace) -> int:
    """Run `wanmock proxy` until Ctrl-C, then write the report."""
    from mockserver.guard import ControlGuard, Guarded
    from mockserver.server import serve_forever
    from mockserver.serving import uvicorn_settings

    brought = tls_cli.check(args)  # a mistake in the HTTPS flags is one line, before anything
    proxy, report = make_proxy(args)
    tls = brought or tls_cli.from_local_ca(args)
    url = f"{'https' if tls else 'http'}://{args.host}:{args.port}"
    print(f"wanmock {__version__} proxy on {url}")
    for family, target in proxy._target_names().items():
        print(f"  {family:<10} -> {target}")
    limit = "unlimited" if proxy.budget is None else proxy.budget
    print(f"  guard: {'on' if args.guard else 'off'}; billable submits: {limit} (--budget N); "
          f"cassette: {args.record or '(none)'}; report: "
          f"{f'{report}.md/.json' if report else '(none: add --record or --report)'}")
    print(f"  journal    {url}/_wanmock/journal   status {url}/_wanmock/proxy")
    for line in tls_cli.banner(tls) if tls else ():
        print(line)
    token = control_token(args)
    print_control(url, token)
    print("Press Ctrl-C to stop.", flush=True)
    guard = ControlGuard(token=token, allowed_hosts=(
        *(args.allowed_hosts or ()), *tls_cli.guard_hosts(args, brought)))
    # serve_forever, not uvicorn.run: an open dashboard page must not hold the shutdown.
    app = proxy.app()
    serve_forever(Guarded(app, guard), host=args.host, port=args.port,
                  **uvicorn_settings(**app.state.uvicorn, **(tls.uvicorn() if tls else {})))
    proxy.close()
    return 0


def read_cassette(path: str, strict: bool = False) -> Any:
    """A cassette, each skipped line reported on stderr."""
    from mockserver.cassette import read

    tape = read(path, strict=strict)
    for problem in tape.problems:
        print(f"wanmock: {path}: skipped {problem}", file=sys.stderr)
    return tape


def diff_command(args: argparse.Namespace) -> int:
    """`wanmock diff`: 0 no drift, 1 drift, 2 a cassette that cannot be read."""
    from mockserver.diff import diff
    from mockserver.diff_report import summary, write_junit, write_markdown

    result = diff(read_cassette(args.cassette, args.strict), timing=args.timing)
    print(summary(result))
    if args.junit:
        print(f"JUnit report: {write_junit(result, args.junit)}")
    if args.report:
        print(f"Markdown report: {write_markdown(result, args.report)}")
    return 0 if result.ok else 1


def calibrate_command(args: argparse.Namespace) -> int:
    """`wanmock calibrate`: the timing profile of one or more cassettes."""
    from mockserver.calibrate import calibrate, write_profile
    from mockserver.cassette import Cassette

    tapes = [read_cassette(path) for path in args.cassette]
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


COMMANDS = {"proxy": proxy_command, "diff": diff_command, "calibrate": calibrate_command}
