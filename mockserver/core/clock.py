"""Clocks. Every time the fake reads comes from one of these, never from `time` directly."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from mockserver.errors import MockServerError

# 2026-01-01 00:00:00 UTC: where a manual clock starts unless told otherwise, so seeded runs
# render the same timestamps every time.
DEFAULT_EPOCH = 1767225600.0
# The clock stays between the epoch and 9000-01-01 UTC: every family renders any time in there
# (DashScope's "%Y-%m-%d %H:%M:%S" needs a year below 10000), with a millennium to spare for the
# end, retention and URL expiry a task plans from it (a `stuck` task's end is decades away).
LATEST = 221845392000.0


class Clock(Protocol):
    """What the engine needs of a clock: the time now (epoch seconds) and a way to move it."""

    kind: str

    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...

    def restart(self) -> None:
        """Back to where a fresh clock of this kind starts."""
        ...


def check_seconds(seconds: float, now: float | None = None) -> float:
    """`seconds` as a clock move from `now`: a number (not a bool, not a string), finite, not
    negative, and not past `LATEST`."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise MockServerError(f"clock advance needs a number of seconds, got {seconds!r}")
    try:
        value = float(seconds)
    except OverflowError:  # an int beyond any float
        value = float("inf")
    if value < 0 or value != value or value == float("inf"):
        raise MockServerError(f"clock only moves forward by a finite amount, got {seconds!r}")
    if now is not None and now + value > LATEST:
        raise MockServerError(
            f"clock advance of {seconds!r} s would pass 9000-01-01 (the latest time every "
            f"family renders with room for a task's plan); at most {max(0.0, LATEST - now):.0f}")
    return value


def check_time(when: float) -> float:
    """An absolute clock time (`set`, a start): a finite number between the epoch and
    `LATEST`."""
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise MockServerError(f"clock set needs an epoch time in seconds, got {when!r}")
    value = float(when) if abs(when) < 1e300 else float("inf")
    if not 0 <= value <= LATEST:
        raise MockServerError(
            f"clock time must be between 0 (1970) and {LATEST:.0f} (9000-01-01), got {when!r}")
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
            self._offset += check_seconds(seconds, self.now())
        return self.now()

    def restart(self) -> None:
        """Back to wall-clock time (no offset)."""
        with self._lock:
            self._offset = 0.0


class ManualClock:
    """A clock that moves only when told to: tests advance it, nothing else does."""

    kind = "manual"

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = check_time(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += check_seconds(seconds, self._now)
            return self._now

    def restart(self, start: float = DEFAULT_EPOCH) -> None:
        """Back to where a fresh manual clock starts."""
        with self._lock:
            self._now = check_time(start)

    def set(self, when: float) -> float:
        """Jump to an absolute time (forward only)."""
        value = check_time(when)
        with self._lock:
            if value < self._now:
                raise MockServerError(f"clock cannot go back from {self._now} to {when}")
            self._now = value
            return self._now
