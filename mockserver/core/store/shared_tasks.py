"""The tasks of a shared store (see shared.py): write-once records each worker caches, their
mutable fields read per request, and the new tasks a request has not yet written (the group
commit's `pending`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mockserver.core.store.base import SharedState
from mockserver.core.store.records import apply_fields, decode_task, encode_failure, encode_task
from mockserver.core.tasks import Task
from mockserver.errors import MockServerError


class SharedTasks:
    """Tasks in the store; each worker caches the write-once records it has read."""

    CACHE = 20000

    def __init__(self, store: SharedState) -> None:
        self.store = store
        self.driver = store.driver
        self._cache: dict[str, Task] = {}
        self._pending: dict[str, tuple[int, Task]] = {}  # added, not yet written (epoch, task)
        self.exact_polls = False  # polls mode: every poll counted in the store at once
        store.on_epoch(self._cache.clear)

    def cached(self, task_id: str) -> bool:
        return task_id in self._cache

    def add(self, task: Task) -> Task:
        view = self.store.view()
        if view.writes is not None:  # inside a request: written by SharedStore.commit()
            if task.id in self._pending or task.id in self._cache:
                raise MockServerError(f"task id {task.id!r} already exists")
            self._pending[task.id] = (view.epoch, task)
            view.writes.append(task)
            self._keep(task)
            return task
        self.insert(view.epoch, [task])
        self._keep(task)
        return task

    def insert(self, epoch: int, tasks: list[Task]) -> None:
        """Write new tasks in one round trip (`MockServerError` for an id that exists)."""
        made = self.driver.put_tasks(epoch, [(t.id, t.submitted_at, encode_task(t))
                                             for t in tasks])
        taken = [t.id for t, ok in zip(tasks, made, strict=True) if not ok]
        if taken:
            for task_id in taken:
                self._cache.pop(task_id, None)
            raise MockServerError(f"task id {taken[0]!r} already exists")

    def pending(self, task_id: str) -> bool:
        return task_id in self._pending

    def settle(self, tasks: list[Task]) -> None:
        """These tasks are written (or failed to be): no longer this worker's own."""
        for task in tasks:
            self._pending.pop(task.id, None)

    def _written(self, task: Task) -> None:
        """Before a change to a task that is not yet written: write it (and its request's
        other new tasks) now, so the change has a row to land on."""
        if task.id in self._pending:
            view = self.store.current_view()
            if view is not None and view.writes:
                self.store.write_now(view.writes)
            else:  # added by another request still committing: write it on its own
                epoch, _ = self._pending[task.id]
                try:
                    self.insert(epoch, [task])
                except MockServerError:
                    pass  # the writer got there first
                finally:
                    self.settle([task])

    def _keep(self, task: Task) -> None:
        if len(self._cache) >= self.CACHE:
            self._cache.clear()
        self._cache[task.id] = task

    def _build(self, epoch: int, task_id: str, row: Any) -> Task | None:
        if row is None:
            self._cache.pop(task_id, None)
            return None
        task = self._cache.get(task_id)
        if task is None:
            if row[0] is None:  # cached when asked, evicted since: read the record
                row = self.driver.task(epoch, task_id, True)
                if row is None:
                    return None
            task = decode_task(row[0])
            self._keep(task)
        return apply_fields(task, row, self.store.queued_polls(epoch, task_id))

    def get(self, task_id: str) -> Task | None:
        found = self._pending.get(task_id)
        if found is not None:  # this worker's own, not yet written
            return found[1]
        view = self.store.view()
        if view.task_id == task_id:
            row = view.row
            view.task_id = None  # prefetched for the first read; later reads ask again
        else:
            row = self.driver.task(view.epoch, task_id, task_id not in self._cache)
        return self._build(view.epoch, task_id, row)

    def find(self, family: str, task_id: str) -> Task | None:
        task = self.get(task_id)
        if task is not None:
            return task
        target = self.driver.resolve(self.store.view().epoch, f"{family}:{task_id}")
        return self.get(target) if target else None

    def alias(self, family: str, alias: str, task: Task) -> None:
        self._written(task)
        self.driver.alias(self.store.view().epoch, f"{family}:{alias}", task.id)

    def update(self, task: Task, **fields: Any) -> None:
        self._written(task)
        failure = fields.pop("failure", None)
        for name, value in fields.items():
            setattr(task, name, value)
        values: dict[str, Any] = {k: (v.value if hasattr(v, "value") else v)
                                  for k, v in fields.items()}
        if failure is not None:
            task.plan.failure = failure
            values["failure"] = encode_failure(failure)
        self.driver.update_task(self.store.view().epoch, task.id, values)

    def count_poll(self, task: Task) -> int:
        epoch = self.store.view().epoch
        self._written(task)
        if self.exact_polls:
            task.polls = self.driver.incr_polls(epoch, task.id)
        else:
            task.polls += 1
            self.store.queue_poll(epoch, task.id)
        return task.polls

    def remove(self, task_ids: Any) -> int:
        ids = list(task_ids)
        for task_id in ids:
            self._cache.pop(task_id, None)
        return int(self.driver.remove_tasks(self.store.view().epoch, ids))

    def oldest(self, limit: int | None = None, page: int = 500) -> Iterator[Task]:
        """Tasks oldest first, read a page at a time (a sweep that stops early reads little)."""
        self.store.flush()
        epoch = self.store.view().epoch
        offset = 0
        while limit is None or offset < limit:
            size = page if limit is None else min(page, limit - offset)
            rows = self.driver.tasks(epoch, size, offset)
            for task_id, row in rows:
                task = self._build(epoch, task_id, row)
                if task is not None:
                    yield task
            if len(rows) < size:
                return
            offset += size

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self.oldest()))

    def __len__(self) -> int:
        """The tasks in the store and this worker's not yet written (a submit's, until its
        request commits): what `max_tasks` bounds."""
        return int(self.driver.count_tasks(self.store.view().epoch)) + len(self._pending)

    def reset(self) -> None:
        self._cache.clear()
        self._pending.clear()
