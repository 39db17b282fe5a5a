"""The SQLite store (`sqlite:///path.db`): survives restarts, shared by the workers of one host.

Standard library `sqlite3` in WAL mode (readers never wait for the writer), `synchronous=NORMAL`
(a commit is durable across a process crash; an OS crash may lose the last commits), one
connection per thread, `busy_timeout` 2 s (a lock held longer is the store unavailable: 503).
Atomic claims are single statements or `BEGIN IMMEDIATE` transactions. Every row carries the
epoch it belongs to; `bump_epoch()` moves the epoch on and deletes the old rows in the same
transaction.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mockserver.core.store.base import META_WRITES, MUTABLE_FIELDS, ROW_WRITES, StoreUnavailable
from mockserver.errors import MockServerError

T = TypeVar("T")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (epoch INTEGER, name TEXT, value INTEGER,
    PRIMARY KEY (epoch, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (epoch INTEGER, id TEXT, at REAL, rec TEXT,
    polls INTEGER NOT NULL DEFAULT 0, canceled_at REAL, forced TEXT, forced_at REAL,
    failure TEXT, PRIMARY KEY (epoch, id));
CREATE INDEX IF NOT EXISTS tasks_at ON tasks (epoch, at);
CREATE TABLE IF NOT EXISTS aliases (epoch INTEGER, key TEXT, id TEXT,
    PRIMARY KEY (epoch, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, epoch INTEGER,
    data TEXT);
CREATE TABLE IF NOT EXISTS rules (epoch INTEGER, id TEXT, pos INTEGER, data TEXT,
    matched INTEGER NOT NULL DEFAULT 0, applied INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (epoch, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hooks (epoch INTEGER, seq INTEGER, data TEXT, pending INTEGER,
    PRIMARY KEY (epoch, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS windows (epoch INTEGER, key TEXT, t REAL);
CREATE INDEX IF NOT EXISTS windows_key ON windows (epoch, key, t);
CREATE TABLE IF NOT EXISTS claims (epoch INTEGER, name TEXT, PRIMARY KEY (epoch, name))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (epoch INTEGER, seq INTEGER, until REAL, owner TEXT,
    PRIMARY KEY (epoch, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_until ON leases (epoch, until);
INSERT OR IGNORE INTO meta VALUES ('epoch', 1);
"""
EPOCH = "(SELECT value FROM meta WHERE key = 'epoch')"
SYNC = (f"SELECT {EPOCH}, (SELECT value FROM meta WHERE key = 'clock_now'), "
        "(SELECT value FROM meta WHERE key = 'clock_offset'), "
        f"(SELECT value FROM counters WHERE epoch = {EPOCH} AND name = 'rules_rev'), "
        f"(SELECT value FROM counters WHERE epoch = {EPOCH} AND name = 'hooks_pending')")
TASK = ("SELECT {rec}, polls, canceled_at, forced, forced_at, failure FROM tasks "
        "WHERE epoch = ? AND id = ?")


_BUGS = ("syntax error", "no such column", "incomplete input", "unrecognized token")


def _guard(fn: Callable[..., T]) -> Callable[..., T]:
    """sqlite3's operational errors (locked past the busy timeout, disk I/O, a file that went
    away) are the store being unavailable: families answer 503."""

    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        # This connection's own commits do not move its data_version: forget what they touch.
        if name in META_WRITES:
            local = args[0]._local
            local.writes = getattr(local, "writes", 0) + 1
        elif name in ROW_WRITES:  # only the rows it writes
            rows = getattr(args[0]._local, "rows", None)
            if rows:
                for task_id in ROW_WRITES[name](args[1:]):
                    rows.pop(task_id, None)
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if any(word in str(exc) for word in _BUGS):
                raise  # our SQL, not the store: a bug to see, not a 503
            raise StoreUnavailable(f"sqlite: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # not a database (any more), malformed
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    return wrapper


class SqliteDriver:
    """The shared-store operations (see shared.py) over one SQLite file."""

    def __init__(self, url: str) -> None:
        path = url.removeprefix("sqlite:")
        if not path.startswith("///"):
            raise MockServerError(f"a SQLite store URL is sqlite:///path.db, not {url!r}")
        path = path[3:]
        if not path or path == ":memory:":
            raise MockServerError("the SQLite store needs a file (sqlite:///path.db); "
                                  "use the memory store for one process")
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise MockServerError(f"no directory {self.path.parent} for the SQLite store")
        self.journal_size = 1000
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._guarded_init()

    @_guard
    def _guarded_init(self) -> None:
        self._db().executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            self._conns.append(db)
        return db

    def _tx(self) -> Any:
        return _Tx(self._db())

    # -- the per-request read ----------------------------------------------------------------
    @_guard
    def sync(self, task_id: str | None, want_rec: bool) -> dict[str, Any]:
        """What a request reads. Unless some connection committed since this one last read
        (`PRAGMA data_version`, which moves on every other connection's commit, and this
        connection's own write count), the last read still holds and costs nothing more."""
        db = self._db()
        local = self._local
        version = (db.execute("PRAGMA data_version").fetchone()[0], getattr(local, "writes", 0))
        if getattr(local, "version", None) != version:
            local.version = version
            e, now, offset, rules, hooks = db.execute(SYNC).fetchone()
            local.meta = (int(e), float(now or 0.0), float(offset or 0.0), int(rules or 0),
                          int(hooks or 0))
            local.rows = {}
        epoch, now, offset, rules, hooks = local.meta
        row = None
        if task_id is not None:
            rows: dict[str, Any] = local.rows
            row = rows.get(task_id)
            if row is None or (want_rec and row[0] is None):
                row = db.execute(TASK.format(rec="rec" if want_rec else "NULL"),
                                 (epoch, task_id)).fetchone()
                if len(rows) > 1024:
                    rows.clear()
                rows[task_id] = row
        return {"epoch": epoch, "now": now, "offset": offset, "skew": 0.0, "rules": rules,
                "hooks": hooks, "task_id": task_id, "row": row}

    @_guard
    def bump_epoch(self) -> int:
        with self._tx() as db:
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'epoch'")
            epoch = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]
            for table in ("counters", "tasks", "aliases", "journal", "rules", "hooks",
                          "windows", "claims", "leases"):
                db.execute(f"DELETE FROM {table} WHERE epoch < ?", (epoch,))  # noqa: S608
        return int(epoch)

    # -- clock, secret, counters -------------------------------------------------------------
    @_guard
    def init_clock(self, start: float) -> None:
        self._db().execute("INSERT OR IGNORE INTO meta VALUES ('clock_now', ?), "
                           "('clock_offset', 0.0)", (start,))

    @_guard
    def restart_clock(self, start: float) -> None:
        self._db().execute("INSERT OR REPLACE INTO meta VALUES ('clock_now', ?), "
                           "('clock_offset', 0.0)", (start,))

    @_guard
    def advance(self, kind: str, seconds: float) -> tuple[float, float]:
        key = "clock_now" if kind == "manual" else "clock_offset"
        with self._tx() as db:
            db.execute("UPDATE meta SET value = value + ? WHERE key = ?", (seconds, key))
            now = db.execute("SELECT value FROM meta WHERE key = 'clock_now'").fetchone()[0]
            off = db.execute("SELECT value FROM meta WHERE key = 'clock_offset'").fetchone()[0]
        return float(now), float(off)

    @_guard
    def secret(self, candidate: str) -> str:
        db = self._db()
        db.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (candidate,))
        return str(db.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()[0])

    @_guard
    def counter(self, epoch: int, name: str, by: int) -> int:
        row = self._db().execute(
            "INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (epoch, name) DO UPDATE "
            "SET value = value + excluded.value RETURNING value", (epoch, name, by)).fetchone()
        return int(row[0])

    # -- tasks -------------------------------------------------------------------------------
    @_guard
    def put_tasks(self, epoch: int, rows: list[tuple[str, float, str]]) -> list[bool]:
        """Insert tasks (id, submitted at, record) in one transaction; which were new."""
        if len(rows) == 1:  # one statement is its own transaction
            cur = self._db().execute("INSERT OR IGNORE INTO tasks (epoch, id, at, rec) "
                                     "VALUES (?, ?, ?, ?)", (epoch, *rows[0]))
            return [cur.rowcount == 1]
        with self._tx() as db:
            return [db.execute("INSERT OR IGNORE INTO tasks (epoch, id, at, rec) "
                               "VALUES (?, ?, ?, ?)", (epoch, task_id, at, rec)).rowcount == 1
                    for task_id, at, rec in rows]

    @_guard
    def task(self, epoch: int, task_id: str, want_rec: bool) -> Any:
        return self._db().execute(TASK.format(rec="rec" if want_rec else "NULL"),
                                  (epoch, task_id)).fetchone()

    @_guard
    def tasks(self, epoch: int, limit: int | None,
              offset: int = 0) -> list[tuple[str, Any]]:
        """Tasks oldest first (`limit` of them from `offset`; all without a limit)."""
        sql = ("SELECT id, rec, polls, canceled_at, forced, forced_at, failure FROM tasks "
               "WHERE epoch = ? ORDER BY at, rowid LIMIT ? OFFSET ?")
        rows = self._db().execute(sql, (epoch, limit or -1, offset)).fetchall()
        return [(r[0], r[1:]) for r in rows]

    @_guard
    def count_tasks(self, epoch: int) -> int:
        return int(self._db().execute("SELECT count(*) FROM tasks WHERE epoch = ?",
                                      (epoch,)).fetchone()[0])

    @_guard
    def remove_tasks(self, epoch: int, ids: list[str]) -> int:
        with self._tx() as db:
            cur = db.executemany("DELETE FROM tasks WHERE epoch = ? AND id = ?",
                                 [(epoch, i) for i in ids])
            db.executemany("DELETE FROM aliases WHERE epoch = ? AND id = ?",
                           [(epoch, i) for i in ids])
        return int(cur.rowcount)

    @_guard
    def update_task(self, epoch: int, task_id: str, values: dict[str, Any]) -> None:
        cols = [k for k in values if k in MUTABLE_FIELDS]
        if cols:
            self._db().execute(
                f"UPDATE tasks SET {', '.join(f'{c} = ?' for c in cols)} "  # noqa: S608
                "WHERE epoch = ? AND id = ?", [values[c] for c in cols] + [epoch, task_id])

    @_guard
    def incr_polls(self, epoch: int, task_id: str) -> int:
        row = self._db().execute("UPDATE tasks SET polls = polls + 1 WHERE epoch = ? AND id = ? "
                                 "RETURNING polls", (epoch, task_id)).fetchone()
        return int(row[0]) if row else 0

    @_guard
    def alias(self, epoch: int, key: str, task_id: str) -> None:
        self._db().execute("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)",
                           (epoch, key, task_id))

    @_guard
    def resolve(self, epoch: int, key: str) -> str | None:
        row = self._db().execute("SELECT id FROM aliases WHERE epoch = ? AND key = ?",
                                 (epoch, key)).fetchone()
        return row[0] if row else None

    # -- batched writes, journal -------------------------------------------------------------
    @_guard
    def write_batch(self, entries: list[tuple[int, str]],
                    polls: dict[tuple[int, str], int]) -> None:
        with self._tx() as db:
            if entries:
                db.executemany("INSERT INTO journal (epoch, data) VALUES (?, ?)", entries)
                last = db.execute("SELECT max(seq) FROM journal").fetchone()[0]
                db.execute("DELETE FROM journal WHERE seq <= ?", (last - self.journal_size,))
            if polls:
                db.executemany("UPDATE tasks SET polls = polls + ? WHERE epoch = ? AND id = ?",
                               [(n, e, i) for (e, i), n in polls.items()])

    @_guard
    def journal(self, epoch: int) -> list[tuple[int, str]]:
        return self._db().execute("SELECT seq, data FROM journal WHERE epoch = ? ORDER BY seq",
                                  (epoch,)).fetchall()

    @_guard
    def journal_len(self, epoch: int) -> int:
        return int(self._db().execute("SELECT count(*) FROM journal WHERE epoch = ?",
                                      (epoch,)).fetchone()[0])

    # -- scenario rules ----------------------------------------------------------------------
    def _rev(self, db: sqlite3.Connection, epoch: int) -> None:
        db.execute("INSERT INTO counters VALUES (?, 'rules_rev', 1) ON CONFLICT (epoch, name) "
                   "DO UPDATE SET value = value + 1", (epoch,))

    @_guard
    def rule_put(self, epoch: int, rule_id: str, data: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO rules (epoch, id, pos, data) VALUES (?, ?, "
                       "(SELECT coalesce(max(pos), 0) + 1 FROM rules WHERE epoch = ?), ?)",
                       (epoch, rule_id, epoch, data))
            self._rev(db, epoch)

    @_guard
    def rules_seed(self, epoch: int, rules: list[tuple[str, str]]) -> bool:
        """Put the option's rules (ids r1..rN) into `epoch` unless some worker did, claim and
        rules in one transaction: True when these were kept."""
        with self._tx() as db:
            if db.execute("INSERT OR IGNORE INTO claims VALUES (?, 'rules-loaded')",
                          (epoch,)).rowcount != 1:
                return False
            for rule_id, data in rules:
                db.execute("INSERT INTO rules (epoch, id, pos, data) VALUES (?, ?, "
                           "(SELECT coalesce(max(pos), 0) + 1 FROM rules WHERE epoch = ?), ?)",
                           (epoch, rule_id, epoch, data))
            if rules:
                db.execute("INSERT INTO counters VALUES (?, 'rules', ?) ON CONFLICT (epoch, name) "
                           "DO UPDATE SET value = value + excluded.value", (epoch, len(rules)))
                self._rev(db, epoch)
        return True

    @_guard
    def rule_remove(self, epoch: int, rule_id: str) -> bool:
        with self._tx() as db:
            gone = db.execute("DELETE FROM rules WHERE epoch = ? AND id = ?",
                              (epoch, rule_id)).rowcount
            self._rev(db, epoch)
        return gone == 1

    @_guard
    def rules_clear(self, epoch: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM rules WHERE epoch = ?", (epoch,))
            self._rev(db, epoch)

    @_guard
    def rules(self, epoch: int) -> list[tuple[str, int, int]]:
        return self._db().execute("SELECT data, matched, applied FROM rules WHERE epoch = ? "
                                  "ORDER BY pos", (epoch,)).fetchall()

    @_guard
    def rule_count(self, epoch: int, rule_id: str, column: str, limit: int | None) -> int:
        """Count a match (`matched`) or claim an application (`applied`, below `limit`)
        atomically; the new count, or 0 when the limit is reached."""
        assert column in ("matched", "applied")
        cond = "" if limit is None else f" AND {column} < {int(limit)}"
        row = self._db().execute(
            f"UPDATE rules SET {column} = {column} + 1 WHERE epoch = ? AND id = ?{cond} "  # noqa: S608
            f"RETURNING {column}", (epoch, rule_id)).fetchone()
        return int(row[0]) if row else 0

    # -- rate windows ------------------------------------------------------------------------
    @_guard
    def admit(self, epoch: int, key: str, now: float, qps: float) -> bool:
        with self._tx() as db:
            db.execute("DELETE FROM windows WHERE epoch = ? AND key = ? AND t <= ?",
                       (epoch, key, now - 1.0))
            count = db.execute("SELECT count(*) FROM windows WHERE epoch = ? AND key = ?",
                               (epoch, key)).fetchone()[0]
            if count >= qps:
                return False
            db.execute("INSERT INTO windows VALUES (?, ?, ?)", (epoch, key, now))
        return True

    # -- webhooks ----------------------------------------------------------------------------
    @_guard
    def hook_put(self, epoch: int, seq: int, data: str, pending: bool) -> None:
        with self._tx() as db:
            if pending:
                db.execute("INSERT INTO hooks VALUES (?, ?, ?, 1)", (epoch, seq, data))
                db.execute("INSERT INTO counters VALUES (?, 'hooks_pending', 1) "
                           "ON CONFLICT (epoch, name) DO UPDATE SET value = value + 1", (epoch,))
            else:
                db.execute("UPDATE hooks SET data = ? WHERE epoch = ? AND seq = ?",
                           (data, epoch, seq))

    @_guard
    def hooks(self, epoch: int, pending: bool | None) -> list[tuple[int, str]]:
        where = "" if pending is None else " AND pending = 1"
        return self._db().execute(f"SELECT seq, data FROM hooks WHERE epoch = ?{where} "  # noqa: S608
                                  "ORDER BY seq", (epoch,)).fetchall()

    @_guard
    def hook_claim(self, epoch: int, seq: int, until: float | None = None,
                   owner: str = "") -> bool:
        """Claim a due webhook, leased to `owner` until `until` (store time; see outbox.py)."""
        with self._tx() as db:
            won = db.execute("UPDATE hooks SET pending = 0 WHERE epoch = ? AND seq = ? "
                             "AND pending = 1", (epoch, seq)).rowcount == 1
            if won:
                db.execute("UPDATE counters SET value = value - 1 WHERE epoch = ? "
                           "AND name = 'hooks_pending'", (epoch,))
                if until is not None:
                    db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
                               (epoch, seq, until, owner))
        return won

    @_guard
    def hook_save(self, epoch: int, seq: int, data: str, until: float | None,
                  owner: str) -> bool:
        """Store a webhook and renew its lease (release it: `until` None); False when another
        worker owns the delivery now."""
        with self._tx() as db:
            row = db.execute("SELECT owner FROM leases WHERE epoch = ? AND seq = ?",
                             (epoch, seq)).fetchone()
            if row is not None and row[0] != owner:
                return False
            db.execute("UPDATE hooks SET data = ? WHERE epoch = ? AND seq = ?",
                       (data, epoch, seq))
            if row is not None:
                db.execute("UPDATE leases SET until = ? WHERE epoch = ? AND seq = ?",
                           (until, epoch, seq))
        return True

    @_guard
    def hooks_expired(self, epoch: int, now: float, limit: int) -> list[int]:
        """Webhooks whose lease ran out by `now`, oldest lease first."""
        rows = self._db().execute("SELECT seq FROM leases WHERE epoch = ? AND until <= ? "
                                  "ORDER BY until LIMIT ?", (epoch, now, limit)).fetchall()
        return [int(r[0]) for r in rows]

    @_guard
    def hook_reclaim(self, epoch: int, seq: int, now: float, until: float,
                     owner: str) -> Any:
        """Take over a delivery whose lease ran out by `now`: its record, or None when it
        had not run out (another worker took it first)."""
        with self._tx() as db:
            if db.execute("UPDATE leases SET until = ?, owner = ? WHERE epoch = ? AND seq = ? "
                          "AND until <= ?", (until, owner, epoch, seq, now)).rowcount != 1:
                return None
            row = db.execute("SELECT data FROM hooks WHERE epoch = ? AND seq = ?",
                             (epoch, seq)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        for db in self._conns:
            try:
                db.close()
            except sqlite3.Error:
                pass
        self._conns.clear()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SqliteDriver({os.fspath(self.path)!r})"


class _Tx:
    """`BEGIN IMMEDIATE` ... `COMMIT` (or `ROLLBACK` on error): one writer at a time."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK" if kind is not None else "COMMIT")
