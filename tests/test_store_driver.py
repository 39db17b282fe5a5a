"""The driver contract: every shared-store driver (SQLite, Redis on a real redis-server, and the
test-only toy driver of tests/toy_driver.py) behaves as `mockserver.core.store.base.Driver`
says, method by method. A new driver passes this module before `SharedStore` runs over it
(ARCHITECTURE.md, "Adding a store"); tests/test_store.py then drives whole fakes over it."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mockserver.core.store import DRIVERS, register_driver
from mockserver.core.store.base import Driver
from mockserver.core.store.redis import RedisDriver
from mockserver.core.store.sqlite import SqliteDriver
from tests import toy_driver
from tests.toy_driver import ToyDriver

KINDS = ["sqlite", "redis", "toy"]


def _url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/driver.db"
    if kind == "redis":
        return str(request.getfixturevalue("redis_server").url())
    return toy_driver.url()


def _open(url: str) -> Any:
    return {"sqlite": SqliteDriver, "redis": RedisDriver, "toy": ToyDriver}[
        url.partition(":")[0]](url)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(request.param, request, tmp_path)


@pytest.fixture
def driver(url: str) -> Iterator[Any]:
    made = _open(url)
    yield made
    made.close()


def text(value: Any) -> Any:
    """A value as read back, bytes decoded (Redis answers bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def number(value: Any) -> float:
    return float(text(value) or 0)


def epoch_of(driver: Any) -> int:
    return int(driver.sync(None, False)["epoch"])


@pytest.mark.parametrize("cls", [SqliteDriver, RedisDriver, ToyDriver])
def test_every_driver_has_the_interface(cls: type) -> None:
    """Each method of `Driver`, with the same parameters (names and kinds, in order)."""
    for name, member in inspect.getmembers(Driver, inspect.isfunction):
        if name.startswith("_"):
            continue
        mine = getattr(cls, name, None)
        assert callable(mine), f"{cls.__name__} lacks {name}"
        want = [(p.name, p.kind) for p in inspect.signature(member).parameters.values()]
        got = [(p.name, p.kind) for p in inspect.signature(mine).parameters.values()]
        assert got == want, f"{cls.__name__}.{name}{got} differs from Driver.{name}{want}"


def test_the_toy_driver_opens_by_url() -> None:
    from mockserver.core.store import open_store

    toy_driver.register()
    try:
        store = open_store(toy_driver.url())
        assert store.shared and isinstance(store.driver, ToyDriver)  # type: ignore[attr-defined]
        store.close()
    finally:
        DRIVERS.pop(toy_driver.SCHEME, None)
    with pytest.raises(Exception, match="unknown store"):
        open_store(toy_driver.url())
    register_driver(toy_driver.SCHEME, ToyDriver)
    DRIVERS.pop(toy_driver.SCHEME)


def test_sync_and_the_epoch(driver: Any) -> None:
    first = driver.sync(None, False)
    assert {"epoch", "now", "offset", "skew", "rules", "hooks", "task_id", "row"} <= set(first)
    epoch = int(first["epoch"])
    assert driver.put_tasks(epoch, [("t1", 10.0, '{"r": 1}')]) == [True]
    seen = driver.sync("t1", True)
    assert text(seen["row"][0]) == '{"r": 1}' and number(seen["row"][1]) == 0
    assert number(driver.sync("t1", False)["row"][1]) == 0  # the record may come or not
    assert driver.sync("nope", True)["row"] is None
    driver.counter(epoch, "id_blocks", 1)
    driver.alias(epoch, "f:a", "t1")
    assert driver.bump_epoch() == epoch + 1 == epoch_of(driver)
    # the old epoch's records are gone for good; the new one starts empty
    assert driver.task(epoch, "t1", True) is None and driver.count_tasks(epoch + 1) == 0
    assert driver.counter(epoch + 1, "id_blocks", 1) == 1
    assert driver.resolve(epoch + 1, "f:a") is None


def test_the_clock(driver: Any) -> None:
    driver.init_clock(100.0)
    driver.init_clock(500.0)  # set once
    assert number(driver.sync(None, False)["now"]) == 100.0
    assert driver.advance("manual", 5.0) == (105.0, 0.0)
    now, offset = driver.advance("system", 2.5)
    assert (now, offset) == (105.0, 2.5)
    driver.restart_clock(100.0)
    seen = driver.sync(None, False)
    assert (number(seen["now"]), number(seen["offset"])) == (100.0, 0.0)


def test_secret_and_counters(driver: Any) -> None:
    assert text(driver.secret("first")) == "first"
    assert text(driver.secret("second")) == "first"  # set once, for every worker
    epoch = epoch_of(driver)
    assert [driver.counter(epoch, "c", 1), driver.counter(epoch, "c", 5)] == [1, 6]


def test_tasks(driver: Any) -> None:
    epoch = epoch_of(driver)
    rows = [("b", 1.0, "B"), ("c", 2.0, "C"), ("a", 3.0, "A")]
    assert driver.put_tasks(epoch, rows) == [True, True, True]
    assert driver.put_tasks(epoch, [("a", 9.0, "other"), ("d", 4.0, "D")]) == [False, True]
    assert text(driver.task(epoch, "a", True)[0]) == "A"  # an id taken keeps its record
    assert [i for i, _ in driver.tasks(epoch, None)] == ["b", "c", "a", "d"]  # as submitted
    assert [i for i, _ in driver.tasks(epoch, 2, 1)] == ["c", "a"]
    assert [text(r[0]) for _, r in driver.tasks(epoch, 1)] == ["B"]
    assert driver.count_tasks(epoch) == 4
    assert [driver.incr_polls(epoch, "a"), driver.incr_polls(epoch, "a")] == [1, 2]
    assert driver.incr_polls(epoch, "nope") == 0
    driver.update_task(epoch, "a", {"canceled_at": 7.5, "forced": "failed", "forced_at": 8.0,
                                    "failure": "F", "rec": "not this"})
    row = driver.task(epoch, "a", True)
    assert text(row[0]) == "A" and number(row[1]) == 2 and number(row[2]) == 7.5
    assert text(row[3]) == "failed" and number(row[4]) == 8.0 and text(row[5]) == "F"
    driver.alias(epoch, "newapi:x", "a")
    driver.alias(epoch, "newapi:y", "b")
    assert text(driver.resolve(epoch, "newapi:x")) == "a"
    assert driver.remove_tasks(epoch, ["a", "nope"]) == 1
    assert driver.task(epoch, "a", False) is None and driver.resolve(epoch, "newapi:x") is None
    assert text(driver.resolve(epoch, "newapi:y")) == "b"  # other aliases stay


def test_the_journal_and_batched_polls(driver: Any) -> None:
    epoch = epoch_of(driver)
    driver.put_tasks(epoch, [("t", 1.0, "T")])
    driver.journal_size = 3
    driver.write_batch([(epoch, f"e{n}") for n in range(5)], {(epoch, "t"): 4})
    assert [text(d) for _, d in driver.journal(epoch)] == ["e2", "e3", "e4"]  # the newest 3
    seqs = [s for s, _ in driver.journal(epoch)]
    assert seqs == sorted(seqs) and driver.journal_len(epoch) == 3
    assert number(driver.task(epoch, "t", False)[1]) == 4
    driver.write_batch([], {(epoch, "t"): 1})
    assert number(driver.task(epoch, "t", False)[1]) == 5


def test_scenario_rules(driver: Any) -> None:
    epoch = epoch_of(driver)
    revision = driver.sync(None, False)["rules"]
    assert driver.rules_seed(epoch, [("r1", "one"), ("r2", "two")]) is True
    assert driver.rules_seed(epoch, [("r1", "again")]) is False  # one worker seeds an epoch
    driver.rule_put(epoch, "r3", "three")
    assert [text(d) for d, _, _ in driver.rules(epoch)] == ["one", "two", "three"]
    assert driver.sync(None, False)["rules"] > revision  # every change moves the revision on
    assert [driver.rule_count(epoch, "r1", "matched", None) for _ in range(3)] == [1, 2, 3]
    assert [driver.rule_count(epoch, "r1", "applied", 2) for _ in range(3)] == [1, 2, 0]
    assert [(m, a) for _, m, a in driver.rules(epoch)][0] == (3, 2)
    before = driver.sync(None, False)["rules"]
    assert driver.rule_remove(epoch, "r2") is True and driver.rule_remove(epoch, "r2") is False
    assert driver.rule_count(epoch, "r2", "matched", None) == 0
    driver.rules_clear(epoch)
    assert driver.rules(epoch) == [] and driver.sync(None, False)["rules"] > before
    driver.bump_epoch()
    assert driver.rules_seed(epoch + 1, []) is True  # a new epoch is seeded again


def test_request_windows(driver: Any) -> None:
    epoch = epoch_of(driver)
    assert [driver.admit(epoch, "k", 100.0 + i / 10, 3) for i in range(4)] == [
        True, True, True, False]
    assert driver.admit(epoch, "other", 100.35, 3) is True  # windows are per key
    assert driver.admit(epoch, "k", 101.05, 3) is True  # the first one left the window


def test_webhook_deliveries(url: str, driver: Any) -> None:
    epoch = epoch_of(driver)
    driver.hook_put(epoch, 1, "pending-1", True)
    driver.hook_put(epoch, 2, "pending-2", True)
    assert driver.sync(None, False)["hooks"] == 2
    assert [(s, text(d)) for s, d in driver.hooks(epoch, True)] == [(1, "pending-1"),
                                                                   (2, "pending-2")]
    assert driver.hook_claim(epoch, 1, 50.0, "w1") is True
    assert driver.hook_claim(epoch, 1, 50.0, "w2") is False  # claimed once
    assert driver.sync(None, False)["hooks"] == 1
    assert [s for s, _ in driver.hooks(epoch, True)] == [2]
    assert [s for s, _ in driver.hooks(epoch, None)] == [1, 2]
    assert driver.hook_save(epoch, 1, "attempt-1", 60.0, "w2") is False  # not its lease
    assert driver.hook_save(epoch, 1, "attempt-1", 60.0, "w1") is True
    driver.hook_put(epoch, 1, "rendered", False)  # a stored record replaced
    assert dict((s, text(d)) for s, d in driver.hooks(epoch, None))[1] == "rendered"
    assert driver.hooks_expired(epoch, 59.0, 10) == []
    assert driver.hooks_expired(epoch, 60.0, 10) == [1]
    assert driver.hook_reclaim(epoch, 1, 59.0, 90.0, "w2") is None  # not run out by then
    assert text(driver.hook_reclaim(epoch, 1, 61.0, 90.0, "w2")) == "rendered"
    assert driver.hook_reclaim(epoch, 1, 61.0, 95.0, "w3") is None  # w2 has it now
    assert driver.hook_save(epoch, 1, "done", None, "w2") is True  # released
    assert driver.hooks_expired(epoch, 1e12, 10) == []
    assert driver.hook_save(epoch, 1, "late", None, "w1") is False  # still w2's delivery


def test_one_claim_wins_between_workers(url: str) -> None:
    """Two workers (two drivers on one database) claim the same webhook at once: one wins."""
    first, second = _open(url), _open(url)
    try:
        epoch = epoch_of(first)
        for seq in range(1, 41):
            first.hook_put(epoch, seq, f"h{seq}", True)
        won: dict[str, list[int]] = {"a": [], "b": []}

        def claim(name: str, driver: Any) -> None:
            for seq in range(1, 41):
                if driver.hook_claim(epoch, seq, 10.0, name):
                    won[name].append(seq)

        threads = [threading.Thread(target=claim, args=("a", first)),
                   threading.Thread(target=claim, args=("b", second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(won["a"] + won["b"]) == list(range(1, 41))
        assert second.sync(None, False)["hooks"] == 0
    finally:
        first.close()
        second.close()
