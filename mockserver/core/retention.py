"""Bounded memory, as the providers bound theirs: tasks are forgotten after their family's
retention (`x-wanmock-retention` in each contract) once their result URL has expired too, and
`max_tasks` bounds the count, evicting the oldest ended tasks first.

`Retention` is a component of the `Backend` with its own state (the submits it has seen, the
time of its last sweep). It is built from the contracts of the families served, so a `Backend`
made without an app keeps tasks exactly as one behind `create_app` does. Sweeps run after
submits: with `max_tasks`, whenever a submit takes the count past the bound (exact: the count
never stays over it), evicting ended tasks down to 5 % under it so the next sweep is some
submits away; otherwise at most once a minute of the fake's clock, and then only over the tasks
old enough to be past the shortest retention (tasks are kept in submission order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mockserver.contracts import ContractSet
    from mockserver.core.tasks import Lifecycle, Task

RETENTION_SWEEP_S = 60.0
# A family whose contract states no retention keeps its tasks, and its result URLs live a day.
DEFAULT_URL_S = 86400.0


@dataclass(frozen=True, slots=True)
class Keep:
    """How long one family keeps a task (None: forever) and how long its result URL is
    valid, in seconds."""

    task_s: float | None
    url_s: float


class Tasks(Protocol):
    """What a sweep reads and removes: the task store (`mockserver.core.store`)."""

    def oldest(self) -> Iterable[Task]: ...

    def remove(self, ids: list[str]) -> int: ...

    def __len__(self) -> int: ...



class Retention:
    """Each served family's `Keep` and the `max_tasks` bound, applied to a task store."""

    def __init__(self, keep: Mapping[str, Keep], max_tasks: int | None = None) -> None:
        self.keep = dict(keep)
        self.max_tasks = max_tasks
        self.submits = 0
        self.swept_at = float("-inf")
        # The shortest retention: a sweep without `max_tasks` stops at younger tasks.
        self.horizon = min((k.task_s for k in self.keep.values() if k.task_s is not None),
                           default=None)

    @classmethod
    def of(cls, contracts: ContractSet, families: Iterable[str],
           max_tasks: int | None = None) -> Retention:
        """Each family's contract's `x-wanmock-retention` (`task_s`, null for never; `url_s`)."""
        keep = {}
        for name in families:
            found = contracts[name].extensions.retention
            keep[name] = Keep(None, DEFAULT_URL_S) if found is None else Keep(
                found.task_s, DEFAULT_URL_S if found.url_s is None else found.url_s)
        return cls(keep, max_tasks)

    def reset(self) -> None:
        """As new (the fake was reset)."""
        self.submits = 0
        self.swept_at = float("-inf")

    # -- one task --------------------------------------------------------------------------------
    def task_s(self, task: Task) -> float | None:
        """Seconds after submit when the task reads as expired (None: never)."""
        after = task.extra.get("expire_after")
        if after is not None:
            return task.plan.end_s + float(after)
        keep = self.keep.get(task.family)
        return keep.task_s if keep else None

    def url_s(self, task: Task) -> float:
        """How long the task's result URL is valid after the task ended."""
        after = task.extra.get("expire_after")
        if after is not None:
            return float(after)
        keep = self.keep.get(task.family)
        return keep.url_s if keep else DEFAULT_URL_S

    def purge_at(self, task: Task) -> float | None:
        """When a task may be forgotten without anyone noticing: its family's retention is
        over (it reads as expired/unknown) and its result URL has expired. None: never."""
        keep = self.task_s(task)
        if keep is None:
            return None
        ended = task.forced_at if task.forced_at is not None else (
            task.canceled_at if task.canceled_at is not None
            else task.submitted_at + task.plan.end_s)
        return max(task.submitted_at + keep, ended + self.url_s(task))

    # -- sweeping --------------------------------------------------------------------------------
    def submitted(self, tasks: Tasks, lifecycle: Lifecycle, now: float) -> int:
        """Count a submit; sweep when one is due. Returns how many tasks went."""
        self.submits += 1
        limit = self.max_tasks
        if limit is not None and len(tasks) > limit:  # a shared store's: one round trip
            return self.sweep(tasks, lifecycle, now)
        if now - self.swept_at >= RETENTION_SWEEP_S:
            return self.sweep(tasks, lifecycle, now, retention_only=True)
        return 0

    def sweep(self, tasks: Tasks, lifecycle: Lifecycle, now: float, *,
              retention_only: bool = False) -> int:
        """Forget tasks past their retention, then (with `max_tasks`) the oldest ended tasks,
        then, if still over the bound, the oldest unfinished ones. Returns how many went."""
        self.swept_at = now
        limit = None if retention_only else self.max_tasks
        horizon = self.horizon
        expired: list[str] = []
        ended: list[str] = []
        live: list[str] = []
        count = 0
        for task in tasks.oldest():
            count += 1
            purge = self.purge_at(task)
            if purge is not None and now >= purge:
                expired.append(task.id)
            elif limit is not None:
                snap = lifecycle.view(task, now, retention=self.task_s(task))
                (ended if snap.state.terminal else live).append(task.id)
            elif horizon is None or task.submitted_at > now - horizon:
                break  # submitted in order: nothing younger can be past its retention
        remove = expired
        if limit is not None:
            count = max(count, len(tasks))  # with a shared store's unwritten submits
            over = count - len(expired) - limit  # must go (unfinished ones too, oldest first)
            spare = over + limit // 20  # may go, if ended: room for the next submits
            if over > 0:
                gone = ended[:spare]
                remove += gone
                over -= len(gone)
                if over > 0:
                    remove += live[:over]
        return int(tasks.remove(remove)) if remove else 0
