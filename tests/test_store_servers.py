"""Shared state between live servers: two servers on one Redis, a SQLite file across a restart,
`wanmock serve --workers 2` with a worker killed under load, Redis stopped and started under a
running fake, and the memory store's RSS over a long run."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.server import ThreadedMockServer
from tests.conftest import RedisServer
from tests.helpers import require_program, serve_process, until

KEY = {"Authorization": "Bearer sk-store-test", "X-DashScope-Async": "enable"}
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk"},
        "parameters": {"size": "1280*720", "duration": 5}}
JIEKOU = {"Authorization": "Bearer sk_store_test"}


@contextlib.contextmanager
def serve_workers(store_url: str,
                  workers: int = 2) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`wanmock serve --workers N --store URL` on a free loopback port, answering; (base URL,
    the process); stopped with SIGINT (killed if it does not stop) at the end."""
    with serve_process("--workers", str(workers), "--store", store_url, "--timing", "fast",
                       "--dashscope-rate-limits", "off") as served:  # load, not DashScope's limits
        yield served


class Receiver:
    """A webhook receiver on loopback that counts what it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                outer.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers(contract_set: Any) -> Iterator[Callable[..., ThreadedMockServer]]:
    """Start live fakes; all stopped (and their stores closed) at the end."""
    from mockserver.app import create_app

    started: list[ThreadedMockServer] = []

    def start(**options: Any) -> ThreadedMockServer:
        server = ThreadedMockServer(create_app(contracts=contract_set, **options)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        server.backend.state.close()


def test_two_servers_on_one_redis_share_tasks_videos_scenarios_and_webhooks(
        redis_server: RedisServer, servers: Callable[..., ThreadedMockServer]) -> None:
    url = redis_server.url()
    a = servers(store=url, clock="manual", seed=5)
    b = servers(store=url, clock="manual", seed=5)
    receiver = Receiver()
    try:
        with httpx.Client(base_url=a.url, timeout=10) as on_a, \
                httpx.Client(base_url=b.url, timeout=10) as on_b:
            task_id = on_a.post(CREATE, json=BODY, headers=KEY).json()["output"]["task_id"]
            assert on_b.get(f"/api/v1/tasks/{task_id}", headers=KEY).json()[
                "output"]["task_status"] == "PENDING"
            on_b.post("/_wanmock/clock/advance", json={"seconds": 60}).raise_for_status()
            done = on_b.get(f"/api/v1/tasks/{task_id}", headers=KEY).json()["output"]
            assert done["task_status"] == "SUCCEEDED"
            path = done["video_url"].removeprefix(b.url)
            for client in (on_a, on_b):
                video = client.get(path)
                assert video.status_code == 200 and video.content[4:8] == b"ftyp"

            rule = {"scenario": "server-error", "times": 1,
                    "match": {"operation": "createVideoSynthesis"}}
            assert on_b.post("/_wanmock/scenarios", json=rule).status_code == 201
            statuses = [c.post(CREATE, json=BODY, headers=KEY).status_code
                        for c in (on_a, on_b, on_a, on_b)]
            assert sorted(statuses) == [200, 200, 200, 500]

            body = {"prompt": "a lighthouse", "width": 832, "height": 480,
                    "extra": {"webhook": {"url": receiver.url}}}
            hooked = on_a.post("/v3/async/wan-t2v", json=body, headers=JIEKOU)
            assert hooked.status_code == 200, hooked.text
            on_b.post("/_wanmock/clock/advance", json={"seconds": 60}).raise_for_status()
            until(lambda: receiver.bodies, 10, "the webhook arrives")
            [hook] = until(lambda: [h for h in on_a.get("/_wanmock/webhooks").json()[
                "webhooks"] if h["state"] == "sent"], 5, "the sent state is stored")
            assert hook["status"] == 200 and hook["task_id"] == hooked.json()["task_id"]
            # Nothing pending and no lease left: no worker can send it again.
            state = a.backend.state
            assert not a.backend.webhooks.has_pending()
            assert state.driver.hooks_expired(state.view().epoch, time.time() + 1e7, 10) == []
            assert len(receiver.bodies) == 1
    finally:
        receiver.close()


def test_sqlite_state_survives_a_restart(tmp_path: Path,
                                         servers: Callable[..., ThreadedMockServer]) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    first = servers(store=url, clock="manual", seed=5)
    with httpx.Client(base_url=first.url, timeout=10) as client:
        running = client.post(CREATE, json=BODY, headers=KEY).json()["output"]["task_id"]
        queued = client.post(CREATE, json=BODY, headers=KEY).json()["output"]["task_id"]
        client.post(f"/api/v1/tasks/{queued}/cancel", headers=KEY).raise_for_status()
        client.post("/_wanmock/clock/advance", json={"seconds": 3}).raise_for_status()
        before = client.get(f"/api/v1/tasks/{running}", headers=KEY).json()["output"]
        now = client.get("/_wanmock/clock").json()["now"]
    assert before["task_status"] == "RUNNING"
    first.stop()
    first.backend.state.close()

    second = servers(store=url, clock="manual", seed=5)
    with httpx.Client(base_url=second.url, timeout=10) as client:
        assert client.get("/_wanmock/clock").json()["now"] == now
        again = client.get(f"/api/v1/tasks/{running}", headers=KEY).json()["output"]
        assert again == {**before, "task_status": "RUNNING"}
        assert client.get(f"/api/v1/tasks/{queued}", headers=KEY).json()[
            "output"]["task_status"] == "CANCELED"
        client.post("/_wanmock/clock/advance", json={"seconds": 30}).raise_for_status()
        assert client.get(f"/api/v1/tasks/{running}", headers=KEY).json()[
            "output"]["task_status"] == "SUCCEEDED"
        journal = client.get("/_wanmock/journal").json()["entries"]
        assert [e["operation"] for e in journal][:3] == [
            "createVideoSynthesis", "createVideoSynthesis", "cancelTask"]
        fresh = client.post(CREATE, json=BODY, headers=KEY).json()["output"]["task_id"]
        assert fresh not in (running, queued)  # the id counter continued too


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid and b"resource_tracker" not in cmdline:
            out.append(int(entry.name))
    return out


def test_a_worker_killed_under_load_loses_no_task(redis_server: RedisServer) -> None:
    with serve_workers(redis_server.url()) as (base, proc):
        workers = until(lambda: len(_children(proc.pid)) >= 2 and _children(proc.pid), 30,
                         "two worker processes")
        acknowledged: list[str] = []
        failed: list[str] = []
        lock = threading.Lock()

        def load() -> None:
            for _ in range(15):  # bounded: each thread submits 15 times
                try:
                    with httpx.Client(base_url=base, timeout=5) as client:  # a new connection
                        r = client.post(CREATE, json=BODY, headers=KEY)
                    with lock:
                        if r.status_code == 200:
                            acknowledged.append(r.json()["output"]["task_id"])
                        else:
                            failed.append(f"{r.status_code} {r.text[:80]}")
                except httpx.HTTPError as exc:  # the killed worker's connections
                    with lock:
                        failed.append(type(exc).__name__)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        until(lambda: len(acknowledged) >= 10, 60, "load is running")
        os.kill(workers[0], signal.SIGKILL)
        for t in threads:
            t.join(60)
        assert len(acknowledged) >= 30 and not [f for f in failed if f[:1].isdigit()]
        known = {t["id"] for t in httpx.get(base + "/_wanmock/tasks", timeout=10).json()["tasks"]}
        assert set(acknowledged) <= known  # every task a client was told about is there


UNAVAILABLE = {  # a route of each family, and the role whose `unavailable` wording applies
    "dashscope": ("POST", CREATE, KEY, BODY, "submit"),
    "jiekou": ("GET", "/v3/async/task-result?task_id=x", JIEKOU, None, "query"),
    "newapi": ("GET", "/v1/video/generations/task_x", KEY, None, "query"),
    "apiyi": ("GET", "/v1/tasks/x", KEY, None, "query"),
}


def test_the_store_stopped_and_started_gives_503s_then_recovers(
        contract_set: Any, servers: Callable[..., ThreadedMockServer]) -> None:
    own = RedisServer(require_program("redis-server", "apt-get install redis-server")).start()
    try:
        fake = servers(store=own.url(), clock="manual", seed=5)
        with httpx.Client(base_url=fake.url, timeout=10) as client:
            assert client.post(CREATE, json=BODY, headers=KEY).status_code == 200
            own.stop()
            for family, (method, path, headers, body, role) in UNAVAILABLE.items():
                r = client.request(method, path, headers=headers, json=body)
                fault = dict(contract_set[family].document["x-wanmock-faults"]["unavailable"])
                fault.update((fault.get("by_role") or {}).get(role) or {})
                assert r.status_code == int(fault["status"]) == 503, (family, r.text)
                assert f'"{fault["code"]}"' in r.text, (family, r.text)  # the family's words
            assert client.get("/_wanmock/tasks").status_code == 503
            own.start()
            r = until(lambda: (x := client.post(CREATE, json=BODY, headers=KEY)).status_code
                       == 200 and x, 10, "the fake recovers")
            task_id = r.json()["output"]["task_id"]
            assert client.get(f"/api/v1/tasks/{task_id}", headers=KEY).json()[
                "output"]["task_status"] == "PENDING"
    finally:
        own.stop()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_stays_flat_with_max_tasks(contract_set: Any) -> None:
    """100,000 submits under HYPOTHESIS_PROFILE=thorough; 25,000 in the default run."""
    from dataclasses import replace

    from mockserver.core.backend import Backend, Options
    from mockserver.providers.base import family_class

    total = 100_000 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 25_000
    backend = Backend(Options(max_tasks=1000, timing="instant", clock="manual", seed=1),
                      contracts=contract_set)
    family_class("dashscope")(backend)
    body = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk"},
            "parameters": {"size": "1280*720", "duration": 5}}
    spec, _ = contract_set["dashscope"].judge("createVideoSynthesis", body)

    def submit(n: int) -> None:
        for _ in range(n):
            backend.submit(family="dashscope", operation="createVideoSynthesis",
                           spec=replace(spec), request=dict(body), task_id=backend.ids.uuid(),
                           api_key="sk-1")

    submit(1000)
    gc.collect()
    at_1000 = _rss_mb()
    submit(total - 1000)
    gc.collect()
    assert len(backend.store) <= 1000 + 50
    assert _rss_mb() - at_1000 < 4.0


def test_the_redis_read_cache_is_invalidated_by_another_workers_write(
        redis_server: RedisServer) -> None:
    from mockserver.core.store.redis import RedisDriver

    url = redis_server.url()
    mine, other = RedisDriver(url), RedisDriver(url)
    try:
        mine.init_clock(1000.0)
        first = mine.sync(None, False)
        calls: list[Any] = []
        real = mine._hot
        mine._hot = lambda *a: calls.append(a) or real(*a)  # type: ignore[method-assign]
        assert mine.sync(None, False)["now"] == first["now"]
        assert calls == []  # served from the cache: nothing changed
        other.advance("manual", 5.0)
        # Redis has published the change before it answered `other`.
        assert until(lambda: mine.sync(None, False)["now"] == first["now"] + 5.0, 2,
                      "the other worker's advance is seen")
        assert calls  # the cache was dropped and the store read again
    finally:
        mine.close()
        other.close()


def test_workers_need_a_shared_store(capsys: pytest.CaptureFixture[str]) -> None:
    from mockserver.cli import main

    assert main(["serve", "--workers", "2", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers 2 needs a shared store" in err and "--store sqlite:///" in err


def test_options_reach_the_workers_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          contract_set: Any) -> None:
    from mockserver.app import OPTIONS_ENV, encode_options
    from mockserver.core.backend import Options
    from mockserver.server import app_from_env

    options = Options().merged(
        store=f"sqlite:///{tmp_path}/w.db", seed=9, api_keys=["sk-a", "sk-b"],
        families=["dashscope", "jiekou"], timing="realistic", max_tasks=50,
        scenarios=({"scenario": "throttle", "times": 1},), rate_limit_qps=3.5).check()
    monkeypatch.setenv(OPTIONS_ENV, encode_options(options))
    app = app_from_env()
    try:
        assert app.state.backend.options == options
        assert sorted(app.state.providers) == ["dashscope", "jiekou"]
    finally:
        app.state.backend.state.close()


def test_the_plugin_takes_a_store_from_the_command_line(pytester: pytest.Pytester,
                                                        tmp_path: Path) -> None:
    pytester.makepyfile(test_shared="""
        def test_one(wanmock):
            assert wanmock.backend.state.shared
            assert wanmock.backend.state.url.startswith("sqlite:///")
            assert wanmock.tasks() == []  # each test starts from a reset store
    """)
    result = pytester.runpytest("-p", "no:cacheprovider",
                                f"--wanmock-store=sqlite:///{tmp_path}/plugin.db")
    result.assert_outcomes(passed=1)
