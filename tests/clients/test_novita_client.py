"""The real Novita Python SDK (novita-client 0.7.1) against the jiekou family on 127.0.0.1.

novita-client has no method for the Wan endpoints, so jobs are submitted with its own `_post`
helper (same headers, same error handling as its public methods) and polled with its public
`async_task_result` / `wait_for_task_v3`, which parse the task-result body into its dataclasses.
The SDK treats every non-200 as `NovitaResponseError` without parsing the error body, so what the
fake answered is checked through its journal.
"""

from __future__ import annotations

import gc
import json

import pytest
from novita_client import NovitaClient
from novita_client.exceptions import NovitaResponseError
from novita_client.proto import V3TaskResponse, V3TaskResponseStatus

from mockserver.core.tasks import State
from mockserver.images import SAMPLE_PNG_DATA_URI
from tests.clients.conftest import API_KEY, assert_mp4

pytestmark = [
    pytest.mark.clients,
    # The SDK's leaked ThreadPool (see below) may be collected during a later test of this
    # module; its __del__ then raises into pytest's unraisable hook. Only that warning is ignored.
    pytest.mark.filterwarnings("ignore:Exception ignored in. <function Pool.__del__"
                               ":pytest.PytestUnraisableExceptionWarning"),
]

# A 400x300 PNG: within every family's image limits (a 1x1 image is refused, audit F23).
PNG_DATA_URL = SAMPLE_PNG_DATA_URI


def _client(server) -> NovitaClient:
    return NovitaClient(API_KEY, base_url=server.url)


def _entries(server, operation):
    return server.backend.journal.entries(family="jiekou", operation=operation)


# novita_client.utils.batch_download_images (used by download_videos) never closes its ThreadPool;
# its ResourceWarning fires whenever that pool is garbage-collected. Collect it here, under this
# narrow filter, so it cannot surface later in an unrelated test.
@pytest.mark.filterwarnings("ignore:unclosed running multiprocessing pool:ResourceWarning")
def test_wan_t2v_submit_poll_and_download(manual):
    client = _client(manual)
    submitted = client._post("/v3/async/wan-t2v", {
        "prompt": "a koi pond in the rain", "width": 832, "height": 480, "seed": 42, "steps": 30,
    })
    task_id = submitted["task_id"]
    assert set(submitted) == {"task_id"}

    queued = client.async_task_result(task_id)
    assert isinstance(queued, V3TaskResponse)
    assert queued.task.task_id == task_id
    assert queued.task.status is V3TaskResponseStatus.TASK_STATUS_QUEUED
    assert not queued.finished()
    assert not queued.videos

    manual.backend.clock.advance(1.5)  # `fast`: 1 s queued, then processing
    processing = client.async_task_result(task_id)
    assert processing.task.status is V3TaskResponseStatus.TASK_STATUS_PROCESSING
    assert 0 <= processing.task.progress_percent < 100
    assert processing.task.eta > 0

    manual.backend.clock.advance(60)
    done = client.async_task_result(task_id)
    assert done.finished()
    assert done.task.status is V3TaskResponseStatus.TASK_STATUS_SUCCEED
    assert done.task.progress_percent == 100
    assert done.extra.seed == 42
    [video] = done.videos
    assert video.video_type == "mp4"
    assert 0 < video.video_url_ttl <= 3600
    assert_mp4(video.video_url, 832, 480)

    # The SDK's own downloader fetches the same bytes.
    done.download_videos()
    gc.collect()  # the SDK's leaked ThreadPool, see the filter above
    assert len(done.video_bytes) == 1 and done.video_bytes[0][4:8] == b"ftyp"

    [entry] = _entries(manual, "createWanT2vTask")
    assert entry.status == 200 and entry.violations == []
    assert entry.request_headers["authorization"] == "Bearer [redacted]"
    assert entry.request_headers["user-agent"].startswith("novita-python-sdk/")
    assert API_KEY not in json.dumps([e.as_dict() for e in manual.backend.journal.entries()])


def test_wait_for_task_v3_returns_at_once_on_instant_timing(instant):
    client = _client(instant)
    task_id = client._post("/v3/async/wan-t2v", {"prompt": "a comet", "width": 1280,
                                                  "height": 720})["task_id"]
    done = client.wait_for_task_v3(task_id, wait_for=3)
    assert done.task.status is V3TaskResponseStatus.TASK_STATUS_SUCCEED
    assert len(_entries(instant, "getTaskResult")) == 1  # no sleep, one poll
    assert_mp4(done.get_video_urls()[0], 1280, 720)


def test_wan26_i2v_nested_body(manual):
    client = _client(manual)
    task_id = client._post("/v3/async/wan2.6-i2v", {
        "input": {"prompt": "the lantern flickers", "img_url": PNG_DATA_URL},
        "parameters": {"resolution": "720P", "duration": 5, "seed": 7},
    })["task_id"]
    manual.backend.clock.advance(600)
    done = client.async_task_result(task_id)
    assert done.task.status is V3TaskResponseStatus.TASK_STATUS_SUCCEED
    assert done.task.task_type == "IMG_TO_VIDEO"
    # The 4:3 inline image keeps its aspect ratio at the 720P pixel count (audit F22).
    assert_mp4(done.videos[0].video_url, 1104, 832)


def test_failed_task_is_parsed_and_finished(manual):
    client = _client(manual)
    task_id = client._post("/v3/async/wan-t2v", {"prompt": "a storm"})["task_id"]
    task = manual.backend.store.find("jiekou", task_id)
    manual.backend.force(task, State.FAILED)
    failed = client.async_task_result(task_id)
    assert failed.finished()
    assert failed.task.status is V3TaskResponseStatus.TASK_STATUS_FAILED
    assert failed.task.reason
    assert not failed.videos


def test_steps_41_is_rejected_with_invalid_request_body(manual):
    client = _client(manual)
    with pytest.raises(NovitaResponseError, match="status 400") as info:
        client._post("/v3/async/wan-t2v", {"prompt": "a cat", "steps": 41})
    assert b"INVALID_REQUEST_BODY" in str(info.value).encode()  # the SDK only echoes the body

    [entry] = _entries(manual, "createWanT2vTask")
    assert entry.status == 400
    body = json.loads(entry.response_body)
    assert body["code"] == 400
    assert body["reason"] == "INVALID_REQUEST_BODY"
    assert body["metadata"] == {}
    assert "steps" in body["message"]
    assert [v["field"] for v in entry.violations] == ["steps"]
    assert list(manual.backend.tasks()) == []


def test_unknown_task_id_raises(manual):
    client = _client(manual)
    with pytest.raises(NovitaResponseError, match="status 404"):
        client.async_task_result("no-such-task")
    [entry] = _entries(manual, "getTaskResult")
    assert entry.status == 404
    assert json.loads(entry.response_body)["reason"] == "TASK_NOT_FOUND"


def test_wrong_key_raises_401(manual):
    client = NovitaClient("sk_wrong_key_000000", base_url=manual.url)
    with pytest.raises(NovitaResponseError, match="status 401"):
        client._post("/v3/async/wan-t2v", {"prompt": "a cat"})
    [entry] = _entries(manual, "createWanT2vTask")
    assert json.loads(entry.response_body)["reason"] == "INVALID_API_KEY"
