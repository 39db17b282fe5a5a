"""What a shared store keeps when it restarts or a worker dies: the option's scenario rules
after a Redis that lost its data, webhook deliveries whose worker died mid-delivery (leases),
the URL-signing secret and the manual clock. Against a real redis-server of this module's own
(it is restarted) and a SQLite file."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.backend import Backend, Options
from mockserver.core.clock import DEFAULT_EPOCH
from mockserver.core.webhooks import send
from mockserver.server import ThreadedMockServer
from tests.conftest import RedisServer
from tests.helpers import WebhookReceiver as Receiver
from tests.helpers import require_program, wait_for
from tests.test_store import BODY, CREATE, JIEKOU, KEY, T2V, Fake

RULES = ("rules:\n  - scenario: server-error\n    times: 1\n"
         "    match: {operation: createVideoSynthesis}\n")


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    """A redis-server (no persistence) this module may stop and start on the same port."""
    server = RedisServer(require_program("redis-server", "apt-get install redis-server")).start()
    yield server
    server.stop()


@pytest.fixture
def made() -> Iterator[list[Fake]]:
    fakes: list[Fake] = []
    yield fakes
    for fake in fakes:
        fake.http.close()
        fake.backend.state.close()


def _fake(made: list[Fake], contracts: Any, url: str, **options: Any) -> Fake:
    options.setdefault("clock", "manual")
    options.setdefault("seed", 7)
    fake = Fake(Backend(Options().merged(store=url, **options), contracts=contracts))
    made.append(fake)
    return fake


def _restart(server: RedisServer) -> None:
    """Kill and start redis-server on the same port: it comes back empty."""
    server.stop()
    server.start()


def _submit_statuses(fakes: list[Fake]) -> list[int]:
    """One submit per fake, each retried while the store is still coming back (503)."""
    out = []
    for fake in fakes:
        for _ in range(50):  # bounded: the fake reconnects within a few requests
            status = fake.http.post(CREATE, json=BODY, headers=KEY).status_code
            if status != 503:
                break
        out.append(status)
    return out


def test_the_options_rules_are_back_once_after_redis_lost_its_data(
        own_redis: RedisServer, made: list[Fake], contract_set: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    url = own_redis.url()
    a = _fake(made, contract_set, url, scenarios=str(rules))
    b = _fake(made, contract_set, url, scenarios=str(rules))
    assert sorted(_submit_statuses([a, b, a, b])) == [200, 200, 200, 500]
    a.advance(100)
    assert b.http.get("/_wanmock/clock").json()["now"] == DEFAULT_EPOCH + 100  # b has read it
    _restart(own_redis)
    # The fakes see a new epoch (the data is gone) and the rule is there again, once.
    assert sorted(_submit_statuses([b, a, b, a, b])) == [200, 200, 200, 200, 500]
    # The manual clock carries on (as on a reset), never back to its start.
    assert b.http.get("/_wanmock/clock").json()["now"] == DEFAULT_EPOCH + 100
    for fake in (a, b):
        [shown] = fake.http.get("/_wanmock/scenarios").json()["rules"]
        assert shown["applied"] == 1 and shown["matched"] == 5


def test_workers_meeting_a_new_epoch_at_once_load_the_rules_once(
        own_redis: RedisServer, made: list[Fake], contract_set: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES + "  - scenario: throttle\n    match: {family: apiyi}\n")
    url = own_redis.url()
    fakes = [_fake(made, contract_set, url, scenarios=str(rules)) for _ in range(6)]
    import redis

    redis.Redis(port=own_redis.port).flushall()  # as a restart without persistence
    gate = threading.Barrier(len(fakes))
    seen: list[int] = []

    def look(fake: Fake) -> None:
        gate.wait()
        seen.append(len(fake.backend.scenarios.rules()))

    threads = [threading.Thread(target=look, args=(f,)) for f in fakes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen == [2] * len(fakes)
    shown = fakes[0].http.get("/_wanmock/scenarios").json()["rules"]
    assert [(r["id"], r["scenario"]) for r in shown] == [("r1", "server-error"),
                                                         ("r2", "throttle")]



def test_a_scenario_file_gone_later_never_breaks_requests(
        shared_url: str, made: list[Fake], contract_set: Any, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The file is read at start (a bad one is a startup error); if it goes away later, a new
    epoch gets the rules this worker read before, and requests carry on."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    a = _fake(made, contract_set, shared_url, scenarios=str(rules))
    rules.unlink()
    a.http.post("/_wanmock/reset").raise_for_status()
    assert sorted(_submit_statuses([a, a, a])) == [200, 200, 500]
    assert "cannot read scenario file" in caplog.text

@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def _serve(fake: Fake, wall_ahead: float = 0.0) -> ThreadedMockServer:
    """Another worker on the fake's store, serving (its sender loop runs); its clock
    `wall_ahead` seconds ahead for the leases."""
    backend = Backend(fake.backend.options, contracts=fake.backend.contracts)
    app = create_app(backend=backend)
    backend.webhooks.wall = lambda: time.time() + wall_ahead
    return ThreadedMockServer(app).start()


def _hooked(fake: Fake, url: str) -> str:
    body = {"prompt": "a lighthouse", "width": 832, "height": 480,
            "extra": {"webhook": {"url": url}}}
    response = fake.http.post(T2V, json=body, headers=JIEKOU)
    assert response.status_code == 200, response.text
    return str(response.json()["task_id"])


def _no_lease_left(fake: Fake) -> bool:
    """No worker, however far its clock, can send any webhook again."""
    state = fake.backend.state
    epoch = state.view().epoch
    return not state.driver.hooks_expired(epoch, time.time() + 1e7, 10) and \
        not fake.backend.webhooks.has_pending()


@pytest.mark.parametrize("died", ["before-sending", "after-a-503"])
def test_a_delivery_whose_worker_died_is_made_once_by_another(
        shared_url: str, died: str, receiver: Receiver, made: list[Fake],
        contract_set: Any) -> None:
    a = _fake(made, contract_set, shared_url, families=["jiekou"], timing="fast")
    a.backend.webhooks.record_only = False  # as under a server: what it claims, it sends
    task_id = _hooked(a, receiver.url)
    a.backend.clock.advance(60)
    [claimed] = a.backend.flush_webhooks()  # worker A claims the delivery (a lease) ...
    if died == "after-a-503":
        receiver.statuses = [503]
        [taken] = a.backend.webhooks.take_unsent()

        async def attempt() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                await send(taken, client, a.backend.now)

        asyncio.run(attempt())
        a.backend.webhooks.retry_later(taken)  # the 503 is stored, a retry owed
        assert receiver.count == 1
    assert a.backend.webhooks.take_unsent() != []  # ... and dies: its queue is gone
    assert a.backend.flush_webhooks() == [] and receiver.count == (died == "after-a-503")

    b = _serve(a, wall_ahead=3600)  # another worker, once the lease has run out
    try:
        want = 2 if died == "after-a-503" else 1
        assert wait_for(lambda: any(h.state == "sent" for h in a.backend.webhooks.entries()))
        [hook] = a.backend.webhooks.entries()
        assert hook.task_id == task_id == claimed.task_id
        assert [x["status"] for x in hook.attempts] == [503, 200][2 - want:]
        assert _no_lease_left(a) and receiver.count == want
    finally:
        b.stop()
        b.backend.state.close()


def test_retries_follow_the_policy_once_in_total_across_workers(
        shared_url: str, receiver: Receiver, made: list[Fake], contract_set: Any) -> None:
    """Two serving workers, a receiver failing twice: three POSTs in all (Novita: five
    retries at the timing profile's intervals), each attempt stored."""
    a = _fake(made, contract_set, shared_url, families=["jiekou"], timing="fast")
    servers = [_serve(a), _serve(a)]
    try:
        receiver.statuses = [503, 500]
        _hooked(a, receiver.url)
        a.backend.clock.advance(60)
        assert wait_for(lambda: any(h.state == "sent" for h in a.backend.webhooks.entries()))
        [hook] = a.backend.webhooks.entries()
        assert [x["status"] for x in hook.attempts] == [503, 500, 200]
        assert hook.policy.max_attempts == 6 and hook.next_attempt_at is None
        assert _no_lease_left(a) and receiver.count == 3
    finally:
        for server in servers:
            server.stop()
            server.backend.state.close()



def test_a_held_webhook_is_stored_held_and_its_lease_ended(
        shared_url: str, made: list[Fake], contract_set: Any) -> None:
    """`auto` holds a webhook for a host that is not loopback: every worker sees it held and
    none takes it over later."""
    a = _fake(made, contract_set, shared_url, families=["jiekou"], timing="fast")
    server = _serve(a)
    try:
        _hooked(a, "http://example.com/hook")
        a.backend.clock.advance(60)
        assert wait_for(lambda: [h.state for h in a.backend.webhooks.entries()] == ["held"])
        assert _no_lease_left(a)
    finally:
        server.stop()
        server.backend.state.close()

def _video_path(fake: Fake) -> str:
    task_id = fake.submit()
    fake.advance(60)
    done = fake.poll(task_id)
    assert done["task_status"] == "SUCCEEDED"
    return str(done["video_url"]).removeprefix("http://fake.test")


def _get(fake: Fake, path: str) -> int:
    """A download's status, retried while the store is still coming back (503)."""
    for _ in range(50):  # bounded: the fake reconnects within a few requests
        status = fake.http.get(path).status_code
        if status != 503:
            return status
    return status


def test_without_a_seed_the_signing_secret_is_put_back_after_redis_lost_its_data(
        own_redis: RedisServer, made: list[Fake], contract_set: Any) -> None:
    url = own_redis.url()
    a = _fake(made, contract_set, url, seed=None)
    b = _fake(made, contract_set, url, seed=None)
    before = _video_path(a)
    assert _get(b, before) == 200
    _restart(own_redis)
    # The task went with the data: its URL still verifies (404 NoSuchKey, not a 403).
    assert _get(b, before) == 404
    c = _fake(made, contract_set, url, seed=None)  # started after the restart
    for maker, others in ((c, (a, b)), (a, (b, c))):
        path = _video_path(maker)
        assert [_get(other, path) for other in others] == [200, 200]


def test_with_a_seed_urls_verify_across_a_redis_restart(
        own_redis: RedisServer, made: list[Fake], contract_set: Any) -> None:
    url = own_redis.url()
    a = _fake(made, contract_set, url, seed=3)
    path = _video_path(a)
    forged = path.replace("Signature=", "Signature=0")
    _restart(own_redis)
    b = _fake(made, contract_set, url, seed=3)
    assert _get(b, path) == 404 and _get(b, forged) == 403  # verified; the task is gone
    assert _get(b, _video_path(a)) == 200


def _pid_holding(port: int) -> int | None:
    """The process holding the TCP socket whose local port is `port` (Linux /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                return int(pid)
        except OSError:
            continue
    return None


def test_a_worker_sigkilled_mid_delivery_is_taken_over(redis_server: RedisServer) -> None:
    """`wanmock serve --workers 2`: the worker whose POST the receiver holds is SIGKILLed; the
    other one makes the delivery once the lease (5 s timeout + 10 s) has run out. About 25 s,
    most of it waiting for the real lease: it runs in every suite (CI too), in parallel with
    the rest under `-n 2`."""
    from tests.test_store_servers import serve_workers, until

    posts: list[int] = []  # the client port of each POST
    hold = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            posts.append(self.client_address[1])
            if len(posts) == 1:
                hold.wait(30)  # the first delivery hangs: its worker is killed meanwhile
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/"
    try:
        with serve_workers(redis_server.url()) as (base, proc):
            try:  # the held POST is let go before the server is stopped
                body = {"prompt": "a lighthouse", "width": 832, "height": 480,
                        "extra": {"webhook": {"url": hook_url}}}
                r = httpx.post(base + T2V, json=body, headers=JIEKOU, timeout=10)
                assert r.status_code == 200, r.text
                until(lambda: posts, 60, "the first delivery")
                victim = _pid_holding(posts[0])
                assert victim is not None and victim != proc.pid
                os.kill(victim, signal.SIGKILL)
                until(lambda: len(posts) >= 2, 40, "another worker takes the delivery over")
                hold.set()
                [hook] = until(lambda: [h for h in httpx.get(base + "/_wanmock/webhooks",
                                                               timeout=10).json()["webhooks"]
                                         if h["state"] == "sent"], 10, "it is stored")
                assert hook["attempt_count"] == 1 and len(posts) == 2  # the killed one: unstored
            finally:
                hold.set()
    finally:
        receiver.shutdown()
        receiver.server_close()
