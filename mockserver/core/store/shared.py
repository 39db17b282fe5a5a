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
import random
import string
import threading
import time
from collections.abc import Callable
from typing import Any

from mockserver.core.artifacts import Signer
from mockserver.core.clock import DEFAULT_EPOCH, check_seconds, check_time
from mockserver.core.ids import Ids, uuid4_text
from mockserver.core.store.base import Driver, View
from mockserver.core.store.outbox import SharedOutbox
from mockserver.core.store.parts import SharedBook, SharedJournal, SharedLimiter, SharedSigner
from mockserver.core.store.records import encode_task
from mockserver.core.store.shared_tasks import SharedTasks
from mockserver.core.tasks import Task
from mockserver.errors import MockServerError, StoreUnavailable

FLUSH_S = 0.05
ID_BLOCK = 256  # seeded draws per block, one round trip each (a worker that stops wastes the rest)
_ALNUM = string.ascii_letters + string.digits


class SharedStore:
    """A store shared by processes; components are created by the `Backend` (see base.py)."""

    shared = True

    def __init__(self, driver: Driver, url: str) -> None:
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

    def current_view(self) -> View | None:
        """This request's view, None outside a request (nothing is read)."""
        return self._view.get()

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
            batch = self._batches[loop] = _Batch()
            loop.call_soon(self._write_batch, loop, batch)
        batch.tasks += pending
        waiter: asyncio.Future[set[str]] = loop.create_future()
        batch.waiters.append(waiter)
        try:
            taken = await waiter
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
            if self._tasks.pending(task.id):  # not written meanwhile (SharedTasks._written)
                by_epoch.setdefault(epoch, []).append(task)
        taken: set[str] = set()
        try:
            for epoch, tasks in by_epoch.items():
                made = self.driver.put_tasks(
                    epoch, [(t.id, t.submitted_at, encode_task(t)) for t in tasks])
                taken.update(t.id for t, ok in zip(tasks, made, strict=True) if not ok)
        except BaseException as exc:  # StoreUnavailable (or a bug): every waiter hears it
            for waiter in batch.waiters:
                if not waiter.done():  # not cancelled meanwhile
                    waiter.set_exception(exc)
            return
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(taken)

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
        if self._stop.is_set():  # closed meanwhile: close() flushed what was queued
            return
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
            return Signer(self.secret(seed, fallback))
        return SharedSigner(self, fallback)

    def journal(self, maxlen: int) -> SharedJournal:
        return SharedJournal(self, maxlen)

    def scenarios(self, seed: int | None, load: Callable[[Any], None]) -> SharedBook:
        # One book per seed, as the memory store keeps one: a reset must not leave the old
        # book's epoch callback behind (it loads the option's rules into every epoch).
        book = self._book
        if book is None or book.seed != seed:
            book = self._book = SharedBook(self, seed, load)
        else:
            book._load = load
        return book

    def limiter(self) -> SharedLimiter:
        return SharedLimiter(self)

    def outbox(self, maxlen: int) -> SharedOutbox:
        return SharedOutbox(self, maxlen)

    def reset(self) -> None:
        with self._lock:
            self._journal.clear()
            self._polls.clear()
        self.driver.bump_epoch()
        self._read(None)  # this worker moves on at once

    def close(self) -> None:
        self._stop.set()
        pending, self._loop_flush = self._loop_flush, None
        if pending is not None and not pending[0].is_closed():
            pending[0].call_soon_threadsafe(pending[1].cancel)
        try:
            self.flush()
        except StoreUnavailable:
            pass
        self.driver.close()


class _Batch:
    """New tasks of the requests one event-loop turn committed, written in one round trip."""

    def __init__(self) -> None:
        self.tasks: list[tuple[int, Task]] = []
        # One future per committing request (a cancelled one leaves the others be): the ids
        # of the batch that were already taken.
        self.waiters: list[asyncio.Future[set[str]]] = []


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
        value = check_seconds(seconds, self.now())
        now, offset = self.store.driver.advance(self.kind, value)
        found = self.store.current_view()
        if found is not None:
            found.now, found.offset = now, offset
        return self.now()

    def set(self, when: float) -> float:
        """Jump the manual clock to an absolute time (forward only)."""
        value = check_time(when)
        now = self.now()
        if value < now:
            raise MockServerError(f"clock cannot go back from {now} to {when}")
        return self.advance(value - now)

    def restart(self) -> None:
        """Back to the manual clock's start and no offset (a fresh fake's clock)."""
        self.store.driver.restart_clock(DEFAULT_EPOCH)


class SharedIds:
    """Seeded ids from one counter in the store. Each worker reserves a block (block b: the
    counter's next value) of `ID_BLOCK` draws at a time and draws them from a generator seeded
    with (seed, b): unique across workers (128 random bits per id, as uuid4), the same
    sequence for the same seed and arrival order, one round trip per block, and each id as
    cheap as the memory store's."""

    def __init__(self, store: SharedStore, seed: int) -> None:
        self.store = store
        self.seed = seed
        self._left = 0
        self._rng = random.Random()
        self._lock = threading.Lock()
        store.on_epoch(self._drop)

    def _drop(self) -> None:
        with self._lock:
            self._left = 0

    def _draws(self, count: int) -> random.Random:
        """The generator, with `count` draws taken from this worker's block (a new block
        when it runs out). Called with the lock held."""
        if self._left < count:
            driver = self.store.driver
            block = int(driver.counter(self.store.view().epoch, "id_blocks", 1))
            # A store that lost its data (a Redis without persistence, restarted) has a
            # lineage: folded in, the new blocks never repeat ids handed out before the loss.
            lineage = driver.lineage() if hasattr(driver, "lineage") else ""
            salt = f"{lineage}:" if lineage else ""
            self._rng.seed(hashlib.sha256(f"wanmock:{self.seed}:{salt}{block}".encode()).digest())
            self._left = ID_BLOCK
        self._left -= count
        return self._rng

    def uuid(self) -> str:
        with self._lock:
            bits = self._draws(1).getrandbits(128)
        return uuid4_text(bits)

    def token(self, length: int = 32) -> str:
        with self._lock:
            bits = self._draws(1).getrandbits(8 * length)
        return "".join(_ALNUM[b % len(_ALNUM)] for b in bits.to_bytes(length, "big"))

    def fraction(self) -> float:
        with self._lock:
            return self._draws(1).random()
