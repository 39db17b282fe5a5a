"""What a client can hold of a live fake (mockserver/serving.py; issue 20, points 2 and 6): the
request head's size, read timeouts for slow and silent clients, body limits with bounded
memory, and a shutdown within its bound whatever a client holds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mockserver.server import ThreadedMockServer
from mockserver.serving import HEAD_LIMIT, SHUTDOWN_S

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 0.4  # the read_timeout these servers run with


@pytest.fixture(scope="module")
def live() -> Iterator[ThreadedMockServer]:
    with ThreadedMockServer(clock="manual", read_timeout=TIMEOUT) as server:
        yield server


def connect(server: ThreadedMockServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return sock


def answer(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - started


def test_a_head_over_the_limit_is_431_and_closed(live) -> None:
    with connect(live) as sock:
        sock.sendall(b"GET /_wanmock/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        try:
            while sent < 20 * HEAD_LIMIT:  # far more than the limit; the server stops reading
                sock.sendall(b"a" * 8192)
                sent += 8192
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, _ = answer(sock)
    assert data.startswith(b"HTTP/1.1 431 ") or sent < 20 * HEAD_LIMIT
    with httpx.Client(base_url=live.url, trust_env=False) as c:
        big = c.get("/_wanmock/clock", headers={"X-Big": "a" * (HEAD_LIMIT + 1)})
        assert big.status_code == 431
        assert c.get("/_wanmock/clock", headers={"X-Ok": "a" * 16000}).status_code == 200


def test_a_silent_or_slow_client_is_timed_out(live) -> None:
    with connect(live) as silent, connect(live) as slow_head, connect(live) as slow_body:
        slow_head.sendall(b"GET /_wanmock/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        slow_body.sendall(b"POST /_wanmock/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        for sock, expect in ((silent, b""), (slow_head, b"HTTP/1.1 408 "),
                             (slow_body, b"HTTP/1.1 408 ")):
            data, waited = answer(sock)
            assert data.startswith(expect), data[:100]
            assert waited < TIMEOUT + 1.5
    # a body that keeps coming, piece by piece, within the timeout is read to its end
    with connect(live) as sock:
        body = b'{"seconds": 1}'
        sock.sendall(b"POST /_wanmock/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        for byte in body:
            sock.sendall(bytes([byte]))
            time.sleep(TIMEOUT / 8)
        data, _ = answer(sock)
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]


def test_many_slow_clients_do_not_hold_the_server(live) -> None:
    socks = [connect(live) for _ in range(200)]
    try:
        for sock in socks:
            sock.sendall(b"GET /_wanmock/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        with httpx.Client(base_url=live.url, trust_env=False, timeout=5) as c:
            assert c.get("/_wanmock/clock").status_code == 200  # others are served meanwhile
        started = time.monotonic()
        for sock in socks:
            answer(sock)
        assert time.monotonic() - started < TIMEOUT + 2
    finally:
        for sock in socks:
            sock.close()


# -- a real `wanmock serve`: body limits with bounded memory, shutdown ------------------------
def serve(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", str(port),
                             *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(base + "/_wanmock/clock", timeout=1, trust_env=False)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    err = proc.stderr.read() if proc.stderr else b""
    raise AssertionError(f"wanmock serve did not start: {err!r}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def send_body(port: int, head: bytes, size: int) -> tuple[bytes, int]:
    """Send `head` then `size` body bytes in 1 MB pieces while reading the answer; (the answer,
    how many body bytes the server took before it closed)."""
    got: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = threading.Thread(target=lambda: got.append(answer(sock)[0]), daemon=True)
        reader.start()
        sock.sendall(head)
        piece, sent = b"%x\r\n%s\r\n" % (1 << 20, b"x" * (1 << 20)), 0  # one chunk
        try:
            while sent < size:
                sock.sendall(piece)
                sent += 1 << 20
        except (BrokenPipeError, ConnectionResetError):
            pass
        reader.join(10)
    return (got[0] if got else b""), sent


BODIES = [("/_wanmock/scenarios", b"413 Request Entity Too Large"),
          ("/api/v1/services/aigc/video-generation/video-synthesis", b"400 Bad Request")]


def test_300_mb_bodies_are_refused_with_bounded_memory_and_shutdown_is_bounded() -> None:
    """One `wanmock serve` (its start costs seconds): a 300 MB body to the control API (the
    toolkit's 413) and to a provider route (DashScope's own 400 for a body over the limit),
    then SIGINT while two clients hold half-sent requests."""
    proc, base = serve("--read-timeout", "60")  # the read timeout is not what ends them
    try:
        port = int(base.rpartition(":")[2])
        before = peak_rss_kb(proc.pid)
        size = 300 * (1 << 20)
        for path, status in BODIES:
            head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/json\r\nAuthorization: Bearer sk-x\r\n"
                    "X-DashScope-Async: enable\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
            # chunked: no Content-Length to refuse early; the body is counted as it comes
            data, sent = send_body(port, head, size)
            assert data.split(b"\r\n", 1)[0] == b"HTTP/1.1 " + status, data[:300]
            assert b"connection: close" in data
            assert sent < size  # it stopped reading: the connection was closed under the sender
        grown_mb = (peak_rss_kb(proc.pid) - before) / 1024
        print(f"peak memory grew {grown_mb:.1f} MB for two refused 300 MB bodies")
        assert grown_mb < 40, f"the server grew by {grown_mb:.0f} MB for two refused bodies"
        assert httpx.get(base + "/_wanmock/clock", trust_env=False).status_code == 200

        with socket.create_connection(("127.0.0.1", port)) as held, \
                socket.create_connection(("127.0.0.1", port)) as head_only:
            held.sendall(b"POST /_wanmock/scenarios HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            head_only.sendall(b"GET /_wanmock/clock HTTP/1.1\r\n")
            assert httpx.get(base + "/_wanmock/clock", trust_env=False).status_code == 200
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(SHUTDOWN_S + 5)
            took = time.monotonic() - started
        print(f"shutdown with two half-sent requests open took {took:.2f} s")
        assert took < SHUTDOWN_S + 2, f"shutdown took {took:.1f} s"
    finally:
        stop(proc)
