"""The apiyi family over HTTP: DashScope's create under `/wan`, apiyi's own `GET /v1/tasks/{id}`.

Every response is checked against contracts/apiyi.yaml's schema for its status.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import pytest
from starlette.applications import Starlette

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from tests.helpers import conforms as conforms_to

AUTH = {"Authorization": "Bearer sk-apiyi-test-key"}
ASYNC = {**AUTH, "X-DashScope-Async": "enable"}
CREATE = "/wan/api/v1/services/aigc/video-generation/video-synthesis"
TASK = "/v1/tasks/{}"
T2V27 = {"model": "wan2.7-t2v", "input": {"prompt": "A red kite over the sea"}}

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app() -> Starlette:
    return create_app(families=["apiyi"], clock=ManualClock(), seed=1)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.apiyi.com") as c:
        yield c


def conforms(operation_id: str, response: httpx.Response) -> Any:
    """The JSON body, after checking it against the contract's schema for its status."""
    return conforms_to("apiyi", operation_id, response)


def advance(app: Starlette, seconds: float) -> None:
    app.state.backend.clock.advance(seconds)


async def create(client: httpx.AsyncClient, body: Any) -> str:
    r = await client.post(CREATE, json=body, headers=ASYNC)
    assert r.status_code == 200, r.text
    data = conforms("createVideoSynthesis", r)
    assert data["output"]["task_status"] == "PENDING"
    assert isinstance(data["request_id"], str)
    return data["output"]["task_id"]


async def poll(client: httpx.AsyncClient, task_id: str) -> dict:
    r = await client.get(TASK.format(task_id), headers=AUTH)  # no X-DashScope-Async here
    assert r.status_code == 200, r.text
    return conforms("getTask", r)


async def run_to_end(app: Starlette, client: httpx.AsyncClient, task_id: str) -> list[dict]:
    seen = []
    for _ in range(100):
        body = await poll(client, task_id)
        seen.append(body)
        if body["status"] in ("completed", "failed"):
            return seen
        advance(app, 0.5)
    raise AssertionError("task never finished")


def probe(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        return {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "duration": float(container.duration) / av.time_base,  # type: ignore[operator]
            "audio": len(container.streams.audio),
        }


def assert_task_api_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = conforms("getTask", response)
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


async def test_wan27_t2v_whole_job(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, T2V27)

    first = await poll(client, task_id)
    assert first == {"task_id": task_id, "status": "submitted", "progress": 10}
    advance(app, 1.5)
    running = await poll(client, task_id)
    assert running == {"task_id": task_id, "status": "in_progress", "progress": 30}

    seen = await run_to_end(app, client, task_id)
    assert [b["status"] for b in seen][0] == "in_progress"
    done = seen[-1]
    assert done["status"] == "completed" and done["progress"] == 100
    assert set(done) == {"task_id", "status", "progress", "result_url"}
    assert "Expires=" in done["result_url"]

    r = await client.get(done["result_url"])  # the signed link needs no Authorization
    assert r.status_code == 200
    assert r.headers["content-type"] == "video/mp4"
    info = probe(r.content)
    # apiyi's own table: wan2.7-t2v defaults to 720P (16:9), not DashScope's 1080P.
    assert (info["width"], info["height"]) == (1280, 720)
    assert info["duration"] == pytest.approx(5.0, abs=0.3)
    assert info["audio"] == 1


async def test_failed_task_carries_error(app: Starlette, client: httpx.AsyncClient) -> None:
    # A size the model does not offer is accepted, then the task fails (as on DashScope).
    task_id = await create(client, {"model": "wan2.6-t2v", "input": {"prompt": "x"},
                                    "parameters": {"size": "832*480"}})
    done = (await run_to_end(app, client, task_id))[-1]
    assert done["status"] == "failed"
    assert "result_url" not in done
    assert done["error"]["code"] == "InvalidParameter"
    assert "size" in done["error"]["message"]


async def test_forced_failure(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, T2V27)
    r = await client.post(f"/_wanmock/tasks/{task_id}/state", json={"state": "failed"})
    assert r.status_code == 200
    body = await poll(client, task_id)
    assert body["status"] == "failed"
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]


async def test_canceled_task_reads_failed(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, T2V27)
    r = await client.post(f"/_wanmock/tasks/{task_id}/state", json={"state": "canceled"})
    assert r.status_code == 200
    body = await poll(client, task_id)
    assert body["status"] == "failed"
    assert body["error"]["code"] and body["error"]["message"]
    assert "result_url" not in body


async def test_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get(TASK.format("c2e7570c-0af2-4eba-919f-3af3d1160000"), headers=AUTH)
    err = assert_task_api_error(r, 404, "task_not_found")
    assert err["type"] == "invalid_request_error"


async def test_expired_task_is_404(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, T2V27)
    advance(app, 30)
    assert (await poll(client, task_id))["status"] == "completed"
    advance(app, 86400)
    r = await client.get(TASK.format(task_id), headers=AUTH)
    assert_task_api_error(r, 404, "task_not_found")


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="missing"), pytest.param({"Authorization": "Basic x"}, id="basic"),
     pytest.param({"Authorization": "Bearer "}, id="empty-bearer")],
)
async def test_task_api_401_in_new_api_shape(
    app: Starlette, client: httpx.AsyncClient, headers: dict
) -> None:
    task_id = await create(client, T2V27)
    r = await client.get(TASK.format(task_id), headers=headers)
    err = assert_task_api_error(r, 401, "invalid_token")
    assert err["type"] == "new_api_error"
    assert err["message"].startswith("Invalid token")


async def test_create_without_async_header_is_403(app: Starlette,
                                                  client: httpx.AsyncClient) -> None:
    r = await client.post(CREATE, json=T2V27, headers=AUTH)
    assert r.status_code == 403
    body = conforms("createVideoSynthesis", r)
    assert body["code"] == "AccessDenied"
    assert body["message"] == "current user api does not support synchronous calls."
    assert body["request_id"]
    assert list(app.state.backend.tasks()) == []


async def test_create_duration_16_is_400(app: Starlette, client: httpx.AsyncClient) -> None:
    r = await client.post(CREATE, json={**T2V27, "parameters": {"duration": 16}}, headers=ASYNC)
    assert r.status_code == 400
    body = conforms("createVideoSynthesis", r)
    assert body["code"] == "InvalidParameter"
    assert set(body) == {"code", "message", "request_id"}
    assert list(app.state.backend.tasks()) == []


async def test_create_401_in_dashscope_shape(client: httpx.AsyncClient) -> None:
    r = await client.post(CREATE, json=T2V27, headers={"X-DashScope-Async": "enable"})
    assert r.status_code == 401
    body = conforms("createVideoSynthesis", r)
    assert body["code"] == "InvalidApiKey" and body["message"] == "No API-key provided."


async def test_dashscope_paths_are_not_apiyi(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/services/aigc/video-generation/video-synthesis", json=T2V27,
                          headers=ASYNC)
    assert r.status_code == 404  # only the /wan prefix is apiyi's


# apiyi's video-edit page's request (docs.apiyi.com/en/api-capabilities/wan/video-edit), URLs
# shortened: a video to edit and one reference image.
VIDEO = {"type": "video", "url": "https://example.com/source.mp4"}
OUTFIT = {"type": "reference_image", "url": "https://example.com/new-clothes.png"}


EDIT = "Replace the girl's outfit in the video with the outfit in the image"


def videoedit(*media: dict) -> dict:
    return {"model": "wan2.7-videoedit", "input": {"prompt": EDIT, "media": list(media)}}


async def test_wan27_videoedit_whole_job(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, videoedit(VIDEO, OUTFIT))
    done = (await run_to_end(app, client, task_id))[-1]
    assert done["status"] == "completed"
    r = await client.get(done["result_url"])
    assert r.status_code == 200
    info = probe(r.content)
    # DashScope's rules behind the pass-through: 1080P by default (apiyi's 720P is wan2.7-t2v's),
    # the input's ratio and length (assumed 16:9 and 5 s: decision inputs-not-fetched), sound.
    assert (info["width"], info["height"], info["audio"]) == (1920, 1080, 1)
    assert info["duration"] == pytest.approx(5.0, abs=0.3)


async def test_wan27_videoedit_rejections(app: Starlette, client: httpx.AsyncClient) -> None:
    # No video to edit: DashScope's 400, passed through in its envelope; no task.
    r = await client.post(CREATE, json=videoedit(OUTFIT), headers=ASYNC)
    assert r.status_code == 400
    body = conforms("createVideoSynthesis", r)
    assert (body["code"], body["message"]) == (
        "InvalidParameter",
        "Required parameter(input.media) missing or invalid, please check the request parameters.")
    assert list(app.state.backend.tasks()) == []
    # Five reference images (apiyi's page says up to 5, DashScope takes 4): accepted, then the
    # task fails, and apiyi's task API carries DashScope's code and message.
    task_id = await create(client, videoedit(VIDEO, *[OUTFIT] * 5))
    done = (await run_to_end(app, client, task_id))[-1]
    assert done["status"] == "failed" and "result_url" not in done
    assert done["error"] == {"code": "InvalidParameter", "message": (
        "The number of reference_image exceeds the limit of model wan2.7-videoedit (max 4).")}


async def test_vace_through_the_pass_through(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await create(client, {
        "model": "wan2.1-vace-plus",
        "input": {"function": "image_reference", "prompt": "a girl dances",
                  "ref_images_url": ["https://example.com/girl.png"]},
        "parameters": {"size": "720*1280"}})
    done = (await run_to_end(app, client, task_id))[-1]
    assert done["status"] == "completed"
    info = probe((await client.get(done["result_url"])).content)
    assert (info["width"], info["height"], info["audio"]) == (720, 1280, 0)  # VACE is silent
    r = await client.post(CREATE, headers=ASYNC, json={
        "model": "wanx2.1-vace-plus", "input": {"function": "video_outpainting", "prompt": "a"}})
    assert r.status_code == 400
    assert conforms("createVideoSynthesis", r)["message"] == (
        "Required parameter(input.video_url) missing or invalid, please check the request "
        "parameters.")


@pytest.mark.parametrize("model", ["wan2.2-kf2v-flash", "wan2.2-s2v", "wan2.2-animate-move",
                                   "happyhorse-1.0-video-edit"])
async def test_models_apiyi_does_not_relay_do_not_exist(client: httpx.AsyncClient,
                                                        model: str) -> None:
    # DashScope serves the first three on its image2video path, which apiyi does not relay;
    # HappyHorse is apiyi's, but no Wan model (decision wan-models-offered).
    r = await client.post(CREATE, json={"model": model, "input": {"prompt": "a"}}, headers=ASYNC)
    assert r.status_code == 400
    body = conforms("createVideoSynthesis", r)
    assert (body["code"], body["message"]) == ("InvalidParameter", "Model not exist.")
