"""The newapi family over HTTP: new-api's video relay in front of DashScope (contracts/newapi.yaml).

Every response is checked against the contract's schema for its status.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.core.tasks import State

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "newapi"
KEY = {"Authorization": "Bearer sk-test"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class Fake:
    """The app, a client on it and the contract it must follow."""

    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.backend = app.state.backend
        self.contract = self.backend.contracts["newapi"]

    def advance(self, seconds: float) -> None:
        self.backend.clock.advance(seconds)

    def conforms(self, operation_id: str, response: httpx.Response) -> Any:
        """Assert the response validates against the contract; return its JSON (or None)."""
        op = self.contract.operation(operation_id)
        status = str(response.status_code)
        assert status in op.raw["responses"], f"{operation_id} may not answer {status}"
        if not response.headers.get("content-type", "").startswith("application/json"):
            return None
        body = response.json()
        op.response_validators[status].validate(body)
        return body

    async def call(
        self, operation_id: str, method: str, url: str, *, status: int, headers: Any = KEY,
        **kwargs: Any,
    ) -> Any:
        response = await self.client.request(method, url, headers=headers, **kwargs)
        assert response.status_code == status, response.text
        return self.conforms(operation_id, response)

    async def submit(self, body: Any, *, path: str = "/v1/video/generations", status: int = 200,
                     headers: Any = KEY) -> Any:
        op = "createVideoGeneration" if path == "/v1/video/generations" else "createVideo"
        return await self.call(op, "POST", path, json=body, status=status, headers=headers)

    async def task(self, task_id: str, status: int = 200, headers: Any = KEY) -> Any:
        return await self.call("getVideoGeneration", "GET", f"/v1/video/generations/{task_id}",
                               status=status, headers=headers)

    async def video(self, video_id: str, status: int = 200, headers: Any = KEY) -> Any:
        return await self.call("getVideo", "GET", f"/v1/videos/{video_id}", status=status,
                               headers=headers)

    async def content(self, video_id: str, status: int = 200, headers: Any = KEY) -> httpx.Response:
        response = await self.client.get(f"/v1/videos/{video_id}/content", headers=headers)
        assert response.status_code == status, response.text
        if status != 206:  # the contract lists no partial answer; Range is a fake's extra
            self.conforms("getVideoContent", response)
        return response


def make_fake(**options: Any) -> Any:
    # No poll lag unless a test asks (the lag has its own tests, test_newapi_wire.py).
    options.setdefault("newapi_poll_interval", 0)
    app = create_app(families=["newapi"], clock=ManualClock(), seed=1, **options)
    return app


@pytest.fixture
async def fake() -> Any:
    app = make_fake()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://newapi.test") as client:
        yield Fake(app, client)


async def fake_with(**options: Any) -> tuple[Fake, httpx.AsyncClient]:
    app = make_fake(**options)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://newapi.test")
    return Fake(app, client), client


def decode(data: bytes) -> tuple[int, int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        return stream.codec_context.width, stream.codec_context.height, duration


# -- whole jobs ---------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_seed002_t2v_job_through_video_generations(fake: Fake) -> None:
    body = fixture("createVideoGeneration.request.seed002_t2v.json")
    assert body["metadata"]["parameters"] == {"prompt_extend": False}
    sub = await fake.submit(body)
    task_id = sub["id"]
    assert task_id.startswith("task_") and len(task_id) == 5 + 32
    assert sub["task_id"] == task_id
    assert (sub["object"], sub["model"], sub["status"], sub["progress"]) == (
        "video", "wan2.5-t2v-preview", "queued", 0)
    assert sub["created_at"] == int(fake.backend.clock.now())

    queued = (await fake.task(task_id))["data"]
    assert (queued["status"], queued["progress"], queued["action"]) == ("QUEUED", "20%",
                                                                        "textGenerate")
    assert queued["start_time"] == 0 and queued["finish_time"] == 0 and queued["fail_reason"] == ""
    upstream_id = queued["data"]["output"]["task_id"]
    assert upstream_id != task_id and len(upstream_id) == 36
    assert queued["data"]["output"]["task_status"] == "PENDING"

    fake.advance(1.5)
    running = (await fake.task(task_id))["data"]
    assert (running["status"], running["progress"]) == ("IN_PROGRESS", "30%")
    assert running["start_time"] >= running["submit_time"] > 0
    assert running["data"]["output"]["task_status"] == "RUNNING"
    assert "scheduled_time" in running["data"]["output"]

    fake.advance(30)
    done = (await fake.task(task_id))["data"]
    assert (done["status"], done["progress"]) == ("SUCCESS", "100%")
    output = done["data"]["output"]
    url = output["video_url"]
    assert output["task_id"] == upstream_id and output["task_status"] == "SUCCEEDED"
    assert done["fail_reason"] == url == done["result_url"]  # seed 002 quirk + newer result_url
    assert done["finish_time"] >= done["start_time"]
    assert output["orig_prompt"] == body["prompt"]
    assert "actual_prompt" not in output  # prompt_extend false
    assert done["data"]["usage"] == {"video_count": 1, "video_duration": 5,
                                     "video_ratio": "1920*1080"}
    assert url.startswith("http://newapi.test/") and "Expires=" in url

    video = await fake.client.get(url)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    width, height, duration = decode(video.content)
    assert (width, height) == (1920, 1080)
    assert duration == pytest.approx(5, abs=0.5)


@pytest.mark.anyio
async def test_openai_style_job_through_v1_videos(fake: Fake) -> None:
    body = fixture("createVideo.request.openai_style_t2v.json")
    assert body["seconds"] == "10" and body["size"] == "1280*720"
    sub = await fake.submit(body, path="/v1/videos")
    vid = sub["id"]

    queued = await fake.video(vid)
    assert (queued["status"], queued["progress"], queued["metadata"]) == ("queued", 20, {"url": ""})
    # completed_at is the row's UpdatedAt, set from the start (audit F14)
    assert queued["completed_at"] == sub["created_at"] and "error" not in queued
    assert queued["task_id"] == vid and queued["created_at"] == sub["created_at"]
    not_ready = await fake.content(vid, status=400)
    assert not_ready.json() == {"error": {
        "message": "Task is not completed yet, current status: QUEUED",
        "type": "invalid_request_error"}}

    fake.advance(1.5)
    running = await fake.video(vid)
    assert (running["status"], running["progress"], running["metadata"]["url"]) == (
        "in_progress", 30, "")
    still = await fake.content(vid, status=400)
    assert still.json()["error"]["message"].endswith("current status: IN_PROGRESS")

    fake.advance(30)
    done = await fake.video(vid)
    assert (done["status"], done["progress"]) == ("completed", 100)
    assert done["completed_at"] >= done["created_at"]
    assert "/_wanmock/videos/" in done["metadata"]["url"]

    data = (await fake.content(vid)).content
    width, height, duration = decode(data)
    assert (width, height) == (1280, 720)
    assert duration == pytest.approx(10, abs=0.5)  # seconds "10" became duration 10
    part = await fake.content(vid, status=206, headers={**KEY, "Range": "bytes=0-99"})
    assert part.content == data[:100]


@pytest.mark.anyio
async def test_seed001_r2v_bodies_are_accepted_and_mapped(fake: Fake) -> None:
    body = fixture("createVideoGeneration.request.seed001_video_reference.json")
    assert body["extra_body"]["seed"] == -1 and body["videos"]
    sub = await fake.submit(body)
    task = fake.backend.store.get(sub["id"])
    spec = task.spec
    assert (spec.model, spec.mode, spec.width, spec.height, spec.duration) == (
        "wan2.6-r2v-flash-720p-audio", "r2v", 1280, 720, 5)
    assert spec.audio is True and spec.seed is None and spec.prompt_extend is False
    assert spec.negative_prompt == "watermark, blur, flicker"
    assert spec.inputs["reference_videos"] == body["videos"]
    assert spec.inputs["audio_url"] == body["extra_body"]["audio"]
    assert spec.inputs["shot_type"] == "single"
    assert "img_url" not in spec.inputs

    body2 = fixture("createVideoGeneration.request.seed001_multi_image_reference.json")
    sub2 = await fake.submit(body2)
    spec2 = fake.backend.store.get(sub2["id"]).spec
    assert (spec2.width, spec2.height, spec2.duration, spec2.audio, spec2.seed) == (
        1920, 1080, 10, False, 42)
    assert spec2.inputs["reference_images"] == body2["images"]
    assert "img_url" not in spec2.inputs

    fake.advance(60)
    first = (await fake.task(sub["id"]))["data"]
    second = (await fake.task(sub2["id"]))["data"]
    assert first["status"] == second["status"] == "SUCCESS"
    assert first["action"] == "textGenerate"  # videos are not images to new-api
    assert second["action"] == "generate"


@pytest.mark.anyio
async def test_i2v_without_image_fails_asynchronously(fake: Fake) -> None:
    sub = await fake.submit({"model": "wan2.6-i2v", "prompt": "The cat turns its head."})
    assert sub["status"] == "queued"
    fake.advance(60)
    dto = (await fake.task(sub["id"]))["data"]
    assert (dto["status"], dto["progress"]) == ("FAILURE", "100%")
    assert dto["fail_reason"] == (
        "task failed, code: InvalidParameter , message: image_url must provided")
    assert "result_url" not in dto and dto["finish_time"] > 0
    output = dto["data"]["output"]
    assert (output["task_status"], output["code"], output["message"]) == (
        "FAILED", "InvalidParameter", "image_url must provided")

    video = await fake.video(sub["id"])
    assert (video["status"], video["progress"]) == ("failed", 100)
    assert video["error"] == {"message": "image_url must provided", "code": "InvalidParameter"}
    assert video["metadata"] == {"url": ""} and "completed_at" in video
    failed = await fake.content(sub["id"], status=400)
    assert failed.json()["error"]["message"].endswith("current status: FAILURE")


@pytest.mark.anyio
async def test_i2v_size_tier_and_image_are_converted(fake: Fake) -> None:
    body = fixture("createVideoGeneration.request.i2v_top_level_image.json")
    assert body["size"] == "720p"
    sub = await fake.submit(body)
    spec = fake.backend.store.get(sub["id"]).spec
    assert (spec.resolution, spec.width, spec.height) == ("720P", 1280, 720)
    assert spec.inputs["img_url"] == body["image"]
    fake.advance(60)
    dto = (await fake.task(sub["id"]))["data"]
    assert (dto["status"], dto["action"]) == ("SUCCESS", "generate")


@pytest.mark.anyio
async def test_wan26_rejects_480p_size_asynchronously(fake: Fake) -> None:
    sub = await fake.submit({"model": "wan2.6-t2v", "prompt": "a boat",
                             "metadata": {"parameters": {"size": "832*480"}}})
    fake.advance(60)
    dto = (await fake.task(sub["id"]))["data"]
    assert dto["status"] == "FAILURE"
    assert dto["fail_reason"] == (
        "task failed, code: InvalidParameter , message: The size is not match 832*480")


@pytest.mark.anyio
async def test_seconds_and_duration_rules(fake: Fake) -> None:
    err = await fake.submit({"model": "wan2.6-t2v", "prompt": "a boat", "duration": 16},
                            status=400)
    assert err["code"] == "fail_to_fetch_task" and err["data"] is None
    upstream = json.loads(err["message"])
    assert set(upstream) == {"request_id", "code", "message"}
    assert upstream["code"] == "InvalidParameter"
    assert "parameters.duration" in upstream["message"]

    # duration wins over seconds; a non-numeric seconds is ignored (default 5)
    both = await fake.submit({"model": "wan2.6-t2v", "prompt": "x", "duration": 7,
                              "seconds": "12"}, path="/v1/videos")
    assert fake.backend.store.get(both["id"]).spec.duration == 7
    junk = await fake.submit({"model": "wan2.6-t2v", "prompt": "x", "seconds": "ten"},
                             path="/v1/videos")
    assert fake.backend.store.get(junk["id"]).spec.duration == 5
    bad = await fake.submit({"model": "wan2.6-t2v", "prompt": "x", "seconds": "20"},
                            path="/v1/videos", status=400)
    assert bad["code"] == "fail_to_fetch_task"


# -- request errors ------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("body, code, message", [
    ({"model": "wan2.6-t2v", "prompt": "  "}, "invalid_request", "prompt is required"),
    ({"model": "wan2.6-t2v"}, "invalid_request", "prompt is required"),
])
async def test_blank_model_and_prompt(fake: Fake, body: Any, code: str, message: str) -> None:
    for path in ("/v1/video/generations", "/v1/videos"):
        err = await fake.submit(body, path=path, status=400)
        assert err == {"code": code, "message": message, "data": None}
    assert len(fake.backend.store) == 0


@pytest.mark.anyio
async def test_blank_model_reaches_the_distributor_not_the_relay(fake: Fake) -> None:
    for body in ({"model": "", "prompt": "x"}, {"prompt": "x"}, {"model": None, "prompt": "x"}):
        for path in ("/v1/video/generations", "/v1/videos"):
            err = await fake.submit(body, path=path, status=400)
            message = err["error"]["message"]
            assert message.startswith("未指定模型名称，模型名称不能为空 (request id: ")
    # whitespace passes the distributor's `== ""` and finds no channel
    err = await fake.submit({"model": "   ", "prompt": "x"}, status=503)
    assert err["error"]["code"] == "model_not_found"
    assert len(fake.backend.store) == 0


@pytest.mark.anyio
async def test_body_not_json(fake: Fake) -> None:
    json_type = {**KEY, "Content-Type": "application/json"}
    for raw in (b"not json", b""):
        response = await fake.client.post("/v1/video/generations", headers=json_type, content=raw)
        assert response.status_code == 400
        body = fake.conforms("createVideoGeneration", response)
        message = body["error"]["message"]
        assert message.startswith("无效的请求，无效的请求，invalid JSON request body")
    response = await fake.client.post("/v1/video/generations", headers=json_type,
                                      content=b"[1, 2]")  # valid JSON, no model in it
    assert fake.conforms("createVideoGeneration", response)["error"]["message"].startswith(
        "未指定模型名称")
    response = await fake.client.post("/v1/video/generations", headers=json_type,
                                      content=b'{"model": "wan2.6-t2v", "prompt": 5}')
    body = fake.conforms("createVideoGeneration", response)  # the relay's own decoding
    assert response.status_code == 400 and body["code"] == "invalid_json"


@pytest.mark.anyio
async def test_unknown_model_is_503_in_openai_shape(fake: Fake) -> None:
    err = await fake.submit({"model": "wan9.9-t2v", "prompt": "x"}, status=503)
    assert err["error"]["code"] == "model_not_found"
    assert err["error"]["type"] == "new_api_error"
    assert err["error"]["message"].startswith(
        "当前分组 default 下对于模型 wan9.9-t2v 无可用渠道 (request id: ")


@pytest.mark.anyio
async def test_t2v_size_without_star_is_a_build_error(fake: Fake) -> None:
    err = await fake.submit({"model": "wan2.6-t2v", "prompt": "x", "size": "720p"}, status=500)
    assert err == {"code": "build_request_failed", "data": None, "message":
                   "convert_to_ali_request_failed: invalid size: 720p, example: 1920*1080"}
    fake400, client = await fake_with(newapi_build_error_status=400)
    async with client:
        err = await fake400.submit({"model": "wan2.6-t2v", "prompt": "x", "size": "720P"},
                                   path="/v1/videos", status=400)
        assert err["code"] == "build_request_failed"
        assert err["message"].endswith("invalid size: 720P, example: 1920*1080")


@pytest.mark.anyio
async def test_conversion_errors(fake: Fake) -> None:
    err = await fake.submit({"model": "wan2.6-t2v", "prompt": "x",
                             "metadata": {"model": "wan2.5-t2v-preview"}}, status=500)
    assert (err["code"], err["message"]) == (
        "build_request_failed", "convert_to_ali_request_failed: can't change model with metadata")
    err = await fake.submit({"model": "wan2.7-i2v", "prompt": "x"}, status=500)
    assert err["message"] == ("convert_to_ali_request_failed: "
                              "wan2.7-i2v requires image, images, input_reference, or input.media")
    ok = await fake.submit({"model": "wan2.7-i2v", "prompt": "x",
                            "images": ["https://example.com/a.png", "https://example.com/b.png"]})
    media = fake.backend.store.get(ok["id"]).spec.inputs["media"]
    assert [m["type"] for m in media] == ["first_frame", "last_frame"]
    err = await fake.submit({"model": "wan2.6-t2v", "prompt": "x",
                             "metadata": {"parameters": {"shot_type": "many"}}}, status=400)
    assert err["code"] == "fail_to_fetch_task"
    assert "parameters.shot_type" in json.loads(err["message"])["message"]


# -- queries and auth -----------------------------------------------------------------------------
@pytest.mark.anyio
async def test_unknown_task(fake: Fake) -> None:
    expected = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    assert await fake.task("task_nope", status=400) == expected
    assert await fake.video("task_nope", status=400) == expected
    missing = await fake.content("task_nope", status=404)
    assert missing.json() == {"error": {"message": "Task not found",
                                        "type": "invalid_request_error"}}


@pytest.mark.anyio
async def test_another_users_task_does_not_exist(fake: Fake) -> None:
    sub = await fake.submit({"model": "wan2.6-t2v", "prompt": "x"})
    other = {"Authorization": "Bearer sk-other"}
    assert (await fake.task(sub["id"], status=400, headers=other))["code"] == "task_not_exist"
    # new-api accepts the key without `Bearer ` and without `sk-`
    assert (await fake.task(sub["id"], headers={"Authorization": "test"}))["code"] == "success"


@pytest.mark.anyio
async def test_missing_or_invalid_key(fake: Fake) -> None:
    err = await fake.submit({"model": "wan2.6-t2v", "prompt": "x"}, status=401, headers={})
    assert err["error"]["type"] == "new_api_error" and err["error"]["code"] == ""
    assert err["error"]["message"].startswith("未提供令牌 (request id: ")
    err = await fake.task("task_x", status=401, headers={"Authorization": "Bearer "})
    assert err["error"]["message"].startswith("未提供令牌")
    await fake.call("getVideo", "GET", "/v1/videos/x", status=401, headers={})
    await fake.call("getVideoContent", "GET", "/v1/videos/x/content", status=401, headers={})

    keyed, client = await fake_with(api_keys=["sk-good"], newapi_english_messages=True)
    async with client:
        err = await keyed.submit({"model": "wan2.6-t2v", "prompt": "x"}, status=401,
                                 headers={"Authorization": "Bearer sk-bad"})
        assert err["error"]["message"].startswith("Invalid token (request id: ")
        await keyed.submit({"model": "wan2.6-t2v", "prompt": "x"},
                           headers={"Authorization": "Bearer good"})


# -- switches and other states ------------------------------------------------------------------
@pytest.mark.anyio
async def test_switches() -> None:
    alt, client = await fake_with(newapi_url_in_fail_reason=False, newapi_id_style="upstream",
                                  newapi_completed_at_always=True, newapi_drop_shot_type=True)
    async with client:
        sub = await alt.submit({"model": "wan2.6-t2v", "prompt": "x",
                                "metadata": {"parameters": {"shot_type": "many"}}})
        vid = sub["id"]
        assert "task_id" not in sub and not vid.startswith("task_") and len(vid) == 36
        assert "shot_type" not in alt.backend.store.get(vid).spec.inputs
        queued = await alt.video(vid)
        assert "task_id" not in queued and queued["completed_at"] == queued["created_at"]
        alt.advance(60)
        dto = (await alt.task(vid))["data"]
        assert dto["status"] == "SUCCESS" and dto["fail_reason"] == ""
        assert dto["result_url"] == dto["data"]["output"]["video_url"]
        assert dto["data"]["output"]["task_id"] == vid


@pytest.mark.anyio
async def test_canceled_and_expired_tasks_are_failures(fake: Fake) -> None:
    for state, word in ((State.CANCELED, "CANCELED"), (State.EXPIRED, "UNKNOWN")):
        sub = await fake.submit({"model": "wan2.6-t2v", "prompt": "x"})
        fake.backend.force(fake.backend.store.get(sub["id"]), state)
        dto = (await fake.task(sub["id"]))["data"]
        assert (dto["status"], dto["fail_reason"], dto["progress"]) == (
            "FAILURE", "task failed", "100%")
        assert dto["data"]["output"]["task_status"] == word
        video = await fake.video(sub["id"])
        assert video["status"] == "failed" and "error" not in video


@pytest.mark.anyio
async def test_journal_records_submit_and_task(fake: Fake) -> None:
    sub = await fake.submit({"model": "wan2.6-i2v", "prompt": "x"})
    entries = list(fake.backend.journal.entries())
    assert entries[-1].task_id == sub["id"]
    assert entries[-1].violations and entries[-1].violations[0]["rule"] == "image_required"


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.request.*.json")))
async def test_every_request_fixture_is_accepted(fake: Fake, name: str) -> None:
    path = "/v1/videos" if name.startswith("createVideo.") else "/v1/video/generations"
    sub = await fake.submit(fixture(name), path=path)
    fake.advance(120)
    dto = (await fake.task(sub["id"]))["data"]
    assert dto["status"] == "SUCCESS", dto["fail_reason"]
    video = await fake.video(sub["id"])
    assert video["status"] == "completed" and video["metadata"]["url"] == dto["result_url"]
