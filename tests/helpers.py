"""Helpers shared by the HTTP tests (no fixtures: those live in conftest.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mockserver.contracts import load


def conforms(family: str, operation_id: str, response: httpx.Response) -> Any:
    """The JSON body, after checking it against the contract's schema for its status."""
    op = load().operation(family, operation_id)
    status = str(response.status_code)
    assert status in op.response_validators, f"{operation_id} does not document {status}"
    body = response.json()
    op.response_validators[status].validate(body)
    return body


def missing(message: str) -> None:
    """Something a test drives for real is absent: locally the test skips, saying how to get
    it; under `CI=true` it fails instead, so CI can never pass by skipping."""
    import os

    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must install it (see .ci/run)")
    pytest.skip(message)


def require_program(name: str, install: str) -> str:
    """The path of a system program the test drives for real (redis-server, chromium).

    Locally a missing program skips the test, saying how to install it; under `CI=true` it fails
    instead, so CI can never pass by skipping.
    """
    import shutil

    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed ({install})")
    assert path is not None
    return path


class SyncASGITransport(httpx.BaseTransport):
    """httpx's ASGITransport driven from synchronous test code."""

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import anyio

        async def call() -> httpx.Response:
            response = await self.transport.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=content)

        return anyio.run(call)


def wait_for(condition: Any, timeout: float = 10.0) -> bool:
    """Wait (on an event, bounded) until `condition()` holds: for what happens asynchronously,
    such as webhook deliveries."""
    import threading

    gate = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if condition():
            return True
        gate.wait(0.05)
    return bool(condition())


def until(condition: Any, seconds: float, what: str) -> Any:
    """Poll `condition()` (every 50 ms) until it is truthy and return it; fail saying `what`
    did not happen within `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)


def self_links(value: Any) -> list[str]:
    """Every string in a JSON body that links back to the fake's result videos."""
    if isinstance(value, dict):
        return [u for v in value.values() for u in self_links(v)]
    if isinstance(value, list):
        return [u for v in value for u in self_links(v)]
    return [value] if isinstance(value, str) and "/_wanmock/videos/" in value else []


class WebhookReceiver:
    """A webhook receiver on 127.0.0.1: counts deliveries (`count`, `posts`: when each came;
    `received`: each one's lower-case headers and exact body), answers the given `statuses` in
    turn (200 once they are used up) and, with `hold_first`, holds the first POST until `hold`
    is set (`close()` sets it)."""

    def __init__(self, statuses: list[int] | None = None, *, hold_first: bool = False) -> None:
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses = list(statuses or [])
        self.count = 0
        self.posts: list[float] = []
        self.received: list[tuple[dict[str, str], str]] = []
        self.hold = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.count += 1
                outer.posts.append(time.monotonic())
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if hold_first and outer.count == 1:
                    outer.hold.wait(30)
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of asking."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_process(*args: str, verify: Any = True, stdout: Any = subprocess.DEVNULL,
                  env: dict[str, str] | None = None,
                  ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`wanmock serve ARGS` on a free loopback port, answering (https under `--tls`, checked
    with `verify`); (base URL, the process); stopped with SIGINT (killed if it does not stop)
    at the end."""
    import time

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", str(port), *args],
        cwd=ROOT, env={**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)},
        stdout=stdout, stderr=subprocess.PIPE)
    base = f"{'https' if '--tls' in args else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while proc.poll() is None:
            try:
                if httpx.get(base + "/_wanmock/clock", timeout=1, verify=verify).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not within 90 s: the server answers"
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield base, proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
