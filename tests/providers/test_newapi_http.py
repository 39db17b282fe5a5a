"""The newapi family over HTTP: new-api's video relay in front of DashScope, one release at a time
(contracts/newapi.yaml; `newapi_version` latest = v1.0.0-rc.25, legacy = v0.10.0).

Every response is checked against the contract's schema for its status and carries the
release's request-id header (`Fake.call`). The audit rows N07-N15 have their own tests in
test_newapi_releases.py; the wire (bodies by Content-Type) in test_newapi_wire.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import AsyncIterator
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
VERSIONS = ("latest", "legacy")
# X-Oneapi-Request-Id: R UTC + 9-digit nanoseconds + build tag; L local time + unpadded ns.
REQUEST_ID = {"latest": re.compile(r"^\d{14}\d{9}8268d9d6[A-Za-z0-9]{8}$"),
              "legacy": re.compile(r"^\d{14}\d{1,9}[A-Za-z0-9]{8}$")}


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
        version = self.backend.options["newapi_version"]
        self.version = "latest" if version in ("latest", "v1.0.0-rc.25") else "legacy"

    def advance(self, seconds: float) -> None:
        self.backend.clock.advance(seconds)

    def stamped(self, response: httpx.Response) -> None:
        """The release's global headers (middleware/request-id.go; R also cors.go Version)."""
        assert REQUEST_ID[self.version].match(response.headers["x-oneapi-request-id"]), (
            response.headers)
        version = response.headers.get("x-new-api-version")
        assert version == ("v1.0.0-rc.25" if self.version == "latest" else None)

    def conforms(self, operation_id: str, response: httpx.Response) -> Any:
        """Assert the response validates against the contract; return its JSON (or None)."""
        op = self.contract.operation(operation_id)
        status = str(response.status_code)
        assert status in op.raw["responses"], f"{operation_id} may not answer {status}"
        self.stamped(response)
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

    async def content(self, video_id: str, status: int = 200, headers: Any = KEY
                      ) -> httpx.Response:
        response = await self.client.get(f"/v1/videos/{video_id}/content", headers=headers)
        assert response.status_code == status, response.text
        self.conforms("getVideoContent", response)
        return response

    def upstream(self, task_id: str) -> Any:
        """The DashScope request new-api built for the task."""
        return self.backend.store.get(task_id).extra["upstream_request"]


def make_fake(**options: Any) -> Any:
    # No poll lag unless a test asks (the lag has its own tests, test_newapi_wire.py).
    options.setdefault("newapi_poll_interval", 0)
    app = create_app(families=["newapi"], clock=ManualClock(), seed=1, **options)
    return app


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[Fake]:
    """A fake with these options and a client on it."""
    app = make_fake(**options)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://newapi.test") as client:
        yield Fake(app, client)


@pytest.fixture
async def fake() -> Any:
    async with serving() as served:
        yield served


@pytest.fixture(params=VERSIONS)
async def each(request: pytest.FixtureRequest) -> Any:
    """A fake of each release."""
    async with serving(newapi_version=request.param) as served:
        yield served


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
async def test_seed002_t2v_job_through_video_generations(each: Fake) -> None:
    body = fixture("createVideoGeneration.request.seed002_t2v.json")
    assert body["metadata"]["parameters"] == {"prompt_extend": False}
    sub = await each.submit(body)
    task_id = sub["id"]
    if each.version == "latest":
        assert task_id.startswith("task_") and len(task_id) == 5 + 32
        assert sub["task_id"] == task_id
    else:  # v0.10.0: the DashScope task id, no task_id key (seed 002's shape)
        assert len(task_id) == 36 and "task_id" not in sub
    assert (sub["object"], sub["model"], sub["status"], sub["progress"]) == (
        "video", "wan2.5-t2v-preview", "queued", 0)
    assert sub["created_at"] == int(each.backend.clock.now())
    # prompt_extend false is omitempty'd away: DashScope rewrites the prompt anyway
    assert each.upstream(task_id) == {
        "model": "wan2.5-t2v-preview",
        "input": {"prompt": body["prompt"], "negative_prompt": "trees, animals, outdoors"},
        "parameters": {"size": "1920*1080", "duration": 5}}

    queued = (await each.task(task_id))["data"]
    assert (queued["status"], queued["progress"], queued["action"]) == ("QUEUED", "20%",
                                                                        "textGenerate")
    assert queued["start_time"] == 0 and queued["finish_time"] == 0 and queued["fail_reason"] == ""
    upstream_id = queued["data"]["output"]["task_id"]
    assert len(upstream_id) == 36 and (upstream_id != task_id) is (each.version == "latest")
    assert queued["data"]["output"]["task_status"] == "PENDING"
    assert "result_url" not in queued

    each.advance(1.5)
    running = (await each.task(task_id))["data"]
    assert (running["status"], running["progress"]) == ("IN_PROGRESS", "30%")
    assert running["start_time"] >= running["submit_time"] > 0
    assert running["data"]["output"]["task_status"] == "RUNNING"

    each.advance(60)
    done = (await each.task(task_id))["data"]
    assert (done["status"], done["progress"]) == ("SUCCESS", "100%")
    output = done["data"]["output"]
    url = output["video_url"]
    assert output["task_id"] == upstream_id and output["task_status"] == "SUCCEEDED"
    if each.version == "latest":
        assert (done["fail_reason"], done["result_url"]) == ("", url)
    else:
        assert done["fail_reason"] == url and "result_url" not in done
    assert output["orig_prompt"] == body["prompt"]
    assert output["actual_prompt"]  # rewriting stayed on (N11)
    assert url.startswith("http://newapi.test/") and "Expires=" in url
    video = await each.client.get(url)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    width, height, duration = decode(video.content)
    assert (width, height) == (1920, 1080)
    assert duration == pytest.approx(5, abs=0.5)


@pytest.mark.anyio
async def test_openai_style_job_through_v1_videos(each: Fake) -> None:
    body = fixture("createVideo.request.openai_style_t2v.json")
    assert body["seconds"] == "10" and body["size"] == "1280*720"
    sub = await each.submit(body, path="/v1/videos")
    vid = sub["id"]

    queued = await each.video(vid)
    assert (queued["status"], queued["progress"], queued["metadata"]) == ("queued", 20, {"url": ""})
    assert "task_id" not in queued and "error" not in queued  # neither release shows it here
    assert queued["completed_at"] == int(each.backend.clock.now())  # the row's last poll
    not_ready = await each.content(vid, status=400)
    assert not_ready.json() == {"error": {
        "message": "Task is not completed yet, current status: QUEUED",
        "type": "invalid_request_error"}}

    each.advance(1.5)
    running = await each.video(vid)
    assert (running["status"], running["progress"], running["metadata"]["url"]) == (
        "in_progress", 30, "")
    still = await each.content(vid, status=400)
    assert still.json()["error"]["message"].endswith("current status: IN_PROGRESS")

    each.advance(60)
    done = await each.video(vid)
    assert (done["status"], done["progress"]) == ("completed", 100)
    task = each.backend.store.get(vid)
    assert done["completed_at"] == int(task.submitted_at + task.plan.end_s)
    assert "/_wanmock/videos/" in done["metadata"]["url"]

    content = await each.content(vid)
    assert content.headers["cache-control"] == "public, max-age=86400"
    width, height, duration = decode(content.content)
    assert (width, height) == (1280, 720)
    assert duration == pytest.approx(10, abs=0.5)  # seconds "10" became duration 10
    # the proxy fetches the URL without the client's headers: a Range gets the whole file
    whole = await each.content(vid, headers={**KEY, "Range": "bytes=0-99"})
    assert whole.content == content.content


@pytest.mark.anyio
async def test_i2v_without_image_fails_asynchronously(each: Fake) -> None:
    sub = await each.submit({"model": "wan2.6-i2v", "prompt": "The cat turns its head."})
    assert sub["status"] == "queued"
    each.advance(60)
    dto = (await each.task(sub["id"]))["data"]
    assert (dto["status"], dto["progress"]) == ("FAILURE", "100%")
    reason = "task failed, code: InvalidParameter , message: image_url must provided"
    assert dto["fail_reason"] == reason and dto["finish_time"] > 0
    # R's result_url falls back to fail_reason (GetResultURL); L has no result_url
    assert dto.get("result_url") == (reason if each.version == "latest" else None)
    output = dto["data"]["output"]
    assert (output["task_status"], output["code"], output["message"]) == (
        "FAILED", "InvalidParameter", "image_url must provided")

    video = await each.video(sub["id"])
    assert (video["status"], video["progress"]) == ("failed", 100)
    assert video["error"] == {"message": "image_url must provided", "code": "InvalidParameter"}
    assert video["metadata"] == {"url": ""} and "completed_at" in video
    failed = await each.content(sub["id"], status=400)
    assert failed.json()["error"]["message"].endswith("current status: FAILURE")


@pytest.mark.anyio
async def test_dashscope_rules_judge_the_relayed_request(each: Fake) -> None:
    # a size DashScope refuses later: its own words, as a FAILURE row
    sub = await each.submit({"model": "wan2.6-t2v", "prompt": "a boat",
                             "metadata": {"parameters": {"size": "832*480"}}})
    each.advance(60)
    dto = (await each.task(sub["id"]))["data"]
    assert dto["status"] == "FAILURE"
    assert dto["fail_reason"].startswith(
        "task failed, code: InvalidParameter , message: The size is not match")
    # a duration DashScope refuses at submit: its status and body, relayed as text
    err = await each.submit({"model": "wan2.6-t2v", "prompt": "a boat", "duration": 16},
                            status=400)
    assert err["code"] == "fail_to_fetch_task" and err["data"] is None
    upstream = json.loads(err["message"])
    assert set(upstream) == {"request_id", "code", "message"}
    assert upstream["code"] == "InvalidParameter" and "parameters.duration" in upstream["message"]
    # a DashScope option applies through new-api too
    notfound, client = await fake_with(newapi_version=each.version,
                                       dashscope_unknown_model_status=404)
    async with client:
        err = await notfound.submit({"model": "wan2.2-kf2v-flash", "prompt": "a"}, status=404)
        assert json.loads(err["message"])["code"] == "ModelNotFound"


@pytest.mark.anyio
async def test_duration_and_seconds(each: Fake) -> None:
    both = await each.submit({"model": "wan2.6-t2v", "prompt": "x", "duration": 7,
                              "seconds": "12"}, path="/v1/videos")
    assert each.backend.store.get(both["id"]).spec.duration == 7  # duration wins
    bad = await each.submit({"model": "wan2.6-t2v", "prompt": "x", "seconds": "20"},
                            path="/v1/videos", status=400)
    assert bad["code"] == "fail_to_fetch_task"
    # metadata wins over both; 5.0 is an int in the re-marshalled metadata map
    meta = await each.submit({"model": "wan2.6-t2v", "prompt": "x", "duration": 7,
                              "metadata": {"parameters": {"duration": 10.0}}})
    assert each.upstream(meta["id"])["parameters"]["duration"] == 10


# -- request errors ------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_blank_prompt_is_the_relays_400(each: Fake) -> None:
    for body in ({"model": "wan2.6-t2v", "prompt": "  "}, {"model": "wan2.6-t2v"},
                 {"model": "wan2.6-i2v", "prompt": None, "image": "https://x.test/a.png"}):
        for path in ("/v1/video/generations", "/v1/videos"):
            err = await each.submit(body, path=path, status=400)
            assert err == {"code": "invalid_request", "message": "prompt is required",
                           "data": None}
    assert len(each.backend.store) == 0


@pytest.mark.anyio
async def test_unknown_task(each: Fake) -> None:
    expected = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    assert await each.task("task_nope", status=400) == expected
    assert await each.video("task_nope", status=400) == expected
    missing = await each.content("task_nope", status=404)
    assert missing.json() == {"error": {"message": "Task not found",
                                        "type": "invalid_request_error"}}


@pytest.mark.anyio
async def test_another_users_task(each: Fake) -> None:
    sub = await each.submit({"model": "wan2.6-t2v", "prompt": "x"})
    other = {"Authorization": "Bearer sk-other"}
    assert (await each.task(sub["id"], status=400, headers=other))["code"] == "task_not_exist"
    assert (await each.video(sub["id"], status=400, headers=other))["code"] == "task_not_exist"
    # new-api accepts the key without `Bearer ` and without `sk-`
    assert (await each.task(sub["id"], headers={"Authorization": "test"}))["code"] == "success"
    each.advance(60)
    # the proxy: R looks the task up for the caller; L serves anyone's (GetByOnlyTaskId)
    if each.version == "latest":
        await each.content(sub["id"], status=404, headers=other)
    else:
        assert (await each.content(sub["id"], headers=other)).content[4:8] == b"ftyp"


@pytest.mark.anyio
async def test_canceled_expired_and_suspended_rows(each: Fake) -> None:
    for state, word in ((State.CANCELED, "CANCELED"), (State.EXPIRED, "UNKNOWN")):
        sub = await each.submit({"model": "wan2.6-t2v", "prompt": "x"})
        each.backend.force(each.backend.store.get(sub["id"]), state)
        dto = (await each.task(sub["id"]))["data"]
        assert (dto["status"], dto["fail_reason"], dto["progress"]) == (
            "FAILURE", "task failed", "100%")
        assert dto["data"]["output"]["task_status"] == word
        video = await each.video(sub["id"])
        assert video["status"] == "failed" and "error" not in video


@pytest.mark.anyio
async def test_journal_records_submit_and_task(fake: Fake) -> None:
    sub = await fake.submit({"model": "wan2.6-i2v", "prompt": "x"})
    entries = list(fake.backend.journal.entries())
    assert entries[-1].task_id == sub["id"]
    assert entries[-1].violations and entries[-1].violations[0]["rule"] == "image_required"


# -- every documented request -------------------------------------------------------------------
# Seed 001's bodies are another relay's (videos, extra_body, alias models): new-api has no
# channel for its models (contract decision "Reference-to-video through new-api").
ANOTHER_RELAY = ("seed001",)


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.request.*.json")))
async def test_every_request_fixture_is_answered_as_its_release_does(each: Fake, name: str
                                                                     ) -> None:
    op, _, example = name.removesuffix(".json").split(".", 2)
    node = each.contract.document["components"]["examples"]
    marked = [e for e in node.values() if e["value"] == fixture(name)]
    versions = {v for e in marked for v in ([e["x-wanmock-version"]] if isinstance(
        e.get("x-wanmock-version"), str) else e.get("x-wanmock-version", ["latest", "legacy"]))}
    path = {"createVideo": "/v1/videos", "remixVideo": None}.get(op, "/v1/video/generations")
    if path is None:
        return  # remix needs an origin task (test_newapi_releases.py)
    if example.startswith(ANOTHER_RELAY):
        err = await each.submit(fixture(name), path=path, status=503)
        assert err["error"]["code"] == "model_not_found"
        return
    if each.version not in versions:
        return  # the example shows a field only the other release reads
    sub = await each.submit(fixture(name), path=path)
    each.advance(120)
    dto = (await each.task(sub["id"]))["data"]
    if example == "i2v_top_level_image" and each.version == "legacy":
        assert dto["status"] == "FAILURE"  # L reads no `image`: DashScope gets no frame
        return
    assert dto["status"] == "SUCCESS", dto["fail_reason"]
    video = await each.video(sub["id"])
    assert video["status"] == "completed"
    assert video["metadata"]["url"] == dto.get("result_url", dto["fail_reason"])
