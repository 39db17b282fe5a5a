"""Tasks and their lifecycle: derive, do not schedule.

A task stores its spec, its submit time and its plan (queue time, run time, outcome, failure
point). Its state, progress, eta and timestamps at any moment are a pure function of the plan and
the clock (or, in poll-count mode, of how often it was queried). There are no timers and no
background loops.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import InitVar, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from mockserver.catalogue import JobSpec
from mockserver.core.clock import Clock
from mockserver.core.ids import Ids, IdSource
from mockserver.errors import MockServerError


class State(StrEnum):
    """The neutral states; each family words them its own way."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    # Held by the provider, neither running nor ended (DashScope's TaskStatus.SUSPENDED in
    # dashscope 2.0.2 common/constants.py); reached only by forcing it (control API,
    # `wanmock.force`).
    SUSPENDED = "suspended"

    @property
    def terminal(self) -> bool:
        return self not in (State.QUEUED, State.RUNNING, State.SUSPENDED)


ORDER = {State.QUEUED: 0, State.RUNNING: 1, State.SUSPENDED: 1, State.SUCCEEDED: 2, State.FAILED: 2,
         State.CANCELED: 2, State.EXPIRED: 3}

TIMINGS = ("fast", "realistic", "instant")
MODES = ("time", "polls")
_RES_FACTOR = {480: 0.75, 624: 0.75, 720: 1.0, 832: 1.0, 960: 1.0, 1080: 1.6, 1248: 1.6, 1440: 1.6}


@dataclass(slots=True)
class Failure:
    """How a task that fails reports it: the provider's code and message."""

    code: str
    message: str
    kind: str = "invalid_parameter"


@dataclass(slots=True)
class Plan:
    """When a task leaves the queue, how long it runs, and how it ends."""

    queue_s: float
    run_s: float
    failure: Failure | None = None
    fail_at: float = 1.0  # fraction of the run after which a failing task fails

    @property
    def end_s(self) -> float:
        return self.queue_s + self.run_s * (self.fail_at if self.failure else 1.0)


@dataclass(slots=True)
class Snapshot:
    """A task as seen at one moment."""

    state: State
    progress: int  # 0..100
    eta: float  # seconds until terminal, 0 when terminal
    submitted_at: float
    started_at: float | None
    ended_at: float | None
    now: float


@dataclass(slots=True)
class Task:
    """One job. `extra` holds what a family needs to render it (request ids, upstream ids).

    `request` is the body as submitted. A JSON body is kept as its compact JSON text (a tenth
    of the memory of the parsed objects) and parsed again when read: each read gives an equal,
    fresh object.
    """

    id: str
    family: str
    operation: str
    spec: JobSpec
    submitted_at: float
    plan: Plan
    request: InitVar[Any] = None
    api_key: str | None = None
    canceled_at: float | None = None
    polls: int = 0
    forced: State | None = None
    forced_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _request: Any = field(default=None, init=False, repr=False)

    def __post_init__(self, request: Any) -> None:
        self._request = _pack(request)


def _get_request(task: Task) -> Any:
    packed = task._request
    return _json_loads(packed.data) if type(packed) is Packed else packed


def _set_request(task: Task, value: Any) -> None:
    task._request = _pack(value)


Task.request = property(_get_request, _set_request,  # type: ignore[assignment,misc,attr-defined]
                        doc="The request body as submitted (see `Task`).")


class Packed:
    """A JSON body as its JSON text (UTF-8, or as received)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return type(other) is Packed and other.data == self.data

    __hash__ = None  # type: ignore[assignment]


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_json_loads = json.loads


def pack_parsed(raw: bytes, body: Any) -> Any:
    """What `Task(request=...)` should keep for `body = json.loads(raw)`: the received text
    itself when `body` is an object and the text is not pretty-printed (parsing it again gives
    an equal, fresh object, as `_pack` promises, without encoding the body again), else `body`
    (which `Task` packs as usual)."""
    if type(body) is dict and body and b"\n" not in raw and len(raw) <= _RAW_LIMIT:
        return Packed(raw)
    return body


_RAW_LIMIT = 64 * 1024  # bigger bodies are re-encoded compactly (or kept) by `_pack`


def _pack(value: Any) -> Any:
    """`value` as `Packed` when it is a plain JSON object (dicts with string keys, lists,
    strings, ints, finite floats, booleans, None: what comes back equal from its JSON text),
    else `value` itself."""
    if type(value) is not dict or not value:
        return value
    try:
        if not _plain(value):
            return value
        data = _encode(value).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError):
        return value
    return Packed(data)


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _plain(item):
                return False
        return True
    if kind is list:
        for item in value:
            if not _plain(item):
                return False
        return True
    if kind is float:
        return value - value == 0.0  # finite: NaN and infinities do not compare equal
    return False


def plan_times(spec: JobSpec, timing: str, ids: IdSource) -> tuple[float, float]:
    """Queue and run seconds for a job under a timing profile.

    `fast`: a 5 s 720P job completes about 5 s after submit (under 10 s); `realistic`: queue
    5-60 s and run 1.5-12 min growing with resolution and duration, as the real services show;
    `instant`: done at once. Any other value is a timing profile file (`core/profiles.py`): the
    model's recorded distribution, drawn with the seeded `ids`.
    """
    if timing not in TIMINGS:
        from mockserver.core.profiles import is_profile, job_key, profile_times

        if not is_profile(timing):
            raise MockServerError(f"unknown timing {timing!r}; choose one of "
                                  f"{', '.join(TIMINGS)} or a timing profile file")
        keys = (job_key(spec.model, spec.sr, spec.duration), spec.model)
        queue, run = profile_times(timing, keys, ids.fraction(), ids.fraction())
        if run is None:  # the profile observed no run: the built-in realistic one
            run = plan_times(spec, "realistic", ids)[1]
        return queue, run
    if timing == "instant":
        return 0.0, 0.0
    factor = _RES_FACTOR.get(spec.sr, 1.0)
    speed = spec.speed if spec.speed > 0 else 1.0  # a faster model (wan3.0-video-prime)
    if timing == "fast":
        return 1.0, round(min(8.0, 1.0 + 0.6 * spec.duration * factor) / speed, 3)
    if timing == "realistic":
        queue = 5.0 + 55.0 * ids.fraction()
        run = (60.0 + 24.0 * spec.duration * factor) * (0.8 + 0.4 * ids.fraction())
        # The documented band (1.5-12 min): the formula alone strays below it for a 2 s 480P job
        # and above it for a 15 s 1080P one.
        run = min(720.0, max(90.0, run)) / speed
        return round(queue, 3), round(run, 3)
    raise MockServerError(f"unknown timing {timing!r}; choose one of {', '.join(TIMINGS)}")


def plan_range(spec: JobSpec, timing: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (min, max) queue and run seconds a timing profile gives this job (what `wanmock
    diff` holds recorded timings against)."""
    if timing not in TIMINGS:
        from mockserver.core.profiles import job_key, profile_range

        queue_range, run_range = profile_range(
            timing, (job_key(spec.model, spec.sr, spec.duration), spec.model))
        if run_range is None:  # the profile observed no run: the built-in realistic one
            run_range = plan_range(spec, "realistic")[1]
        return queue_range, run_range
    if timing in ("instant", "fast"):
        queue, run = plan_times(spec, timing, Ids(0))
        return (queue, queue), (run, run)
    factor = _RES_FACTOR.get(spec.sr, 1.0)
    base = 60.0 + 24.0 * spec.duration * factor
    return (5.0, 60.0), (min(720.0, max(90.0, base * 0.8)), min(720.0, max(90.0, base * 1.2)))


class Lifecycle:
    """Derives snapshots from plans; the one state machine of the fake.

    `mode="time"` reads the clock. `mode="polls"` advances a task with each query instead, for
    clients whose sleeps cannot be shortened: `queued_polls` queries see it queued, the next
    `running_polls` see it running, and the one after sees it finished.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        timing: str = "fast",
        mode: str = "time",
        queued_polls: int = 1,
        running_polls: int = 2,
    ) -> None:
        if timing not in TIMINGS:
            from mockserver.core.profiles import is_profile, load_profile

            if not is_profile(timing):
                raise MockServerError(f"unknown timing {timing!r}; choose one of "
                                      f"{', '.join(TIMINGS)} or a timing profile file")
            load_profile(timing)  # a bad file fails now, not at the first submit
        if mode not in MODES:
            raise MockServerError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if queued_polls < 0 or running_polls < 0:
            raise MockServerError("queued_polls and running_polls must be >= 0")
        self.clock = clock
        self.timing = timing
        self.mode = mode
        self.queued_polls = queued_polls
        self.running_polls = running_polls

    def elapsed(self, task: Task, now: float) -> float:
        if self.mode == "time":
            return max(0.0, now - task.submitted_at)
        p, q, r = task.polls, self.queued_polls, self.running_polls
        plan = task.plan
        if p <= q:
            return plan.queue_s * p / (q + 1)
        if p <= q + r:
            return plan.queue_s + plan.run_s * (p - q) / (r + 1)
        return plan.end_s

    def view(self, task: Task, now: float | None = None, *,
             retention: float | None = None) -> Snapshot:
        """The task at `now` (the clock's time by default)."""
        now = self.clock.now() if now is None else now
        plan = task.plan
        elapsed = self.elapsed(task, now)
        t0 = task.submitted_at
        started = t0 + plan.queue_s
        ended = t0 + plan.end_s
        if task.forced is not None:
            state = task.forced
            at = task.forced_at if task.forced_at is not None else now
            # A task forced out of the queue started when it was forced, never after it ended.
            began = None if state is State.QUEUED else min(started, at)
            return Snapshot(
                state, 100 if state is State.SUCCEEDED else _progress(plan, elapsed),
                0.0 if state.terminal else max(0.0, ended - t0 - elapsed), t0,
                began, at if state.terminal else None, now,
            )
        if retention is not None and now - t0 >= retention:
            return Snapshot(State.EXPIRED, 0, 0.0, t0, None, None, now)
        if task.canceled_at is not None and task.canceled_at <= now:
            return Snapshot(State.CANCELED, 0, 0.0, t0, None, task.canceled_at, now)
        if elapsed < plan.queue_s:
            return Snapshot(State.QUEUED, 0, plan.end_s - elapsed, t0, None, None, now)
        if elapsed < plan.end_s:
            return Snapshot(
                State.RUNNING, _progress(plan, elapsed), plan.end_s - elapsed, t0, started, None,
                now,
            )
        state = State.FAILED if plan.failure else State.SUCCEEDED
        return Snapshot(state, 100, 0.0, t0, started, ended, now)


def _progress(plan: Plan, elapsed: float) -> int:
    if plan.run_s <= 0:
        return 0
    frac = (elapsed - plan.queue_s) / plan.run_s
    return max(0, min(99, int(frac * 100)))


class Tasks(Protocol):
    """The tasks of a store: `TaskStore` in memory, `core.store.shared_tasks.SharedTasks` over a
    driver."""

    exact_polls: bool  # poll counts drive tasks (poll-count mode): count each one at once

    def add(self, task: Task) -> Task: ...

    def get(self, task_id: str) -> Task | None: ...

    def find(self, family: str, task_id: str) -> Task | None:
        """The task by its id or by an alias of `family`."""
        ...

    def alias(self, family: str, alias: str, task: Task) -> None: ...

    def update(self, task: Task, **fields: Any) -> None:
        """Set mutable fields (`canceled_at`, `forced`, `forced_at`, `failure`)."""
        ...

    def count_poll(self, task: Task) -> int: ...

    def remove(self, task_ids: list[str]) -> int: ...

    def oldest(self) -> Iterator[Task]:
        """Every task, in submission order."""
        ...

    def __iter__(self) -> Iterator[Task]: ...

    def reset(self) -> None: ...

    def __len__(self) -> int: ...


class TaskStore:
    """Every task the fake knows, by id, oldest first. Thread-safe; `reset()` forgets them all.

    The in-memory task store (the `memory` store's); the shared stores keep the same methods
    (`mockserver.core.store.shared_tasks.SharedTasks`)."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._aliases: dict[str, Task] = {}
        self._alias_keys: dict[str, list[str]] = {}  # task id -> its alias keys
        self._lock = threading.Lock()
        # One copy of the values many tasks repeat (key, size, tier): 100,000 tasks stay small.
        self._shared: dict[Any, Any] = {}
        self.exact_polls = False  # every poll is counted on the task at once here anyway

    def add(self, task: Task) -> Task:
        with self._lock:
            if task.id in self._tasks:
                raise MockServerError(f"task id {task.id!r} already exists")
            self._share(task)
            self._tasks[task.id] = task
        return task

    def _share(self, task: Task) -> None:
        shared = self._shared
        if len(shared) > 4096:
            shared.clear()
        if type(task.api_key) is str:
            task.api_key = shared.setdefault(task.api_key, task.api_key)
        spec = task.spec
        if type(spec) is JobSpec:
            # The same few sizes and tiers on every task: one copy each (the key tells a
            # size "1280*720" from a tier, and an int from a string of it).
            get = shared.setdefault
            if type(spec.size) is str:
                spec.size = get(("size", spec.size), spec.size)
            if type(spec.resolution) is str:
                spec.resolution = get(("resolution", spec.resolution), spec.resolution)
            if type(spec.width) is int:
                spec.width = get(("width", spec.width), spec.width)
            if type(spec.height) is int:
                spec.height = get(("height", spec.height), spec.height)

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def find(self, family: str, task_id: str) -> Task | None:
        """The task with this id, or with this id as its family alias (`alias()`)."""
        task = self._tasks.get(task_id)
        if task is not None:
            return task
        return self._aliases.get(f"{family}:{task_id}") if self._aliases else None

    def alias(self, family: str, alias: str, task: Task) -> None:
        """Let `find(family, alias)` find `task` too (new-api's upstream DashScope id)."""
        key = f"{family}:{alias}"
        with self._lock:
            self._aliases[key] = task
            self._alias_keys.setdefault(task.id, []).append(key)

    def update(self, task: Task, **fields: Any) -> None:
        """Change a task's mutable fields (`canceled_at`, `forced`, `forced_at`, `failure`)."""
        failure = fields.pop("failure", None)
        for name, value in fields.items():
            setattr(task, name, value)
        if failure is not None:
            task.plan.failure = failure

    def count_poll(self, task: Task) -> int:
        """Count one client query of `task`; returns its poll count."""
        task.polls += 1
        return task.polls

    def remove(self, task_ids: Iterator[str] | list[str]) -> int:
        """Forget these tasks (and their aliases); returns how many were known."""
        gone = 0
        with self._lock:
            for task_id in task_ids:
                if self._tasks.pop(task_id, None) is not None:
                    gone += 1
                for key in self._alias_keys.pop(task_id, ()):
                    self._aliases.pop(key, None)
        return gone

    def oldest(self) -> Iterator[Task]:
        """The tasks in submission order (what eviction walks)."""
        return iter(list(self._tasks.values()))

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def reset(self) -> None:
        with self._lock:
            self._tasks.clear()
            self._aliases.clear()
            self._alias_keys.clear()
