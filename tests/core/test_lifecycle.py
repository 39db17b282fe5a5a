"""The lifecycle: a task's state, progress and eta are a pure function of its plan and the clock
(or its poll count). Boundaries, timing profiles, and a Hypothesis state machine over a Backend."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from mockserver.catalogue import JobSpec
from mockserver.contracts import load
from mockserver.core.backend import Backend, Options
from mockserver.core.clock import ManualClock
from mockserver.core.ids import Ids
from mockserver.core.retention import Keep, Retention
from mockserver.core.tasks import (
    ORDER,
    Failure,
    Lifecycle,
    Plan,
    State,
    Task,
    plan_times,
)
from mockserver.errors import MockServerError

T0 = 1_000.0


def spec(width: int = 1280, height: int = 720, duration: int = 5) -> JobSpec:
    return JobSpec(family="dashscope", model="wan2.6-t2v", mode="t2v", width=width,
                   height=height, duration=duration, audio=False)


def task(plan: Plan, submitted_at: float = T0) -> Task:
    return Task(id="t-1", family="dashscope", operation="createVideoSynthesis", spec=spec(),
                submitted_at=submitted_at, plan=plan)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
def life(clock: ManualClock) -> Lifecycle:
    return Lifecycle(clock)


# -- time mode -------------------------------------------------------------------------------
def test_queued_running_succeeded_boundaries(life: Lifecycle) -> None:
    t = task(Plan(queue_s=10, run_s=20))
    snap = life.view(t, T0)
    assert (snap.state, snap.progress, snap.eta) == (State.QUEUED, 0, 30)
    assert snap.started_at is None and snap.ended_at is None and snap.submitted_at == T0
    assert life.view(t, T0 + 9.999).state is State.QUEUED

    snap = life.view(t, T0 + 10)
    assert (snap.state, snap.progress, snap.eta) == (State.RUNNING, 0, 20)
    assert snap.started_at == T0 + 10 and snap.ended_at is None
    snap = life.view(t, T0 + 20)
    assert (snap.state, snap.progress) == (State.RUNNING, 50)
    snap = life.view(t, T0 + 29.999)
    assert (snap.state, snap.progress) == (State.RUNNING, 99)

    snap = life.view(t, T0 + 30)
    assert (snap.state, snap.progress, snap.eta) == (State.SUCCEEDED, 100, 0)
    assert snap.started_at == T0 + 10 and snap.ended_at == T0 + 30
    # Without retention a finished task stays finished.
    assert life.view(t, T0 + 10**7).state is State.SUCCEEDED


def test_view_reads_the_clock_by_default(clock: ManualClock, life: Lifecycle) -> None:
    t = task(Plan(queue_s=1, run_s=4))
    assert life.view(t).state is State.QUEUED
    clock.advance(1)
    assert life.view(t).state is State.RUNNING
    clock.advance(4)
    snap = life.view(t)
    assert snap.state is State.SUCCEEDED and snap.now == T0 + 5


def test_a_view_is_pure(life: Lifecycle) -> None:
    t = task(Plan(queue_s=3, run_s=7))
    first = [life.view(t, T0 + x / 4) for x in range(50)]
    again = [life.view(t, T0 + x / 4) for x in range(50)]
    assert first == again
    assert t.polls == 0  # looking at a task in time mode never counts as a poll


def test_progress_is_monotonic_within_0_99_and_eta_falls_to_zero(life: Lifecycle) -> None:
    t = task(Plan(queue_s=2, run_s=13))
    snaps = [life.view(t, T0 + step * 0.1) for step in range(200)]
    running = [s for s in snaps if s.state is State.RUNNING]
    assert len(running) > 100
    progress = [s.progress for s in running]
    assert all(0 <= p <= 99 for p in progress)
    assert progress == sorted(progress) and progress[0] == 0 and progress[-1] == 99
    active = [s.eta for s in snaps if not s.state.terminal]
    assert all(a > b for a, b in zip(active, active[1:], strict=False))  # strictly falling
    assert all(s.eta == 0 for s in snaps if s.state.terminal)
    assert snaps[-1].state is State.SUCCEEDED


def test_a_failing_task_fails_at_fail_at(life: Lifecycle) -> None:
    plan = Plan(queue_s=2, run_s=10, failure=Failure("DataInspectionFailed", "bad"), fail_at=0.5)
    assert plan.end_s == 7
    t = task(plan)
    snap = life.view(t, T0 + 6.999)
    assert snap.state is State.RUNNING and snap.progress == 49
    snap = life.view(t, T0 + 7)
    assert snap.state is State.FAILED and snap.eta == 0
    assert snap.started_at == T0 + 2 and snap.ended_at == T0 + 7
    assert life.view(t, T0 + 100).state is State.FAILED


def test_a_canceled_task_is_canceled_from_its_cancel_time(life: Lifecycle) -> None:
    t = task(Plan(queue_s=10, run_s=10))
    t.canceled_at = T0 + 3
    assert life.view(t, T0 + 2.999).state is State.QUEUED
    snap = life.view(t, T0 + 3)
    assert (snap.state, snap.progress, snap.eta, snap.ended_at) == (State.CANCELED, 0, 0, T0 + 3)
    assert snap.started_at is None
    # Past the planned end it is still canceled, not succeeded.
    assert life.view(t, T0 + 50).state is State.CANCELED


@pytest.mark.parametrize("forced", [State.SUCCEEDED, State.FAILED, State.CANCELED])
def test_a_forced_terminal_state_wins_over_the_plan(life: Lifecycle, forced: State) -> None:
    t = task(Plan(queue_s=10, run_s=10))
    t.forced, t.forced_at = forced, T0 + 1
    snap = life.view(t, T0 + 2)
    assert snap.state is forced and snap.eta == 0 and snap.ended_at == T0 + 1
    assert snap.progress == (100 if forced is State.SUCCEEDED else 0)
    assert life.view(t, T0 + 10**6).state is forced


def test_a_forced_running_state_has_started_but_not_ended(life: Lifecycle) -> None:
    t = task(Plan(queue_s=10, run_s=10))
    t.forced, t.forced_at = State.RUNNING, T0
    snap = life.view(t, T0 + 100)  # long past the planned end
    assert snap.state is State.RUNNING
    assert snap.started_at == T0 and snap.ended_at is None  # out of the queue when forced
    assert 0 <= snap.progress <= 99


def test_retention_expires_a_task(life: Lifecycle) -> None:
    t = task(Plan(queue_s=1, run_s=1))
    assert life.view(t, T0 + 99.999, retention=100).state is State.SUCCEEDED
    snap = life.view(t, T0 + 100, retention=100)
    assert (snap.state, snap.progress, snap.eta) == (State.EXPIRED, 0, 0)
    # Even a task that never started expires, and a canceled one too.
    slow = task(Plan(queue_s=500, run_s=500))
    assert life.view(slow, T0 + 100, retention=100).state is State.EXPIRED
    slow.canceled_at = T0 + 1
    assert life.view(slow, T0 + 100, retention=100).state is State.EXPIRED


# -- poll-count mode -------------------------------------------------------------------------
def polled(life: Lifecycle, t: Task, times: int) -> list[tuple[State, int]]:
    out = []
    for _ in range(times):
        t.polls += 1
        snap = life.view(t)
        out.append((snap.state, snap.progress))
    return out


def test_poll_mode_default_pacing(clock: ManualClock) -> None:
    life = Lifecycle(clock, mode="polls")
    t = task(Plan(queue_s=30, run_s=300))
    assert life.view(t).state is State.QUEUED  # not yet polled
    clock.advance(10**5)  # time does not matter in poll mode
    seen = polled(life, t, 5)
    assert [s for s, _ in seen] == [State.QUEUED, State.RUNNING, State.RUNNING,
                                    State.SUCCEEDED, State.SUCCEEDED]
    assert [p for _, p in seen] == [0, 33, 66, 100, 100]


@pytest.mark.parametrize(
    ("queued", "running", "expected"),
    [
        (0, 0, ["succeeded"]),
        (0, 1, ["running", "succeeded"]),
        (3, 1, ["queued", "queued", "queued", "running", "succeeded"]),
        (1, 4, ["queued"] + ["running"] * 4 + ["succeeded"]),
    ],
)
def test_poll_mode_sequences(clock: ManualClock, queued: int, running: int,
                             expected: list[str]) -> None:
    life = Lifecycle(clock, mode="polls", queued_polls=queued, running_polls=running)
    t = task(Plan(queue_s=5, run_s=50))
    seen = polled(life, t, len(expected) + 2)
    assert [s.value for s, _ in seen] == expected + ["succeeded", "succeeded"]
    progress = [p for s, p in seen if s is State.RUNNING]
    assert progress == sorted(progress) and all(0 <= p <= 99 for p in progress)


def test_poll_mode_failure(clock: ManualClock) -> None:
    life = Lifecycle(clock, mode="polls", queued_polls=1, running_polls=2)
    t = task(Plan(queue_s=5, run_s=50, failure=Failure("X", "y"), fail_at=0.9))
    states = [s for s, _ in polled(life, t, 5)]
    assert states == [State.QUEUED, State.RUNNING, State.RUNNING, State.FAILED, State.FAILED]


@pytest.mark.parametrize(
    "kwargs",
    [{"timing": "slow"}, {"mode": "ticks"}, {"queued_polls": -1}, {"running_polls": -1}],
)
def test_lifecycle_rejects_bad_configuration(clock: ManualClock, kwargs: dict) -> None:
    with pytest.raises(MockServerError):
        Lifecycle(clock, **kwargs)


# -- timing profiles -------------------------------------------------------------------------
def catalogue_specs() -> list[JobSpec]:
    """One spec per (resolution, duration) the catalogue can produce."""
    out = []
    for width, height in [(832, 480), (1280, 720), (1920, 1080), (480, 832), (1080, 1920)]:
        for duration in (2, 3, 4, 5, 10, 15):
            out.append(spec(width, height, duration))
    return out


def test_instant_timing_is_zero() -> None:
    for s in catalogue_specs():
        assert plan_times(s, "instant", Ids(1)) == (0.0, 0.0)


def test_fast_timing_ends_a_5s_720p_job_within_10s() -> None:
    queue, run = plan_times(spec(1280, 720, 5), "fast", Ids(None))
    assert queue > 0 and run > 0
    assert queue + run <= 10
    for s in catalogue_specs():  # every fast job is done within 10 s
        q, r = plan_times(s, "fast", Ids(None))
        assert 0 < q and 0 < r and q + r <= 10


def test_fast_timing_is_deterministic_without_a_seed() -> None:
    assert plan_times(spec(), "fast", Ids(None)) == plan_times(spec(), "fast", Ids(None))


def test_realistic_timing_is_in_the_documented_range() -> None:
    ids = Ids(7)
    for s in catalogue_specs():
        for _ in range(20):
            queue, run = plan_times(s, "realistic", ids)
            assert 5 <= queue <= 60, (s, queue)
            assert 90 <= run <= 720, (s.width, s.height, s.duration, run)


def test_realistic_timing_grows_with_resolution_and_duration() -> None:
    def run(s: JobSpec) -> float:
        return plan_times(s, "realistic", Ids(3))[1]  # same seed: same random factor

    assert run(spec(832, 480, 5)) < run(spec(1280, 720, 5)) < run(spec(1920, 1080, 5))
    assert run(spec(1280, 720, 5)) < run(spec(1280, 720, 10))
    # Over the whole catalogue: never shorter for a bigger or longer job.
    for d in (2, 5, 10, 15):
        assert run(spec(832, 480, d)) <= run(spec(1280, 720, d)) <= run(spec(1920, 1080, d))


def test_realistic_timing_is_seeded() -> None:
    a_ids, b_ids = Ids(5), Ids(5)
    a = [plan_times(spec(), "realistic", a_ids) for _ in range(5)]
    b = [plan_times(spec(), "realistic", b_ids) for _ in range(5)]
    assert a == b
    assert len(set(a)) > 1  # not all the same draw


def test_unknown_timing_is_a_usage_error() -> None:
    with pytest.raises(MockServerError, match="unknown timing"):
        plan_times(spec(), "leisurely", Ids(1))


# -- the state machine -----------------------------------------------------------------------
RETENTION = 500.0


class LifecycleMachine(RuleBasedStateMachine):
    """Submit tasks with random plans, move time, cancel and poll; the states must only ever move
    forward, progress never falls while running, and a terminal state holds until it expires."""

    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.backend: Backend | None = None
        self.last: dict[str, tuple[State, int]] = {}
        self.canceled: set[str] = set()
        self.submitted: dict[str, float] = {}
        self.count = 0

    @initialize(mode=st.sampled_from(["time", "polls"]),
                queued=st.integers(0, 3), running=st.integers(0, 3))
    def start(self, mode: str, queued: int, running: int) -> None:
        clock = ManualClock()
        options = Options(mode=mode, queued_polls=queued, running_polls=running, seed=1)
        self.backend = Backend(options, clock=clock, contracts=load())
        self.backend.retention = Retention({"dashscope": Keep(task_s=RETENTION, url_s=RETENTION)})

    @rule(target=tasks,
          queue=st.floats(0, 100, allow_nan=False), run=st.floats(0, 200, allow_nan=False),
          fails=st.booleans(), fail_at=st.floats(0, 1, allow_nan=False))
    def submit(self, queue: float, run: float, fails: bool, fail_at: float) -> str:
        assert self.backend is not None
        self.count += 1
        t = self.backend.submit(family="dashscope", operation="createVideoSynthesis",
                                spec=spec(), request={}, task_id=f"task-{self.count}")
        t.plan = Plan(queue, run, Failure("X", "boom") if fails else None, fail_at)
        self.submitted[t.id] = t.submitted_at
        self.observe(t.id, self.backend.view(t))
        return t.id

    @rule(seconds=st.one_of(st.floats(0, 5, allow_nan=False), st.floats(0, 600, allow_nan=False)))
    def advance(self, seconds: float) -> None:
        assert self.backend is not None
        self.backend.clock.advance(seconds)

    @rule(task_id=tasks)
    def poll(self, task_id: str) -> None:
        assert self.backend is not None
        t = self.backend.store.get(task_id)
        if self.purged(task_id, t):
            return
        assert t is not None
        self.observe(task_id, self.backend.view(t, poll=True))

    def purged(self, task_id: str, t: object) -> bool:
        """A task may be forgotten (bounded memory) only once it is past its retention."""
        assert self.backend is not None
        if t is None:
            assert self.backend.now() - self.submitted[task_id] >= RETENTION
            return True
        return False

    @rule(task_id=tasks)
    def cancel(self, task_id: str) -> None:
        assert self.backend is not None
        t = self.backend.store.get(task_id)
        if self.purged(task_id, t):
            return
        assert t is not None
        before = self.backend.view(t).state
        ok = self.backend.cancel(t)
        assert ok == (before is State.QUEUED), (before, ok)
        after = self.backend.view(t).state
        if ok:
            self.canceled.add(task_id)
            assert after is State.CANCELED
        else:
            assert after is before  # a refused cancel changes nothing

    def observe(self, task_id: str, snap) -> None:  # type: ignore[no-untyped-def]
        state, progress = snap.state, snap.progress
        assert 0 <= progress <= 100
        if state is State.RUNNING:
            assert progress <= 99
        if state is State.CANCELED:
            assert task_id in self.canceled  # only a successful cancel cancels
        if task_id in self.last:
            old_state, old_progress = self.last[task_id]
            assert ORDER[state] >= ORDER[old_state], (old_state, state)
            if old_state.terminal and old_state is not State.EXPIRED:
                assert state in (old_state, State.EXPIRED), (old_state, state)
            if old_state is State.RUNNING and state is State.RUNNING:
                assert progress >= old_progress, (old_progress, progress)
        if state is State.EXPIRED:
            assert self.backend is not None
            t = self.backend.store.get(task_id)
            assert t is not None and self.backend.now() - t.submitted_at >= RETENTION
        self.last[task_id] = (state, progress)

    @invariant()
    def states_only_move_forward(self) -> None:
        if self.backend is None:
            return
        for t in self.backend.tasks():
            self.observe(t.id, self.backend.view(t))


TestLifecycleMachine = LifecycleMachine.TestCase
TestLifecycleMachine.settings = settings(
    settings.default, max_examples=min(settings.default.max_examples, 40),
    stateful_step_count=30,
)
