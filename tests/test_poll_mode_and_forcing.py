"""Issue 20, point 8: under `mode="polls"` the fixtures' `advance()` and
`run_until_terminal()` act (they moved the clock and nothing else), and a task forced out of
the queue has coherent times (its scheduled time was its planned one, decades later for a
`stuck` task, after its end)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.core.tasks import State
from mockserver.handle import WanMock
from mockserver.ui.timeline import timeline
from tests.helpers import SyncASGITransport

DS = {"Authorization": "Bearer sk-x", "X-DashScope-Async": "enable"}
SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"


def fake(**options: Any) -> tuple[WanMock, httpx.Client]:
    app = create_app(clock=ManualClock(), seed=2, **options)
    client = httpx.Client(transport=SyncASGITransport(app), base_url="http://127.0.0.1")
    return WanMock(app.state.backend), client


def submit(c: httpx.Client, **headers: str) -> str:
    r = c.post(SUBMIT, headers={**DS, **headers},
               json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"}})
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]  # type: ignore[no-any-return]


def test_run_until_terminal_acts_in_poll_count_mode() -> None:
    mock, c = fake(mode="polls")
    first, second = submit(c), submit(c)
    assert mock.state(first) is State.QUEUED
    views = mock.run_until_terminal(first)
    assert [v.state for v in views] == [State.SUCCEEDED]
    mock.run_until_terminal()
    assert mock.state(second) is State.SUCCEEDED
    poll = c.get(f"/api/v1/tasks/{second}", headers=DS).json()["output"]
    assert poll["task_status"] == "SUCCEEDED" and poll["video_url"]


def test_advance_moves_tasks_along_their_plan_in_whole_polls() -> None:
    mock, c = fake(mode="polls", timing="fast")
    task_id = submit(c)
    plan = mock.task(task_id).plan
    mock.advance(plan.queue_s + 0.01)  # past the queue: running, not done
    assert mock.state(task_id) is State.RUNNING
    mock.advance(0)
    assert mock.state(task_id) is State.RUNNING
    mock.advance(plan.run_s)
    assert mock.state(task_id) is State.SUCCEEDED
    # the control API's advance does the same
    other = submit(c)
    r = c.post("/_wanmock/clock/advance", json={"seconds": plan.end_s * 10})
    assert r.status_code == 200 and mock.state(other) is State.SUCCEEDED


@pytest.mark.parametrize("state", ["failed", "succeeded", "running", "canceled"])
def test_a_queued_task_forced_has_coherent_times(state: str) -> None:
    mock, c = fake(mode="time", scenarios=({"scenario": "stuck"},))
    task_id = submit(c)
    mock.advance(3)
    mock.force(task_id, state)
    backend = mock.backend
    task = mock.task(task_id)
    snap = backend.view(task)
    assert snap.state.value == state
    if snap.started_at is not None and snap.ended_at is not None:
        assert snap.submitted_at <= snap.started_at <= snap.ended_at
    if snap.started_at is not None:
        assert snap.started_at <= backend.now()
    out = c.get(f"/api/v1/tasks/{task_id}", headers=DS).json()["output"]
    if "scheduled_time" in out and "end_time" in out:
        assert out["scheduled_time"] <= out["end_time"], out
    line = timeline(backend, task, snap, [], [])
    assert line.end - line.start < 60  # the axis spans seconds, not the stuck plan's decades
    assert c.get(f"/_wanmock/ui/tasks/{task_id}").status_code == 200
