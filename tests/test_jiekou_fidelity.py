"""jiekou/Novita rows of the fidelity audit (../shared/reference/fidelity-audit.md): each test
names its row and checks what the source says.

F01 webhook envelope, F05 retries, F06 test_mode, F07 `video_url_ttl`, F17 task-result fields,
U20 a submit without Content-Type. A served fake posts to receivers on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver.app import create_app
from mockserver.contracts import load
from mockserver.core.clock import ManualClock
from mockserver.handle import WanMock
from mockserver.server import ThreadedMockServer
from tests.helpers import conforms, wait_for

KEY = {"Authorization": "Bearer sk_test_key"}
T2V = "/v3/async/wan-t2v"
BODY = {"prompt": "a lighthouse", "width": 832, "height": 480}
RESULT = "/v3/async/task-result"


class Receiver:
    """A Novita webhook endpoint on 127.0.0.1: answers the statuses in `script` in turn (then
    200); a `None` in the script hangs for `hang_s` before answering 200 (a timeout)."""

    def __init__(self) -> None:
        self.script: list[int | None] = []
        self.received: list[dict[str, Any]] = []
        self.hang_s = 2.0
        self._lock = threading.Lock()

        async def hook(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                self.received.append(body)
                step = self.script.pop(0) if self.script else 200
            if step is None:
                await asyncio.sleep(self.hang_s)
                step = 200
            return JSONResponse({"ok": step < 300}, status_code=step)

        self.server = ThreadedMockServer(Starlette(routes=[Route("/hook", hook,
                                                                 methods=["POST"])]))

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"

    def reset(self, script: list[int | None] | None = None) -> None:
        with self._lock:
            self.script = list(script or [])
            self.received.clear()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ThreadedMockServer, Receiver]]:
    """One served fake (manual clock, 0.25 s webhook timeout) and one receiver for the module."""
    receiver = Receiver()
    fake = ThreadedMockServer(create_app(families=["jiekou"], clock="manual", seed=7,
                                         webhook_timeout=0.25))
    with receiver.server, fake:
        yield fake, receiver


@pytest.fixture()
def live(served: tuple[ThreadedMockServer, Receiver]) -> Iterator[
        tuple[httpx.Client, ThreadedMockServer, Receiver]]:
    fake, receiver = served
    receiver.reset()
    with httpx.Client(base_url=fake.url, headers=KEY) as client:
        client.post("/_wanmock/reset")
        yield client, fake, receiver


def _listed(client: httpx.Client) -> list[dict[str, Any]]:
    return list(client.get("/_wanmock/webhooks").json()["webhooks"])


def _submit(client: httpx.Client, webhook: dict[str, Any], **body: Any) -> str:
    response = client.post(T2V, json=dict(BODY, extra={"webhook": webhook}, **body))
    assert response.status_code == 200, response.text
    return str(response.json()["task_id"])


def _event_schema_accepts(event: dict[str, Any]) -> None:
    """The event validates against the contract's callback schema (WebhookEvent)."""
    import jsonschema

    document = load()["jiekou"].document
    schema = {"$ref": "#/components/schemas/WebhookEvent", "components": document["components"]}
    jsonschema.validate(event, schema)


# -- F01: the ASYNC_TASK_RESULT envelope --------------------------------------------------------
def test_F01_webhook_is_enveloped(live: tuple[httpx.Client, ThreadedMockServer,
                                              Receiver]) -> None:
    """Novita webhook doc: `{"event_type": "ASYNC_TASK_RESULT", "payload": <task-result>}`,
    with `extra.webhook` echoed into the payload."""
    client, _, receiver = live
    task_id = _submit(client, {"url": receiver.url})
    client.post("/_wanmock/clock/advance", json={"seconds": 60})
    assert wait_for(lambda: _listed(client)[0]["state"] == "sent")
    [event] = receiver.received
    assert sorted(event) == ["event_type", "payload"]
    assert event["event_type"] == "ASYNC_TASK_RESULT"
    payload = event["payload"]
    assert payload["extra"]["webhook"] == {"url": receiver.url}
    polled = conforms("jiekou", "getTaskResult", client.get(RESULT, params={"task_id": task_id}))
    # "The schema of the payload fields is exactly the same as the response from the Task
    # Result API": the same fields, plus the echoed webhook.
    assert payload["task"] == polled["task"]
    assert {k: v for k, v in payload["extra"].items() if k != "webhook"} == polled["extra"]
    assert payload["videos"] == polled["videos"] and payload["audios"] == []
    _event_schema_accepts(event)


def test_F01_readme_handler_reads_the_payload() -> None:
    """The webhooks page's handler (`body["payload"]["task"]`) works on what the fake records."""
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3)
    wanmock = WanMock(app.state.backend)
    handled: list[tuple[str, str]] = []
    wanmock.on_webhook(lambda hook: handled.append(
        (hook.body["payload"]["task"]["task_id"],  # type: ignore[index]
         hook.body["payload"]["task"]["status"])))  # type: ignore[index]
    from mockserver.handle import InProcessRoutes

    with InProcessRoutes(app, ["api.novita.ai"]):
        with httpx.Client(base_url="https://api.novita.ai", headers=KEY) as c:
            task_id = c.post(T2V, json=dict(BODY, extra={"webhook": {
                "url": "https://my-app.example/novita"}})).json()["task_id"]
            wanmock.run_until_terminal(task_id)
    assert handled == [(task_id, "TASK_STATUS_SUCCEED")]


# -- F05: retries --------------------------------------------------------------------------------
def test_F05_webhook_retried_after_non_2xx(live: tuple[httpx.Client, ThreadedMockServer,
                                                       Receiver]) -> None:
    """Novita: "retry up to five times if ... your endpoint returns a non-2xx status code".
    The receiver answers 500 twice, then 200: three attempts, each recorded."""
    client, _, receiver = live
    receiver.reset([500, 500])
    _submit(client, {"url": receiver.url})
    client.post("/_wanmock/clock/advance", json={"seconds": 60})
    assert wait_for(lambda: _listed(client)[0]["state"] == "sent")
    [hook] = _listed(client)
    assert hook["attempt_count"] == 3 and len(receiver.received) == 3
    assert [a["status"] for a in hook["attempts"]] == [500, 500, 200]
    assert all(a["error"] is None and a["at"] is not None for a in hook["attempts"])
    assert hook["next_attempt_at"] is None and hook["status"] == 200
    # every attempt carries the same event
    assert receiver.received[0] == receiver.received[2]
    assert hook["policy"] == {"timeout_s": 0.25, "intervals": [0.1, 0.2, 0.3, 0.4, 0.5],
                              "max_attempts": 6}


def test_F05_webhook_gives_up_after_five_retries(
        live: tuple[httpx.Client, ThreadedMockServer, Receiver]) -> None:
    client, _, receiver = live
    receiver.reset([503] * 10)
    _submit(client, {"url": receiver.url})
    client.post("/_wanmock/clock/advance", json={"seconds": 60})
    assert wait_for(lambda: _listed(client)[0]["state"] == "failed")
    [hook] = _listed(client)
    assert [a["status"] for a in hook["attempts"]] == [503] * 6  # one attempt + five retries
    assert wait_for(lambda: len(receiver.received) == 6, timeout=1.0)
    assert len(receiver.received) == 6  # and nothing after the last retry


def test_F05_webhook_retried_after_a_timeout(
        live: tuple[httpx.Client, ThreadedMockServer, Receiver]) -> None:
    """Novita: "The request to your endpoint times out (currently set to 5 seconds)" is
    retried. The timeout is 0.25 s here (`webhook_timeout`); the receiver hangs once."""
    client, _, receiver = live
    receiver.reset([None])
    receiver.hang_s = 1.5
    _submit(client, {"url": receiver.url})
    client.post("/_wanmock/clock/advance", json={"seconds": 60})
    assert wait_for(lambda: _listed(client)[0]["state"] == "sent")
    [hook] = _listed(client)
    first, second = hook["attempts"]
    assert first["status"] is None and "Timeout" in first["error"]
    assert second == {"at": second["at"], "status": 200, "error": None}


def test_F05_policy_follows_the_timing_profile() -> None:
    """fast/instant: short intervals; realistic: a doubling back-off; 5 s timeout (Novita)."""
    from mockserver.providers.jiekou.routes import Jiekou

    policies = {}
    for timing in ("fast", "instant", "realistic"):
        backend = create_app(families=["jiekou"], timing=timing).state.backend
        policies[timing] = Jiekou(backend).policy.webhook_policy()
    assert policies["fast"].intervals == policies["instant"].intervals == (
        0.1, 0.2, 0.3, 0.4, 0.5)
    assert policies["realistic"].intervals == (10, 20, 40, 80, 160)
    assert {p.timeout_s for p in policies.values()} == {5.0}
    assert {p.max_attempts for p in policies.values()} == {6}
    spec = load()["jiekou"].document["x-wanmock-webhooks"]
    assert spec["retries"] == 5 and spec["timeout_s"] == 5  # as the Novita doc says
    assert all(len(steps) == spec["retries"] for steps in spec["intervals"].values())


# -- F06: test_mode ------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"])
def test_F06_test_mode_sends_the_simulated_event_at_once(
        live: tuple[httpx.Client, ThreadedMockServer, Receiver], status: str) -> None:
    """Novita: with test_mode enabled "your webhook endpoint will receive a simulated mock
    event" with `return_task_status`; the clock never moves here."""
    client, _, receiver = live
    webhook = {"url": receiver.url,
               "test_mode": {"enabled": True, "return_task_status": status}}
    task_id = _submit(client, webhook)
    assert wait_for(lambda: len(receiver.received) == 1)
    [event] = receiver.received
    assert event["event_type"] == "ASYNC_TASK_RESULT"
    payload = event["payload"]
    assert payload["task"]["task_id"] == task_id and payload["task"]["status"] == status
    assert payload["extra"]["webhook"] == webhook
    if status == "TASK_STATUS_SUCCEED":
        assert payload["videos"][0]["video_type"] == "mp4"
        assert httpx.get(payload["videos"][0]["video_url"]).status_code == 200  # no key: OSS
    else:
        assert payload["videos"] == [] and payload["task"]["reason"]
    # task-result agrees with the event
    polled = client.get(RESULT, params={"task_id": task_id}).json()
    assert polled["task"]["status"] == status
    _event_schema_accepts(event)


def test_F06_test_mode_disabled_follows_the_task() -> None:
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3)
    wanmock = WanMock(app.state.backend)
    from mockserver.handle import InProcessRoutes

    with InProcessRoutes(app, ["api.novita.ai"]):
        with httpx.Client(base_url="https://api.novita.ai", headers=KEY) as c:
            c.post(T2V, json=dict(BODY, extra={"webhook": {
                "url": "https://my-app.example/h",
                "test_mode": {"enabled": False, "return_task_status": "TASK_STATUS_FAILED"}}}))
    [hook] = wanmock.webhooks()
    assert hook.state == "pending"  # the task still runs
    wanmock.run_until_terminal()
    assert hook.body["payload"]["task"]["status"] == "TASK_STATUS_SUCCEED"  # type: ignore[index]


@pytest.mark.parametrize("extra", [
    {"webhook": "http://127.0.0.1/h"},
    {"webhook": {"url": 5}},
    {"webhook": {}},
    {"webhook": {"url": "http://127.0.0.1/h", "test_mode": []}},
    {"webhook": {"url": "http://127.0.0.1/h", "test_mode": {"enabled": "yes"}}},
    {"webhook": {"url": "http://127.0.0.1/h", "test_mode": {
        "enabled": True, "return_task_status": "TASK_STATUS_" + "X" * 50000}}},
    {"webhook": {"url": "http://127.0.0.1/h",
                 "test_mode": {"enabled": True, "return_task_status": 10 ** 400}}},
    {"webhook": {"url": "javascript:alert(1)"}},
    {"webhook": {"url": "http://127.0.0.1:99999/h"}},
    {"webhook": {"url": "http://127.0.0.1/h", "test_mode": {
        "enabled": True, "return_task_status": ["TASK_STATUS_SUCCEED"] * 10000}}},
])
def test_F06_malformed_webhook_settings_get_jiekou_400(extra: dict[str, Any]) -> None:
    """Malformed extra.webhook, hostile URLs and huge test_mode values: jiekou's own 400
    envelope (never a 500), the request kept in the journal, no task, no webhook."""
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3)
    wanmock = WanMock(app.state.backend)
    from mockserver.handle import InProcessRoutes

    with InProcessRoutes(app, ["api.novita.ai"]):
        with httpx.Client(base_url="https://api.novita.ai", headers=KEY) as c:
            response = c.post(T2V, json=dict(BODY, extra=extra))
    assert response.status_code == 400, response.text[:200]
    body = response.json()
    assert (body["code"], body["reason"], body["metadata"]) == (400, "INVALID_REQUEST_BODY", {})
    assert wanmock.tasks() == [] and wanmock.webhooks() == []
    [entry] = wanmock.requests(operation="createWanT2vTask")
    assert entry.status == 400 and (entry.request_body or "").startswith("{\"prompt\"")


# -- F07, F17: task-result fields ----------------------------------------------------------------
def _succeeded(**options: Any) -> dict[str, Any]:
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3, **options)
    wanmock = WanMock(app.state.backend)
    from mockserver.handle import InProcessRoutes

    with InProcessRoutes(app, ["api.novita.ai"]):
        with httpx.Client(base_url="https://api.novita.ai", headers=KEY) as c:
            task_id = c.post(T2V, json=BODY).json()["task_id"]
            wanmock.run_until_terminal(task_id)
            wanmock.advance(597)
            return conforms("jiekou", "getTaskResult",
                            c.get(RESULT, params={"task_id": task_id}))


def test_F07_video_url_ttl_is_the_string_constant() -> None:
    """Novita task-result doc: `video_url_ttl` type string, "Video expiration time in
    seconds": the TTL, not a countdown (10 minutes after the end it is still "3600")."""
    [video] = _succeeded()["videos"]
    assert video["video_url_ttl"] == "3600"


def test_F07_countdown_option_keeps_the_old_integer() -> None:
    [video] = _succeeded(jiekou_url_ttl="countdown")["videos"]
    ttl = video["video_url_ttl"]  # seconds left: the task ended a little before the 597 s
    assert isinstance(ttl, int) and 3600 - 600 <= ttl <= 3600 - 597


def test_F17_audios_and_enable_nsfw_detection_are_present() -> None:
    """Novita task-result doc example: `"audios": []` and `extra.enable_nsfw_detection`."""
    result = _succeeded()
    assert result["audios"] == []
    assert result["extra"]["enable_nsfw_detection"] is False


# -- U20: a submit without Content-Type ----------------------------------------------------------
@pytest.mark.parametrize(("option", "status"), [("optional", 200), ("required", 400)])
def test_U20_missing_content_type(option: str, status: int) -> None:
    """Decision `missing-content-type`: read as JSON by default; the option refuses it."""
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3, jiekou_content_type=option)
    from mockserver.handle import InProcessRoutes

    with InProcessRoutes(app, ["api.novita.ai"]):
        with httpx.Client(base_url="https://api.novita.ai", headers=KEY) as c:
            response = c.post(T2V, content=b'{"prompt": "a cat"}')
    assert "content-type" not in response.request.headers
    assert response.status_code == status
    if status == 400:
        assert response.json()["reason"] == "INVALID_REQUEST_BODY"


# -- F16: effect templates -----------------------------------------------------------------------
def _post(family_host: str, path: str, body: dict[str, Any],
          headers: dict[str, str]) -> httpx.Response:
    app = create_app(clock=ManualClock(), seed=3)
    from mockserver.handle import InProcessRoutes

    with InProcessRoutes(app, [family_host]):
        with httpx.Client(base_url=f"https://{family_host}", headers=headers) as c:
            return c.post(path, json=body)


I2V26 = "/v3/async/wan2.6-i2v"
IMG = "https://example.com/a.png"
DS_HEADERS = {"Authorization": "Bearer sk-test", "X-DashScope-Async": "enable"}
DS_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"


@pytest.mark.parametrize(("template", "status"), [
    ("flying", 200), ("hanfu-1", 200), ("", 200), ("no-such-template", 400), ("FLYING", 400),
    ("x" * 20000, 400),
])
def test_F16_jiekou_template_is_checked_against_the_effect_list(template: str,
                                                                status: int) -> None:
    """Seed 003: query the video-effect list before calling "以免调用失败" (or the call fails):
    an unknown `input.template` is jiekou's 400; a documented one (or none) is accepted."""
    r = _post("api.novita.ai", I2V26, {"input": {"img_url": IMG, "template": template}}, KEY)
    assert r.status_code == status, r.text[:200]
    if status == 400:
        assert r.json() == {"code": 400, "reason": "INVALID_REQUEST_BODY", "metadata": {},
                            "message": "input.template is not a supported video effect template"}


@pytest.mark.parametrize(("model", "template", "status"), [
    ("wanx2.1-i2v-plus", "melt", 200),       # listed for plus only
    ("wanx2.1-i2v-turbo", "melt", 400),      # ... so not for turbo
    ("wanx2.1-i2v-turbo", "squish", 200),
    ("wanx2.1-i2v-turbo", "hanfu-1", 400),   # a first-and-last-frame template
    ("wan2.6-i2v-flash", "flying", 200),     # a model the lists never name: any listed name
    ("wan2.6-i2v-flash", "no-such-template", 400),
])
def test_F16_dashscope_template_is_checked_per_model(model: str, template: str,
                                                     status: int) -> None:
    """The 视频特效 page: different models support different templates ("不同的模型支持的特效
    模板有所不同"); use a template value that matches the model."""
    r = _post("dashscope.aliyuncs.com", DS_PATH,
              {"model": model, "input": {"img_url": IMG, "template": template}}, DS_HEADERS)
    assert r.status_code == status, r.text[:300]
    if status == 400:
        body = r.json()
        assert body["code"] == "InvalidParameter" and model in body["message"]
        assert "request_id" in body


def test_F16_catalogue_lists_the_documented_templates() -> None:
    catalogue = load()["jiekou"].catalogue
    effects = catalogue.effect_templates
    assert len(effects) == 31  # 26 first-frame + 5 first-and-last-frame templates
    assert effects["melt"] == ("wanx2.1-i2v-plus",)
    assert effects["hanfu-1"] == ("wanx2.1-kf2v-plus",)


# -- issue 12 item 4: jiekou's other /v3/async/wan* endpoints ------------------------------------
@pytest.mark.parametrize(("path", "body", "geometry", "duration"), [
    ("/v3/async/wan2.6-t2v", {"input": {"prompt": "a fox"}}, (1920, 1080), 5),
    ("/v3/async/wan2.6-t2v", {"input": {"prompt": "a fox"},
                              "parameters": {"size": "720*1280", "duration": 15}}, (720, 1280), 15),
    ("/v3/async/wan-2.5-i2v-preview", {"input": {"prompt": "a fox", "img_url": IMG}},
     (1920, 1080), 5),
    ("/v3/async/wan-2.5-i2v-preview", {"input": {"prompt": "a fox", "img_url": IMG},
                                       "parameters": {"resolution": "480P", "duration": 10}},
     (832, 480), 10),
])
def test_item4_new_wan_endpoints_run_a_whole_job(path: str, body: dict[str, Any],
                                                 geometry: tuple[int, int], duration: int) -> None:
    """Novita's model-apis-wan2.6-t2v and model-apis-wan-2.5-i2v-preview pages: defaults
    1920*1080 / 1080P and 5 s; the task ends with a video of that size."""
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=3)
    wanmock = WanMock(app.state.backend)
    from mockserver.handle import InProcessRoutes

    with InProcessRoutes(app, ["api.novita.ai"]):
        with httpx.Client(base_url="https://api.novita.ai", headers=KEY) as c:
            created = c.post(path, json=body)
            task_id = conforms("jiekou", wanmock.requests()[-1].operation or "", created)[
                "task_id"]
            wanmock.run_until_terminal(task_id)
            done = conforms("jiekou", "getTaskResult", c.get(RESULT, params={"task_id": task_id}))
    assert done["task"]["status"] == "TASK_STATUS_SUCCEED"
    spec = wanmock.task(task_id).spec
    assert ((spec.width, spec.height), spec.duration, spec.audio) == (geometry, duration, True)
    assert done["task"]["task_type"] == ("IMG_TO_VIDEO" if "i2v" in path else "TXT_TO_VIDEO")


@pytest.mark.parametrize(("path", "body"), [
    ("/v3/async/wan2.6-t2v", {"input": {"prompt": "a"}, "parameters": {"duration": 7}}),
    ("/v3/async/wan2.6-t2v", {"input": {"prompt": "a"}, "parameters": {"size": "832*480"}}),
    ("/v3/async/wan2.6-t2v", {"input": {}}),
    ("/v3/async/wan-2.5-i2v-preview", {"input": {"prompt": "a"}}),
    ("/v3/async/wan-2.5-i2v-preview", {"input": {"img_url": IMG}}),
    ("/v3/async/wan-2.5-i2v-preview", {"input": {"prompt": "a", "img_url": "ftp://x/a.png"}}),
    ("/v3/async/wan-2.5-i2v-preview", {"input": {"prompt": "a", "img_url": IMG},
                                       "parameters": {"duration": 15}}),
])
def test_item4_new_wan_endpoints_reject_in_jiekou_words(path: str, body: dict[str, Any]) -> None:
    r = _post("api.novita.ai", path, body, KEY)
    assert r.status_code == 400, r.text[:200]
    assert r.json()["reason"] == "INVALID_REQUEST_BODY" and r.json()["metadata"] == {}
