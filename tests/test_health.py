"""`GET /_wanmock/health`: the container HEALTHCHECK's and orchestrators' probe. 200 while the
store answers (with the round trip it took), 503 while it cannot be reached; never task data,
never the store's URL; no control token needed (mockserver/guard.py)."""

from __future__ import annotations

from pathlib import Path

import httpx

from mockserver import __version__
from mockserver.app import create_app
from mockserver.core.store import store_label
from tests.conftest import RedisServer
from tests.helpers import SyncASGITransport, require_program

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
KEY = {"Authorization": "Bearer sk-health-test", "X-DashScope-Async": "enable"}
BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse"},
        "parameters": {"size": "1280*720", "duration": 5}}


def _client(**options: object) -> httpx.Client:
    app = create_app(seed=1, **options)
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://127.0.0.1:8000")


def test_memory_store_is_healthy_and_counts_tasks() -> None:
    with _client(families=["dashscope"]) as client:
        first = client.get("/_wanmock/health")
        assert first.status_code == 200
        body = first.json()
        assert body["status"] == "ok" and body["version"] == __version__
        assert body["families"] == ["dashscope"]
        assert body["store"]["kind"] == "memory" and body["store"]["shared"] is False
        assert body["store"]["reachable"] is True and body["store"]["tasks"] == 0
        assert client.post(CREATE, json=BODY, headers=KEY).status_code == 200
        assert client.get("/_wanmock/health").json()["store"]["tasks"] == 1
        assert client.head("/_wanmock/health").status_code == 200


def test_sqlite_store_is_healthy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/health.db"
    with _client(store=url) as client:
        body = client.get("/_wanmock/health").json()
    assert body["status"] == "ok"
    assert body["store"]["kind"] == "sqlite" and body["store"]["shared"] is True
    assert body["store"]["round_trip_ms"] >= 0


def test_a_redis_that_goes_away_makes_it_unhealthy_until_it_is_back() -> None:
    own = RedisServer(require_program("redis-server", "apt-get install redis-server")).start()
    try:
        with _client(store=own.url(), clock="manual") as client:
            assert client.get("/_wanmock/health").json()["store"]["reachable"] is True
            own.stop()
            down = client.get("/_wanmock/health")
            assert down.status_code == 503
            assert down.json()["status"] == "unavailable"
            assert down.json()["store"]["reachable"] is False
            assert "redis" in down.json()["store"]["error"]
            own.start()
            up = client.get("/_wanmock/health")
            assert up.status_code == 200 and up.json()["store"]["reachable"] is True
    finally:
        own.stop()


def test_a_store_password_is_never_shown() -> None:
    assert store_label("redis://:s3cret@redis:6379/0") == "redis://***@redis:6379/0"
    assert store_label("redis://user:s3cret@redis:6379/0") == "redis://***@redis:6379/0"
    assert store_label("redis://redis:6379/0") == "redis://redis:6379/0"


def test_no_control_token_is_needed_where_the_control_plane_needs_one() -> None:
    from mockserver.server import ThreadedMockServer

    with ThreadedMockServer(allow_remote=True) as server, \
            httpx.Client(base_url=server.url, trust_env=False) as client:
        assert server.control_token
        assert client.get("/_wanmock/tasks").status_code == 401
        assert client.get("/_wanmock/health").json()["status"] == "ok"
        assert client.get("/_wanmock/tasks", headers={
            "X-Wanmock-Token": server.control_token}).status_code == 200


def test_the_healthcheck_finds_the_server_as_serve_reads_its_flags(tmp_path: Path) -> None:
    from mockserver.healthcheck import health_url, server_argv

    env = {"WANMOCK_PORT": "9001", "WANMOCK_HOST": "0.0.0.0"}
    assert health_url([], {}) == "http://127.0.0.1:8000/_wanmock/health"
    assert health_url([], env) == "http://127.0.0.1:9001/_wanmock/health"
    serve = ["/opt/wanmock/bin/python3", "/opt/wanmock/bin/wanmock", "serve"]
    assert health_url([*serve, "--port", "9002"], env) == "http://127.0.0.1:9002/_wanmock/health"
    assert health_url([*serve, "--port=9003", "--host", "::"], {}) == \
        "http://127.0.0.1:9003/_wanmock/health"
    assert health_url([*serve, "--host", "::1"], {}) == "http://[::1]:8000/_wanmock/health"
    assert health_url([*serve, "--tls"], {}) == "https://127.0.0.1:8000/_wanmock/health"
    assert health_url(serve, {"WANMOCK_TLS": "true"}).startswith("https://")
    assert health_url([*serve, "--no-tls"], {"WANMOCK_TLS": "1"}).startswith("http://")
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"\0".join(s.encode() for s in [*serve, "--port", "9004"]) + b"\0")
    assert server_argv(cmdline) == [*serve, "--port", "9004"]
    cmdline.write_bytes(b"/bin/sh\0-c\0sleep 1\0")
    assert server_argv(cmdline) == []  # not a wanmock serve: flags from the environment
    assert server_argv(tmp_path / "missing") == []


def test_the_healthcheck_exits_0_only_while_healthy(capsys: object) -> None:
    from mockserver.healthcheck import main
    from mockserver.server import ThreadedMockServer

    own = RedisServer(require_program("redis-server", "apt-get install redis-server")).start()
    try:
        with ThreadedMockServer(store=own.url(), clock="manual") as server:
            url = server.url + "/_wanmock/health"
            assert main([url]) == 0
            own.stop()
            assert main([url]) == 1  # 503: the store is gone
        assert main([url]) == 1  # nothing listens
    finally:
        own.stop()
