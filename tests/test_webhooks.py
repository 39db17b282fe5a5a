"""Webhooks (jiekou/Novita `extra.webhook.url`): owed at submit, rendered when the task ends.

In process they are recorded (and handed to `on_webhook` listeners); under a server they are
POSTed to their URL. Receivers here listen on 127.0.0.1 only.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.core.webhooks import Webhook
from mockserver.handle import WanMock
from mockserver.server import ThreadedMockServer
from tests.helpers import SyncASGITransport, conforms, wait_for

KEY = {"Authorization": "Bearer sk_test_key"}
T2V = "/v3/async/wan-t2v"
BODY = {"prompt": "a lighthouse", "width": 832, "height": 480}
HOOK = "https://app.example.com/novita-webhook"


def _submit(client: httpx.Client, url: str | None = HOOK, **extra: Any) -> str:
    body: dict[str, Any] = dict(BODY, **extra)
    if url is not None:
        body["extra"] = {"webhook": {"url": url}}
    response = client.post(T2V, json=body, headers=KEY)
    assert response.status_code == 200, response.text
    return str(response.json()["task_id"])


def _in_process(**options: Any) -> tuple[Starlette, WanMock, httpx.Client]:
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3, **options)
    handle = WanMock(app.state.backend)
    client = httpx.Client(transport=SyncASGITransport(app), base_url="https://api.jiekou.ai")
    return app, handle, client


def test_a_webhook_is_owed_at_submit_and_carries_the_result_when_the_task_ends() -> None:
    app, wanmock, client = _in_process()
    seen: list[Webhook] = []
    wanmock.on_webhook(seen.append)
    task_id = _submit(client)
    [pending] = wanmock.webhooks()
    assert (pending.task_id, pending.url, pending.state, pending.body) == (
        task_id, HOOK, "pending", None)
    wanmock.advance(1.0)  # still queued: nothing due yet
    assert seen == [] and wanmock.webhooks()[0].state == "pending"
    wanmock.run_until_terminal(task_id)
    assert [h.task_id for h in seen] == [task_id]
    hook = seen[0]
    assert hook.state == "recorded" and hook.status is None  # in process nothing is sent
    # The body is Novita's ASYNC_TASK_RESULT event around the task-result response at that
    # moment (Novita webhook doc).
    polled = client.get("/v3/async/task-result", params={"task_id": task_id}, headers=KEY)
    result = conforms("jiekou", "getTaskResult", polled)
    assert hook.body is not None and hook.body["event_type"] == "ASYNC_TASK_RESULT"
    payload = hook.body["payload"]
    assert payload["task"] == result["task"]
    assert payload["task"]["status"] == "TASK_STATUS_SUCCEED"
    assert payload["extra"]["webhook"] == {"url": HOOK}
    video = client.get(payload["videos"][0]["video_url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    wanmock.advance(60.0)
    assert len(seen) == 1 and len(wanmock.webhooks()) == 1  # delivered once


def test_a_failing_listener_never_breaks_the_fake(caplog: pytest.LogCaptureFixture) -> None:
    _, wanmock, client = _in_process(mode="polls", queued_polls=0, running_polls=0)

    def broken(hook: Webhook) -> None:
        raise KeyError("missing")

    wanmock.on_webhook(broken)
    task_id = _submit(client)
    polled = client.get("/v3/async/task-result", params={"task_id": task_id}, headers=KEY)
    assert polled.status_code == 200  # the poll that made it due still gets its answer
    [hook] = wanmock.webhooks()
    assert hook.state == "failed" and "KeyError" in (hook.error or "")
    assert "on_webhook callback failed" in caplog.text


def test_a_failed_task_sends_its_failure() -> None:
    _, wanmock, client = _in_process()
    task_id = _submit(client)
    wanmock.force(task_id, "failed")
    [hook] = wanmock.webhooks(task_id)
    assert hook.body is not None
    assert hook.body["payload"]["task"]["status"] == "TASK_STATUS_FAILED"
    assert hook.body["payload"]["task"]["reason"]


def test_no_webhook_without_a_url_or_on_a_rejected_submit() -> None:
    _, wanmock, client = _in_process()
    _submit(client, url=None)
    rejected = client.post(T2V, json={**BODY, "width": 7, "extra": {"webhook": {"url": HOOK}}},
                           headers=KEY)
    assert rejected.status_code == 400
    wanmock.run_until_terminal()
    assert wanmock.webhooks() == []


def test_poll_mode_the_poll_that_ends_the_task_makes_the_webhook_due() -> None:
    _, wanmock, client = _in_process(mode="polls", queued_polls=1, running_polls=1)
    task_id = _submit(client)
    states = []
    while not states or states[-1] not in ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"):
        r = client.get("/v3/async/task-result", params={"task_id": task_id}, headers=KEY)
        states.append(r.json()["task"]["status"])
        due = [h for h in wanmock.webhooks() if h.body is not None]
        assert bool(due) == (states[-1] == "TASK_STATUS_SUCCEED")
    assert wanmock.webhooks()[0].body["payload"]["task"][  # type: ignore[index]
        "status"] == "TASK_STATUS_SUCCEED"


def test_control_api_lists_webhooks_and_reset_forgets_them() -> None:
    _, wanmock, client = _in_process()
    task_id = _submit(client)
    listed = client.get("/_wanmock/webhooks").json()
    assert listed["count"] == 1 and listed["webhooks"][0]["state"] == "pending"
    client.post("/_wanmock/clock/advance", json={"seconds": 60})
    listed = client.get("/_wanmock/webhooks", params={"task_id": task_id}).json()
    assert listed["webhooks"][0]["state"] == "recorded"
    assert listed["webhooks"][0]["body"]["payload"]["task"]["task_id"] == task_id
    client.post("/_wanmock/reset")
    assert client.get("/_wanmock/webhooks").json()["count"] == 0


def test_webhooks_option_is_checked() -> None:
    from mockserver.errors import MockServerError

    with pytest.raises(MockServerError, match="webhooks"):
        create_app(webhooks="sometimes")


# -- under a server: sent over HTTP ------------------------------------------------------------
class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[dict[str, Any], str]] = []
        self.arrived = threading.Event()

        async def hook(request: Request) -> Response:
            self.received.append((await request.json(), request.headers.get("user-agent", "")))
            self.arrived.set()
            return JSONResponse({"ok": True}, status_code=status)

        self.server = ThreadedMockServer(Starlette(routes=[Route("/hook", hook,
                                                                 methods=["POST"])]))


def test_a_served_fake_posts_the_webhook_to_its_url() -> None:
    receiver = Receiver()
    fake = ThreadedMockServer(create_app(families=["jiekou"], clock="manual", seed=5))
    with receiver.server, fake:
        with httpx.Client(base_url=fake.url) as client:
            task_id = _submit(client, url=f"{receiver.server.url}/hook")
            client.post("/_wanmock/clock/advance", json={"seconds": 60})
            assert receiver.arrived.wait(10.0)
            assert wait_for(lambda: fake.backend.webhooks.entries()[0].state == "sent")
            body, agent = receiver.received[0]
            assert body["event_type"] == "ASYNC_TASK_RESULT"
            assert body["payload"]["task"]["task_id"] == task_id
            assert body["payload"]["task"]["status"] == "TASK_STATUS_SUCCEED"
            assert agent == "wanmock-webhook"
            [hook] = client.get("/_wanmock/webhooks").json()["webhooks"]
            assert (hook["state"], hook["status"], hook["attempt_count"]) == ("sent", 200, 1)
            # the URL in the body downloads from the fake
            assert client.get(body["payload"]["videos"][0]["video_url"]).status_code == 200
    assert len(receiver.received) == 1


def _failed_delivery(url: str, **options: Any) -> Webhook:
    """The one webhook of a served fake after its task ended, once it reads `failed`."""
    fake = ThreadedMockServer(create_app(families=["jiekou"], clock="manual", seed=5,
                                         **options))
    with fake:
        with httpx.Client(base_url=fake.url) as client:
            _submit(client, url=url)
            client.post("/_wanmock/clock/advance", json={"seconds": 60})
            assert wait_for(lambda: fake.backend.webhooks.entries()[0].state == "failed")
    return fake.backend.webhooks.entries()[0]


def test_an_unreachable_receiver_is_recorded_as_failed() -> None:
    closed = ThreadedMockServer(Starlette()).start()
    dead_url = f"{closed.url}/hook"
    closed.stop()  # nothing listens there any more
    hook = _failed_delivery(dead_url)
    assert hook.error and "Connect" in hook.error and hook.status is None
    # a refused connection is retried like a timeout: five retries, six attempts in all
    assert len(hook.attempts) == 6 and hook.done and hook.next_attempt_at is None


def test_auto_holds_webhooks_for_non_loopback_hosts_and_send_does_not() -> None:
    """Under `auto` a served fake posts only to loopback receivers: an example or generated URL
    (`https://app.example.com/...`) is rendered and held, never contacted."""
    receiver = Receiver()
    fake = ThreadedMockServer(create_app(families=["jiekou"], clock="manual", seed=5))
    with receiver.server, fake:
        with httpx.Client(base_url=fake.url) as client:
            held_id = _submit(client, url=HOOK)
            sent_id = _submit(client, url=f"{receiver.server.url}/hook")
            client.post("/_wanmock/clock/advance", json={"seconds": 60})
            assert receiver.arrived.wait(10.0)
            assert wait_for(lambda: {h.state for h in fake.backend.webhooks.entries()} ==
                             {"held", "sent"})
            states = {h["task_id"]: h["state"]
                      for h in client.get("/_wanmock/webhooks").json()["webhooks"]}
    assert states == {held_id: "held", sent_id: "sent"}
    assert [body["payload"]["task"]["task_id"] for body, _ in receiver.received] == [sent_id]


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:8080/h", True), ("http://127.9.9.9/h", True), ("http://[::1]:1/h", True),
    ("http://localhost/h", True), ("http://app.localhost/h", True),
    ("https://example.com/h", False), ("http://10.0.0.1/h", False), ("http://app:8080/h", False),
    ("http://127.0.0.1.example.com/h", False), ("not a url", False),
    ("http://[::1", False), ("http://[zz]/h", False),
])
def test_loopback_is_read_from_the_url(url: str, loopback: bool) -> None:
    from mockserver.core.webhooks import is_loopback_url

    assert is_loopback_url(url) is loopback


@pytest.mark.parametrize("url", ["http://127.0.0.1:notaport/hook", "http://[::1",
                                 "ftp://127.0.0.1/hook", "http://127.0.0.1/a b",
                                 "http://127.0.0.1/\r\nX-Injected: 1", "http:///nohost"])
def test_a_url_nobody_can_post_to_is_refused_at_submit(url: str) -> None:
    """Decision `webhook-url`: jiekou's own 400 envelope, and the request stays journaled."""
    _, wanmock, client = _in_process()
    response = client.post(T2V, json=dict(BODY, extra={"webhook": {"url": url}}), headers=KEY)
    assert response.status_code == 400
    assert response.json() == {"code": 400, "reason": "INVALID_REQUEST_BODY", "metadata": {},
                               "message": "extra.webhook.url must be an http or https URL"}
    assert wanmock.webhooks() == [] and wanmock.tasks() == []
    [entry] = wanmock.requests(operation="createWanT2vTask")
    assert entry.violations[0]["rule"] == "schema:pattern"


def test_a_url_httpx_cannot_send_to_is_failed_without_retries() -> None:
    """A URL that passes the submit check but that no retry can fix is failed at once."""
    from mockserver.core.webhooks import RetryPolicy, send

    hook = Webhook(1, "jiekou", "t", "http://127.0.0.1:1/h", 0.0, body={"a": 1},
                   policy=RetryPolicy(timeout_s=1.0, intervals=(0.1,) * 5))

    class Refusing:
        async def post(self, *args: Any, **kwargs: Any) -> Any:
            raise httpx.InvalidURL("bad")

    import anyio

    anyio.run(send, hook, Refusing(), lambda: 1.0)
    assert hook.state == "failed" and len(hook.attempts) == 1 and hook.done


def test_record_mode_keeps_webhooks_in_a_served_fake() -> None:
    receiver = Receiver()
    fake = ThreadedMockServer(create_app(families=["jiekou"], clock="manual", seed=5,
                                         webhooks="record"))
    with receiver.server, fake:
        with httpx.Client(base_url=fake.url) as client:
            _submit(client, url=f"{receiver.server.url}/hook")
            client.post("/_wanmock/clock/advance", json={"seconds": 60})
            [hook] = client.get("/_wanmock/webhooks").json()["webhooks"]
    assert hook["state"] == "recorded"
    assert not receiver.arrived.is_set()


# -- listeners may call the fake -----------------------------------------------------------------
def _routed_fake_whose_listener_downloads() -> tuple[Any, list[int]]:
    """An in-process fake (respx routes for api.novita.ai) that ends a task at its first poll,
    with a webhook listener that downloads the video through the same fake."""
    from mockserver.handle import InProcessRoutes

    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3, mode="polls",
                     queued_polls=0, running_polls=0)
    fetched: list[int] = []
    WanMock(app.state.backend).on_webhook(lambda hook: fetched.append(
        httpx.get(hook.body["payload"]["videos"][0]["video_url"]).status_code))  # type: ignore[index]
    return InProcessRoutes(app, ["api.novita.ai"]), fetched


def test_listeners_run_outside_the_app_so_they_may_call_it_in_process() -> None:
    routes, fetched = _routed_fake_whose_listener_downloads()
    with routes:
        with httpx.Client(base_url="https://api.novita.ai") as client:
            task_id = _submit(client)
            # This poll ends the task; its webhook's listener then downloads the video through
            # the same fake, after the poll has been answered.
            polled = client.get("/v3/async/task-result", params={"task_id": task_id},
                                headers=KEY)
            assert polled.json()["task"]["status"] == "TASK_STATUS_SUCCEED"
            assert fetched == [200]


@pytest.mark.anyio
async def test_listeners_after_an_async_request_may_call_the_fake() -> None:
    routes, fetched = _routed_fake_whose_listener_downloads()
    with routes:
        async with httpx.AsyncClient(base_url="https://api.novita.ai") as client:
            body = dict(BODY, extra={"webhook": {"url": HOOK}})
            task_id = (await client.post(T2V, json=body, headers=KEY)).json()["task_id"]
            await client.get("/v3/async/task-result", params={"task_id": task_id}, headers=KEY)
    assert fetched == [200]


def test_listeners_of_a_served_fake_may_call_it() -> None:
    fake = ThreadedMockServer(create_app(families=["jiekou"], clock="manual", seed=5,
                                         webhooks="record"))
    fetched = threading.Event()
    statuses: list[int] = []

    def listener(hook: Webhook) -> None:
        statuses.append(httpx.get(  # type: ignore[index]
            hook.body["payload"]["videos"][0]["video_url"]).status_code)
        fetched.set()

    with fake:
        fake.backend.webhooks.listen(listener)
        with httpx.Client(base_url=fake.url) as client:
            _submit(client)
            client.post("/_wanmock/clock/advance", json={"seconds": 60})
            assert fetched.wait(10.0)
    assert statuses == [200]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_delivery_that_will_never_be_owed_is_forgotten(store: str, tmp_path: Any) -> None:
    """A renderer answering NOT_OWED (an event its task ended without) leaves the outbox: never
    rendered, never pending again; the others are delivered as usual."""
    from mockserver.core.webhooks import NOT_OWED

    url = "memory" if store == "memory" else f"sqlite:///{tmp_path}/s.db"
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3, store=url)
    outbox = app.state.backend.webhooks
    answers: dict[str, Any] = {"never": None, "due": None}
    for name in answers:
        outbox.schedule(family="jiekou", task_id=name, url=HOOK, now=0.0,
                        render=lambda name=name: answers[name])
    assert outbox.flush(1.0) == [] and outbox.has_pending()
    answers.update(never=NOT_OWED, due={"ok": True})
    assert [h.task_id for h in outbox.flush(2.0)] == ["due"]
    assert not outbox.has_pending()
    assert outbox.flush(3.0) == []
    assert [h.body for h in outbox.entries() if h.body is not None] == [{"ok": True}]
