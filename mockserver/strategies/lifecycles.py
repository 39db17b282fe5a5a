"""Task lifecycles and poll plans, and `apply_lifecycle()` to make a fake's task follow one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from mockserver.core.tasks import Failure, Plan, State
from mockserver.strategies.schema import check_subset, check_type

OUTCOMES = ("succeed", "fail", "cancel")
# Queue and run seconds per timing profile, in milliseconds (the fake's `timing` option names).
_TIMING_MS = {
    "instant": ((0, 0), (0, 0)),
    "fast": ((0, 2_000), (500, 8_000)),
    "realistic": ((5_000, 60_000), (90_000, 720_000)),
}
_FAILURE_CODES = ("InternalError", "DataInspectionFailed", "InvalidParameter")


# -- lifecycles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskLifecycle:
    """What one task goes through, in seconds after its submission.

    `outcome` is `"succeed"`, `"fail"` (with the provider's `code`/`message`, after `fail_at` of
    the run, 0..1) or `"cancel"` (canceled `cancel_at` seconds after submit, while still queued).
    """

    queue_s: float
    run_s: float
    outcome: str = "succeed"
    code: str | None = None
    message: str | None = None
    fail_at: float = 1.0
    cancel_at: float | None = None

    @property
    def final_state(self) -> State:
        return {"succeed": State.SUCCEEDED, "fail": State.FAILED,
                "cancel": State.CANCELED}[self.outcome]

    @property
    def end_s(self) -> float:
        """Seconds after submit when the task becomes terminal."""
        if self.outcome == "cancel":
            return float(self.cancel_at or 0.0)
        return self.plan().end_s

    def plan(self) -> Plan:
        """The core `Plan` (cancellation is not part of a plan: see `apply_lifecycle`)."""
        failure = None
        if self.outcome == "fail":
            failure = Failure(self.code or "InternalError", self.message or "Task failed.")
        return Plan(self.queue_s, self.run_s, failure, self.fail_at if failure else 1.0)


@dataclass(frozen=True)
class PollPlan:
    """The fake's poll-count pacing: queries that see a task queued, then running."""

    queued_polls: int
    running_polls: int

    def options(self) -> dict[str, Any]:
        """As `create_app(**...)`, `@pytest.mark.wanmock(**...)` (with `mode="polls"`) take it."""
        return {"mode": "polls", "queued_polls": self.queued_polls,
                "running_polls": self.running_polls}


@st.composite
def _lifecycle(draw: Any, timings: tuple[str, ...], outcomes: tuple[str, ...],
               codes: tuple[str, ...]) -> TaskLifecycle:
    (q_lo, q_hi), (r_lo, r_hi) = _TIMING_MS[draw(st.sampled_from(timings))]
    queue_ms = draw(st.integers(q_lo, q_hi))
    run_ms = draw(st.integers(r_lo, r_hi))
    outcome = draw(st.sampled_from(outcomes))
    if outcome == "fail":
        code = draw(st.sampled_from(codes))
        fail_at = draw(st.integers(0, 100)) / 100
        return TaskLifecycle(queue_ms / 1000, run_ms / 1000, "fail", code,
                             f"{code} (wanmock lifecycle)", fail_at)
    if outcome == "cancel":
        cancel_ms = draw(st.integers(0, max(0, queue_ms - 1)))
        return TaskLifecycle(queue_ms / 1000, run_ms / 1000, "cancel", cancel_at=cancel_ms / 1000)
    return TaskLifecycle(queue_ms / 1000, run_ms / 1000)


def lifecycles(
    *,
    timings: Collection[str] = ("instant", "fast", "realistic"),
    outcomes: Collection[str] = OUTCOMES,
    failure_codes: Collection[str] = _FAILURE_CODES,
) -> st.SearchStrategy[TaskLifecycle]:
    """`TaskLifecycle`s a provider can show: queue and run times, then the end.

    `timings` picks the time scales (the fake's `timing` names): `instant` (0 s), `fast` (queue
    0-2 s, run 0.5-8 s) and `realistic` (queue 5-60 s, run 1.5-12 min), in whole milliseconds.
    `outcomes` picks among `"succeed"`, `"fail"` (a code from `failure_codes`, failing after
    0-100 % of the run) and `"cancel"` (while queued). Feed one to a submitted task with
    `apply_lifecycle()`.

    Examples shrink towards the first timing and outcome given, the shortest queue and run, a
    failure at the very start of the run, and a cancellation right after submit.
    """
    chosen_timings = check_subset(timings, tuple(_TIMING_MS), "timings")
    chosen_outcomes = check_subset(outcomes, OUTCOMES, "outcomes")
    if isinstance(failure_codes, str) or not isinstance(failure_codes, Collection) or not (
        failure_codes and all(isinstance(c, str) and c for c in failure_codes)
    ):
        raise InvalidArgument(f"failure_codes={failure_codes!r} must be non-empty strings")
    return _lifecycle(chosen_timings, chosen_outcomes, tuple(failure_codes))


def poll_plans(*, max_queued: int = 3, max_running: int = 5) -> st.SearchStrategy[PollPlan]:
    """`PollPlan`s for the fake's poll-count mode (`mode="polls"`): 0..`max_queued` queries see
    a task queued, then 0..`max_running` see it running. Shrinks towards (0, 0)."""
    for name, value in (("max_queued", max_queued), ("max_running", max_running)):
        check_type(value, int, name)
        if value < 0:
            raise InvalidArgument(f"{name}={value!r} must be >= 0")
    return st.builds(PollPlan, st.integers(0, max_queued), st.integers(0, max_running))


def apply_lifecycle(target: Any, task_id: str, lifecycle: TaskLifecycle) -> Any:
    """Make the task `task_id` follow `lifecycle` from its submission on; returns the task.

    `target` is a `Backend` or anything holding one as `.backend` (`mockserver.handle.WanMock`,
    the `wanmock` fixtures). The task's plan is replaced (a state forced earlier is dropped) and,
    for `"cancel"`, it is canceled `cancel_at` seconds after it was submitted. Times count from
    the submission, so apply the lifecycle before moving the clock.
    """
    from mockserver.core.backend import Backend
    from mockserver.errors import MockServerError

    backend = target if isinstance(target, Backend) else getattr(target, "backend", None)
    if not isinstance(backend, Backend):
        raise InvalidArgument(f"target={target!r} is neither a Backend nor holds one as .backend")
    if not isinstance(lifecycle, TaskLifecycle):
        raise InvalidArgument(f"lifecycle={lifecycle!r} must be a TaskLifecycle")
    task = backend.store.get(task_id)
    if task is None:
        task = next((t for t in backend.tasks() if t.extra.get("upstream_id") == task_id), None)
    if task is None:
        known = [t.id for t in backend.tasks()]
        raise MockServerError(f"no task {task_id!r}; the fake has {known}")
    task.plan = lifecycle.plan()
    task.forced = task.forced_at = None
    task.canceled_at = (task.submitted_at + float(lifecycle.cancel_at or 0.0)
                        if lifecycle.outcome == "cancel" else None)
    return task
