"""What the fake's HTTP server allows a client: the uvicorn settings and protocol that bound
every byte a client sends and every second it may hold a connection.

uvicorn itself bounds the idle time between requests (`timeout_keep_alive`), the connections
it serves at once (`limit_concurrency`: more get 503) and the shutdown (`timeout_graceful_shutdown`:
then open requests are cancelled). It has no bound on a request's head under httptools, and no
read timeout: a client could send a 100 MB header, or hold a connection by sending a byte now
and then (slowloris). `LimitedHttpTools` adds both:

- the request line and headers together: at most `HEAD_LIMIT` bytes, else 431 and close;
- the head must arrive within `read_timeout` seconds of the connection or of the request's
  first byte, and the body may pause at most `read_timeout` seconds between two pieces; else
  408 and close (a request whose answer has begun is just closed).

Bodies are bounded by each route (`body_limit`: the family's 413 or the toolkit's), which reads
them piece by piece and stops at the limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

HEAD_LIMIT = 64 * 1024  # request line + headers (nginx's default large buffers: 4 x 8 KB)
KEEP_ALIVE_S = 5.0  # idle time between requests on one connection (uvicorn's default)
MAX_CONNECTIONS = 1000  # connections served at once; more get uvicorn's 503
SHUTDOWN_S = 3.0  # after SIGINT/SIGTERM, open requests get this long, then are cancelled
READ_TIMEOUT_S = 10.0  # the `read_timeout` option's default

HttpToolsProtocol: Any
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    HttpToolsProtocol = None


def _status(code: int, reason: str, message: str) -> bytes:
    body = message.encode()
    return (f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


if HttpToolsProtocol is not None:

    class LimitedHttpTools(HttpToolsProtocol):  # type: ignore[misc, valid-type]
        """uvicorn's httptools protocol with a head-size limit and read timeouts."""

        read_timeout = READ_TIMEOUT_S
        head_limit = HEAD_LIMIT

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._read_timer: asyncio.TimerHandle | None = None
            # When the client must have sent more (None: nothing awaited). Arming moves this
            # deadline only; the one timer of the connection wakes at the deadline it knew and
            # sleeps again until the current one, so a request costs no timer of its own.
            self._deadline: float | None = None
            self._head_bytes = 0  # bytes received since the current request's head began
            self._in_body = False

        def _arm(self) -> None:
            self._deadline = deadline = self.loop.time() + self.read_timeout
            if self._read_timer is None:
                self._read_timer = self.loop.call_at(deadline, self._wake)

        def _disarm(self) -> None:
            self._deadline = None  # the timer, when it wakes, finds nothing awaited

        def _wake(self) -> None:
            self._read_timer = None
            deadline = self._deadline
            if deadline is None:
                return
            if self.loop.time() < deadline:  # armed again since: sleep until the new deadline
                self._read_timer = self.loop.call_at(deadline, self._wake)
                return
            self._deadline = None
            self._timed_out()

        def _refuse(self, status: bytes) -> None:
            cycle = self.cycle
            if cycle is not None and self._in_body:
                if cycle.response_started:  # the answer has begun: just end the connection
                    self.transport.close()
                    return
                cycle.disconnected = True  # the app's receive() sees a disconnect
                cycle.message_event.set()
            self.transport.write(status)
            self.transport.close()

        def _timed_out(self) -> None:
            if not self.transport.is_closing():
                self._refuse(_status(408, "Request Timeout",
                                     f"no request data for {self.read_timeout:g} s"))

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()  # a connection that never sends its first request is closed too

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline = None
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._in_body:
                self._arm()  # the body may pause up to read_timeout between pieces
                super().data_received(data)
                return
            # httptools gathers a header value until it ends, so the head is counted here, as
            # it arrives: what the parser holds stays under the limit plus one read.
            self._head_bytes += len(data)
            super().data_received(data)
            if (not self._in_body and self._head_bytes > self.head_limit
                    and not self.transport.is_closing()):
                self._refuse(self._too_large())

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_body = False
            self._arm()  # the whole head within read_timeout of its first byte

        def on_headers_complete(self) -> None:
            # `_head_bytes` counts every byte received since the head began (this head and
            # whatever came with it), so only past the limit can the head itself be over it.
            if self._head_bytes > self.head_limit:
                size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
                if size > self.head_limit:  # a whole head that arrived at once
                    self._head_bytes = size
                    raise ValueError("request head too large")  # -> send_400_response below
            self._in_body = True
            self._arm()
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            if self._head_bytes > self.head_limit:
                self._refuse(self._too_large())
                return
            super().send_400_response(msg)

        def _too_large(self) -> bytes:
            return _status(431, "Request Header Fields Too Large",
                           f"request line and headers exceed {self.head_limit} bytes")

        def on_message_complete(self) -> None:
            self._in_body = False
            self._head_bytes = 0  # the next request's head is counted from here
            self._disarm()
            super().on_message_complete()


def protocol(read_timeout: float = READ_TIMEOUT_S) -> Any:
    """The HTTP protocol class for uvicorn's `http=`: `LimitedHttpTools` with this read
    timeout (h11 with its own 64 KB head limit where httptools is missing)."""
    if HttpToolsProtocol is None:  # pragma: no cover
        return "h11"
    if read_timeout == LimitedHttpTools.read_timeout:
        return LimitedHttpTools
    return type("LimitedHttpTools", (LimitedHttpTools,), {"read_timeout": read_timeout})


def event_loop() -> str:
    """uvicorn's `loop` setting: uvloop when it is installed."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def uvicorn_settings(read_timeout: float = READ_TIMEOUT_S, **extra: Any) -> dict[str, Any]:
    """Every `uvicorn.Config` setting that bounds what a client can hold (plus `extra`)."""
    return {"loop": event_loop(), "http": protocol(read_timeout), "log_level": "warning",
            "access_log": False, "lifespan": "on", "timeout_keep_alive": KEEP_ALIVE_S,
            "limit_concurrency": MAX_CONNECTIONS, "timeout_graceful_shutdown": SHUTDOWN_S,
            "h11_max_incomplete_event_size": HEAD_LIMIT,
            # The fake's own links come from the Host header or `public_url`; X-Forwarded-*
            # from a client on loopback (a `wanmock proxy` in front of a fake sends them) must
            # not rewrite the scheme or the client's address. Off: also a per-request layer less.
            "proxy_headers": False, **extra}
