"""What the `wanmock` commands share (cli.py: serve, check, contracts; cli_loop.py: proxy,
diff, calibrate): family choices, the --timing argument, the control-plane flags and token."""

from __future__ import annotations

import argparse


def family_choices() -> list[str]:
    """The families `--family` accepts."""
    from mockserver.families import family_names

    return sorted(family_names())


def timing_arg(value: str) -> str:
    """`--timing`: a built-in profile name or a timing profile file."""
    from mockserver.core.profiles import is_profile
    from mockserver.core.tasks import TIMINGS

    if value in TIMINGS or is_profile(value):  # a profile file is read (and checked) at start
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} is neither {', '.join(TIMINGS)} nor a timing profile file")


def control_flags(parser: argparse.ArgumentParser) -> None:
    """--allow-remote and --allowed-host (serve, proxy)."""
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
