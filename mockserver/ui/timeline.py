"""A task's life on one time axis: submit, queued, running, its end, every poll of it and every
webhook, with a verdict on how the client polled. Read from the backend's public methods only.

Times are the fake's clock readings (the journal stamps each exchange with `backend.now()`), so a
manual clock that jumps puts polls exactly where the client saw them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from mockserver.core.backend import Backend
from mockserver.core.journal import Entry
from mockserver.core.tasks import Snapshot, Task
from mockserver.core.webhooks import Webhook
from mockserver.families import families
from mockserver.ui.preview import answered_status

# Used when a family's contract has no `x-wanmock-poll-guidance` (see
# docs/contract-conventions.md): the DashScope SDK's own first wait (dashscope 2.0.2
# aigc/video_synthesis.py [A]).
DEFAULT_MIN_INTERVAL_S = 1.0


@dataclass(slots=True)
class Guidance:
    """The fastest polling a family's provider asks for, and where that comes from."""

    min_interval_s: float
    source: str


def poll_guidance(backend: Backend, family: str) -> Guidance:
    """From the contract's `x-wanmock-poll-guidance`, else the default (1 s)."""
    try:
        found = backend.contracts[family].extensions.poll_guidance
    except Exception:  # an unknown family (a task from another fake's store)
        found = None
    if found is not None:
        return Guidance(found.min_interval_s, found.source)
    return Guidance(DEFAULT_MIN_INTERVAL_S, "wanmock default (no x-wanmock-poll-guidance)")


@dataclass(slots=True)
class Poll:
    """One query of the task, as the timeline and the poll table show it."""

    entry: Entry
    answered: str  # the status word the body carried, or `HTTP 429`
    interval: float | None  # seconds since the previous poll
    too_fast: bool
    after_end: bool  # the client had already been told the task ended
    terminal: bool
    x: float = 0.0  # position on the axis, 0..100


@dataclass(slots=True)
class Mark:
    """A point on the axis: submit, running, an end state, a webhook."""

    label: str
    time: float
    kind: str
    x: float = 0.0


@dataclass(slots=True)
class Verdict:
    """How the client polled this task."""

    polls: int
    median_interval: float | None
    fastest_interval: float | None
    too_fast: int
    after_end: int
    saw_end: bool
    guidance: Guidance

    @property
    def findings(self) -> list[str]:
        out = []
        if self.too_fast:
            out.append(f"{self.too_fast} poll(s) came sooner than "
                       f"{self.guidance.min_interval_s:g} s after the previous one")
        if self.after_end:
            out.append(f"{self.after_end} poll(s) after the client was told the task ended")
        return out


@dataclass(slots=True)
class Timeline:
    """Everything the task page draws on its axis."""

    start: float
    end: float
    marks: list[Mark]
    polls: list[Poll]
    spans: list[tuple[str, float, float]] = field(default_factory=list)  # (state, x0, x1)
    verdict: Verdict | None = None

    @property
    def length(self) -> float:
        return self.end - self.start

    def at(self, time: float) -> float:
        if self.length <= 0:
            return 0.0
        return round(100.0 * (time - self.start) / self.length, 3)


def _is_query(backend: Backend, entry: Entry) -> bool:
    try:
        op = backend.contracts[entry.family or ""].operations.get(entry.operation or "")
    except Exception:
        return False
    return op is not None and op.role == "query"


def task_entries(backend: Backend, task: Task) -> list[Entry]:
    """Every journal entry about this task (submit, polls, cancel, content), oldest first."""
    return backend.journal.entries(task_id=task.id)


def polls_of(backend: Backend, task: Task, entries: list[Entry]) -> tuple[list[Poll], Verdict]:
    guidance = poll_guidance(backend, task.family)
    family = families().get(task.family)
    ending = family.terminal_words if family is not None else frozenset()
    polls: list[Poll] = []
    seen_end = False
    previous: float | None = None
    for entry in entries:
        if not _is_query(backend, entry):
            continue
        word = answered_status(entry.response_body, entry.family, entry.operation)
        answered = word if word is not None else f"HTTP {entry.status}"
        # a word that ends the task in its family's words (an expired task's too), or a
        # final 400/404 for an unknown or forgotten task
        terminal = (word in ending) or entry.status in (400, 404)
        interval = None if previous is None else entry.time - previous
        too_fast = interval is not None and interval + 1e-6 < guidance.min_interval_s
        polls.append(Poll(entry, answered, interval, too_fast, seen_end, terminal))
        seen_end = seen_end or terminal
        previous = entry.time
    gaps = [p.interval for p in polls if p.interval is not None]
    verdict = Verdict(
        polls=len(polls),
        median_interval=statistics.median(gaps) if gaps else None,
        fastest_interval=min(gaps) if gaps else None,
        too_fast=sum(p.too_fast for p in polls),
        after_end=sum(p.after_end for p in polls),
        saw_end=seen_end, guidance=guidance,
    )
    return polls, verdict


def timeline(backend: Backend, task: Task, snap: Snapshot, entries: list[Entry],
             hooks: list[Webhook]) -> Timeline:
    """The task's axis from its submit to its end (or now, or its last poll)."""
    polls, verdict = polls_of(backend, task, entries)
    start = snap.submitted_at
    started, ended = snap.started_at, snap.ended_at
    if backend.options.mode == "polls" and task.forced is None and task.canceled_at is None:
        started, ended = _counted_times(backend, polls, started, ended)
    marks = [Mark("submitted", start, "submit")]
    queued_until = started if started is not None else (ended if ended is not None else snap.now)
    spans: list[tuple[str, float, float]] = [("queued", start, queued_until)]
    if started is not None:
        marks.append(Mark("running", started, "running"))
        run_end = ended if ended is not None else snap.now
        spans.append(("running", started, run_end))
    if ended is not None:
        marks.append(Mark(snap.state.value, ended, snap.state.value))
    for hook in hooks:
        if hook.due_at is not None:
            marks.append(Mark(f"webhook #{hook.seq} due", hook.due_at, "webhook"))
        tries = attempts(hook)
        for i, attempt in enumerate(tries, 1):
            if isinstance(attempt.get("at"), int | float):
                answer = attempt.get("status") or attempt.get("error") or "no answer"
                marks.append(Mark(f"webhook #{hook.seq} attempt {i}: {answer}",
                                  float(attempt["at"]), "webhook"))
        if not tries and hook.sent_at is not None and hook.sent_at != hook.due_at:
            marks.append(Mark(f"webhook #{hook.seq} {hook.state}", hook.sent_at, "webhook"))
    times = [m.time for m in marks] + [p.entry.time for p in polls]
    if not snap.state.terminal:
        times.append(snap.now)
    end = max(times)
    if end - start < 1.0:
        end = start + 1.0
    line = Timeline(start, end + (end - start) * 0.02, marks, polls, verdict=verdict)
    for mark in marks:
        mark.x = line.at(mark.time)
    for poll in polls:
        poll.x = line.at(poll.entry.time)
    line.spans = [(state, line.at(a), line.at(b)) for state, a, b in spans]
    return line


def attempts(hook: Webhook) -> list[dict[str, Any]]:
    """A webhook's delivery attempts (`{at, status, error}`, oldest first); empty before the
    first, and on fakes whose webhooks keep only their last outcome."""
    found = getattr(hook, "attempts", None)
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def _counted_times(backend: Backend, polls: list[Poll], started: float | None,
                   ended: float | None) -> tuple[float | None, float | None]:
    """Under `mode=polls` a task moves with the queries that reach it, not with the clock: it
    starts at the poll after its `queued_polls` and ends at the one after its `running_polls`
    more. Polls a fault answered (no status in the body) never reached the task."""
    counted = [p.entry.time for p in polls if p.answered and not p.answered.startswith("HTTP ")]
    q = getattr(backend.lifecycle, "queued_polls", None)
    r = getattr(backend.lifecycle, "running_polls", None)
    if not isinstance(q, int) or not isinstance(r, int):
        return started, ended
    started = counted[q] if len(counted) > q else None
    ended = counted[q + r] if len(counted) > q + r else None
    return started, ended


def ticks(line: Timeline, count: int = 6) -> list[tuple[float, str]]:
    """Axis labels: (x, '+2.5 s')."""
    out = []
    for i in range(count + 1):
        t = line.length * i / count
        out.append((round(100.0 * i / count, 3), f"+{t:.3g} s"))
    return out


def plan_of(task: Task) -> dict[str, Any]:
    plan = task.plan
    return {"queue_s": plan.queue_s, "run_s": plan.run_s,
            "failure": None if plan.failure is None else
            f"{plan.failure.code}: {plan.failure.message}",
            "forced": None if task.forced is None else task.forced.value}
