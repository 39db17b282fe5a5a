"""Clocks. Every time the fake reads comes from one of these, never from `time` directly."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from mockserver.errors import MockServerError

# 2026-01-01 00:00:00 UTC: where a manual clock starts unless told otherwise, so seeded runs
# render the same timestamps every time.
DEFAULT_EPOCH = 1767225600.0


class Clock(Protocol):
    """What the engine needs of a clock: the time now (epoch seconds) and a way to move it."""

    kind: str

    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...

    def restart(self) -> None:
        """Back to where a fresh clock of this kind starts."""
        ...


def _check(seconds: float) -> float:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise MockServerError(f"clock advance needs a number of seconds, got {seconds!r}") from None
    if value < 0 or value != value or value == float("inf"):
        raise MockServerError(f"clock only moves forward by a finite amount, got {seconds!r}")
    return value


class SystemClock:
    """Wall-clock time, which `advance()` can still push forward (an offset)."""

    kind = "system"

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._offset += _check(seconds)
        return self.now()

    def restart(self) -> None:
        """Back to wall-clock time (no offset)."""
        with self._lock:
            self._offset = 0.0


class ManualClock:
    """A clock that moves only when told to: tests advance it, nothing else does."""

    kind = "manual"

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += _check(seconds)
            return self._now

    def restart(self, start: float = DEFAULT_EPOCH) -> None:
        """Back to where a fresh manual clock starts."""
        with self._lock:
            self._now = float(start)

    def set(self, when: float) -> float:
        """Jump to an absolute time (forward only)."""
        try:
            value = float(when)
        except (TypeError, ValueError):
            raise MockServerError(
                f"clock set needs an epoch time in seconds, got {when!r}"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise MockServerError(f"clock set needs a finite time, got {when!r}")
        with self._lock:
            if value < self._now:
                raise MockServerError(f"clock cannot go back from {self._now} to {when}")
            self._now = value
            return self._now
