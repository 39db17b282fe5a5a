"""The real DashScope Python SDK (dashscope 2.0.2) against a live fake on 127.0.0.1.

The SDK reads `dashscope.base_http_api_url` at call time for every request (create, fetch, wait,
cancel, list, and the aiohttp-based `AioVideoSynthesis`), so pointing it at the fake is one
attribute, restored after each test.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from dashscope import VideoSynthesis
from dashscope.aigc.video_synthesis import AioVideoSynthesis
from dashscope.api_entities.aio_session import close_shared_aio_session
from dashscope.common.error import InvalidTask

from mockserver.images import SAMPLE_PNG_DATA_URI
from tests.clients.conftest import API_KEY, assert_mp4

pytestmark = pytest.mark.clients

# A 400x300 PNG as a data URL: the SDK passes it through untouched (no upload), the fake decodes
# it locally and never fetches it, so i2v needs no network at all (a 1x1 image is refused,
# audit F23).
PNG_DATA_URL = SAMPLE_PNG_DATA_URI




def _submits(server):
    return server.backend.journal.entries(family="dashscope", operation="createVideoSynthesis")


def _polls(server):
    return server.backend.journal.entries(family="dashscope", operation="getTask")


# -- success paths ---------------------------------------------------------------------------
def test_t2v_async_call_fetch_wait_downloads_a_real_mp4(instant, at):
    at(instant)
    submitted = VideoSynthesis.async_call(
        model="wan2.6-t2v", prompt="a red fox running through snow", size="1280*720",
        duration=5, api_key=API_KEY,
    )
    assert submitted.status_code == HTTPStatus.OK
    assert submitted.output.task_status == "PENDING"
    task_id = submitted.output.task_id
    assert task_id

    fetched = VideoSynthesis.fetch(submitted, api_key=API_KEY)
    assert fetched.status_code == HTTPStatus.OK
    assert fetched.output.task_id == task_id
    assert fetched.output.task_status == "SUCCEEDED"

    done = VideoSynthesis.wait(task_id, api_key=API_KEY)
    assert done.status_code == HTTPStatus.OK
    assert done.output.task_status == "SUCCEEDED"
    assert done.output.orig_prompt == "a red fox running through snow"
    assert "actual_prompt" not in done.output  # never for wan2.6
    assert done.usage.size == "1280*720"
    assert done.usage.SR == 720
    assert done.usage.output_video_duration == 5
    container = assert_mp4(done.output.video_url, 1280, 720)
    assert container.duration is not None and abs(container.duration / 1e6 - 5) < 0.5


def test_the_sdk_body_with_extend_prompt_is_accepted_and_the_key_redacted(instant, at):
    at(instant)
    submitted = VideoSynthesis.async_call(
        model="wan2.6-t2v", prompt="a lighthouse at dusk", size="1920*1080", api_key=API_KEY,
    )
    assert submitted.status_code == HTTPStatus.OK

    [entry] = _submits(instant)
    assert entry.status == 200
    assert entry.violations == []
    assert entry.task_id == submitted.output.task_id
    body = json.loads(entry.request_body)
    # SDK quirks the fake must tolerate (dashscope 2.0.2 aigc/video_synthesis.py): the deprecated
    # `input.extend_prompt`
    # is always sent, and keyword arguments land in `parameters`.
    assert body["model"] == "wan2.6-t2v"
    assert body["input"]["extend_prompt"] is True
    assert body["input"]["prompt"] == "a lighthouse at dusk"
    assert body["parameters"] == {"size": "1920*1080"}
    headers = entry.request_headers
    assert headers["x-dashscope-async"] == "enable"
    assert headers["authorization"] == "Bearer [redacted]"
    assert headers["user-agent"].startswith("dashscope/2.0.2")
    assert API_KEY not in json.dumps(entry.as_dict())
    task = instant.backend.store.find("dashscope", submitted.output.task_id)
    assert task is not None and task.spec.width == 1920 and task.spec.height == 1080


def test_call_waits_through_running_until_succeeded(polls, at):
    at(polls)
    result = VideoSynthesis.call(
        model="wan2.6-t2v", prompt="waves on a beach", size="1280*720", api_key=API_KEY,
    )
    assert result.status_code == HTTPStatus.OK
    assert result.output.task_status == "SUCCEEDED"
    # The SDK's wait loop really polled twice: RUNNING first, then SUCCEEDED.
    statuses = [json.loads(e.response_body)["output"]["task_status"] for e in _polls(polls)]
    assert statuses == ["RUNNING", "SUCCEEDED"]
    assert_mp4(result.output.video_url, 1280, 720)


def test_i2v_call_with_a_first_frame_succeeds(instant, at):
    at(instant)
    result = VideoSynthesis.call(
        model="wan2.6-i2v", prompt="the cat turns its head", img_url=PNG_DATA_URL,
        resolution="720P", duration=5, api_key=API_KEY,
    )
    assert result.status_code == HTTPStatus.OK, result
    assert result.output.task_status == "SUCCEEDED"
    assert result.usage.SR == 720
    [entry] = _submits(instant)
    body = json.loads(entry.request_body)
    assert body["input"]["img_url"] == PNG_DATA_URL
    assert body["parameters"] == {"resolution": "720P", "duration": 5}
    # The 4:3 inline first frame keeps its aspect ratio at 720P's pixel count (audit F22).
    container = assert_mp4(result.output.video_url, 1104, 832)
    assert [s.type for s in container.streams].count("audio") == 1  # wan2.6 has sound


@pytest.mark.anyio
async def test_aio_video_synthesis(instant, at):
    at(instant)
    try:
        await _aio_round_trip(instant)
    finally:
        # The SDK keeps one aiohttp session per event loop and never closes it itself
        # ("Unclosed client session" at exit otherwise).
        await close_shared_aio_session()


async def _aio_round_trip(instant):
    submitted = await AioVideoSynthesis.async_call(
        model="wan2.6-t2v", prompt="a paper boat on a river", size="720*1280", api_key=API_KEY,
    )
    assert submitted.status_code == HTTPStatus.OK
    assert submitted.output.task_status == "PENDING"
    fetched = await AioVideoSynthesis.fetch(submitted, api_key=API_KEY)
    assert fetched.output.task_status == "SUCCEEDED"
    waited = await AioVideoSynthesis.wait(submitted, api_key=API_KEY)
    assert waited.output.task_status == "SUCCEEDED"
    assert waited.output.task_id == submitted.output.task_id

    called = await AioVideoSynthesis.call(
        model="wan2.6-i2v", prompt="snow falls", img_url=PNG_DATA_URL, resolution="720P",
        api_key=API_KEY,
    )
    assert called.status_code == HTTPStatus.OK
    assert called.output.task_status == "SUCCEEDED"
    assert called.output.task_id != submitted.output.task_id
    assert_mp4(waited.output.video_url, 720, 1280)
    assert [e.status for e in _submits(instant)] == [200, 200]


def test_list_shows_the_sdk_tasks(instant, at):
    at(instant)
    ids = [
        VideoSynthesis.async_call(model="wan2.6-t2v", prompt=f"clip {n}", size="1280*720",
                                  api_key=API_KEY).output.task_id
        for n in range(3)
    ]
    listed = VideoSynthesis.list(page_size=2, status="SUCCEEDED", api_key=API_KEY)
    assert listed.status_code == HTTPStatus.OK
    assert listed.output["total"] == 3
    assert len(listed.output["data"]) == 2
    assert {row["task_id"] for row in listed.output["data"]} <= set(ids)
    assert {row["status"] for row in listed.output["data"]} == {"SUCCEEDED"}


# -- rejections ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "params", "message_part"),
    [
        # beyond the schema's range: DashScope's one wording for any invalid parameter
        ("wan2.5-t2v-preview", {"duration": 16}, "Required parameter(parameters.duration)"),
        ("wan2.5-t2v-preview", {"duration": 15}, "duration"),  # catalogue: 5 or 10 only
        ("wan-no-such-model", {}, "Model not exist"),
    ],
    ids=["duration-16", "duration-15-on-wan2.5", "unknown-model"],
)
def test_submit_rejection_surfaces_the_provider_code(instant, at, model, params, message_part):
    at(instant)
    rejected = VideoSynthesis.async_call(model=model, prompt="a cat", api_key=API_KEY, **params)
    assert rejected.status_code == HTTPStatus.BAD_REQUEST
    assert rejected.code == "InvalidParameter"
    assert message_part in rejected.message
    assert rejected.output is None
    [entry] = _submits(instant)
    assert entry.status == 400 and entry.task_id is None
    assert entry.violations and entry.violations[0]["timing"] == "submit"
    assert list(instant.backend.tasks()) == []


def test_call_raises_invalid_task_on_a_submit_rejection(instant, at):
    at(instant)
    with pytest.raises(InvalidTask, match="InvalidParameter"):
        VideoSynthesis.call(model="wan2.5-t2v-preview", prompt="a cat", duration=15,
                            api_key=API_KEY)
    assert _polls(instant) == []  # the SDK never polled a task that was not created


def test_bad_size_fails_asynchronously(instant, at):
    at(instant)
    submitted = VideoSynthesis.async_call(
        model="wan2.6-t2v", prompt="a cat", size="832*480", api_key=API_KEY,  # 480P: not on 2.6
    )
    assert submitted.status_code == HTTPStatus.OK
    assert submitted.output.task_status == "PENDING"
    failed = VideoSynthesis.wait(submitted, api_key=API_KEY)
    assert failed.status_code == HTTPStatus.OK
    assert failed.output.task_status == "FAILED"
    assert failed.output.code == "InvalidParameter"
    assert "size" in failed.output.message
    assert not failed.output.video_url
    assert failed.usage is None
    [entry] = _submits(instant)
    assert [v["timing"] for v in entry.violations] == ["async"]


def test_fetch_of_an_unknown_task_is_unknown(instant, at):
    at(instant)
    fetched = VideoSynthesis.fetch("00000000-0000-0000-0000-000000000000", api_key=API_KEY)
    assert fetched.status_code == HTTPStatus.OK
    assert fetched.output.task_status == "UNKNOWN"
    waited = VideoSynthesis.wait("00000000-0000-0000-0000-000000000000", api_key=API_KEY)
    assert waited.output.task_status == "UNKNOWN"  # terminal for the SDK: no endless loop


def test_a_wrong_key_is_rejected(manual, at):
    at(manual)
    rejected = VideoSynthesis.async_call(model="wan2.6-t2v", prompt="a cat",
                                         api_key="sk-not-the-right-key-000")
    assert rejected.status_code == HTTPStatus.UNAUTHORIZED
    assert rejected.code == "InvalidApiKey"
    [entry] = _submits(manual)
    assert "sk-not-the-right-key-000" not in json.dumps(entry.as_dict())


# -- manual clock: pending, running, cancel --------------------------------------------------
def test_cancel_a_pending_task(manual, at):
    at(manual)
    submitted = VideoSynthesis.async_call(model="wan2.6-t2v", prompt="a cat", size="1280*720",
                                          api_key=API_KEY)
    assert VideoSynthesis.fetch(submitted, api_key=API_KEY).output.task_status == "PENDING"
    canceled = VideoSynthesis.cancel(submitted, api_key=API_KEY)
    assert canceled.status_code == HTTPStatus.OK
    assert VideoSynthesis.fetch(submitted, api_key=API_KEY).output.task_status == "CANCELED"
    manual.backend.clock.advance(600)  # a canceled task stays canceled
    waited = VideoSynthesis.wait(submitted, api_key=API_KEY)
    assert waited.output.task_status == "CANCELED"
    assert not waited.output.video_url


def test_cancel_a_running_task_is_refused_and_it_finishes(manual, at):
    at(manual)
    submitted = VideoSynthesis.async_call(model="wan2.6-t2v", prompt="a cat", size="1280*720",
                                          api_key=API_KEY)
    manual.backend.clock.advance(1.5)  # `fast`: 1 s in the queue, then running
    running = VideoSynthesis.fetch(submitted, api_key=API_KEY)
    assert running.output.task_status == "RUNNING"
    assert "scheduled_time" in running.output
    refused = VideoSynthesis.cancel(submitted, api_key=API_KEY)
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert refused.code == "UnsupportedOperation"
    manual.backend.clock.advance(60)
    done = VideoSynthesis.wait(submitted, api_key=API_KEY)
    assert done.output.task_status == "SUCCEEDED"
    assert_mp4(done.output.video_url, 1280, 720)
