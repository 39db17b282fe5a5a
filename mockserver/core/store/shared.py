"""The state of a fake kept in a store that several workers (or hosts) share.

`SharedStore` works over a *driver* (`sqlite.SqliteDriver`, `redis.RedisDriver`) that offers a
few atomic operations. What it adds:

- one read per request: `begin()` fetches the epoch, the clock and (when the path names one) a
  task's mutable fields in one round trip, and every component of that request reads them from
  there (a context variable, so concurrent requests never mix their views);
- per-worker caches of what never changes (task records, the rules of an epoch), dropped when
  another worker's `reset()` moves the epoch on;
- batched writes for what only this worker appends (journal entries; poll counts in time mode,
  which drive nothing): flushed every 50 ms on the event loop that queued them (a thread for
  what was queued outside one), and any read of them flushes first.
  A worker killed with SIGKILL loses at most that much journal; never a task (a submit writes
  its task before it answers);
- group commit of new tasks: a submit inside a request (`defer_writes()`) hands its task to a
  writer thread and awaits it before answering (`commit()`); the writer inserts every task
  that arrived meanwhile in one round trip (Redis: one script; SQLite: one transaction), so
  the event loop serves other requests while the store works and a busy worker pays one
  round trip for many submits. Until it is written, the task is this worker's own
  (`get()` finds it; anything that changes it writes it first).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import string
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mockserver.core.clock import DEFAULT_EPOCH, _check
from mockserver.core.ids import _V4_CLEAR, _V4_SET, Ids
from mockserver.core.store.base import StoreUnavailable
from mockserver.core.store.records import (
    apply_fields,
    decode_task,
    encode_failure,
    encode_task,
)
from mockserver.core.tasks import Task
from mockserver.errors import MockServerError

FLUSH_S = 0.05
ID_BLOCK = 256  # seeded ids reserved per round trip (a worker that stops wastes the rest)
_ALNUM = string.ascii_letters + string.digits


@dataclass(slots=True)
class View:
    """What one request reads of the shared state (`driver.sync()`)."""

    epoch: int
    now: float  # the manual clock's time
    offset: float  # the system clock's offset (advance)
    skew: float  # the store server's clock minus this host's
    rules: int  # revision of the scenario rules
    hooks: int  # webhooks pending
    task_id: str | None = None
    row: Any = None
    writes: list[Task] | None = None  # this request's new tasks, written by `commit()`


class SharedStore:
    """A store shared by processes; components are created by the `Backend` (see base.py)."""

    shared = True

    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        self.url = url
        self._view: contextvars.ContextVar[View | None] = contextvars.ContextVar(
            f"wanmock_view_{id(self)}", default=None)
        self._epoch: int | None = None
        self._on_epoch: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._journal: list[tuple[int, Any]] = []
        self._polls: dict[tuple[int, str], int] = {}
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._flushing = threading.Lock()
        # A flush scheduled on an event loop: (the loop, its timer).
        self._loop_flush: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None
        self._loop_flushed = float("-inf")  # when a loop flushed last (monotonic)
        self._tasks = SharedTasks(self)
        self._batches: dict[asyncio.AbstractEventLoop, _Batch] = {}
        self._book: Any = None

    # -- the per-request view ----------------------------------------------------------------
    def view(self) -> View:
        """This request's view, or a fresh one outside requests."""
        found = self._view.get()
        return found if found is not None else self._read(None)

    def _read(self, task_id: str | None) -> View:
        want = task_id is not None and not self._tasks.cached(task_id)
        view = View(**self.driver.sync(task_id, want))
        if view.epoch != self._epoch:
            self._epoch = view.epoch
            for callback in self._on_epoch:
                callback()
        return view

    def begin(self, task_id: str | None = None) -> Any:
        return self._view.set(self._read(task_id))

    def end(self, token: Any) -> None:
        if token is not None:
            self._view.reset(token)

    # -- group commit of new tasks ------------------------------------------------------------
    def defer_writes(self) -> list[Task] | None:
        """From now on, tasks this request adds are written by `commit()` (None outside a
        request: they are written at once)."""
        view = self._view.get()
        if view is None:
            return None
        view.writes = []
        return view.writes

    async def commit(self, writes: list[Task]) -> None:
        """Write this request's new tasks, in one round trip with those of every other request
        that commits in the same turn of the event loop (`StoreUnavailable` when the store
        cannot take them, `MockServerError` for an id another worker took)."""
        epoch = self.view().epoch
        pending = [(epoch, t) for t in writes if self._tasks.pending(t.id)]
        writes.clear()
        if not pending:
            return
        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is None:
            # Requests that are ready now run before this callback: they join the batch.
            batch = self._batches[loop] = _Batch(loop)
            loop.call_soon(self._write_batch, loop, batch)
        batch.tasks += pending
        try:
            taken = await asyncio.shield(batch.done)
        finally:
            self._tasks.settle([t for _, t in pending])
        mine = [t.id for _, t in pending if t.id in taken]
        if mine:
            raise MockServerError(f"task id {mine[0]!r} already exists")

    def _write_batch(self, loop: asyncio.AbstractEventLoop, batch: _Batch) -> None:
        if self._batches.get(loop) is batch:
            del self._batches[loop]
        by_epoch: dict[int, list[Task]] = {}
        for epoch, task in batch.tasks:
            by_epoch.setdefault(epoch, []).append(task)
        taken: set[str] = set()
        try:
            for epoch, tasks in by_epoch.items():
                made = self.driver.put_tasks(
                    epoch, [(t.id, t.submitted_at, encode_task(t)) for t in tasks])
                taken.update(t.id for t, ok in zip(tasks, made, strict=True) if not ok)
        except BaseException as exc:  # StoreUnavailable (or a bug): every waiter hears it
            batch.done.set_exception(exc)
            batch.done.exception()  # retrieved: waiters that were cancelled do not log it
            return
        batch.done.set_result(taken)

    def write_now(self, writes: list[Task]) -> None:
        """Write deferred tasks in this thread (something needs them in the store now)."""
        pending = [t for t in writes if self._tasks.pending(t.id)]
        writes.clear()
        if pending:
            try:
                self._tasks.insert(self.view().epoch, pending)
            finally:
                self._tasks.settle(pending)

    @property
    def epoch(self) -> int:
        """The epoch this worker read last (reads it when it has not yet)."""
        return self._epoch if self._epoch is not None else self.view().epoch

    def on_epoch(self, callback: Callable[[], None]) -> None:
        self._on_epoch.append(callback)

    # -- batched writes ----------------------------------------------------------------------
    def queue_entry(self, epoch: int, entry: Any) -> None:
        with self._lock:
            self._journal.append((epoch, entry))
        self._schedule_flush()

    def queue_poll(self, epoch: int, task_id: str) -> None:
        key = (epoch, task_id)
        with self._lock:
            self._polls[key] = self._polls.get(key, 0) + 1
        self._schedule_flush()

    def queued_polls(self, epoch: int, task_id: str) -> int:
        return self._polls.get((epoch, task_id), 0) if self._polls else 0

    def _schedule_flush(self) -> None:
        """Flush in `FLUSH_S`: on the event loop that queued (a thread of its own would take
        the GIL from the loop each time a store call lets go of it, and hold it for up to the
        interpreter's switch interval), else on the flusher thread."""
        pending = self._loop_flush
        if pending is None or not pending[0].is_running():  # none, or on a loop that stopped
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not in a loop: the thread flushes
                loop = None
            if loop is not None:
                self._loop_flush = (loop, loop.call_later(FLUSH_S, self._flush_on_loop))
        if self._flusher is None:
            self._start_flusher()

    def _flush_on_loop(self) -> None:
        self._loop_flush = None
        self._loop_flushed = time.monotonic()
        self._flush_logged()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                                 name="wanmock-store-flush")
                self._flusher.start()

    def _flush_loop(self) -> None:
        """What no event loop flushes (queued outside one, or a loop that stopped)."""
        while not self._stop.wait(FLUSH_S):
            if time.monotonic() - self._loop_flushed > 4 * FLUSH_S:
                self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except StoreUnavailable:  # kept; written once the store is back
            pass
        except Exception:  # a bug must not stop later flushes
            import logging

            logging.getLogger("mockserver").exception("wanmock: store flush failed")

    def flush(self) -> None:
        with self._flushing:  # one flush at a time: entries reach the store in order
            with self._lock:
                entries, self._journal = self._journal, []
                polls, self._polls = self._polls, {}
            if not entries and not polls:
                return
            epoch = self._epoch
            try:
                self.driver.write_batch(
                    [(e, entry) for e, entry in entries if e == epoch],
                    {key: n for key, n in polls.items() if key[0] == epoch})
            except StoreUnavailable:
                with self._lock:  # put them back, oldest first, for the next flush
                    self._journal[:0] = [x for x in entries if x[0] == epoch]
                    for key, n in polls.items():
                        self._polls[key] = self._polls.get(key, 0) + n
                raise

    # -- components --------------------------------------------------------------------------
    def tasks(self) -> SharedTasks:
        return self._tasks

    def clock(self, kind: str) -> SharedClock:
        self.driver.init_clock(DEFAULT_EPOCH)
        return SharedClock(self, kind)

    def ids(self, seed: int | None) -> Any:
        return Ids(None) if seed is None else SharedIds(self, seed)

    def secret(self, seed: int | None, fallback: bytes) -> bytes:
        if seed is not None:
            return hashlib.sha256(f"wanmock:{seed}".encode()).digest()
        return bytes(self.driver.secret(hashlib.sha256(fallback).hexdigest()[:32]).encode())

    def signer(self, seed: int | None, fallback: bytes) -> Any:
        """The result-URL signer: from the seed, else the store's secret (parts.SharedSigner,
        which puts it back after a store that lost its data)."""
        if seed is not None:
            from mockserver.core.artifacts import Signer

            return Signer(self.secret(seed, fallback))
        from mockserver.core.store.parts import SharedSigner

        return SharedSigner(self, fallback)

    def journal(self, maxlen: int) -> Any:
        from mockserver.core.store.parts import SharedJournal

        return SharedJournal(self, maxlen)

    def scenarios(self, seed: int | None, load: Callable[[Any], None]) -> Any:
        from mockserver.core.store.parts import SharedBook

        # One book per seed, as the memory store keeps one: a reset must not leave the old
        # book's epoch callback behind (it loads the option's rules into every epoch).
        book = self._book
        if book is None or book.seed != seed:
            book = self._book = SharedBook(self, seed, load)
        else:
            book._load = load
        return book

    def limiter(self) -> Any:
        from mockserver.core.store.parts import SharedLimiter

        return SharedLimiter(self)

    def outbox(self, maxlen: int) -> Any:
        from mockserver.core.store.outbox import SharedOutbox

        return SharedOutbox(self, maxlen)

    def reset(self) -> None:
        with self._lock:
            self._journal.clear()
            self._polls.clear()
        self.driver.bump_epoch()
        self._read(None)  # this worker moves on at once

    def close(self) -> None:
        self._stop.set()
        try:
            self.flush()
        except StoreUnavailable:
            pass
        self.driver.close()


class SharedTasks:
    """Tasks in the store; each worker caches the write-once records it has read."""

    CACHE = 20000

    def __init__(self, store: SharedStore) -> None:
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
            view = self.store._view.get()
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
        return int(self.driver.count_tasks(self.store.view().epoch))

    def reset(self) -> None:
        self._cache.clear()
        self._pending.clear()


class _Batch:
    """New tasks of the requests one event-loop turn committed, written in one round trip."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tasks: list[tuple[int, Task]] = []
        self.done: asyncio.Future[set[str]] = loop.create_future()  # the ids already taken


class SharedClock:
    """One clock for every worker: the manual time, or this host's time plus the store's
    offset (advance) and the store server's skew (Redis: its TIME)."""

    def __init__(self, store: SharedStore, kind: str) -> None:
        self.store = store
        self.kind = kind

    def now(self) -> float:
        view = self.store.view()
        if self.kind == "manual":
            return view.now
        return time.time() + view.skew + view.offset

    def advance(self, seconds: float) -> float:
        value = _check(seconds)
        now, offset = self.store.driver.advance(self.kind, value)
        found = self.store._view.get()
        if found is not None:
            found.now, found.offset = now, offset
        return self.now()

    def set(self, when: float) -> float:
        """Jump the manual clock to an absolute time (forward only)."""
        try:
            value = float(when)
        except (TypeError, ValueError):
            raise MockServerError(
                f"clock set needs an epoch time in seconds, got {when!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise MockServerError(f"clock set needs a finite time, got {when!r}")
        now = self.now()
        if value < now:
            raise MockServerError(f"clock cannot go back from {now} to {when}")
        return self.advance(value - now)

    def restart(self) -> None:
        """Back to the manual clock's start and no offset (a fresh fake's clock)."""
        self.store.driver.restart_clock(DEFAULT_EPOCH)


class SharedIds:
    """Seeded ids from one counter in the store: id n = f(seed, n). Unique across workers;
    the same sequence for the same seed and arrival order. Blocks of `ID_BLOCK` numbers are
    reserved per round trip."""

    def __init__(self, store: SharedStore, seed: int) -> None:
        self.store = store
        self.seed = seed
        self._next = self._high = 0
        self._lock = threading.Lock()
        store.on_epoch(self._drop)

    def _drop(self) -> None:
        with self._lock:
            self._next = self._high = 0

    def _digest(self, salt: str = "") -> bytes:
        with self._lock:
            if self._next >= self._high:
                epoch = self.store.view().epoch
                self._high = int(self.store.driver.counter(epoch, "ids", ID_BLOCK))
                self._next = self._high - ID_BLOCK
            self._next += 1
            n = self._next
        return hashlib.sha256(f"wanmock:{self.seed}:{n}{salt}".encode()).digest()

    def uuid(self) -> str:
        bits = int.from_bytes(self._digest()[:16], "big")
        h = "%032x" % ((bits & _V4_CLEAR) | _V4_SET)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def token(self, length: int = 32) -> str:
        out = b""
        salt = 0
        while len(out) < length:
            out += self._digest(f":t{salt}") if salt else self._digest(":t")
            salt += 1
        return "".join(_ALNUM[b % len(_ALNUM)] for b in out[:length])

    def fraction(self) -> float:
        return (int.from_bytes(self._digest(":f")[:8], "big") >> 11) / float(1 << 53)
