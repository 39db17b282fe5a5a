"""The dashscope family over HTTP: create, query, cancel, list, the result video, the control API.

Every provider response is checked against contracts/dashscope.yaml's schema for its status.
No sleeps: tasks move only when the manual clock is advanced (or, in poll mode, when polled).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.providers.dashscope.render import BEIJING
from tests.helpers import conforms as conforms_to
from tests.providers.dashscope_client import probe

KEY = "sk-dashscope-secret-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
ASYNC = {**AUTH, "X-DashScope-Async": "enable"}
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
TASKS = "/api/v1/tasks"
IMG = "https://example.com/first-frame.png"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
CANCEL_MESSAGE = "Failed to cancel the task, please confirm if the task is in PENDING status."

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(**options: Any) -> Starlette:
    return create_app(families=["dashscope"], clock=ManualClock(), seed=1, **options)


@pytest.fixture
def app() -> Starlette:
    return make_app()


def client_for(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="https://dashscope.aliyuncs.com")


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


def conforms(operation_id: str, response: httpx.Response) -> Any:
    """The JSON body, after checking it against the contract's schema for its status."""
    return conforms_to("dashscope", operation_id, response)


def assert_error(op: str, response: httpx.Response, status: int, code: str,
                 message: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = conforms(op, response)
    assert set(body) == {"code", "message", "request_id"}
    assert body["code"] == code
    assert isinstance(body["request_id"], str) and body["request_id"]
    if message is not None:
        assert body["message"] == message
    else:
        assert isinstance(body["message"], str) and body["message"]
    return body


def advance(app: Starlette, seconds: float) -> None:
    app.state.backend.clock.advance(seconds)


async def create(client: httpx.AsyncClient, body: Any, headers: dict | None = None) -> str:
    r = await client.post(CREATE, json=body, headers=ASYNC if headers is None else headers)
    assert r.status_code == 200, r.text
    data = conforms("createVideoSynthesis", r)
    assert data["output"]["task_status"] == "PENDING"
    assert set(data["output"]) == {"task_id", "task_status"}
    return data["output"]["task_id"]


async def query(client: httpx.AsyncClient, task_id: str) -> dict:
    r = await client.get(f"{TASKS}/{task_id}", headers=AUTH)
    assert r.status_code == 200, r.text
    return conforms("getTask", r)


async def run_to_end(app: Starlette, client: httpx.AsyncClient, task_id: str) -> dict:
    for _ in range(100):
        body = await query(client, task_id)
        if body["output"]["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            return body
        advance(app, 0.5)
    raise AssertionError("task never finished")


async def download(client: httpx.AsyncClient, url: str) -> dict:
    r = await client.get(url)  # a signed link: no Authorization needed
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    return probe(r.content)


def parse_time(text: str) -> float:
    assert TIME.match(text), text
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=BEIJING).timestamp()


def list_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, BEIJING).strftime("%Y%m%d%H%M%S")


# -- whole jobs ------------------------------------------------------------------------------
async def test_wan26_t2v_whole_job(app: Starlette, client: httpx.AsyncClient) -> None:
    body = {"model": "wan2.6-t2v", "input": {"prompt": "A lighthouse at dusk"},
            "parameters": {"size": "1280*720", "duration": 5, "prompt_extend": True}}
    task_id = await create(client, body)

    pending = await query(client, task_id)
    assert set(pending) == {"request_id", "output"}
    assert pending["output"] == {"task_id": task_id, "task_status": "PENDING",
                                 "submit_time": pending["output"]["submit_time"]}
    submitted = parse_time(pending["output"]["submit_time"])
    assert submitted == pytest.approx(app.state.backend.now(), abs=0.001)

    advance(app, 1.5)
    running = (await query(client, task_id))["output"]
    assert running["task_status"] == "RUNNING"
    assert set(running) == {"task_id", "task_status", "submit_time", "scheduled_time"}
    assert running["submit_time"] == pending["output"]["submit_time"]
    assert parse_time(running["scheduled_time"]) > submitted

    advance(app, 60)
    done = await query(client, task_id)
    out = done["output"]
    assert out["task_status"] == "SUCCEEDED"
    assert set(out) == {"task_id", "task_status", "submit_time", "scheduled_time", "end_time",
                        "orig_prompt", "video_url"}  # no actual_prompt for wan2.6
    assert out["orig_prompt"] == "A lighthouse at dusk"
    assert submitted < parse_time(out["scheduled_time"]) < parse_time(out["end_time"])
    assert "Expires=" in out["video_url"] and "Signature=" in out["video_url"]
    assert done["usage"] == {"duration": 5, "size": "1280*720", "input_video_duration": 0,
                             "output_video_duration": 5, "SR": 720, "video_count": 1}

    info = await download(client, out["video_url"])
    assert (info["width"], info["height"]) == (1280, 720)
    assert info["duration"] == pytest.approx(5.0, abs=0.3)
    assert info["audio"] == 1  # wan2.6 has sound


async def test_wan25_usage_shape(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.5-t2v-preview", "input": {"prompt": "a fox"},
                                    "parameters": {"size": "832*480", "duration": 10}})
    done = await run_to_end(app, client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert done["usage"] == {"video_count": 1, "video_duration": 10, "video_ratio": "832*480"}


async def test_wanx21_usage_and_silent_video(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wanx2.1-t2v-turbo", "input": {"prompt": "a fox"},
                                    "parameters": {"prompt_extend": True}})
    done = await run_to_end(app, client, task_id)
    out = done["output"]
    assert out["task_status"] == "SUCCEEDED"
    assert done["usage"] == {"video_duration": 5, "video_ratio": "standard", "video_count": 1}
    # wan2.1 rewrites the prompt when prompt_extend is on (only wan2.6 never shows it).
    assert out["actual_prompt"] and out["actual_prompt"] != out["orig_prompt"]
    info = await download(client, out["video_url"])
    assert (info["width"], info["height"]) == (1280, 720)  # the model's default size
    assert info["duration"] == pytest.approx(5.0, abs=0.3)
    assert info["audio"] == 0


async def test_no_actual_prompt_without_prompt_extend(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, {"model": "wanx2.1-t2v-turbo", "input": {"prompt": "a fox"},
                                    "parameters": {"prompt_extend": False}})
    out = (await run_to_end(app, client, task_id))["output"]
    assert out["task_status"] == "SUCCEEDED"
    assert "actual_prompt" not in out


async def test_wan27_t2v_resolution_and_ratio(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {
        "model": "wan2.7-t2v", "input": {"prompt": "a tall waterfall"},
        "parameters": {"resolution": "720P", "ratio": "9:16", "duration": 3},
    })
    done = await run_to_end(app, client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert done["usage"]["SR"] == 720
    assert done["usage"]["output_video_duration"] == 3
    assert done["usage"].get("ratio") == "9:16"
    info = await download(client, done["output"]["video_url"])
    assert (info["width"], info["height"]) == (720, 1280)
    assert info["duration"] == pytest.approx(3.0, abs=0.3)
    assert info["audio"] == 1


async def test_wan27_default_resolution_is_1080p_on_dashscope(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, {"model": "wan2.7-t2v", "input": {"prompt": "x"}})
    spec = app.state.backend.store.get(task_id).spec
    assert (spec.width, spec.height) == (1920, 1080)


async def test_i2v_job(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {
        "model": "wan2.6-i2v", "input": {"prompt": "the kitten jumps", "img_url": IMG},
        "parameters": {"resolution": "720P", "duration": 5},
    })
    done = await run_to_end(app, client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert done["usage"]["SR"] == 720 and "size" not in done["usage"]
    assert app.state.backend.store.get(task_id).spec.mode == "i2v"
    info = await download(client, done["output"]["video_url"])
    assert (info["width"], info["height"]) == (1280, 720)
    assert info["audio"] == 1


async def test_r2v_job(app: Starlette, client: httpx.AsyncClient) -> None:
    refs = ["https://example.com/a.png", "https://example.com/b.mp4"]
    task_id = await create(client, {
        "model": "wan2.6-r2v",
        "input": {"prompt": "character1 waves at character2", "reference_urls": refs},
        "parameters": {"size": "720*1280", "duration": 4},
    })
    done = await run_to_end(app, client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert done["usage"]["output_video_duration"] == 4
    # The reference video is billed (assumed 5 s long, at most 5 s): audit N05.
    assert (done["usage"]["input_video_duration"], done["usage"]["duration"]) == (5, 9)
    assert app.state.backend.store.get(task_id).spec.mode == "r2v"
    info = await download(client, done["output"]["video_url"])
    assert (info["width"], info["height"]) == (720, 1280)
    assert info["duration"] == pytest.approx(4.0, abs=0.3)
    assert info["audio"] == 1  # wan2.6-r2v makes video with sound (audit N04)


# -- validation: asynchronous and submit-time ------------------------------------------------
SIZE_480 = {"model": "wan2.6-t2v", "input": {"prompt": "a cat"}, "parameters": {"size": "832*480"}}


async def test_size_violation_fails_the_task_later(app: Starlette,
                                                   client: httpx.AsyncClient) -> None:
    task_id = await create(client, SIZE_480)
    done = await run_to_end(app, client, task_id)
    out = done["output"]
    assert out["task_status"] == "FAILED"
    assert out["code"] == "InvalidParameter"
    assert "size" in out["message"] and "wan2.6-t2v" in out["message"]
    assert "video_url" not in out and "usage" not in done
    assert "end_time" in out
    (entry,) = app.state.backend.journal.entries(operation="createVideoSynthesis")
    assert entry.status == 200
    assert [(v["rule"], v["timing"]) for v in entry.violations] == [("size_allowed", "async")]


async def test_size_violation_at_submit_with_rule_timing_submit() -> None:
    app = make_app(rule_timing="submit")
    async with client_for(app) as client:
        r = await client.post(CREATE, json=SIZE_480, headers=ASYNC)
        err = assert_error("createVideoSynthesis", r, 400, "InvalidParameter")
        assert "size" in err["message"]
    assert list(app.state.backend.tasks()) == []


async def test_missing_image_fails_the_task_later(app: Starlette,
                                                  client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.6-i2v", "input": {"prompt": "a cat"}})
    out = (await run_to_end(app, client, task_id))["output"]
    assert out["task_status"] == "FAILED"
    assert out["code"] == "InvalidParameter"
    assert out["message"] == "image_url must provided"


async def test_duration_15_on_wan25_is_400(app: Starlette, client: httpx.AsyncClient) -> None:
    r = await client.post(CREATE, headers=ASYNC, json={
        "model": "wan2.5-t2v-preview", "input": {"prompt": "x"}, "parameters": {"duration": 15}})
    err = assert_error("createVideoSynthesis", r, 400, "InvalidParameter")
    assert "duration" in err["message"] and "15" in err["message"]
    assert list(app.state.backend.tasks()) == []


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        pytest.param({"input": {"prompt": "x"}}, "BadRequest.EmptyModel",
                     'Required parameter "model" missing from request.', id="missing-model"),
        pytest.param({"model": "wan2.6-t2v"}, "BadRequest.EmptyInput",
                     "Required input parameter missing from request.", id="missing-input"),
        pytest.param({"model": "wan9-t2v", "input": {"prompt": "x"}}, "InvalidParameter",
                     "Model not exist.", id="unknown-model"),
    ],
)
async def test_bad_body_is_400(
    app: Starlette, client: httpx.AsyncClient, body: dict, code: str, message: str
) -> None:
    r = await client.post(CREATE, json=body, headers=ASYNC)
    assert_error("createVideoSynthesis", r, 400, code, message)
    assert list(app.state.backend.tasks()) == []


async def test_unknown_model_404_switch() -> None:
    app = make_app(dashscope_unknown_model_status=404)
    async with client_for(app) as client:
        r = await client.post(CREATE, json={"model": "wan9-t2v", "input": {"prompt": "x"}},
                              headers=ASYNC)
        err = assert_error("createVideoSynthesis", r, 404, "ModelNotFound")
        assert err["message"] == ("The model wan9-t2v does not exist or you do not have access "
                                  "to it.")


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2"])
async def test_body_not_json_is_illegal_input(client: httpx.AsyncClient, content: bytes) -> None:
    r = await client.post(CREATE, content=content,
                          headers={**ASYNC, "Content-Type": "application/json"})
    assert_error("createVideoSynthesis", r, 400, "BadRequest.IllegalInput",
                 "The input parameter requires json format.")


async def test_body_over_limit_is_4xx() -> None:
    app = make_app(body_limit=2048)
    body = {"model": "wan2.6-t2v", "input": {"prompt": "x" * 5000}}
    async with client_for(app) as client:
        r = await client.post(CREATE, json=body, headers=ASYNC)
        assert 400 <= r.status_code < 500, r.text
        assert_error("createVideoSynthesis", r, r.status_code, "InvalidParameter")
    assert list(app.state.backend.tasks()) == []


async def test_sdk_style_body_accepted(app: Starlette, client: httpx.AsyncClient) -> None:
    # dashscope's SDK always sends input.prompt (null when unset) and input.extend_prompt.
    body = {"model": "wan2.6-i2v",
            "input": {"prompt": None, "img_url": IMG, "extend_prompt": True},
            "parameters": {"resolution": "720P", "duration": 5, "audio": True}}
    task_id = await create(client, body)
    assert app.state.backend.store.get(task_id).request == body
    body2 = {"model": "wan2.6-t2v", "input": {"prompt": "a cat", "extend_prompt": True},
             "parameters": {"size": "1280*720", "whatever": 1}}
    task_id = await create(client, body2)
    out = (await run_to_end(app, client, task_id))["output"]
    assert out["task_status"] == "SUCCEEDED"


# -- authentication and the async header -----------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "No API-key provided.", id="missing"),
        pytest.param({"Authorization": ""}, "No API-key provided.", id="empty"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, "Invalid API-key provided.",
                     id="basic"),
        pytest.param({"Authorization": "Bearer "}, "Invalid API-key provided.", id="no-key"),
        pytest.param({"Authorization": KEY}, "Invalid API-key provided.", id="no-scheme"),
    ],
)
async def test_bad_key_is_401(
    app: Starlette, client: httpx.AsyncClient, headers: dict, message: str
) -> None:
    body = {"model": "wan2.6-t2v", "input": {"prompt": "x"}}
    r = await client.post(CREATE, json=body, headers={**headers, "X-DashScope-Async": "enable"})
    assert_error("createVideoSynthesis", r, 401, "InvalidApiKey", message)
    r = await client.get(f"{TASKS}/abc", headers=headers)
    assert_error("getTask", r, 401, "InvalidApiKey", message)
    r = await client.post(f"{TASKS}/abc/cancel", headers=headers)
    assert_error("cancelTask", r, 401, "InvalidApiKey", message)
    r = await client.get(TASKS, headers=headers)
    assert_error("listTasks", r, 401, "InvalidApiKey", message)
    assert list(app.state.backend.tasks()) == []


async def test_api_keys_option_rejects_other_keys() -> None:
    app = make_app(api_keys={"sk-good"})
    body = {"model": "wan2.6-t2v", "input": {"prompt": "x"}}
    async with client_for(app) as client:
        r = await client.post(CREATE, json=body, headers={"Authorization": "Bearer sk-bad",
                                                          "X-DashScope-Async": "enable"})
        assert_error("createVideoSynthesis", r, 401, "InvalidApiKey", "Invalid API-key provided.")
        task_id = await create(client, body, headers={"Authorization": "Bearer sk-good",
                                                      "X-DashScope-Async": "enable"})
        r = await client.get(f"{TASKS}/{task_id}", headers={"Authorization": "Bearer sk-bad"})
        assert_error("getTask", r, 401, "InvalidApiKey")


@pytest.mark.parametrize("value", [None, "disable", ""])
async def test_missing_async_header_is_403(
    app: Starlette, client: httpx.AsyncClient, value: str | None
) -> None:
    headers = dict(AUTH) if value is None else {**AUTH, "X-DashScope-Async": value}
    r = await client.post(CREATE, json={"model": "wan2.6-t2v", "input": {"prompt": "x"}},
                          headers=headers)
    assert_error("createVideoSynthesis", r, 403, "AccessDenied",
                 "current user api does not support synchronous calls.")
    assert list(app.state.backend.tasks()) == []


async def test_auth_checked_before_async_header(client: httpx.AsyncClient) -> None:
    r = await client.post(CREATE, json={"model": "wan2.6-t2v", "input": {"prompt": "x"}})
    assert_error("createVideoSynthesis", r, 401, "InvalidApiKey", "No API-key provided.")


async def test_async_header_checked_before_body(client: httpx.AsyncClient) -> None:
    r = await client.post(CREATE, content=b"{nope", headers={**AUTH,
                                                             "Content-Type": "application/json"})
    assert_error("createVideoSynthesis", r, 403, "AccessDenied")


# -- query: unknown and expired --------------------------------------------------------------
async def test_unknown_task_is_200_unknown(client: httpx.AsyncClient) -> None:
    tid = "0385dc79-5ff8-4d82-bcb6-caa600000000"
    body = await query(client, tid)
    assert body["output"] == {"task_id": tid, "task_status": "UNKNOWN"}
    assert "usage" not in body


async def test_task_and_url_expire_after_24h(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"},
                                    "parameters": {"size": "1280*720"}})
    advance(app, 30)
    out = (await query(client, task_id))["output"]
    assert out["task_status"] == "SUCCEEDED"
    url = out["video_url"]
    ended = parse_time(out["end_time"])
    submitted = parse_time(out["submit_time"])
    assert int(re.search(r"Expires=(\d+)", url).group(1)) == int(ended + 86400)  # type: ignore[union-attr]

    advance(app, submitted + 86400 - app.state.backend.now() - 1)
    assert (await query(client, task_id))["output"]["task_status"] == "SUCCEEDED"
    advance(app, 1)  # 24 h after submit
    body = await query(client, task_id)
    assert body["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    # The signed link lives 24 h from the end of the task, not from the query.
    assert app.state.backend.now() < ended + 86400
    assert (await client.get(url)).status_code == 200

    advance(app, ended + 86400 - app.state.backend.now())
    r = await client.get(url)
    assert r.status_code == 403
    assert b"AccessDenied" in r.content and b"expired" in r.content


async def test_tampered_signature_is_403(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"},
                                    "parameters": {"size": "1280*720"}})
    url = (await run_to_end(app, client, task_id))["output"]["video_url"]
    sig = re.search(r"Signature=([0-9a-f]+)", url).group(1)  # type: ignore[union-attr]
    other = ("0" if sig[0] != "0" else "1") + sig[1:]
    r = await client.get(url.replace(sig, other))
    assert r.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in r.content
    r = await client.get(url.split("?")[0])
    assert r.status_code == 403
    assert b"requires the Signature, Expires and OSSAccessKeyId" in r.content
    # Moving Expires forward breaks the signature too.
    expires = re.search(r"Expires=(\d+)", url).group(1)  # type: ignore[union-attr]
    r = await client.get(url.replace(expires, str(int(expires) + 3600)))
    assert r.status_code == 403


async def test_video_head_and_range(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"},
                                    "parameters": {"size": "1280*720"}})
    url = (await run_to_end(app, client, task_id))["output"]["video_url"]
    full = await client.get(url)
    assert full.status_code == 200
    size = len(full.content)
    assert size > 1000

    head = await client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == size
    assert head.headers["content-type"] == "video/mp4"

    part = await client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    assert part.content == full.content[:100]
    tail = await client.get(url, headers={"Range": f"bytes={size - 10}-"})
    assert tail.status_code == 206 and tail.content == full.content[-10:]


# -- cancel ----------------------------------------------------------------------------------
async def test_cancel_pending_task(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"}})
    r = await client.post(f"{TASKS}/{task_id}/cancel", headers=AUTH)
    assert r.status_code == 200, r.text
    body = conforms("cancelTask", r)
    assert set(body) == {"request_id"}
    out = (await query(client, task_id))["output"]
    assert out["task_status"] == "CANCELED"
    assert "video_url" not in out
    advance(app, 600)  # it never runs
    assert (await query(client, task_id))["output"]["task_status"] == "CANCELED"
    r = await client.post(f"{TASKS}/{task_id}/cancel", headers=AUTH)
    assert_error("cancelTask", r, 400, "UnsupportedOperation", CANCEL_MESSAGE)


async def test_cancel_running_task_is_400(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"}})
    advance(app, 1.5)
    assert (await query(client, task_id))["output"]["task_status"] == "RUNNING"
    r = await client.post(f"{TASKS}/{task_id}/cancel", headers=AUTH)
    assert_error("cancelTask", r, 400, "UnsupportedOperation", CANCEL_MESSAGE)
    advance(app, 60)
    assert (await query(client, task_id))["output"]["task_status"] == "SUCCEEDED"


async def test_cancel_unknown_task_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{TASKS}/no-such-task/cancel", headers=AUTH)
    assert_error("cancelTask", r, 400, "UnsupportedOperation", CANCEL_MESSAGE)


# -- list ------------------------------------------------------------------------------------
async def list_tasks(client: httpx.AsyncClient, **params: Any) -> dict:
    r = await client.get(TASKS, params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    return conforms("listTasks", r)


async def test_list_tasks(app: Starlette, client: httpx.AsyncClient) -> None:
    t0 = app.state.backend.now()
    ids = []
    for i, model in enumerate(["wan2.6-t2v", "wan2.5-t2v-preview", "wan2.6-t2v",
                               "wanx2.1-t2v-turbo", "wan2.6-t2v"]):
        ids.append(await create(client, {"model": model, "input": {"prompt": f"job {i}"}}))
        advance(app, 100)
    everything = await list_tasks(client)
    assert everything["total"] == 5
    assert everything["page_no"] == 1 and everything["page_size"] == 10
    assert everything["total_page"] == 1
    assert [row["task_id"] for row in everything["data"]] == ids[::-1]  # newest first
    row = everything["data"][0]
    assert row["status"] == "SUCCEEDED" and row["model_name"] == "wan2.6-t2v"
    assert row["gmt_create"] == int((t0 + 400) * 1000)

    page1 = await list_tasks(client, page_no=1, page_size=2)
    page3 = await list_tasks(client, page_no=3, page_size=2)
    assert page1["total"] == 5 and page1["total_page"] == 3
    assert [r["task_id"] for r in page1["data"]] == ids[::-1][:2]
    assert [r["task_id"] for r in page3["data"]] == [ids[0]]
    assert (await list_tasks(client, page_no=4, page_size=2))["data"] == []

    by_model = await list_tasks(client, model_name="wan2.6-t2v")
    assert {r["task_id"] for r in by_model["data"]} == {ids[0], ids[2], ids[4]}
    assert by_model["total"] == 3

    running_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "late"}})
    advance(app, 1.5)
    running = await list_tasks(client, status="RUNNING")
    assert [r["task_id"] for r in running["data"]] == [running_id]
    succeeded = await list_tasks(client, status="SUCCEEDED")
    assert succeeded["total"] == 5

    window = await list_tasks(client, start_time=list_time(t0 + 100),
                              end_time=list_time(t0 + 300))
    assert {r["task_id"] for r in window["data"]} == {ids[1], ids[2], ids[3]}
    in_ms = await list_tasks(client, start_time=str(int((t0 + 100) * 1000)),
                             end_time=str(int((t0 + 300) * 1000)))
    assert {r["task_id"] for r in in_ms["data"]} == {ids[1], ids[2], ids[3]}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"page_size": "0"}, id="page-size-0"),
        pytest.param({"page_size": "101"}, id="page-size-101"),
        pytest.param({"page_size": "ten"}, id="page-size-text"),
        pytest.param({"page_no": "0"}, id="page-no-0"),
        pytest.param({"start_time": "2025-01-01"}, id="bad-start-time"),
        pytest.param({"start_time": "²" * 13}, id="start-time-not-ascii-digits"),
        pytest.param({"page_no": "9" * 5000}, id="page-no-5000-digits"),
        pytest.param({"status": "DONE"}, id="bad-status"),
    ],
)
async def test_list_bad_parameters_are_400(client: httpx.AsyncClient, params: dict) -> None:
    r = await client.get(TASKS, params=params, headers=AUTH)
    assert_error("listTasks", r, 400, "InvalidParameter")


# -- determinism, journal --------------------------------------------------------------------
async def test_same_seed_same_task_ids() -> None:
    runs = []
    for _ in range(2):
        app = make_app()
        async with client_for(app) as client:
            ids = [await create(client, {"model": "wan2.6-t2v", "input": {"prompt": str(i)}})
                   for i in range(3)]
        runs.append(ids)
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3
    other = create_app(families=["dashscope"], clock=ManualClock(), seed=2)
    async with client_for(other) as client:
        assert await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "0"}}) != runs[0][0]


async def test_journal_redacts_key_and_records_violations(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, SIZE_480)
    await query(client, task_id)
    await client.post(CREATE, json={"input": {"prompt": "x"}}, headers=ASYNC)  # no model
    await client.post(CREATE, json={"model": "wan2.6-t2v", "input": {"prompt": KEY}},
                      headers=ASYNC)  # the key inside a body is hidden too

    r = await client.get("/_wanmock/journal")
    assert r.status_code == 200
    assert KEY not in r.text
    journal = r.json()
    entries = journal["entries"]
    assert journal["count"] == len(entries) == 4
    assert all(e["request"]["headers"]["authorization"] == "Bearer [redacted]" for e in entries)
    create_entry, query_entry, bad_entry, _ = entries
    assert create_entry["operation"] == "createVideoSynthesis"
    assert create_entry["task_id"] == task_id
    assert [v["rule"] for v in create_entry["violations"]] == ["size_allowed"]
    assert query_entry["operation"] == "getTask" and query_entry["violations"] == []
    assert query_entry["task_id"] == task_id
    assert bad_entry["response"]["status"] == 400
    assert bad_entry["violations"][0]["code"] == "BadRequest.EmptyModel"
    assert bad_entry["violations"][0]["field"] == "model"

    limited = (await client.get("/_wanmock/journal", params={"limit": "1"})).json()
    assert limited["count"] == 1
    by_task = (await client.get("/_wanmock/journal", params={"task_id": task_id})).json()
    assert by_task["count"] == 2


async def test_unknown_path_is_404_and_journaled(app: Starlette, client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/services/nothing-here", headers=AUTH)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == "NotFound"
    (entry,) = app.state.backend.journal.entries(path="/api/v1/services/nothing-here")
    assert entry.status == 404
    assert entry.violations and entry.violations[0]["rule"] == "unknown_operation"
    assert entry.request_headers["authorization"] == "Bearer [redacted]"


# -- the control API -------------------------------------------------------------------------
async def test_control_reset(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"}})
    r = await client.post("/_wanmock/reset")
    assert r.status_code == 200 and r.json() == {"reset": True}
    assert (await client.get("/_wanmock/tasks")).json() == {"tasks": [], "count": 0}
    assert (await client.get("/_wanmock/journal")).json()["count"] == 0
    assert (await query(client, task_id))["output"]["task_status"] == "UNKNOWN"


async def test_control_tasks_and_force_state(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"},
                                    "parameters": {"size": "1280*720", "duration": 5}})
    listing = (await client.get("/_wanmock/tasks")).json()
    assert listing["count"] == 1
    (info,) = listing["tasks"]
    assert info["id"] == task_id and info["family"] == "dashscope"
    assert info["state"] == "queued" and info["model"] == "wan2.6-t2v"
    assert (info["width"], info["height"], info["duration"]) == (1280, 720, 5)
    assert (await client.get("/_wanmock/tasks", params={"family": "jiekou"})).json()["count"] == 0

    r = await client.get(f"/_wanmock/tasks/{task_id}")
    assert r.status_code == 200 and r.json()["id"] == task_id
    r = await client.get("/_wanmock/tasks/nope")
    assert r.status_code == 404 and r.json()["type"] == "MockServerError"

    r = await client.post(f"/_wanmock/tasks/{task_id}/state", json={"state": "failed"})
    assert r.status_code == 200 and r.json()["state"] == "failed"
    advance(app, 600)  # pinned: time does not make it succeed
    out = (await query(client, task_id))["output"]
    assert out["task_status"] == "FAILED"
    assert out["code"] and out["message"]

    r = await client.post(f"/_wanmock/tasks/{task_id}/state", json={"state": "exploded"})
    assert r.status_code == 400
    assert r.json()["type"] == "MockServerError" and "state must be one of" in r.json()["error"]
    r = await client.post(f"/_wanmock/tasks/{task_id}/state", content=b"not json",
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "MockServerError"
    r = await client.post(f"/_wanmock/tasks/{task_id}/state", content=b"not json")
    assert r.status_code == 415 and r.json()["type"] == "MockServerError"


async def test_control_clock(app: Starlette, client: httpx.AsyncClient) -> None:
    clock = (await client.get("/_wanmock/clock")).json()
    assert clock["kind"] == "manual" and clock["timing"] == "fast" and clock["mode"] == "time"
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"}})
    r = await client.post("/_wanmock/clock/advance", json={"seconds": 30})
    assert r.status_code == 200
    assert r.json()["now"] == pytest.approx(clock["now"] + 30)
    assert (await client.get("/_wanmock/clock")).json()["now"] == pytest.approx(clock["now"] + 30)
    assert (await query(client, task_id))["output"]["task_status"] == "SUCCEEDED"
    for bad in ({"seconds": -1}, {"seconds": "soon"}, {}):
        r = await client.post("/_wanmock/clock/advance", json=bad)
        assert r.status_code == 400, bad
        assert r.json()["type"] == "MockServerError"
    assert (await client.get("/_wanmock/clock")).json()["now"] == pytest.approx(clock["now"] + 30)


async def test_control_contracts(client: httpx.AsyncClient) -> None:
    index = (await client.get("/_wanmock/contracts")).json()
    ds = index["families"]["dashscope"]
    assert ds["yaml"].endswith("/_wanmock/contracts/dashscope.yaml")
    assert {"createVideoSynthesis", "getTask", "cancelTask", "listTasks"} <= set(ds["operations"])

    r = await client.get("/_wanmock/contracts/dashscope.yaml")
    assert r.status_code == 200 and "yaml" in r.headers["content-type"]
    doc = yaml.safe_load(r.text)
    assert doc["openapi"].startswith("3.1")
    assert doc["x-wanmock-family"] == "dashscope"
    assert CREATE in doc["paths"]

    r = await client.get("/_wanmock/contracts/dashscope.json")
    assert r.status_code == 200
    assert json.loads(r.text) == doc

    for name in ("nope.yaml", "dashscope.xml"):
        r = await client.get(f"/_wanmock/contracts/{name}")
        assert r.status_code == 404 and r.json()["type"] == "MockServerError"


# -- timing modes ----------------------------------------------------------------------------
async def test_poll_mode_advances_per_query() -> None:
    app = make_app(mode="polls")
    async with client_for(app) as client:
        task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"}})
        seen = [(await query(client, task_id))["output"]["task_status"] for _ in range(5)]
    assert seen == ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"]


async def test_instant_timing() -> None:
    app = make_app(timing="instant")
    async with client_for(app) as client:
        task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"},
                                        "parameters": {"size": "1280*720"}})
        done = await query(client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert done["output"]["video_url"]


async def test_realistic_timing() -> None:
    app = make_app(timing="realistic")
    async with client_for(app) as client:
        ids = [await create(client, {"model": "wan2.6-t2v", "input": {"prompt": str(i)},
                                     "parameters": {"size": "1280*720", "duration": 5}})
               for i in range(5)]
        advance(app, 4.9)
        for task_id in ids:
            assert (await query(client, task_id))["output"]["task_status"] == "PENDING"
        advance(app, 15 * 60 - 4.9)
        for task_id in ids:
            out = (await query(client, task_id))["output"]
            assert out["task_status"] == "SUCCEEDED"
            submitted = parse_time(out["submit_time"])
            queue = parse_time(out["scheduled_time"]) - submitted
            total = parse_time(out["end_time"]) - submitted
            assert 5 <= queue <= 60
            assert 60 < total < 15 * 60


async def test_a_trailing_slash_is_answered_as_without_it(client) -> None:
    """The aio SDK polls `/api/v1/tasks/{id}/` and cancels at `.../cancel/` (decision
    trailing-slash): the same answer, no redirect."""
    created = await client.post(CREATE, headers=ASYNC, json={
        "model": "wan2.6-t2v", "input": {"prompt": "a slash"}})
    task_id = created.json()["output"]["task_id"]
    plain = await client.get(f"{TASKS}/{task_id}", headers=AUTH)
    slashed = await client.get(f"{TASKS}/{task_id}/", headers=AUTH)
    assert slashed.status_code == 200
    assert conforms_to("dashscope", "getTask", slashed)["output"] == plain.json()["output"]
    assert (await client.get(f"{TASKS}/", headers=AUTH)).json()["total"] == 1
    canceled = await client.post(f"{TASKS}/{task_id}/cancel/", headers=AUTH)
    assert canceled.status_code == 200
    polled = await client.get(f"{TASKS}/{task_id}/", headers=AUTH)
    assert polled.json()["output"]["task_status"] == "CANCELED"


async def test_trailing_slash_redirect_is_the_other_choice() -> None:
    async with client_for(make_app(dashscope_trailing_slash="redirect")) as c:
        answer = await c.get(f"{TASKS}/abc/", headers=AUTH)
    assert answer.status_code == 307
    assert answer.headers["location"] == f"https://dashscope.aliyuncs.com{TASKS}/abc"
