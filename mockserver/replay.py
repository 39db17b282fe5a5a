"""Replaying recorded jobs on the fake's own engine.

A recorded job (a cassette's submit and the polls that share its `task`) reduces to a
`RecordedLifecycle`: what states were seen when, and from them a `Plan` (queue_s = the first
observation that was no longer queued, run_s up to the first terminal one, the recorded failure
code and message). `ReplayBook` hands that plan to `Backend.submit` for a submission that
matches a recording (same operation, same redacted body), so the task's state at any moment is
derived exactly as for any other task, whatever the client's poll rhythm; and it picks, for
each answer, the recorded body of the state the task is in now, with ids, timestamps and URLs
rewritten to the fake's. No second engine, no poll counting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mockserver.cassette import Cassette, Exchange, body_hash, form_body, read, redact_body
from mockserver.catalogue import JobSpec
from mockserver.core.tasks import Failure, Plan, Snapshot, State, Task
from mockserver.recorded import error_code, failure_of, geometry_of, progress_of, state_of

NEVER = 10 * 365 * 86400.0  # "did not happen while recording": later than any test looks
# The failure code of a replayed task the recording never saw end (it ends when the recording
# does; the message says where: "never ended in the recording: last seen RUNNING at +42 s").
RECORDING_ENDED = "WanmockRecordingEnded"

# Each change of state is planned this much before the poll that first saw it, so a poll at the
# recorded moment (times are rounded to microseconds, sums of floats drift by an ulp) sees it.
EARLY = 1e-3
_VOLATILE = re.compile(r"(?i)(^id$|_id$|^request_id$|time$|_at$|_ms$|^created|url$|expires)")


@dataclass(slots=True)
class Observation:
    since: float
    operation: str | None
    status: int
    body: Any
    state: State | None
    word: str | None
    progress: int | None


@dataclass
class RecordedLifecycle:
    """What one recorded task did: its observations and the plan that reproduces them.

    `queue_bounds` and `end_bounds` bracket when it left the queue and when it ended, as far as
    the polls show: (last time seen before, first time seen after)."""

    task: str
    family: str | None
    operation: str | None
    submit: Exchange
    observations: list[Observation]
    plan: Plan
    final: State | None
    canceled_s: float | None
    queue_bounds: tuple[float, float] | None
    end_bounds: tuple[float, float] | None
    geometry: tuple[int, int] | None
    exchanges: list[Exchange] = field(default_factory=list)
    cut: str | None = None  # why the recording never saw it end (None: it ended)
    fault: Exchange | None = None  # the fault answered to its last poll, replayed after it

    @property
    def states(self) -> list[State]:
        """The states seen, consecutive repeats collapsed (PENDING, RUNNING, SUCCEEDED)."""
        out: list[State] = []
        for obs in self.observations:
            if obs.state is not None and (not out or out[-1] is not obs.state):
                out.append(obs.state)
        return out


def lifecycle(task: str, exchanges: list[Exchange]) -> RecordedLifecycle | None:
    """The lifecycle of one recorded task (None when its submit is not in the cassette)."""
    submit = next((e for e in exchanges if e.role == "submit" and 200 <= e.status < 300), None)
    if submit is None:
        return None
    observations = []
    for ex in exchanges:
        if ex.role not in ("submit", "query") or ex.response_encoding != "json":
            continue
        state, word = state_of(ex.family, ex.response_body)
        observations.append(Observation(_since(ex, submit), ex.operation, ex.status,
                                        ex.response_body, state, word,
                                        progress_of(ex.response_body, ex.family)))
    observations.sort(key=lambda o: o.since)
    seen = [o for o in observations if o.state is not None and o.state is not State.EXPIRED]
    last_queued = max((o.since for o in seen if o.state is State.QUEUED), default=0.0)
    started = next((o for o in seen if o.state is not State.QUEUED), None)
    ended = next((o for o in seen if o.state.terminal), None)  # type: ignore[union-attr]
    final = seen[-1].state if seen else None
    canceled = None
    queue_bounds = None
    if started is not None:
        queue_bounds = (min(last_queued, started.since), started.since)
    end_bounds = None
    fault = cut = None
    if ended is None:
        # Cut short: the client stopped polling (after a fault, a timeout, Ctrl-C). The task
        # shows its states as recorded and then ends, never an open-ended run.
        plan, fault, cut = _cut_plan(seen, exchanges, submit, queue_bounds)
    else:
        before = [o.since for o in seen if not o.state.terminal]  # type: ignore[union-attr]
        end_bounds = (min(max(before, default=0.0), ended.since), ended.since)
        queue_s = _lead(queue_bounds) if queue_bounds is not None else 0.0
        plan = Plan(queue_s, max(0.0, _lead(end_bounds) - queue_s))
        if ended.state is State.FAILED:
            code, message = failure_of(ended.body, submit.family) or ("TaskFailed", "")
            plan.failure = Failure(code, message)
            plan.fail_at = 1.0
        elif ended.state is State.CANCELED:
            canceled = plan.end_s
            plan = Plan(NEVER, 0.0)
    geometry = next((g for o in reversed(observations) if (g := geometry_of(o.body))), None)
    return RecordedLifecycle(task, submit.family, submit.operation, submit, observations, plan,
                             final, canceled, queue_bounds, end_bounds, geometry,
                             list(exchanges), cut=cut, fault=fault)


def _since(ex: Exchange, submit: Exchange) -> float:
    return ex.since_submit if ex.since_submit is not None else max(0.0, ex.time - submit.time)


def _cut_plan(seen: list[Observation], exchanges: list[Exchange], submit: Exchange,
              queue_bounds: tuple[float, float] | None
              ) -> tuple[Plan, Exchange | None, str]:
    """The plan of a task the recording never saw end: its recorded states at their times,
    then (just after the last recorded exchange) a failure that says so. A fault answered to
    its last poll (a 429, a 5xx) is kept: replay answers the polls after it with it."""
    last = seen[-1] if seen else None
    word = (last.word if last is not None else None) or "queued"
    at = last.since if last is not None else 0.0
    cut = f"never ended in the recording: last seen {word} at +{at:g} s"
    polls = [e for e in exchanges if e.role == "query"]
    fault = None
    if polls:
        tail = max(polls, key=lambda e: _since(e, submit))
        if tail.status >= 400 and _since(tail, submit) >= at:
            fault = tail
            cut += (f", then {tail.status}" + (f" {code}" if (code := _code(tail)) else "") +
                    f" at +{_since(tail, submit):g} s")
    end = max([at, *(_since(e, submit) for e in exchanges)]) + EARLY
    failure = Failure(RECORDING_ENDED, f"wanmock replay: {cut}")
    if queue_bounds is None:  # never left the queue: fails from it
        return Plan(end, 0.0, failure, 0.0), fault, cut
    queue_s = _lead(queue_bounds)
    return Plan(queue_s, max(0.0, end - queue_s), failure, 1.0), fault, cut


def _code(ex: Exchange) -> str | None:
    code = error_code(ex.response_body)
    return code if isinstance(code, str) else None


def _lead(bounds: tuple[float, float]) -> float:
    """When to plan a change first seen at `bounds[1]` and not yet at `bounds[0]`: `EARLY`
    before it, but never at or before the last poll that did not see it."""
    last_before, first_after = bounds
    if first_after <= 0.0:
        return 0.0
    return max(first_after - EARLY, (last_before + first_after) / 2)


def lifecycles(tape: Cassette) -> list[RecordedLifecycle]:
    """Every recorded task with its submit, in the order they were submitted."""
    out = [lc for task, exs in tape.tasks().items() if (lc := lifecycle(task, exs)) is not None
           and lc.submit.origin == "upstream"]  # a task the proxy's guard kept local is no record
    out.sort(key=lambda lc: lc.submit.time)
    return out


class ReplayBook:
    """The recorded jobs of a cassette, by (family, operation, body hash)."""

    def __init__(self, tape: Cassette) -> None:
        self.cassette = tape
        self.problems = tape.problems
        self.jobs = lifecycles(tape)
        # Jobs the recording never saw end, reported when the cassette is loaded.
        self.unfinished = [f"task {job.task} (line {job.submit.line}): {job.cut}"
                           for job in self.jobs if job.cut is not None]
        self._by_key: dict[tuple[str, str, str], list[int]] = {}
        for index, job in enumerate(self.jobs):
            key = (job.family or "", job.operation or "", job.submit.body_sha256 or "")
            self._by_key.setdefault(key, []).append(index)
        self.rejections: dict[tuple[str, str, str], Exchange] = {}
        for ex in tape.exchanges:
            if ex.role == "submit" and ex.status >= 400 and ex.origin == "upstream":
                key = (ex.family or "", ex.operation or "", ex.body_sha256 or "")
                self.rejections.setdefault(key, ex)
        self._used: dict[tuple[str, str, str], int] = {}

    @classmethod
    def load(cls, path: str) -> ReplayBook:
        return cls(read(path))

    def reset(self) -> None:
        self._used.clear()

    @staticmethod
    def key(family: str, operation: str, body: Any) -> tuple[str, str, str]:
        """What a submission is matched on: its body as the cassette keeps it (a form's
        fields and file digests, as the fake stores them under `_wanmock_form`)."""
        form = body.get("_wanmock_form") if isinstance(body, Mapping) else None
        if isinstance(form, Mapping):
            body = form_body(form.get("values") or {}, form.get("files") or [])
        return (family, operation, body_hash(redact_body(body)))

    def knows(self, family: str, operation: str, body: Any) -> bool:
        key = self.key(family, operation, body)
        return key in self._by_key or key in self.rejections

    def take(self, family: str, operation: str, body: Any) -> int | None:
        """The next recorded job for this submission (in recorded order, then round again)."""
        key = self.key(family, operation, body)
        indexes = self._by_key.get(key)
        if not indexes:
            return None
        n = self._used.get(key, 0)
        self._used[key] = n + 1
        return indexes[n % len(indexes)]

    def rejection(self, family: str, operation: str, body: Any) -> Exchange | None:
        """A recorded submit of this body that the provider refused (answered as recorded)."""
        key = self.key(family, operation, body)
        return None if key in self._by_key else self.rejections.get(key)

    # -- applying a recording to a task --------------------------------------------------------
    def apply(self, index: int, task: Task) -> None:
        """Give a fresh task the recorded job's plan, cancel time and result geometry."""
        job = self.jobs[index]
        plan = job.plan
        task.plan = Plan(plan.queue_s, plan.run_s, plan.failure, plan.fail_at)
        if job.canceled_s is not None:
            task.canceled_at = task.submitted_at + job.canceled_s
        if job.geometry is not None and isinstance(task.spec, JobSpec):
            width, height = job.geometry
            task.spec = replace(task.spec, width=width, height=height)
        task.extra["replay"] = index
        task.extra["replay_task"] = job.task
        task.extra["scenario"] = f"replay of {job.task} (cassette line {job.submit.line})"

    def answer(self, task: Task, operation: str, role: str, snap: Snapshot, fake: Any,
               video_url: str | None) -> tuple[int, Any] | None:
        """The recorded answer for this moment (status, body), rewritten to the fake's ids and
        URLs; None to keep the fake's own (nothing recorded for this operation and state)."""
        index = task.extra.get("replay")
        if not isinstance(index, int) or not 0 <= index < len(self.jobs):
            return None
        job = self.jobs[index]
        if role == "submit":
            chosen = job.submit
            return chosen.status, self.rewrite(chosen.response_body, fake, job, task, video_url)
        if role == "cancel":
            cancel = next((e for e in job.exchanges if e.role == "cancel"), None)
            if cancel is None or cancel.response_encoding != "json":
                return None
            return cancel.status, self.rewrite(cancel.response_body, fake, job, task, video_url)
        if role != "query":
            return None
        elapsed = snap.now - snap.submitted_at
        fault = job.fault
        if fault is not None and fault.operation == operation and elapsed >= _since(
                fault, job.submit) - EARLY and fault.response_encoding == "json":
            # The client saw this fault and stopped polling: the recording ends with it.
            return fault.status, self.rewrite(fault.response_body, None, job, task, video_url)
        same = [o for o in job.observations
                if o.operation == operation and o.state is snap.state]
        if not same:
            return None
        chosen_obs = next((o for o in reversed(same) if o.since <= elapsed), same[0])
        return chosen_obs.status, self.rewrite(chosen_obs.body, fake, job, task, video_url)

    def rewrite(self, recorded: Any, fake: Any, job: RecordedLifecycle, task: Task,
                video_url: str | None) -> Any:
        """The recorded body with what always differs (ids, timestamps, URLs, request ids)
        taken from the fake's answer at the same place, the recorded task id replaced by the
        fake's everywhere, and result URLs pointing at the fake's video."""
        return _rewrite(recorded, fake, "", job.task, task.id, video_url)


def _rewrite(value: Any, fake: Any, key: str, old_id: str, new_id: str,
             video_url: str | None) -> Any:
    if isinstance(value, Mapping):
        other = fake if isinstance(fake, Mapping) else {}
        return {k: _rewrite(v, other.get(k), k, old_id, new_id, video_url)
                for k, v in value.items()}
    if isinstance(value, list):
        other_list = fake if isinstance(fake, list) else []
        return [_rewrite(v, other_list[i] if i < len(other_list) else None, key, old_id, new_id,
                         video_url) for i, v in enumerate(value)]
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return value
    if isinstance(value, str) and value == old_id:
        return fake if isinstance(fake, str) and fake else new_id
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        if isinstance(fake, str) and fake.startswith(("http://", "https://")):
            return fake
        return video_url if video_url is not None else value
    if _VOLATILE.search(key) and fake is not None and type(fake) is type(value):
        return fake
    if isinstance(value, str) and old_id and old_id in value:
        return value.replace(old_id, new_id)
    return value


def open_replay(path: str) -> ReplayBook:
    """The cassette at `path` as the engine replays it: a `mockserver.core.replay.Replay`
    (`Backend(open_replay=open_replay)`; `mockserver.create_app` passes it)."""
    return ReplayBook.load(path)
