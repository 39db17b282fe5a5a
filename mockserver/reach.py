"""Failing fast: is there anything at the other end of a URL, asked once, before a command
starts working with it (`wanmock check` targets, `wanmock proxy` targets, `--store` URLs).

A refused connection, an unknown host or a timeout is one line and exit status 2
(`MockServerError`), not a Schemathesis run of "Connection failed" errors, a verdict, or a
traceback: "cannot connect to redis://127.0.0.1:6390/0: connection refused".
"""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit

from mockserver.errors import MockServerError

DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}


def label(url: str) -> str:
    """The URL as shown in messages: without a password (`redis://***@host:6379/0`)."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.netloc, "***@" + parts.netloc.rpartition("@")[2])
    return url


def reason(exc: OSError) -> str:
    """A short, lower-case reason for a failed connection."""
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    names = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
             errno.ENETUNREACH: "network is unreachable", errno.ECONNRESET: "connection reset"}
    if exc.errno in names:
        return names[exc.errno]
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def require_reachable(url: str, timeout: float = 3.0) -> None:
    """Connect to the host and port of `url` (http, https, redis) and close again; raise
    `MockServerError("cannot connect to URL: reason")` when nothing answers."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        return
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise MockServerError(f"cannot connect to {label(url)}: invalid port") from None
    host = parts.hostname
    if not host:
        raise MockServerError(f"cannot connect to {label(url)}: no host")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise MockServerError(f"cannot connect to {label(url)}: {reason(exc)}") from None


def require_store(url: str | None) -> None:
    """A Redis store URL whose server answers (an SQLite store checks its own directory; the
    memory store always opens)."""
    if url and urlsplit(url.strip()).scheme.lower() in ("redis", "rediss"):
        require_reachable(url.strip())
