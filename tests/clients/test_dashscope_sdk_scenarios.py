"""Scenarios as the real DashScope SDK (dashscope 2.0.2) meets them on a live fake.

The `manual` server's clock moves only when a test advances it, so a task is done (or failed)
before the SDK's `wait` polls it: no sleeping, except the one retry interval (1 s) the SDK waits
after a 503 on polling, which is the behaviour under test.
"""

from __future__ import annotations

from http import HTTPStatus

import dashscope
import httpx
import pytest
from dashscope import VideoSynthesis

from tests.clients.conftest import API_KEY

pytestmark = pytest.mark.clients

MODEL = {"model": "wan2.6-t2v", "size": "1280*720", "duration": 5, "api_key": API_KEY}


@pytest.fixture
def server(manual, monkeypatch):
    monkeypatch.setattr(dashscope, "base_http_api_url", manual.url + "/api/v1")
    return manual


def _entries(server, operation):
    return server.backend.journal.entries(family="dashscope", operation=operation)


def _add_rule(server, rule):
    r = httpx.post(server.url + "/_wanmock/scenarios", json=rule, timeout=5)
    assert r.status_code == 201, r.text
    return r.json()["rules"][0]["id"]


def test_moderation_failure_is_failed_with_data_inspection_failed(server):
    _add_rule(server, {"scenario": "moderation", "match": {"prompt": "forbidden"}})
    submitted = VideoSynthesis.async_call(prompt="a forbidden scene", **MODEL)
    assert submitted.status_code == HTTPStatus.OK
    assert submitted.output.task_status == "PENDING"
    server.backend.clock.advance(120)

    done = VideoSynthesis.wait(submitted.output.task_id, api_key=API_KEY)
    assert done.status_code == HTTPStatus.OK  # a task-level failure is HTTP 200
    assert done.output.task_status == "FAILED"
    assert done.output.code == "DataInspectionFailed"
    assert done.output.message == "Input data may contain inappropriate content."
    assert not done.output.get("video_url")
    assert [e.scenario for e in _entries(server, "createVideoSynthesis")] == ["moderation"]
    assert len(_entries(server, "getTask")) == 1


def test_scenario_header_through_the_sdk(server):
    submitted = VideoSynthesis.async_call(
        prompt="a cat", headers={"X-Wanmock-Scenario": "fail; kind=moderation; at=0.5"},
        **MODEL)
    assert submitted.status_code == HTTPStatus.OK
    server.backend.clock.advance(120)
    done = VideoSynthesis.wait(submitted, api_key=API_KEY)
    assert (done.output.task_status, done.output.code) == ("FAILED", "DataInspectionFailed")
    (entry,) = _entries(server, "createVideoSynthesis")
    assert entry.scenario == "fail; kind=moderation; at=0.5"


def test_wait_retries_through_a_503_on_polling(server):
    submitted = VideoSynthesis.async_call(prompt="a red fox in the snow", **MODEL)
    assert submitted.status_code == HTTPStatus.OK
    task_id = submitted.output.task_id
    server.backend.clock.advance(120)
    rule = _add_rule(server, {"scenario": "unavailable", "match": {"operation": "getTask"},
                              "times": 1})

    done = VideoSynthesis.wait(task_id, api_key=API_KEY)  # sleeps 1 s after the 503
    assert done.status_code == HTTPStatus.OK
    assert done.output.task_status == "SUCCEEDED"
    assert done.output.video_url

    polls = _entries(server, "getTask")
    assert [(e.status, e.scenario) for e in polls] == [(503, "unavailable"), (200, None)]
    assert '"ModelUnavailable"' in (polls[0].response_body or "")
    assert all(e.path == f"/api/v1/tasks/{task_id}" for e in polls)
    listed = httpx.get(f"{server.url}/_wanmock/scenarios/{rule}", timeout=5).json()
    assert (listed["applied"], listed["remaining"]) == (1, 0)


def test_throttled_submit_reports_429_throttling(server):
    _add_rule(server, {"scenario": "throttle", "match": {"operation": "createVideoSynthesis"},
                       "times": 1})
    refused = VideoSynthesis.async_call(prompt="a cat", **MODEL)
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refused.code == "Throttling"
    assert refused.message == "Requests throttling triggered."
    assert refused.output is None
    assert list(server.backend.tasks()) == []

    again = VideoSynthesis.async_call(prompt="a cat", **MODEL)  # times=1: the next one passes
    assert again.status_code == HTTPStatus.OK
    assert [e.status for e in _entries(server, "createVideoSynthesis")] == [429, 200]


def test_rate_limit_at_submit_reports_throttling_rate_quota(server):
    server.backend.scenarios.add("rate-limit", match={"operation": "createVideoSynthesis"})
    refused = VideoSynthesis.async_call(prompt="a cat", **MODEL)
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refused.code == "Throttling.RateQuota"


def test_cancel_race_cancel_succeeds_but_the_task_completes(server):
    server.backend.scenarios.add("cancel-race")
    submitted = VideoSynthesis.async_call(prompt="a cat", **MODEL)
    canceled = VideoSynthesis.cancel(submitted, api_key=API_KEY)
    assert canceled.status_code == HTTPStatus.OK
    server.backend.clock.advance(120)
    done = VideoSynthesis.wait(submitted, api_key=API_KEY)
    assert done.output.task_status == "SUCCEEDED"


def test_expired_task_reads_unknown(server):
    server.backend.scenarios.add("expire; after=30")
    submitted = VideoSynthesis.async_call(prompt="a cat", **MODEL)
    server.backend.clock.advance(60)
    done = VideoSynthesis.wait(submitted, api_key=API_KEY)
    assert done.status_code == HTTPStatus.OK
    assert done.output.task_status == "UNKNOWN"
    assert not done.output.get("video_url")
