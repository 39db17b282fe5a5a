"""Bounded memory, as the providers bound theirs: tasks are forgotten after their family's
retention (`x-wanmock-retention` in each contract) once their result URL has expired too, and
`max_tasks` bounds the count, evicting the oldest ended tasks first.

Sweeps run from `Backend.submit`: with `max_tasks`, whenever a submit takes the count past the
bound (exact: the count never stays over it), evicting ended tasks down to 5 % under it so the
next sweep is some submits away; otherwise at most once a minute of the fake's clock, and then
only over the tasks old enough to be past the shortest retention (tasks are kept in submission
order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mockserver.core.backend import Backend
    from mockserver.core.tasks import Task

RETENTION_SWEEP_S = 60.0


@dataclass(slots=True)
class Retention:
    """How long a family keeps a task (None: forever) and how long its result URL is valid."""

    task_s: float | None
    url_s: float


def maybe_sweep(backend: Backend, now: float) -> None:
    limit = backend.options.max_tasks
    if limit is not None and len(backend.store) > limit:
        sweep(backend, now)
    elif now - backend._swept_at >= RETENTION_SWEEP_S:
        sweep(backend, now, retention_only=True)


def purge_at(backend: Backend, task: Task) -> float | None:
    """When a task may be forgotten without anyone noticing: its family's retention is over
    (it reads as expired/unknown) and its result URL has expired. None: never."""
    keep = backend.task_retention(task)
    if keep is None:
        return None
    ended = task.forced_at if task.forced_at is not None else (
        task.canceled_at if task.canceled_at is not None
        else task.submitted_at + task.plan.end_s)
    return max(task.submitted_at + keep, ended + backend.url_ttl(task))


def sweep(backend: Backend, now: float | None = None, *, retention_only: bool = False) -> int:
    """Forget tasks past their retention, then (with `max_tasks`) the oldest ended tasks, then,
    if still over the bound, the oldest unfinished ones. Returns how many went."""
    now = backend.now() if now is None else now
    backend._swept_at = now
    limit = None if retention_only else backend.options.max_tasks
    horizon = min((r.task_s for r in backend.retention.values() if r.task_s is not None),
                  default=None)
    expired: list[str] = []
    ended: list[str] = []
    live: list[str] = []
    count = 0
    for task in backend.store.oldest():
        count += 1
        purge = purge_at(backend, task)
        if purge is not None and now >= purge:
            expired.append(task.id)
        elif limit is not None:
            snap = backend.lifecycle.view(task, now, retention=backend.task_retention(task))
            (ended if snap.state.terminal else live).append(task.id)
        elif horizon is None or task.submitted_at > now - horizon:
            break  # submitted in order: nothing younger can be past its retention
    remove = expired
    if limit is not None:
        count = max(count, len(backend.store))  # with a shared store's unwritten submits
        over = count - len(expired) - limit  # must go (unfinished ones too, oldest first)
        spare = over + limit // 20  # may go, if ended: room for the next submits
        if over > 0:
            gone = ended[:spare]
            remove += gone
            over -= len(gone)
            if over > 0:
                remove += live[:over]
    return int(backend.store.remove(remove)) if remove else 0
