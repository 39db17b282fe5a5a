"""A toy store driver: `mockserver.core.store.base.Driver` over Python dicts, for the tests.

It is what a new driver looks like, cut to the bone: every method of the interface, each
atomic under one lock, every record kept per epoch. `toy://NAME` store URLs open it
(`register()`); two stores opened on one name share one database, as two workers sharing a
Redis do. It is held to the same tests as the real drivers (tests/test_store_driver.py,
tests/test_store.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mockserver.core.store import register_driver
from mockserver.core.store.base import MUTABLE_FIELDS, TaskRow

SCHEME = "toy"


@dataclass
class _Epoch:
    """Everything one epoch holds."""

    counters: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, list[Any]] = field(default_factory=dict)  # id -> [at, rec, polls, ...]
    aliases: dict[str, str] = field(default_factory=dict)
    journal: list[tuple[int, str]] = field(default_factory=list)
    rules: dict[str, list[Any]] = field(default_factory=dict)  # id -> [data, matched, applied]
    rules_seeded: bool = False
    windows: dict[str, list[float]] = field(default_factory=dict)
    hooks: dict[int, list[Any]] = field(default_factory=dict)  # seq -> [data, pending]
    # seq -> (until, owner); a released lease keeps its owner and no end
    leases: dict[int, tuple[float | None, str]] = field(default_factory=dict)


@dataclass
class _Database:
    lock: threading.Lock = field(default_factory=threading.Lock)
    epoch: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    epochs: dict[int, _Epoch] = field(default_factory=dict)
    journal_seq: int = 0

    def at(self, epoch: int) -> _Epoch:
        return self.epochs.setdefault(epoch, _Epoch())


_DATABASES: dict[str, _Database] = {}
_OPEN = threading.Lock()


class ToyDriver:
    """The shared-store operations over an in-process database named by the URL."""

    def __init__(self, url: str) -> None:
        name = url.removeprefix(f"{SCHEME}://")
        with _OPEN:
            self.db = _DATABASES.setdefault(name, _Database())
        self.journal_size = 1000
        self.closed = False

    # -- the per-request read ----------------------------------------------------------------
    def sync(self, task_id: str | None, want_rec: bool) -> dict[str, Any]:
        with self.db.lock:
            db = self.db
            epoch = db.at(db.epoch)
            row = self._row(epoch, task_id, want_rec) if task_id is not None else None
            return {"epoch": db.epoch, "now": float(db.meta.get("clock_now", 0.0)),
                    "offset": float(db.meta.get("clock_offset", 0.0)), "skew": 0.0,
                    "rules": epoch.counters.get("rules_rev", 0),
                    "hooks": epoch.counters.get("hooks_pending", 0),
                    "task_id": task_id, "row": row}

    def bump_epoch(self) -> int:
        with self.db.lock:
            self.db.epoch += 1
            self.db.epochs = {self.db.epoch: _Epoch()}
            return self.db.epoch

    # -- clock, secret, counters -------------------------------------------------------------
    def init_clock(self, start: float) -> None:
        with self.db.lock:
            self.db.meta.setdefault("clock_now", start)
            self.db.meta.setdefault("clock_offset", 0.0)

    def restart_clock(self, start: float) -> None:
        with self.db.lock:
            self.db.meta.update(clock_now=start, clock_offset=0.0)

    def advance(self, kind: str, seconds: float) -> tuple[float, float]:
        with self.db.lock:
            meta = self.db.meta
            key = "clock_now" if kind == "manual" else "clock_offset"
            meta[key] = meta.get(key, 0.0) + seconds
            return float(meta.get("clock_now", 0.0)), float(meta.get("clock_offset", 0.0))

    def secret(self, candidate: str) -> str:
        with self.db.lock:
            return str(self.db.meta.setdefault("secret", candidate))

    def counter(self, epoch: int, name: str, by: int) -> int:
        with self.db.lock:
            counters = self.db.at(epoch).counters
            counters[name] = counters.get(name, 0) + by
            return counters[name]

    # -- tasks -------------------------------------------------------------------------------
    def put_tasks(self, epoch: int, rows: list[tuple[str, float, str]]) -> list[bool]:
        with self.db.lock:
            tasks = self.db.at(epoch).tasks
            made = []
            for task_id, at, rec in rows:
                made.append(task_id not in tasks)
                if made[-1]:
                    tasks[task_id] = [at, rec, 0, None, None, None, None]
            return made

    @staticmethod
    def _row(epoch: _Epoch, task_id: str, want_rec: bool) -> TaskRow | None:
        found = epoch.tasks.get(task_id)
        if found is None:
            return None
        _, rec, polls, canceled, forced, forced_at, failure = found
        return (rec if want_rec else None, polls, canceled, forced, forced_at, failure)

    def task(self, epoch: int, task_id: str, want_rec: bool) -> TaskRow | None:
        with self.db.lock:
            return self._row(self.db.at(epoch), task_id, want_rec)

    def tasks(self, epoch: int, limit: int | None,
              offset: int = 0) -> list[tuple[str, TaskRow]]:
        with self.db.lock:
            at = self.db.at(epoch)
            order = sorted(at.tasks, key=lambda i: at.tasks[i][0])  # stable: insertion order
            chosen = order[offset:] if limit is None else order[offset:offset + limit]
            return [(i, self._row(at, i, True)) for i in chosen]  # type: ignore[misc]

    def count_tasks(self, epoch: int) -> int:
        with self.db.lock:
            return len(self.db.at(epoch).tasks)

    def remove_tasks(self, epoch: int, ids: list[str]) -> int:
        with self.db.lock:
            at = self.db.at(epoch)
            gone = [i for i in ids if at.tasks.pop(i, None) is not None]
            at.aliases = {k: v for k, v in at.aliases.items() if v not in set(ids)}
            return len(gone)

    def update_task(self, epoch: int, task_id: str, values: dict[str, Any]) -> None:
        columns = {name: 3 + i for i, name in enumerate(MUTABLE_FIELDS)}
        with self.db.lock:
            found = self.db.at(epoch).tasks.get(task_id)
            if found is not None:
                for name, value in values.items():
                    if name in columns:
                        found[columns[name]] = value

    def incr_polls(self, epoch: int, task_id: str) -> int:
        with self.db.lock:
            found = self.db.at(epoch).tasks.get(task_id)
            if found is None:
                return 0
            found[2] += 1
            return int(found[2])

    def alias(self, epoch: int, key: str, task_id: str) -> None:
        with self.db.lock:
            self.db.at(epoch).aliases[key] = task_id

    def resolve(self, epoch: int, key: str) -> str | None:
        with self.db.lock:
            return self.db.at(epoch).aliases.get(key)

    # -- batched writes, journal -------------------------------------------------------------
    def write_batch(self, entries: list[tuple[int, str]],
                    polls: dict[tuple[int, str], int]) -> None:
        with self.db.lock:
            db = self.db
            for epoch, data in entries:
                db.journal_seq += 1
                journal = db.at(epoch).journal
                journal.append((db.journal_seq, data))
                del journal[:max(0, len(journal) - self.journal_size)]
            for (epoch, task_id), n in polls.items():
                found = db.at(epoch).tasks.get(task_id)
                if found is not None:
                    found[2] += n

    def journal(self, epoch: int) -> list[tuple[int, Any]]:
        with self.db.lock:
            return list(self.db.at(epoch).journal)

    def journal_len(self, epoch: int) -> int:
        with self.db.lock:
            return len(self.db.at(epoch).journal)

    # -- scenario rules ----------------------------------------------------------------------
    @staticmethod
    def _rev(at: _Epoch) -> None:
        at.counters["rules_rev"] = at.counters.get("rules_rev", 0) + 1

    def rule_put(self, epoch: int, rule_id: str, data: str) -> None:
        with self.db.lock:
            at = self.db.at(epoch)
            at.rules[rule_id] = [data, 0, 0]
            self._rev(at)

    def rules_seed(self, epoch: int, rules: list[tuple[str, str]]) -> bool:
        with self.db.lock:
            at = self.db.at(epoch)
            if at.rules_seeded:
                return False
            at.rules_seeded = True
            for rule_id, data in rules:
                at.rules[rule_id] = [data, 0, 0]
            if rules:
                at.counters["rules"] = at.counters.get("rules", 0) + len(rules)
                self._rev(at)
            return True

    def rule_remove(self, epoch: int, rule_id: str) -> bool:
        with self.db.lock:
            at = self.db.at(epoch)
            gone = at.rules.pop(rule_id, None) is not None
            self._rev(at)
            return gone

    def rules_clear(self, epoch: int) -> None:
        with self.db.lock:
            at = self.db.at(epoch)
            at.rules.clear()
            self._rev(at)

    def rules(self, epoch: int) -> list[tuple[Any, int, int]]:
        with self.db.lock:
            return [(d, m, a) for d, m, a in self.db.at(epoch).rules.values()]

    def rule_count(self, epoch: int, rule_id: str, column: str, limit: int | None) -> int:
        index = {"matched": 1, "applied": 2}[column]
        with self.db.lock:
            found = self.db.at(epoch).rules.get(rule_id)
            if found is None or (limit is not None and found[index] >= limit):
                return 0
            found[index] += 1
            return int(found[index])

    # -- rate windows ------------------------------------------------------------------------
    def admit(self, epoch: int, key: str, now: float, qps: float) -> bool:
        with self.db.lock:
            windows = self.db.at(epoch).windows
            window = [t for t in windows.get(key, []) if t > now - 1.0]
            if len(window) >= qps:
                windows[key] = window
                return False
            windows[key] = [*window, now]
            return True

    # -- webhooks ----------------------------------------------------------------------------
    def hook_put(self, epoch: int, seq: int, data: str, pending: bool) -> None:
        with self.db.lock:
            at = self.db.at(epoch)
            if pending:
                at.hooks[seq] = [data, True]
                at.counters["hooks_pending"] = at.counters.get("hooks_pending", 0) + 1
            elif seq in at.hooks:
                at.hooks[seq][0] = data

    def hooks(self, epoch: int, pending: bool | None) -> list[tuple[int, Any]]:
        with self.db.lock:
            hooks = self.db.at(epoch).hooks
            return [(seq, hooks[seq][0]) for seq in sorted(hooks)
                    if pending is None or hooks[seq][1]]

    def hook_claim(self, epoch: int, seq: int, until: float | None = None,
                   owner: str = "") -> bool:
        with self.db.lock:
            at = self.db.at(epoch)
            found = at.hooks.get(seq)
            if found is None or not found[1]:
                return False
            found[1] = False
            at.counters["hooks_pending"] = at.counters.get("hooks_pending", 0) - 1
            if until is not None:
                at.leases[seq] = (until, owner)
            return True

    def hook_save(self, epoch: int, seq: int, data: str, until: float | None,
                  owner: str) -> bool:
        with self.db.lock:
            at = self.db.at(epoch)
            lease = at.leases.get(seq)
            if lease is not None and lease[1] != owner:
                return False
            if seq in at.hooks:
                at.hooks[seq][0] = data
            if lease is not None:
                at.leases[seq] = (until, owner)
            return True

    def hooks_expired(self, epoch: int, now: float, limit: int) -> list[int]:
        with self.db.lock:
            leases = self.db.at(epoch).leases
            due = sorted((until, seq) for seq, (until, _) in leases.items()
                         if until is not None and until <= now)
            return [seq for _, seq in due[:limit]]

    def hook_reclaim(self, epoch: int, seq: int, now: float, until: float,
                     owner: str) -> Any:
        with self.db.lock:
            at = self.db.at(epoch)
            lease = at.leases.get(seq)
            if lease is None or lease[0] is None or lease[0] > now:
                return None
            at.leases[seq] = (until, owner)
            found = at.hooks.get(seq)
            return found[0] if found else None

    def close(self) -> None:
        self.closed = True


def register() -> None:
    """Serve `toy://NAME` store URLs with the toy driver."""
    register_driver(SCHEME, ToyDriver)


def url(name: str | None = None) -> str:
    """A fresh toy store URL (a new, empty database)."""
    return f"{SCHEME}://{name or 'db-' + str(time.monotonic_ns())}"
