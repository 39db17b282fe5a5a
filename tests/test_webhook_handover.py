"""A server that stops (SIGTERM, SIGINT, `ThreadedMockServer.stop`) hands the webhook
deliveries it owes to the other workers at once (`Outbox.release`), instead of leaving them to
leases that run out only after the attempt's timeout plus ten seconds; attempts under way get a
short grace to end and store their outcome first."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.webhooks import Webhook, _hand_over
from mockserver.server import ThreadedMockServer

JIEKOU = {"Authorization": "Bearer sk_handover_test"}
T2V = "/v3/async/wan-t2v"
TIMEOUT = 60.0  # --webhook-timeout: a lease of 70 s, far beyond what the test waits


class HoldingReceiver:
    """A webhook receiver that holds the first POST (until `let_go`) and answers 200 later."""

    def __init__(self) -> None:
        self.posts: list[float] = []
        self.hold = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append(time.monotonic())
                if len(outer.posts) == 1:
                    outer.hold.wait(30)
                self.send_response(200)
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


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    made = HoldingReceiver()
    yield made
    made.close()


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/handover.db"
    return str(request.getfixturevalue("redis_server").url())


def _until(condition: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)
    return value


def test_a_stopping_worker_hands_its_delivery_over(shared_url: str, receiver: HoldingReceiver,
                                                   contract_set: Any) -> None:
    def worker() -> ThreadedMockServer:
        return ThreadedMockServer(create_app(
            contracts=contract_set, store=shared_url, families=["jiekou"], timing="instant",
            seed=4, webhook_timeout=TIMEOUT)).start()

    a = worker()
    b = None
    try:
        body = {"prompt": "a lighthouse", "width": 832, "height": 480,
                "extra": {"webhook": {"url": receiver.url}}}
        r = httpx.post(a.url + T2V, json=body, headers=JIEKOU, timeout=10)
        assert r.status_code == 200, r.text
        _until(lambda: receiver.posts, 20, "worker A's attempt reaches the receiver")
        b = worker()  # started after A claimed the delivery: only a handover gives it to B
        stopped = time.monotonic()
        a.stop()  # A's attempt is still held: cut short after the grace, its delivery released
        _until(lambda: len(receiver.posts) >= 2, 20, "worker B takes the delivery over")
        assert receiver.posts[1] - stopped < TIMEOUT  # long before A's lease would run out
        receiver.hold.set()
        with httpx.Client(base_url=b.url, timeout=10) as client:
            hooks = _until(lambda: [h for h in client.get("/_wanmock/webhooks").json()[
                "webhooks"] if h["state"] == "sent"], 10, "B's attempt is stored")
        [hook] = hooks
        assert hook["attempt_count"] == 1  # A's attempt was cut short: never stored
        assert [a["status"] for a in hook["attempts"]] == [200]
        assert len(receiver.posts) == 2  # at least once: the receiver saw A's POST too
    finally:
        receiver.hold.set()
        for server in (a, b):
            if server is not None:
                server.stop()
                server.backend.state.close()


class _Outbox:
    """Records what `_hand_over` releases."""

    def __init__(self) -> None:
        self.released: list[Webhook] | None = None

    def release(self, cut_short: list[Webhook]) -> int:
        self.released = cut_short
        return len(cut_short)


def test_attempts_that_end_within_the_grace_are_not_cut_short() -> None:
    quick, slow = (Webhook(n, "jiekou", f"t{n}", "http://127.0.0.1:9/", 0.0) for n in (1, 2))
    ended: list[int] = []

    async def attempt(hook: Webhook, seconds: float) -> None:
        await asyncio.sleep(seconds)
        ended.append(hook.seq)

    async def run() -> _Outbox:
        outbox = _Outbox()
        running = {asyncio.create_task(attempt(quick, 0.01)): quick,
                   asyncio.create_task(attempt(slow, 30)): slow}
        await _hand_over(outbox, running, grace=0.5)  # type: ignore[arg-type]
        return outbox

    outbox = asyncio.run(run())
    assert ended == [1]
    assert outbox.released == [slow]
