"""A server that stops (SIGTERM, SIGINT, `ThreadedMockServer.stop`) hands the webhook
deliveries it owes to the other workers at once (`Outbox.release`), instead of leaving them to
leases that run out only after the attempt's timeout plus ten seconds; attempts under way get a
short grace to end and store their outcome first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.webhooks import Webhook, hand_over
from mockserver.server import ThreadedMockServer
from tests.helpers import WebhookReceiver, until

JIEKOU = {"Authorization": "Bearer sk_handover_test"}
T2V = "/v3/async/wan-t2v"
TIMEOUT = 60.0  # --webhook-timeout: a lease of 70 s, far beyond what the test waits


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    made = WebhookReceiver(hold_first=True)
    yield made
    made.close()


def test_a_stopping_worker_hands_its_delivery_over(shared_url: str, receiver: WebhookReceiver,
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
        until(lambda: receiver.posts, 20, "worker A's attempt reaches the receiver")
        b = worker()  # started after A claimed the delivery: only a handover gives it to B
        stopped = time.monotonic()
        a.stop()  # A's attempt is still held: cut short after the grace, its delivery released
        until(lambda: len(receiver.posts) >= 2, 20, "worker B takes the delivery over")
        assert receiver.posts[1] - stopped < TIMEOUT  # long before A's lease would run out
        receiver.hold.set()
        with httpx.Client(base_url=b.url, timeout=10) as client:
            hooks = until(lambda: [h for h in client.get("/_wanmock/webhooks").json()[
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
    """Records what `hand_over` releases."""

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
        await hand_over(outbox, running, grace=0.5)  # type: ignore[arg-type]
        return outbox

    outbox = asyncio.run(run())
    assert ended == [1]
    assert outbox.released == [slow]
