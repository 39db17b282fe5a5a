"""Clocks: a manual clock moves forward only, when told; the system clock takes an offset."""

from __future__ import annotations

import math
import threading
import time

import pytest

from mockserver.core.clock import DEFAULT_EPOCH, ManualClock, SystemClock
from mockserver.errors import MockServerError

BAD_AMOUNTS = [-1, -0.001, float("nan"), float("inf"), float("-inf"), "soon", None, [1], {}]


def test_manual_clock_starts_at_the_default_epoch_and_stays_there() -> None:
    clock = ManualClock()
    assert clock.kind == "manual"
    assert clock.now() == DEFAULT_EPOCH
    assert clock.now() == DEFAULT_EPOCH  # reading does not move it


def test_manual_clock_advance_returns_and_keeps_the_new_time() -> None:
    clock = ManualClock(start=100.0)
    assert clock.advance(2.5) == 102.5
    assert clock.now() == 102.5
    assert clock.advance(0) == 102.5
    with pytest.raises(MockServerError):  # strict: a numeric string is no number of seconds
        clock.advance("1.5")  # type: ignore[arg-type]
    assert clock.advance(1.5) == 104.0
    assert clock.now() == 104.0


def test_manual_clock_set_jumps_forward_only() -> None:
    clock = ManualClock(start=100.0)
    assert clock.set(150) == 150.0
    assert clock.set(150) == 150.0  # standing still is allowed
    with pytest.raises(MockServerError, match="cannot go back"):
        clock.set(149.999)
    assert clock.now() == 150.0


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
@pytest.mark.parametrize("make", [ManualClock, SystemClock], ids=["manual", "system"])
def test_advance_rejects_what_is_not_a_finite_forward_amount(make, amount) -> None:
    clock = make()
    before = clock.now()
    with pytest.raises(MockServerError):
        clock.advance(amount)
    if isinstance(clock, ManualClock):
        assert clock.now() == before  # a refused advance changes nothing


def test_manual_clock_is_safe_under_concurrent_advances() -> None:
    clock = ManualClock(start=0.0)

    def work() -> None:
        for _ in range(1000):
            clock.advance(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == 8000.0


def test_system_clock_follows_wall_time() -> None:
    clock = SystemClock()
    assert clock.kind == "system"
    before = time.time()
    now = clock.now()
    after = time.time()
    assert before <= now <= after


def test_system_clock_advance_adds_an_offset() -> None:
    clock = SystemClock()
    returned = clock.advance(3600)
    wall = time.time()
    assert math.isclose(returned - wall, 3600, abs_tol=1.0)
    clock.advance(60)
    assert math.isclose(clock.now() - time.time(), 3660, abs_tol=1.0)


@pytest.mark.parametrize("when", [float("nan"), float("inf"), float("-inf"), "later", None, [1]],
                         ids=repr)
def test_manual_clock_set_rejects_what_is_not_a_finite_time(when) -> None:
    clock = ManualClock(start=100.0)
    with pytest.raises(MockServerError):
        clock.set(when)
    assert clock.now() == 100.0
    assert clock.advance(1) == 101.0  # still a working clock
