"""The dashscope 2.0.2 SDK's 2.x `Client` (httpx-based) against a live fake on 127.0.0.1.

`Client.videos` mounts `jobs` (create, fetch, wait, cancel, list) and a one-shot `generate`
(create + wait). Paths are relative to the client's `base_url`, which is the native service
root including `/api/v1` (the SDK's own default is `https://dashscope.aliyuncs.com/api/v1`):

- create: `POST /services/aigc/video-generation/video-synthesis` with `X-DashScope-Async: enable`
- fetch / wait: `GET /tasks/{task_id}`; cancel: `POST /tasks/{task_id}/cancel`
- list: `GET /tasks?page_no=&page_size=[&status=...]`

`jobs.wait` takes `_sleep` (the SDK's own test seam for the pause between polls), so the real
polling loop runs without sleeping; `generate` has no such seam, so the one test of it swaps the
`time` the job helper sees.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import dashscope
import pytest
from dashscope.v2 import errors
from dashscope.v2.resources import _jobs

from tests.clients.conftest import API_KEY, assert_mp4

pytestmark = pytest.mark.clients

MODEL = "wan2.6-t2v"
SUBMIT_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
WRONG_KEY = "sk-not-the-right-key-000"


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"the SDK slept {seconds} s although the task was already finished")


@pytest.fixture
def connect(monkeypatch):
    """`connect(server, **options)`: a `dashscope.Client` on the fake, closed after the test."""
    monkeypatch.delenv("DASHSCOPE_DISABLE_SDK_HEADERS", raising=False)
    clients = []

    def make(server, **options):
        options.setdefault("api_key", API_KEY)
        client = dashscope.Client(base_url=server.url + "/api/v1", **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _submits(server):
    return server.backend.journal.entries(family="dashscope", operation="createVideoSynthesis")


def _polls(server, task_id=None):
    match = {} if task_id is None else {"task_id": task_id}
    return server.backend.journal.entries(family="dashscope", operation="getTask", **match)


def _body(entry):
    return json.loads(entry.response_body)


def _assert_clean(server):
    """Every request the SDK sent was served and is what the contract allows."""
    entries = server.backend.journal.entries()
    assert entries
    assert [(e.method, e.path, e.violations) for e in entries if e.violations] == []
    assert {e.family for e in entries} == {"dashscope"}


# -- success paths ---------------------------------------------------------------------------
def test_create_fetch_wait_downloads_a_real_mp4(instant, connect):
    client = connect(instant)
    job = client.videos.jobs.create(
        model=MODEL, prompt="a red fox running through snow", size="1280*720", duration=5,
    )
    assert job.status == "PENDING"
    assert not job.finished and not job.is_error
    task_id = job.task_id
    assert task_id and job.output == {"task_id": task_id, "task_status": "PENDING"}

    [submit] = _submits(instant)
    assert (submit.method, submit.path, submit.status) == ("POST", SUBMIT_PATH, 200)
    assert submit.task_id == task_id and submit.violations == []
    assert job.request_id == _body(submit)["request_id"]
    # Unlike 1.x `VideoSynthesis`, the 2.x client sends no `input.extend_prompt`.
    assert json.loads(submit.request_body) == {
        "model": MODEL,
        "input": {"prompt": "a red fox running through snow"},
        "parameters": {"size": "1280*720", "duration": 5},
    }
    headers = submit.request_headers
    assert headers["x-dashscope-async"] == "enable"
    assert headers["authorization"] == "Bearer [redacted]"
    assert headers["user-agent"] == "dashscope-v2-python/2.0.2"
    assert headers["x-dashscope-sdk-client"] == "python-sdk/2.0.2/aigc2"
    assert API_KEY not in json.dumps(submit.as_dict())

    fetched = client.videos.jobs.fetch(task_id)
    assert fetched.task_id == task_id
    assert fetched.status == "SUCCEEDED" and fetched.succeeded

    done = client.videos.jobs.wait(task_id, _sleep=_no_sleep)  # one GET, already terminal
    assert done.task_id == task_id
    assert done.status == "SUCCEEDED" and done.finished and not done.is_error
    assert done.output["orig_prompt"] == "a red fox running through snow"
    assert "actual_prompt" not in done.output  # never for wan2.6
    assert done.submitted_at and done.scheduled_at and done.finished_at  # *_time aliases
    assert done.usage is not None
    assert done.usage.size == "1280*720"
    assert done.usage.SR == 720
    assert done.usage.duration == 5
    assert done.usage.output_video_duration == 5
    assert done.usage.video_count == 1
    assert done.result_url == done.video_url
    container = assert_mp4(done.video_url, 1280, 720)
    assert container.duration is not None and abs(container.duration / 1e6 - 5) < 0.5

    polls = _polls(instant, task_id)
    assert [(e.method, e.path) for e in polls] == [("GET", f"/api/v1/tasks/{task_id}")] * 2
    assert all("x-dashscope-async" not in e.request_headers for e in polls)
    _assert_clean(instant)


def test_duration_7_is_within_the_wan26_range(instant, connect):
    # wan2.6-t2v takes any whole duration from 2 to 15 s (catalogue:
    # help.aliyun.com/zh/model-studio/text-to-video-api-reference, image-to-video-api-reference
    # (model tables) newest
    # revision), so 7 is not an invalid request on this fake.
    client = connect(instant)
    job = client.videos.jobs.create(model=MODEL, prompt="a cat", size="1280*720", duration=7)
    done = client.videos.jobs.wait(job.task_id, _sleep=_no_sleep)
    assert done.status == "SUCCEEDED"
    assert done.usage.output_video_duration == 7
    _assert_clean(instant)


def test_wait_polls_through_running_with_backoff(polls, connect):
    client = connect(polls)
    job = client.videos.jobs.create(model=MODEL, prompt="waves on a beach", size="1280*720")
    assert job.status == "PENDING"
    slept = []
    done = client.videos.jobs.wait(job, _sleep=slept.append)
    assert done.status == "SUCCEEDED"
    assert done.task_id == job.task_id
    # The SDK's loop really iterated: two GETs (RUNNING, then SUCCEEDED), each after a pause
    # that doubles (1 s, 2 s: poll_interval and its exponential backoff).
    statuses = [_body(e)["output"]["task_status"] for e in _polls(polls, job.task_id)]
    assert statuses == ["RUNNING", "SUCCEEDED"]
    assert slept == [1.0, 2.0]
    assert_mp4(done.video_url, 1280, 720)
    _assert_clean(polls)


def test_wait_by_task_id_fetches_before_the_first_pause(polls, connect):
    client = connect(polls)
    task_id = client.videos.jobs.create(model=MODEL, prompt="rain", size="720*1280").task_id
    slept = []
    done = client.videos.jobs.wait(task_id, poll_interval=0.25, max_interval=0.25,
                                   _sleep=slept.append)
    assert done.status == "SUCCEEDED"
    assert len(_polls(polls, task_id)) == 2
    assert slept == [0.25]  # fetched RUNNING at once, paused once, fetched SUCCEEDED
    _assert_clean(polls)


def test_generate_submits_and_waits(instant, connect, monkeypatch):
    slept = []
    monkeypatch.setattr(_jobs, "time", SimpleNamespace(monotonic=time.monotonic,
                                                       sleep=slept.append))
    client = connect(instant)
    done = client.videos.generate(model=MODEL, prompt="a paper boat", size="720*1280",
                                  duration=5)
    assert done.status == "SUCCEEDED"
    assert slept == [1.0]  # generate waits on the PENDING submit answer: one pause, one GET
    [submit] = _submits(instant)
    assert submit.task_id == done.task_id
    assert len(_polls(instant, done.task_id)) == 1
    assert_mp4(done.video_url, 720, 1280)
    _assert_clean(instant)


@pytest.mark.anyio
async def test_async_client_create_and_wait(instant):
    async def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s")

    async with dashscope.AsyncClient(api_key=API_KEY, base_url=instant.url + "/api/v1") as client:
        job = await client.videos.jobs.create(model=MODEL, prompt="a kite", size="1280*720")
        assert job.status == "PENDING"
        done = await client.videos.jobs.wait(job.task_id, _sleep=no_sleep)
    assert done.status == "SUCCEEDED"
    assert done.usage.SR == 720
    assert [e.status for e in _submits(instant)] == [200]
    assert_mp4(done.video_url, 1280, 720)
    _assert_clean(instant)


def test_list_reads_the_page_but_drops_the_items(instant, connect):
    client = connect(instant)
    ids = {client.videos.jobs.create(model=MODEL, prompt=f"clip {n}", size="1280*720").task_id
           for n in range(3)}
    listed = client.videos.jobs.list(status="SUCCEEDED", page_size=2)
    [entry] = instant.backend.journal.entries(family="dashscope", operation="listTasks")
    assert (entry.path, entry.status) == ("/api/v1/tasks", 200)
    assert entry.query == "page_no=1&page_size=2&status=SUCCEEDED"
    body = _body(entry)
    assert body["total"] == 3
    assert {row["task_id"] for row in body["data"]} < ids and len(body["data"]) == 2
    assert (listed.total, listed.page_no, listed.page_size) == (3, 1, 2)
    assert listed.request_id == body["request_id"]
    # SDK 2.0.2 quirk: `JobList` reads the items from `tasks`, but DashScope (the official
    # example in the contract, and 1.x `VideoSynthesis.list`) answers them under `data`, so the
    # 2.x client loses every item.
    assert listed.tasks == []
    _assert_clean(instant)


# -- rejections ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message_part"),
    [({"duration": 16}, "Required parameter(parameters.duration) missing or invalid, please "
                        "check the request parameters."),
     ({"size": "999*999"}, "The size is not match the allowed sizes: 832*480, 480*832, ")],
    ids=["duration-16", "size-999x999"],
)
def test_submit_rejection_raises_bad_request(instant, connect, params, message_part):
    client = connect(instant)
    with pytest.raises(errors.BadRequestError) as caught:
        client.videos.jobs.create(model=MODEL, prompt="a cat", **params)
    [entry] = _submits(instant)
    sent = _body(entry)
    assert entry.status == 400 and entry.task_id is None
    assert sent["code"] == "InvalidParameter" and message_part in sent["message"]
    assert entry.violations and entry.violations[0]["timing"] == "submit"
    exc = caught.value
    assert (exc.status_code, exc.code) == (400, "InvalidParameter")
    assert exc.message == sent["message"]
    assert exc.request_id == sent["request_id"]
    assert exc.body == sent
    assert list(instant.backend.tasks()) == []
    assert _polls(instant) == []


@pytest.mark.parametrize(
    "params", [{"duration": 16}, {"size": "999*999"}], ids=["duration-16", "size-999x999"]
)
def test_submit_rejection_without_raising(instant, connect, params):
    client = connect(instant, raise_on_error=False)
    job = client.videos.jobs.create(model=MODEL, prompt="a cat", **params)
    sent = _body(_submits(instant)[0])
    assert job.is_error
    assert (job.code, job.message, job.request_id) == (
        sent["code"], sent["message"], sent["request_id"])
    assert job.code == "InvalidParameter"
    assert (job.task_id, job.status, job.output) == ("", "", None)
    assert job.status_code is None  # SDK 2.0.2: the HTTP 400 is not copied onto the Job
    assert list(instant.backend.tasks()) == []


def test_a_size_outside_the_model_fails_the_task(instant, connect):
    client = connect(instant)
    job = client.videos.jobs.create(model=MODEL, prompt="a cat", size="832*480")  # 480P
    assert job.status == "PENDING"  # accepted, then FAILED (the catalogue rule is async)
    [submit] = _submits(instant)
    assert [v["timing"] for v in submit.violations] == ["async"]

    with pytest.raises(errors.BadRequestError) as caught:
        client.videos.jobs.wait(job.task_id, _sleep=_no_sleep)
    output = _body(_polls(instant, job.task_id)[-1])["output"]
    assert output["task_status"] == "FAILED"
    exc = caught.value
    assert (exc.code, exc.status_code) == ("InvalidParameter", 200)  # the business layer
    assert exc.message == output["message"] and "size" in exc.message

    lenient = client.with_options(raise_on_error=False)
    failed = lenient.videos.jobs.wait(job.task_id, _sleep=_no_sleep)
    assert failed.status == "FAILED" and failed.finished and failed.is_error
    assert (failed.code, failed.message) == ("InvalidParameter", output["message"])
    assert failed.video_url is None and failed.usage is None


def test_a_wrong_key_is_rejected(manual, connect):
    client = connect(manual, api_key=WRONG_KEY)
    with pytest.raises(errors.AuthenticationError) as caught:
        client.videos.jobs.create(model=MODEL, prompt="a cat", size="1280*720")
    exc = caught.value
    [entry] = _submits(manual)
    sent = _body(entry)
    assert entry.status == 401
    assert (exc.status_code, exc.code) == (401, "InvalidApiKey")
    assert exc.message == sent["message"] == "Invalid API-key provided."
    assert WRONG_KEY not in json.dumps(entry.as_dict())

    with pytest.raises(errors.AuthenticationError):
        client.videos.jobs.fetch("00000000-0000-0000-0000-000000000000")

    job = client.with_options(raise_on_error=False).videos.jobs.create(
        model=MODEL, prompt="a cat", size="1280*720")
    assert job.is_error and (job.code, job.task_id) == ("InvalidApiKey", "")
    assert list(manual.backend.tasks()) == []

    # A per-call key replaces the client's for that one request.
    accepted = client.videos.jobs.create(model=MODEL, prompt="a cat", size="1280*720",
                                         api_key=API_KEY)
    assert accepted.status == "PENDING"
    assert [e.status for e in _submits(manual)] == [401, 401, 200]
    assert [e.violations for e in manual.backend.journal.entries()] == [[]] * 4


# -- manual clock: cancel --------------------------------------------------------------------
def test_cancel_a_pending_task(manual, connect):
    client = connect(manual)
    job = client.videos.jobs.create(model=MODEL, prompt="a cat", size="1280*720")
    assert client.videos.jobs.fetch(job.task_id).status == "PENDING"

    canceled = client.videos.jobs.cancel(job.task_id)
    [entry] = manual.backend.journal.entries(family="dashscope", operation="cancelTask")
    assert (entry.method, entry.path, entry.status) == (
        "POST", f"/api/v1/tasks/{job.task_id}/cancel", 200)
    assert entry.request_body == ""
    # The cancel answer is only a request id, so the SDK's Job carries nothing else.
    assert _body(entry) == {"request_id": canceled.request_id}
    assert (canceled.task_id, canceled.status, canceled.is_error) == ("", "", False)

    assert client.videos.jobs.fetch(job.task_id).status == "CANCELED"
    manual.backend.clock.advance(600)  # a canceled task stays canceled
    with pytest.raises(errors.DashScopeError, match="was canceled while waiting"):
        client.videos.jobs.wait(job.task_id, _sleep=_no_sleep)
    waited = client.with_options(raise_on_error=False).videos.jobs.wait(
        job.task_id, _sleep=_no_sleep)
    assert waited.status == "CANCELED" and waited.video_url is None

    with pytest.raises(errors.BadRequestError) as caught:  # no longer PENDING
        client.videos.jobs.cancel(job.task_id)
    assert (caught.value.status_code, caught.value.code) == (400, "UnsupportedOperation")
    _assert_clean(manual)


def test_cancel_a_running_task_is_refused(manual, connect):
    client = connect(manual)
    job = client.videos.jobs.create(model=MODEL, prompt="a cat", size="1280*720")
    manual.backend.clock.advance(1.5)  # `fast`: 1 s in the queue, then running
    assert client.videos.jobs.fetch(job.task_id).status == "RUNNING"
    with pytest.raises(errors.BadRequestError) as caught:
        client.videos.jobs.cancel(job.task_id)
    assert caught.value.code == "UnsupportedOperation"
    manual.backend.clock.advance(60)
    assert client.videos.jobs.wait(job.task_id, _sleep=_no_sleep).status == "SUCCEEDED"
    _assert_clean(manual)


# -- the whole surface is within the contract ------------------------------------------------
def test_every_videos_request_is_within_the_contract(manual, connect):
    client = connect(manual)
    jobs = client.videos.jobs
    kept = jobs.create(model=MODEL, prompt="a cat", size="1920*1080", duration=10, seed=42,
                       prompt_extend=False, watermark=False,
                       extra_input={"negative_prompt": "blur"},
                       parameters={"shot_type": "multi"})
    dropped = jobs.create(model=MODEL, prompt="a dog", size="1280*720")
    jobs.fetch(kept.task_id)
    jobs.cancel(dropped.task_id)
    manual.backend.clock.advance(600)
    jobs.wait(kept.task_id, _sleep=_no_sleep)
    jobs.list()
    jobs.list(status="CANCELED", model_name=MODEL, page_no=1, page_size=5)
    operations = [e.operation for e in manual.backend.journal.entries()]
    assert operations == ["createVideoSynthesis", "createVideoSynthesis", "getTask",
                          "cancelTask", "getTask", "listTasks", "listTasks"]
    assert [e.status for e in manual.backend.journal.entries()] == [200] * 7
    _assert_clean(manual)
