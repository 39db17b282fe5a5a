"""Shared fixtures: a fresh app on a manual clock, and a client into it."""

from __future__ import annotations

import httpx
import pytest

from mockserver.app import create_app
from mockserver.contracts import load
from mockserver.core.clock import ManualClock


@pytest.fixture(scope="session")
def contract_set():
    return load()


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory):
    """A local CA (mockserver.tls), made once per session: the HTTPS tests share it."""
    from mockserver.tls import Authority

    directory = tmp_path_factory.mktemp("tls")
    Authority(directory).open()
    return directory


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def app():
    """All families, a manual clock, seed 1."""
    return create_app(clock=ManualClock(), seed=1)


@pytest.fixture
def backend(app):
    return app.state.backend


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    base = "https://dashscope.aliyuncs.com"
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        yield c


class RedisServer:
    """A real `redis-server` on a free loopback port (no persistence), stopped by its pid."""

    def __init__(self, binary: str) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.binary = binary
        self.proc = None

    def url(self, prefix: str | None = None) -> str:
        """A store URL; a fresh `prefix` keeps one test's keys apart from the others'."""
        import uuid

        return f"redis://127.0.0.1:{self.port}/0?prefix={prefix or 't' + uuid.uuid4().hex[:12]}"

    def start(self) -> RedisServer:
        import subprocess
        import time

        import redis

        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        import os
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server():
    """One redis-server per test process; tests keep apart by key prefix (`.url()`)."""
    from tests.helpers import require_program

    server = RedisServer(require_program("redis-server", "apt-get install redis-server")).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request, tmp_path):
    """A fresh shared store's URL: a SQLite file, then a prefix on the session's redis-server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hooks.db"
    return str(request.getfixturevalue("redis_server").url())


# Markers whose tests the normal suite leaves out: they run only when `-m` names them, as
# .ci/run does after the README's test command (`-m "soak or thorough"`, then `-m container`).
ASKED_FOR = ("container", "soak", "thorough")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Container image tests (marker `container`: they build images with podman, minutes),
    soaks (marker `soak`: workers killed under load, 300 MB bodies; tens of seconds each, most
    of it waiting on real processes) and the thorough property runs (marker `thorough`: each
    family's whole contract through Schemathesis, the mutant providers, `wanmock check`
    against a live fake, the many-example property runs; about 180 s of CPU) run only when
    asked for by marker; the normal suite leaves them out so that it stays within its three
    minutes on two cores."""
    asked = config.getoption("markexpr", "") or ""
    left_out = [name for name in ASKED_FOR if name not in asked]
    kept = [item for item in items
            if not any(item.get_closest_marker(name) for name in left_out)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture
def loopback_only(monkeypatch):
    """Never let a proxy from the environment (HTTP(S)_PROXY) see a test's traffic: every
    client honours NO_PROXY, and tests talk only to 127.0.0.1."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def instant_upstream(tmp_path_factory):
    """A live fake on 127.0.0.1 (every family, tasks done at once), standing in for the real
    providers behind a `wanmock proxy`; one per test module."""
    from mockserver.server import ThreadedMockServer

    # DashScope's documented limits off: a module's tests submit wan2.6-t2v more than its 5 per
    # second, and a stand-in upstream that throttles them would flake under any load.
    with ThreadedMockServer(timing="instant", seed=5, dashscope_rate_limits="off",
                            video_dir=str(tmp_path_factory.mktemp("upstream-videos"))) as live:
        yield live
