"""F02: the real dashscope SDK's first-and-last-frame (kf2v) job against a live fake.

`VideoSynthesis.call(model="wan2.2-kf2v-flash", first_frame_url=..., last_frame_url=...)` posts
to `/api/v1/services/aigc/image2video/video-synthesis` (the SDK's `kf2v` rule) and waits on
`GET /api/v1/tasks/{id}`; the fake runs it to SUCCEEDED with a real 5 s MP4.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from dashscope import VideoSynthesis

from tests.clients.conftest import API_KEY, assert_mp4

pytestmark = pytest.mark.clients
FIRST = "https://example.com/kf2v/first.png"
LAST = "https://example.com/kf2v/last.png"




def test_F02_kf2v_flash_call_runs_to_succeeded(polls, at):
    at(polls)
    rsp = VideoSynthesis.call(model="wan2.2-kf2v-flash", prompt="a cat looks up at the sky",
                              first_frame_url=FIRST, last_frame_url=LAST, resolution="480P",
                              api_key=API_KEY)
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    (submit,) = polls.backend.journal.entries(family="dashscope",
                                              operation="createImage2VideoSynthesis")
    assert submit.path == "/api/v1/services/aigc/image2video/video-synthesis"
    task = polls.backend.store.get(rsp.output.task_id)
    assert task.request["input"]["first_frame_url"] == FIRST
    assert task.request["input"]["last_frame_url"] == LAST
    assert (task.spec.duration, task.spec.inputs["last_frame_url"]) == (5, LAST)
    polls_seen = polls.backend.journal.entries(family="dashscope", operation="getTask")
    assert len(polls_seen) >= 2  # the SDK's wait loop really polled
    assert rsp.usage.video_duration == 5
    container = assert_mp4(rsp.output.video_url, 832, 480)
    assert round(float(container.duration) / 1_000_000) == 5
    container.close()


def test_F02_kf2v_plus_first_frame_only(instant, at):
    at(instant)
    rsp = VideoSynthesis.call(model="wanx2.1-kf2v-plus", first_frame_url=FIRST, api_key=API_KEY)
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    assert rsp.usage.video_ratio == "standard"
    assert_mp4(rsp.output.video_url, 1280, 720).close()


def test_F02_kf2v_without_first_frame_is_rejected(instant, at):
    at(instant)
    rsp = VideoSynthesis.async_call(model="wan2.2-kf2v-flash", last_frame_url=LAST,
                                    api_key=API_KEY)
    assert rsp.status_code == 400
    assert rsp.code == "InvalidParameter"
    assert rsp.message == ("Required parameter(input.first_frame_url) missing or invalid, "
                           "please check the request parameters.")
    # Rejected, and still in the journal with what the client sent.
    (entry,) = instant.backend.journal.entries(operation="createImage2VideoSynthesis")
    assert entry.status == 400 and "last_frame_url" in entry.request_body


def test_F02_kf2v_resolution_beyond_the_model_is_rejected(instant, at):
    at(instant)
    rsp = VideoSynthesis.async_call(model="wanx2.1-kf2v-plus", first_frame_url=FIRST,
                                    resolution="1080P", api_key=API_KEY)
    assert rsp.status_code == 400 and rsp.code == "InvalidParameter"
    assert "wanx2.1-kf2v-plus" in rsp.message


def test_F02_documented_kf2v_example_runs(instant, at, capsys):
    from tests.docs_pages import named_examples

    at(instant)
    exec(named_examples()["kf2v"], {})  # the DashScope page's own code, unchanged
    assert capsys.readouterr().out.strip() == "SUCCEEDED 5"
