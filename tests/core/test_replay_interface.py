"""Replay is injected: core asks an object with the `mockserver.core.replay.Replay` interface
for a recorded task's plan; the differential loop (`mockserver.replay`) provides one, and any
other object with the interface serves as well."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from mockserver.catalogue import JobSpec
from mockserver.core.backend import Backend, Options
from mockserver.core.clock import ManualClock
from mockserver.core.replay import Replay
from mockserver.core.tasks import Plan, State, Task
from mockserver.errors import MockServerError
from mockserver.replay import ReplayBook

SPEC = JobSpec(family="dashscope", model="wan2.6-t2v", mode="t2v", width=1280, height=720,
               duration=5, audio=False)


class Recorded:
    """A replay that knows one prompt and plans it 7 s queued, 3 s running."""

    def __init__(self, path: str) -> None:
        self.path, self.taken = path, 0

    def take(self, family: str, operation: str, body: Any) -> Any | None:
        if body.get("prompt") != "recorded":
            return None
        self.taken += 1
        return "job-1"

    def apply(self, job: Any, task: Task) -> None:
        task.plan = Plan(7.0, 3.0)
        task.extra["replay"] = job

    def reset(self) -> None:
        self.taken = 0

    def knows(self, family: str, operation: str, body: Any) -> bool:
        return body.get("prompt") == "recorded"

    def rejection(self, family: str, operation: str, body: Any) -> None:
        return None

    def answer(self, *args: Any) -> None:
        return None


@pytest.fixture
def cassette(tmp_path: Path) -> str:
    path = tmp_path / "tape.jsonl"
    path.write_text("", encoding="utf-8")
    return str(path)


def test_without_a_reader_a_replaying_backend_refuses(cassette: str) -> None:
    with pytest.raises(MockServerError, match="without a cassette reader"):
        Backend(Options(replay=cassette))


def test_the_engine_takes_a_recorded_plan_from_the_injected_replay(cassette: str) -> None:
    opened: list[Recorded] = []

    def open_replay(path: str) -> Replay:
        opened.append(Recorded(path))
        return opened[-1]

    backend = Backend(Options(replay=cassette, seed=1), clock=ManualClock(),
                      open_replay=open_replay)
    assert [r.path for r in opened] == [cassette] and backend.replay is opened[0]
    recorded = backend.submit(family="dashscope", operation="createVideoSynthesis", spec=SPEC,
                              request={"prompt": "recorded"}, task_id="t1")
    other = backend.submit(family="dashscope", operation="createVideoSynthesis", spec=SPEC,
                           request={"prompt": "new"}, task_id="t2")
    assert (recorded.plan.queue_s, recorded.plan.run_s) == (7.0, 3.0)
    assert "replay" not in other.extra
    backend.clock.advance(8)
    assert backend.view(recorded).state is State.RUNNING
    backend.reset()
    assert opened[0].taken == 0


def test_the_cassette_reader_has_the_interface() -> None:
    for name, _ in inspect.getmembers(Replay, inspect.isfunction):
        if not name.startswith("_"):
            assert callable(getattr(ReplayBook, name, None)), name
