"""The default store: today's in-process objects, no set-up and no round trips."""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from mockserver.core.artifacts import Signer
from mockserver.core.clock import Clock, ManualClock, SystemClock
from mockserver.core.ids import Ids
from mockserver.core.journal import Journal
from mockserver.core.scenarios import ScenarioBook
from mockserver.core.tasks import TaskStore
from mockserver.core.webhooks import Outbox


class LocalLimiter:
    """Per-key sliding one-second windows of request times (the request-rate limit)."""

    def __init__(self) -> None:
        self._window: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, now: float, qps: float) -> bool:
        """Count a request at `now`; False (not counted) when `qps` are already in the window."""
        with self._lock:
            window = self._window.setdefault(key, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= qps:
                return False
            window.append(now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._window.clear()


class MemoryStore:
    """Everything in this process (one worker only); `reset()` clears it in place."""

    url = "memory"
    shared = False

    def __init__(self) -> None:
        # One of each component: two Backends over one MemoryStore share everything, as two
        # workers over one shared store do.
        self._tasks = TaskStore()
        self._limiter = LocalLimiter()
        self._clock: Clock | None = None
        self._ids: Ids | None = None
        self._journal: Journal | None = None
        self._book: ScenarioBook | None = None
        self._outbox: Outbox | None = None
        self._load: Callable[[Any], None] = lambda book: None  # puts the options' rules in

    def tasks(self) -> TaskStore:
        return self._tasks

    def clock(self, kind: str) -> Clock:
        if self._clock is None or self._clock.kind != kind:
            self._clock = ManualClock() if kind == "manual" else SystemClock()
        return self._clock

    def ids(self, seed: int | None) -> Ids:
        if self._ids is None or self._ids.seed != seed:
            self._ids = Ids(seed)
        return self._ids

    def secret(self, seed: int | None, fallback: bytes) -> bytes:
        if seed is not None:
            return hashlib.sha256(f"wanmock:{seed}".encode()).digest()
        return fallback

    def signer(self, seed: int | None, fallback: bytes) -> Signer:
        return Signer(self.secret(seed, fallback))

    def journal(self, maxlen: int) -> Journal:
        if self._journal is None or self._journal.maxlen != maxlen:
            self._journal = Journal(maxlen)
        return self._journal

    def scenarios(self, seed: int | None, load: Callable[[Any], None]) -> ScenarioBook:
        self._load = load
        if self._book is None or self._book.seed != seed:
            self._book = ScenarioBook(seed)
            load(self._book)
        return self._book

    def limiter(self) -> LocalLimiter:
        return self._limiter

    def outbox(self, maxlen: int) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(maxlen)
        return self._outbox

    def reset(self) -> None:
        """Forget every task and request window; seeded ids start again, and the scenario
        rules are the options' again, numbered from r1 (as a shared store's new epoch)."""
        self._tasks.reset()
        self._limiter.clear()
        if self._ids is not None:
            self._ids.reset()
        if self._book is not None:
            self._book.restart()
            self._load(self._book)

    def begin(self, task_id: str | None = None) -> None:
        return None

    def end(self, token: Any) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
