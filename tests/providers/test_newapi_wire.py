"""new-api before and around its relay: the Distribute middleware, bodies by Content-Type, the
relay's conversion errors, `completed_at` and the poller's lag (audit F04, F09, F13, F14, F19).

Every answer is checked against the contract's schema for its status (`Fake.conforms`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from mockserver.core.tasks import State
from mockserver.providers.newapi import poller, wire
from tests.providers.test_newapi_http import KEY, Fake, fake_with, make_fake

GEN = "/v1/video/generations"
JSON_TYPE = {**KEY, "Content-Type": "application/json"}
NO_MODEL = "Model name not specified, model name cannot be empty"  # v1.0.0-rc.25's default
ZH_NO_MODEL = "未指定模型名称，模型名称不能为空"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # binary, with CR LF inside


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake() -> Any:
    app = make_fake()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://newapi.test") as client:
        yield Fake(app, client)


async def post(fake: Fake, content: bytes, headers: dict[str, str], path: str = GEN,
               status: int | None = None) -> tuple[int, Any]:
    """POST raw bytes; the answer must follow the contract."""
    response = await fake.client.post(path, content=content, headers=headers)
    if status is not None:
        assert response.status_code == status, response.text
    op = "createVideoGeneration" if path == GEN else "createVideo"
    return response.status_code, fake.conforms(op, response)


def distributor_message(body: Any) -> str:
    """The OpenAI-shaped middleware error's message, without new-api's request-id suffix."""
    assert set(body) == {"error"} and body["error"]["type"] == "new_api_error"
    assert body["error"]["code"] == ""
    message, _, rest = body["error"]["message"].rpartition(" (request id: ")
    assert rest.endswith(")") and len(rest) > 10
    return message


def multipart(fields: dict[str, str], files: dict[str, tuple[str, str, bytes]] | None = None,
              boundary: str = "wanmockBoundary7") -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body laid out as httpx (the OpenAI SDK's transport) writes one."""
    out = b""
    for name, value in fields.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n").encode()
    for name, (filename, ctype, data) in (files or {}).items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n').encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {**KEY, "Content-Type": f"multipart/form-data; boundary={boundary}"}


# -- F04: the distributor ------------------------------------------------------------------------
@pytest.mark.anyio
async def test_F04_missing_model_is_distributor_400(fake: Fake) -> None:
    for path in (GEN, "/v1/videos"):
        for raw in (b'{"prompt": "a cat"}', b'{"model": null, "prompt": "a"}', b'{"model": ""}',
                    b"[1, 2]", b'"just a string"'):
            _, body = await post(fake, raw, JSON_TYPE, path, status=400)
            assert distributor_message(body) == NO_MODEL
    assert len(fake.backend.store) == 0
    # every attempt is in the journal, body and all
    bodies = [e.request_body for e in fake.backend.journal.entries(family="newapi")]
    assert len(bodies) == 10 and bodies[0] == '{"prompt": "a cat"}'
    # the language: Accept-Language, else the user's saved language
    for lang, expected in (("zh-CN,zh;q=0.9", ZH_NO_MODEL),
                           ("zh-TW", "未指定模型名稱，模型名稱不能為空"), ("fr", NO_MODEL)):
        _, body = await post(fake, b"{}", {**JSON_TYPE, "Accept-Language": lang}, status=400)
        assert distributor_message(body) == expected
    chinese, client = await fake_with(newapi_user_language="zh-CN")
    async with client:
        _, body = await post(chinese, b"{}", {**JSON_TYPE, "Accept-Language": "en"}, status=400)
        assert distributor_message(body) == ZH_NO_MODEL


@pytest.mark.anyio
async def test_F04_unreadable_body_is_distributor_400(fake: Fake) -> None:
    cases = {b"{x": "invalid JSON request body", b"": "invalid JSON request body",
             b'{"model": "wan2.6-t2v", "prompt": NaN}': "invalid JSON request body",
             b'{"model": 5, "prompt": "a"}': "field model must be a string",
             b'{"model": "wan2.6-t2v", "group": []}': "field group must be a string"}
    for raw, reason in cases.items():
        _, body = await post(fake, raw, JSON_TYPE, status=400)
        # wrapped twice: getModelFromRequest, then Distribute
        assert distributor_message(body) == f"Invalid request: Invalid request: {reason}"
    _, body = await post(fake, b"{x", {**JSON_TYPE, "Accept-Language": "zh"}, status=400)
    assert distributor_message(body) == "无效的请求，无效的请求，invalid JSON request body"
    legacy, client = await fake_with(newapi_version="legacy")
    async with client:
        for raw, reason in (
                (b"{x", "invalid character 'x' looking for beginning of object key string"),
                (b"", "unexpected end of JSON input"),
                (b'{"model": 5}', "json: cannot unmarshal number into Go struct field "
                                  "ModelRequest.model of type string")):
            _, body = await post(legacy, raw, {**JSON_TYPE, "Accept-Language": "en"},
                                 status=400)
            assert distributor_message(body) == f"Invalid request, 无效的请求, {reason}"
        _, body = await post(legacy, b"{}", {**JSON_TYPE, "Accept-Language": "en"}, status=400)
        assert distributor_message(body) == ZH_NO_MODEL  # hard-coded: no i18n in v0.10.0


# -- F09: the body is read by Content-Type -------------------------------------------------------
@pytest.mark.anyio
async def test_F09_json_without_json_content_type_is_not_read(fake: Fake) -> None:
    raw = json.dumps({"model": "wan2.6-t2v", "prompt": "a cat"}).encode()
    for ctype in (None, "text/plain", "APPLICATION/JSON", "application/problem+json"):
        headers = dict(KEY) if ctype is None else {**KEY, "Content-Type": ctype}
        _, body = await post(fake, raw, headers, status=400)
        assert distributor_message(body) == NO_MODEL
    assert len(fake.backend.store) == 0
    _, ok = await post(fake, raw, {**KEY, "Content-Type": "application/json; charset=utf-8"},
                       status=200)
    assert ok["status"] == "queued"


@pytest.mark.anyio
async def test_F09_form_urlencoded_submit_runs_a_job(fake: Fake) -> None:
    form = {"model": "wan2.6-t2v", "prompt": "a lighthouse at dusk", "seconds": "4",
            "size": "1280*720", "seed": "7",
            "metadata": json.dumps({"parameters": {"prompt_extend": False}})}
    raw = httpx.QueryParams(form).__str__().encode()
    headers = {**KEY, "Content-Type": "application/x-www-form-urlencoded"}
    _, sub = await post(fake, raw, headers, status=200)
    task = fake.backend.store.get(sub["id"])
    assert (task.spec.duration, task.spec.size, task.spec.prompt) == (4, "1280*720",
                                                                     "a lighthouse at dusk")
    # metadata as the JSON text of an object: read, and its false prompt_extend omitted;
    # `seed` is no TaskSubmitReq field, so the relay drops it (the task keeps the value)
    assert task.extra["upstream_request"]["parameters"] == {"size": "1280*720", "duration": 4}
    assert task.request["_wanmock_form"]["values"]["seed"] == "7"
    # R reads a non-numeric duration as 0: the default 5 s
    _, sub = await post(fake, b"model=wan2.6-t2v&prompt=a&duration=abc", headers, status=200)
    assert fake.backend.store.get(sub["id"]).spec.duration == 5
    legacy, client = await fake_with(newapi_version="legacy")
    async with client:  # L's duration is a Go int: a form value is a string
        _, body = await post(legacy, b"model=wan2.6-t2v&prompt=a&duration=5", headers,
                             status=400)
        assert body == {"code": "unmarshal_task_request_failed", "data": None, "message":
                        "json: cannot unmarshal string into Go struct field .Alias.duration of "
                        "type int"}


@pytest.mark.anyio
async def test_F09_bad_form_bodies_get_new_apis_4xx(fake: Fake) -> None:
    headers = {**KEY, "Content-Type": "application/x-www-form-urlencoded"}
    for raw, reason in (
            (b"model=wan2.6-t2v&prompt=%zz", 'invalid URL escape "%zz"'),
            (b"model=wan2.6-t2v;prompt=a", "invalid semicolon separator in query"),
            (b"model=a&model=b&prompt=x", "json: cannot unmarshal array into Go struct field "
                                          "ModelRequest.model of type string")):
        _, body = await post(fake, raw, headers, status=400)
        assert distributor_message(body) == f"Invalid request: Invalid request: {reason}"
    # the relay's TaskSubmitReq: a single `images` value is a string, not a list
    _, body = await post(fake, b"model=wan2.6-i2v&prompt=a&images=https://x/a.png", headers,
                         status=400)
    assert body == {"code": "invalid_json", "data": None, "message": "json: cannot unmarshal "
                    "string into Go struct field .Alias.images of type []string"}
    _, body = await post(fake, b"model=wan2.6-t2v&prompt=a&prompt=b", headers, status=400)
    assert body["code"] == "invalid_json"
    assert len(fake.backend.store) == 0
    assert len(fake.backend.journal.entries(family="newapi")) == 5


# -- multipart ---------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_F04_multipart_submit_keeps_the_input_reference_file(fake: Fake) -> None:
    raw, headers = multipart({"model": "wan2.6-t2v", "prompt": "a cat", "seconds": "8",
                              "size": "1280*720"},
                             {"input_reference": ("cat.png", "image/png", PNG)})
    _, sub = await post(fake, raw, headers, path="/v1/videos", status=200)
    task = fake.backend.store.get(sub["id"])
    assert (task.spec.duration, task.spec.size) == (8, "1280*720")
    # new-api's Ali relay drops file parts: the job has no image, the action is textGenerate
    assert "img_url" not in task.spec.inputs
    dto = (await fake.task(sub["id"]))["data"]
    assert dto["action"] == "textGenerate"
    [record] = task.request["_wanmock_form"]["files"]
    assert (record["name"], record["filename"], record["content_type"], record["size"]) == (
        "input_reference", "cat.png", "image/png", len(PNG))
    prefix = "data:image/png;base64,"
    assert record["data_uri"].startswith(prefix)
    assert base64.b64decode(record["data_uri"][len(prefix):]) == PNG  # not a byte lost
    # the journal shows the values and a summary of the file, not its bytes
    [entry] = fake.backend.journal.entries(operation="createVideo")
    shown = json.loads(entry.request_body)
    assert shown["model"] == "wan2.6-t2v" and shown["seconds"] == "8"
    assert shown["input_reference"]["size"] == len(PNG)
    assert len(shown["input_reference"]["sha256"]) == 64


@pytest.mark.anyio
async def test_F04_multipart_i2v_without_a_usable_image_fails_upstream(fake: Fake) -> None:
    raw, headers = multipart({"model": "wan2.6-i2v", "prompt": "a cat"},
                             {"input_reference": ("cat.png", "image/png", PNG)})
    _, sub = await post(fake, raw, headers, path="/v1/videos", status=200)
    fake.advance(600)
    dto = (await fake.task(sub["id"]))["data"]
    assert dto["status"] == "FAILURE"
    assert dto["fail_reason"].startswith("task failed, code: InvalidParameter , message: ")


@pytest.mark.anyio
async def test_F04_bad_multipart_gets_new_apis_4xx_and_is_journaled(fake: Fake) -> None:
    good, headers = multipart({"model": "wan2.6-t2v", "prompt": "a"})
    ctype = headers["Content-Type"]
    boundary = ctype.split("boundary=")[1]
    cases: list[tuple[bytes, str, str | None]] = [
        (good[:-len(boundary) - 8], ctype, "unexpected EOF"),  # no closing boundary
        (good.replace(b"Content-Disposition", b"Content Disposition", 1), ctype,
         "multipart: NextPart: malformed MIME header line: Content Disposition: form-data; "
         'name="model"'),
        (good, "multipart/form-data; boundary=other", None),  # Go reads an empty form
        (b"\x00\xff garbage", ctype, None),
        (good, "multipart/form-data; boundary", "mime: invalid media parameter"),
    ]
    for raw, content_type, reason in cases:
        status, body = await post(fake, raw, {**KEY, "Content-Type": content_type})
        assert status == 400, body
        expected = NO_MODEL if reason is None else f"Invalid request: Invalid request: {reason}"
        assert distributor_message(body) == expected
    # multipart without a boundary parameter: new-api decodes the body as JSON
    _, ok = await post(fake, b'{"model": "wan2.6-t2v", "prompt": "a"}',
                       {**KEY, "Content-Type": "multipart/form-data"}, status=200)
    assert ok["status"] == "queued"
    # a 2 MB file part is over the body limit: the distributor's 400, not a 500
    big, headers = multipart({"model": "wan2.6-t2v", "prompt": "a"},
                             {"input_reference": ("big.png", "image/png", b"\x89" * (2 << 20))})
    _, body = await post(fake, big, headers, status=400)
    assert distributor_message(body) == ("Invalid request: Invalid request: request body "
                                         "exceeds 1 MB: request body too large")
    entries = fake.backend.journal.entries(family="newapi")
    assert len(entries) == len(cases) + 2
    assert all(e.status in (200, 400) for e in entries)


@pytest.mark.anyio
async def test_multipart_values_are_redacted_and_bounded_in_the_journal(fake: Fake) -> None:
    raw, headers = multipart({"model": "wan2.6-t2v", "prompt": "x" * 70000,
                              "note": "Bearer sk-abcdef123456"})
    await post(fake, raw, headers, status=200)
    [entry] = fake.backend.journal.entries(family="newapi")
    assert "sk-abcdef123456" not in entry.request_body
    assert entry.truncated and len(entry.request_body) <= 64 * 1024


def test_multipart_reader_follows_go() -> None:
    """The parser on its own: repeated keys become lists, nameless parts are skipped."""
    body = (b"preamble\r\n--b\r\nContent-Disposition: form-data; name=\"images\"\r\n\r\nu1\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"images\"\r\n\r\nu2\r\n"
            b"--b\r\nContent-Disposition: form-data\r\n\r\nlost\r\n--b--\r\n")
    form = wire.parse_multipart(body, "b")
    assert form.values == {"images": ["u1", "u2"]} and form.files == []
    assert wire.boundary_of('multipart/form-data; boundary="a b"') == "a b"
    assert wire.boundary_of("multipart/form-data") is None


# -- F13: conversion errors (more per release in test_newapi_releases.py) -------------------------
@pytest.mark.anyio
async def test_F13_conversion_error_is_500_build_request_failed(fake: Fake) -> None:
    bad = {"model": "wan2.6-t2v", "prompt": "a", "size": "720P"}
    err = await fake.submit(bad, status=500)
    assert err == {"code": "build_request_failed", "data": None, "message":
                   "convert_to_ali_request_failed: invalid size: 720P, example: 1920*1080"}
    legacy, client = await fake_with(newapi_version="legacy")
    async with client:
        err = await legacy.submit(bad, status=500)
        assert err == {"code": "convert_to_ali_request_failed", "data": None,
                       "message": "invalid size: 720P, example: 1920*1080"}
    friendly, client = await fake_with(newapi_build_error_status=400)
    async with client:
        assert (await friendly.submit(bad, status=400))["code"] == "build_request_failed"


# -- F14: completed_at ---------------------------------------------------------------------------
@pytest.mark.anyio
async def test_F14_completed_at_is_the_rows_last_update() -> None:
    """`completed_at` = the row's UpdatedAt in both releases: the last poll while the task
    runs (every poll rewrites the row), frozen at the poll that saw it end."""
    lagging, client = await fake_with(newapi_poll_interval=2)
    async with client:
        sub = await lagging.submit({"model": "wan2.6-t2v", "prompt": "a"}, path="/v1/videos")
        task = lagging.backend.store.get(sub["id"])
        queued = await lagging.video(sub["id"])
        assert queued["status"] == "queued" and queued["completed_at"] == sub["created_at"]
        lagging.advance(3.1)
        now = lagging.backend.clock.now()
        running = await lagging.video(sub["id"])
        assert running["completed_at"] == int(now // 2 * 2)  # the last poll, not the start
        lagging.advance(600)
        done = await lagging.video(sub["id"])
        end = task.submitted_at + task.plan.end_s
        assert done["completed_at"] == int(-(-end // 2) * 2)  # the poll that saw it end
        lagging.advance(600)
        assert (await lagging.video(sub["id"]))["completed_at"] == done["completed_at"]


# -- F19: the poller's row -----------------------------------------------------------------------
@pytest.mark.anyio
async def test_F19_not_start_window_and_poll_lag() -> None:
    lagging, client = await fake_with(newapi_poll_interval=15)
    async with client:
        sub = await lagging.submit({"model": "wan2.6-t2v", "prompt": "a"})
        task = lagging.backend.store.get(sub["id"])
        first_poll = (task.submitted_at // 15 + 1) * 15
        dto = (await lagging.task(sub["id"]))["data"]
        assert (dto["status"], dto["progress"], dto["start_time"]) == ("NOT_START", "0%", 0)
        assert dto["data"]["output"]["task_status"] == "PENDING"  # the submit answer
        assert "scheduled_time" not in dto["data"]["output"]
        video = await lagging.video(sub["id"])
        assert (video["status"], video["progress"]) == ("queued", 0)
        # the task ends upstream; new-api learns it at its next poll
        end = task.submitted_at + task.plan.end_s
        lagging.advance(end - lagging.backend.clock.now() + 0.01)
        assert lagging.backend.view(task).state is State.SUCCEEDED
        next_poll = max(first_poll, -(-end // 15) * 15)
        assert lagging.backend.clock.now() < next_poll  # a 7 s job ends before the first poll
        dto = (await lagging.task(sub["id"]))["data"]
        assert dto["status"] == "NOT_START"
        await lagging.content(sub["id"], status=400)  # the proxy reads the row too
        lagging.advance(next_poll - lagging.backend.clock.now())
        dto = (await lagging.task(sub["id"]))["data"]
        assert (dto["status"], dto["progress"]) == ("SUCCESS", "100%")
        assert dto["finish_time"] == int(next_poll)
        assert dto["data"]["output"]["task_status"] == "SUCCEEDED"
        assert (await lagging.content(sub["id"])).headers["content-type"] == "video/mp4"


def test_F19_poll_interval_follows_the_timing() -> None:
    assert poller.interval("realistic", "time", None) == 15.0  # service/task_polling.go
    assert poller.interval("fast", "time", None) == 1.0
    assert poller.interval("instant", "time", None) == 0.0
    assert poller.interval("realistic", "polls", None) == 0.0  # poll-count mode: no clock
    assert poller.interval("fast", "time", 0) == 0.0  # the lag turned off


@pytest.mark.anyio
async def test_scenario_rules_match_a_multipart_submit_on_its_model(fake: Fake) -> None:
    rule = await fake.client.post("/_wanmock/scenarios", json={
        "scenario": "throttle; retry_after=2", "match": {"model": "wan2.6-i2v"}})
    assert rule.status_code in (200, 201), rule.text
    raw, headers = multipart({"model": "wan2.6-i2v", "prompt": "a cat"})
    status, body = await post(fake, raw, headers, path="/v1/videos")
    assert (status, body["message"]) == (429, "当前分组上游负载已饱和，请稍后再试")
    raw, headers = multipart({"model": "wan2.6-t2v", "prompt": "a cat"})
    await post(fake, raw, headers, path="/v1/videos", status=200)  # another model: untouched


# -- kf2v through new-api --------------------------------------------------------------------------
KF2V = {"model": "wan2.2-kf2v-flash", "prompt": "a bud opens",
        "metadata": {"input": {"first_frame_url": "https://example.com/first.png",
                               "last_frame_url": "https://example.com/last.png"}}}


@pytest.mark.anyio
async def test_kf2v_is_relayed_to_video_generation_where_dashscope_refuses_it(fake: Fake) -> None:
    err = await fake.submit(KF2V, status=400)
    assert err["code"] == "fail_to_fetch_task"  # DashScope's 400, relayed as text
    upstream = json.loads(err["message"])
    assert (upstream["code"], upstream["message"]) == ("InvalidParameter", "Model not exist.")
    # an unknown model still has no channel at all
    assert (await fake.submit({**KF2V, "model": "wan9-kf2v-nosuch"}, status=503))[
        "error"]["code"] == "model_not_found"
    assert len(fake.backend.store) == 0


@pytest.mark.anyio
async def test_kf2v_on_the_image2video_route_runs_with_metadatas_frames() -> None:
    routed, client = await fake_with(newapi_kf2v_route="image2video")
    async with client:
        sub = await routed.submit(KF2V)
        task = routed.backend.store.get(sub["id"])
        assert task.spec.inputs["img_url"] == "https://example.com/first.png"
        assert task.spec.inputs["last_frame_url"] == "https://example.com/last.png"
        assert (task.spec.duration, task.spec.resolution) == (5, "720P")
        routed.advance(600)
        dto = (await routed.task(sub["id"]))["data"]
        assert dto["status"] == "SUCCESS" and dto["result_url"]
        # `image` lands in input.img_url, which the kf2v task does not read: no first frame,
        # and DashScope's own refusal is relayed
        err = await routed.submit({"model": "wan2.2-kf2v-flash", "prompt": "a",
                                   "image": "https://example.com/first.png"}, status=400)
        assert err["code"] == "fail_to_fetch_task"
        assert "first_frame_url" in json.loads(err["message"])["message"]


@pytest.mark.parametrize(("text", "read"), [
    ("5", (5, None)), ("+5", (5, None)), ("-0", (0, None)), ("0" * 5000 + "7", (7, None)),
    ("9223372036854775807", (2**63 - 1, None)), ("-9223372036854775808", (-(2**63), None)),
    ("9223372036854775808", (None, "value out of range")),
    ("9" * 5000, (None, "value out of range")), ("٥", (None, "invalid syntax")),
    ("²", (None, "invalid syntax")), (" 5", (None, "invalid syntax")),
    ("5\n", (None, "invalid syntax")), ("5_0", (None, "invalid syntax")),
    ("", (None, "invalid syntax")),
])
def test_seconds_are_read_as_strconv_atoi_reads_them(text: str, read: tuple) -> None:
    from mockserver.providers.newapi.gojson import atoi

    assert atoi(text) == read
