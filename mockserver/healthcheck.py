"""`python3 -m mockserver.healthcheck`: the container's HEALTHCHECK. Exit 0 when the fake in
this container answers `GET /_wanmock/health` with 200 (its store reachable), 1 otherwise.

Where the fake listens is read as `wanmock serve` reads it: its command line (`--port`, `--host`,
`--tls`, taken from the server's own `/proc/1/cmdline`), else `WANMOCK_PORT`/`WANMOCK_HOST`/
`WANMOCK_TLS`, else 127.0.0.1:8000. A wildcard bind (0.0.0.0, ::) is probed on loopback.
Standard library only: it runs every few seconds and must cost little.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

TRUE = ("1", "true", "yes", "on")
WILDCARD = ("", "0.0.0.0", "::", "[::]")


def _flag(argv: Sequence[str], flag: str) -> str | None:
    """The value of `--flag V` or `--flag=V` in a command line (the last one wins, as argparse)."""
    found = None
    for n, arg in enumerate(argv):
        if arg == flag and n + 1 < len(argv):
            found = argv[n + 1]
        elif arg.startswith(flag + "="):
            found = arg[len(flag) + 1:]
    return found


def server_argv(cmdline: Path = Path("/proc/1/cmdline")) -> list[str]:
    """The command line of the container's main process (`wanmock serve ...`), or []."""
    try:
        raw = cmdline.read_bytes()
    except OSError:
        return []
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return args if "serve" in args else []


def health_url(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The URL of the fake's health endpoint, from its command line and environment."""
    port = _flag(argv, "--port") or environ.get("WANMOCK_PORT", "").strip() or "8000"
    host = _flag(argv, "--host") or environ.get("WANMOCK_HOST", "").strip()
    if host in WILDCARD:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    tls = "--tls" in argv or environ.get("WANMOCK_TLS", "").strip().lower() in TRUE
    if "--no-tls" in argv:
        tls = False
    return f"{'https' if tls else 'http'}://{host}:{port}/_wanmock/health"


def probe(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """(healthy, a line to print): healthy only on a 200 whose body says `ok`."""
    # The fake's own certificate (wanmock's CA, --tls) is not in the system store: this probe
    # of the local process checks liveness, not identity.
    context = ssl._create_unverified_context() if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            body = json.loads(response.read() or b"{}")
            return body.get("status") == "ok", f"{response.status} {json.dumps(body)}"
    except urllib.error.HTTPError as exc:  # 503: the store cannot be reached
        return False, f"{exc.code} {exc.read(2000).decode(errors='replace')}"
    except (OSError, ValueError) as exc:
        return False, f"{url}: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Probe the fake; print what it said; 0 healthy, 1 not (Docker's HEALTHCHECK codes)."""
    url = argv[0] if argv else health_url(server_argv(), os.environ)
    healthy, line = probe(url)
    print(line)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
