"""The default store: today's in-process objects, no set-up and no round trips."""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from mockserver.core.clock import Clock, ManualClock, SystemClock
from mockserver.core.ids import Ids
from mockserver.core.journal import Journal
from mockserver.core.scenarios import ScenarioBook
from mockserver.core.tasks import TaskStore
from mockserver.core.webhooks import Outbox


class Limiter:
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
        self._tasks = TaskStore()
        self._limiter = Limiter()

    def tasks(self) -> TaskStore:
        return self._tasks

    def clock(self, kind: str) -> Clock:
        return ManualClock() if kind == "manual" else SystemClock()

    def ids(self, seed: int | None) -> Ids:
        return Ids(seed)

    def secret(self, seed: int | None, fallback: bytes) -> bytes:
        if seed is not None:
            return hashlib.sha256(f"wanmock:{seed}".encode()).digest()
        return fallback

    def journal(self, maxlen: int) -> Journal:
        return Journal(maxlen)

    def scenarios(self, seed: int | None, load: Callable[[Any], None]) -> ScenarioBook:
        book = ScenarioBook(seed)
        load(book)
        return book

    def limiter(self) -> Limiter:
        return self._limiter

    def outbox(self, maxlen: int) -> Outbox:
        return Outbox(maxlen)

    def reset(self) -> None:
        self._tasks.reset()
        self._limiter.clear()

    def begin(self, task_id: str | None = None) -> None:
        return None

    def end(self, token: Any) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
