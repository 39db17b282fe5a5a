"""The Redis store (`redis://host:port/db`): shared by any number of workers and hosts.

redis-py with one connection pool per process. Every operation that reads and writes is one Lua
script (atomic on the server, one round trip; redis-py reloads scripts a restarted server
lost). Keys live under `wanmock:` (`?prefix=NAME` in the URL changes it), those of an epoch under
`wanmock:<epoch>:`; `bump_epoch()` moves every worker on at once and then unlinks the old keys.

Time: hosts' clocks may disagree, so a shared system clock reads the Redis server's `TIME`: each
worker measures the skew between its own clock and the server's (every 30 s, from the midpoint
of a `TIME` round trip) and adds it. A manual clock is one value in Redis.

Faults: an unreachable, restarting or loading server raises `StoreUnavailable` (the families
answer 503) after a short bounded retry; redis-py drops the broken connection from its pool, so
the next request reconnects. A restarted server without persistence has lost the state: the
epoch key is set anew from the server's time, which every worker sees as a reset: the
`--scenarios` rules go into it once (`parts.SharedBook`), the running workers put the unseeded
signing secret back (`parts.SharedSigner`), the manual clock carries on from the last time the
first worker to reconnect read it (never back to its start: `SYNC`'s start argument; a system
clock's advance is lost), and webhooks owed are lost with the data (see outbox.py).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

from mockserver.core.store import redis_lua as lua
from mockserver.core.store.base import META_WRITES, MUTABLE_FIELDS, ROW_WRITES, StoreUnavailable
from mockserver.core.store.redis_cache import ReadCache
from mockserver.errors import MockServerError

T = TypeVar("T")
SKEW_EVERY_S = 30.0
TIMEOUT_S = 1.0  # every Redis call: connect and each read (a hung server costs this once)
PROBE_S = 0.25  # the PING that decides whether a server that failed is back
COOLDOWN_S = 1.0  # after a failed call, calls fail at once this long before the next probe



def _guard(fn: Callable[..., T]) -> Callable[..., T]:
    """Connection trouble (refused, reset, timeout, the server loading its data) is the store
    being unavailable: families answer 503 and the next request tries again."""
    import redis.exceptions as rex

    down = (rex.ConnectionError, rex.TimeoutError, rex.BusyLoadingError, rex.ReadOnlyError,
            rex.ClusterDownError, rex.TryAgainError, OSError)

    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        breaker: Breaker = args[0].breaker
        breaker.check()
        try:
            result = fn(*args, **kwargs)
            breaker.ok()
            return result
        except down as exc:
            if isinstance(exc, rex.TimeoutError | TimeoutError):  # hung, not refused: fail
                breaker.trip()                                   # fast for a while
            raise StoreUnavailable(f"redis: {exc}") from exc
        except rex.ResponseError as exc:
            if "LOADING" in str(exc) or "MASTERDOWN" in str(exc):
                raise StoreUnavailable(f"redis: {exc}") from exc
            raise
        finally:
            # This process's own writes: never serve what it read before them.
            if name in META_WRITES:
                args[0]._cache.clear()
            elif name in ROW_WRITES:  # only the rows it wrote (others' arrive as messages)
                rows = args[0]._cache.rows
                for task_id in ROW_WRITES[name](args[1:]):
                    rows.pop(task_id, None)

    return wrapper


class Breaker:
    """Fail fast while Redis is hung. Every call already has a short socket timeout
    (`TIMEOUT_S`), but the calls are synchronous: a hung server would hold the event loop for
    a timeout per call, request after request. (A server that is gone refuses at once and
    needs no breaker.) After one call times out, calls fail at once for
    `COOLDOWN_S`; then a `PING` with a `PROBE_S` timeout decides whether calls go to Redis
    again. So with a hung server a request is answered 503 within `TIMEOUT_S` (the call that
    finds it hung) plus a probe, and the worker recovers by itself within `COOLDOWN_S` of the
    server's return."""

    def __init__(self, probe: Callable[[], object]) -> None:
        self.probe = probe
        self.down_until = 0.0
        self.down = False

    def check(self) -> None:
        if not self.down:
            return
        if time.monotonic() < self.down_until:
            raise StoreUnavailable("redis: down (the last call failed; retrying shortly)")
        try:
            self.probe()
        except Exception as exc:  # still down or hung: another cooldown
            self.trip()
            raise StoreUnavailable(f"redis: down ({exc})") from exc
        self.down = False

    def trip(self) -> None:
        self.down = True
        self.down_until = time.monotonic() + COOLDOWN_S

    def ok(self) -> None:
        self.down = False


_GONE = ("gone",)  # a cached read of a task that does not exist


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class RedisDriver:
    """The shared-store operations (see shared.py) on a Redis server."""

    def __init__(self, url: str) -> None:
        try:
            import redis
            from redis.backoff import ExponentialBackoff, NoBackoff
            from redis.retry import Retry
        except ImportError:  # pragma: no cover - redis is a dependency
            raise MockServerError("the Redis store needs redis-py: pip install redis") from None
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.ns = (query.pop("prefix", ["wanmock"]) or ["wanmock"])[0]
        cached = (query.pop("cache", ["on"]) or ["on"])[0] != "off"  # `?cache=off`: no cache
        rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        try:
            # A stale connection (the server restarted) is retried; a timeout is not: the
            # server is hung and the Breaker answers for it.
            self.r = redis.Redis.from_url(
                clean, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S,
                retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 2,
                            supported_errors=(redis.exceptions.ConnectionError,)),
                health_check_interval=15)
            probe = redis.Redis.from_url(clean, socket_connect_timeout=PROBE_S,
                                         socket_timeout=PROBE_S, retry=Retry(NoBackoff(), 0))
        except ValueError as exc:
            raise MockServerError(f"bad Redis URL {url!r}: {exc}") from None
        self.breaker = Breaker(probe.ping)
        self.journal_size = 1000
        self._local = threading.local()
        self._hot_conns: list[Any] = []
        self._cache = ReadCache(self)
        self._cache.enabled = self._cache.enabled and cached
        self.skew = 0.0
        self._skew_at = float("-inf")
        self._start = "0"
        self._seen = ""  # the last epoch this worker read ("": none yet; see redis_lua._EPOCH)
        reg = self.r.register_script
        self._sync, self._task, self._put = reg(lua.SYNC), reg(lua.TASK), reg(lua.PUT_TASKS)
        self._remove, self._hset_if, self._poll = reg(lua.REMOVE), reg(lua.HSET_IF), reg(lua.POLL)
        self._batch, self._rule_put = reg(lua.BATCH), reg(lua.RULE_PUT)
        self._rule_remove, self._rules_clear = reg(lua.RULE_REMOVE), reg(lua.RULES_CLEAR)
        self._rules, self._rule_count = reg(lua.RULES), reg(lua.RULE_COUNT)
        self._admit = reg(lua.ADMIT)
        self._hook_claim, self._advance, self._bump = (reg(lua.HOOK_CLAIM), reg(lua.ADVANCE),
                                                       reg(lua.BUMP))

    def _hot(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA on this thread's own connection, past redis-py's pool and retry layers
        (half the client-side cost of the one round trip every request makes). A broken
        connection is dropped and reconnects on the next call; a script a restarted server
        lost is loaded again."""
        import redis.exceptions as rex

        conn = self._conn()
        for attempt in (0, 1):
            try:
                conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args,
                                  check_health=False)
                return conn.read_response()
            except rex.NoScriptError:
                conn.send_command("SCRIPT", "LOAD", script.script, check_health=False)
                conn.read_response()
            except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
                conn.disconnect()
                conn._wanmock_tracking = None  # a new connection is not tracked
                self._cache.drop()
                if attempt or isinstance(exc, rex.TimeoutError):  # hung: no second wait
                    raise
        raise rex.ConnectionError("EVALSHA failed twice")

    def _conn(self) -> Any:
        """This thread's own connection for the hot path."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.r.connection_pool.make_connection()
            self._hot_conns.append(conn)
        return conn

    def _p(self, epoch: int) -> str:
        return f"{self.ns}:{epoch}:"

    @staticmethod
    def _row(values: list[Any]) -> Any:
        """(rec, polls, canceled_at, forced, forced_at, failure), or None for no task."""
        if not values or values[0] is None:
            return None
        rec = values[6] if len(values) > 6 else None
        return (rec, values[1], values[2], _s(values[3]), values[4], values[5])

    # -- the per-request read ----------------------------------------------------------------
    @_guard
    def sync(self, task_id: str | None, want_rec: bool) -> dict[str, Any]:
        """What a request reads: from the cache Redis invalidates (redis_cache.py) when it
        holds it, else one round trip, kept for the next request."""
        if time.monotonic() - self._skew_at > SKEW_EVERY_S:
            self._measure_skew()
        cache = self._cache
        with cache.lock:
            trusted = cache.enabled and cache.drain()
            meta = cache.meta
            if trusted and meta is not None:
                if task_id is None:
                    return self._view(meta, None, None)
                row = cache.rows.get(task_id)
                # Cached rows are read ones (`_row`), or _GONE for no task.
                if row is not None and (not want_rec or row is _GONE or row[0] is not None):
                    return self._view(meta, task_id, None if row is _GONE else row)
            conn = self._conn()
            trusted = self._track(conn)
            e, now, offset, rules, hooks, raw = self._hot(
                self._sync, [], [self.ns, task_id or "", "1" if want_rec else "0",
                                 self._start, self._seen])
            self._start = now  # a server that lost its data starts the manual clock here again
            self._seen = str(int(e))
            meta = (int(e), float(now), float(offset), int(rules), int(hooks))
            row = self._row(raw) if task_id else None
            if trusted and cache.drain():  # nothing changed it since the read began
                cache.meta = meta
                if task_id:
                    if len(cache.rows) > 4096:
                        cache.rows.clear()
                    cache.rows[task_id] = _GONE if row is None else row
            return self._view(meta, task_id, row)

    def _view(self, meta: tuple[Any, ...], task_id: str | None, row: Any) -> dict[str, Any]:
        e, now, offset, rules, hooks = meta
        return {"epoch": e, "now": now, "offset": offset, "skew": self.skew, "rules": rules,
                "hooks": hooks, "task_id": task_id, "row": row}

    def _track(self, conn: Any) -> bool:
        try:
            return self._cache.track(conn)
        except Exception:  # tracking could not be turned on: read through, try again later
            self._cache.drop()
            conn.disconnect()
            conn._wanmock_tracking = None
            return False

    def _measure_skew(self) -> None:
        before = time.time()
        seconds, micros = self.r.time()
        after = time.time()
        self.skew = seconds + micros / 1e6 - (before + after) / 2
        self._skew_at = time.monotonic()

    @_guard
    def bump_epoch(self) -> int:
        old, new = (int(x) for x in self._bump(args=[self.ns, self._seen]))
        self._seen = str(new)
        self._unlink(old)
        return new

    def _unlink(self, epoch: int) -> None:
        """Drop an old epoch's keys (every worker has moved on; nobody reads them)."""
        p = self._p(epoch)
        ids = self.r.zrange(p + "tasks", 0, -1)
        for i in range(0, len(ids), 500):
            self.r.unlink(*[p + "t:" + _s(x) for x in ids[i:i + 500]])
        self.r.unlink(*[p + name for name in ("tasks", "c", "m", "alias", "j", "rules",
                                              "rorder", "rc", "claims", "h", "hp", "hl", "ho")])

    # -- clock, secret, counters -------------------------------------------------------------
    @_guard
    def init_clock(self, start: float) -> None:
        if float(self._start) < start:  # not below what this worker has read (see sync)
            self._start = repr(float(start))
        self.r.hsetnx(f"{self.ns}:clock", "now", repr(float(start)))
        self.r.hsetnx(f"{self.ns}:clock", "offset", "0")

    @_guard
    def restart_clock(self, start: float) -> None:
        self._start = repr(float(start))
        self.r.hset(f"{self.ns}:clock", mapping={"now": self._start, "offset": "0"})

    @_guard
    def advance(self, kind: str, seconds: float) -> tuple[float, float]:
        field = "now" if kind == "manual" else "offset"
        now, offset = self._advance(keys=[f"{self.ns}:clock"], args=[field, repr(seconds)])
        self._start = now
        return float(now), float(offset)

    @_guard
    def secret(self, candidate: str) -> str:
        key = f"{self.ns}:secret"
        self.r.set(key, candidate, nx=True)
        return str(_s(self.r.get(key)))

    @_guard
    def counter(self, epoch: int, name: str, by: int) -> int:
        return int(self.r.hincrby(self._p(epoch) + "c", name, by))

    @_guard
    def lineage(self) -> str:
        """"" for a store that never lost its data, else the epoch it started again with."""
        return _s(self.r.get(f"{self.ns}:lineage") or b"")

    # -- tasks -------------------------------------------------------------------------------
    @_guard
    def put_tasks(self, epoch: int, rows: list[tuple[str, float, str]]) -> list[bool]:
        """Insert tasks (id, submitted at, record) in one script; which were new."""
        flat: list[Any] = [self._p(epoch)]
        for task_id, at, rec in rows:
            flat += [task_id, repr(at), rec]
        return [bool(x) for x in self._hot(self._put, [], flat)]

    @_guard
    def task(self, epoch: int, task_id: str, want_rec: bool) -> Any:
        return self._row(self._task(keys=[self._p(epoch) + "t:" + task_id],
                                    args=["1" if want_rec else "0"]))

    @_guard
    def tasks(self, epoch: int, limit: int | None,
              offset: int = 0) -> list[tuple[str, Any]]:
        """Tasks oldest first (`limit` of them from `offset`; all without a limit)."""
        p = self._p(epoch)
        stop = offset + limit - 1 if limit else -1
        ids = [_s(x) for x in self.r.zrange(p + "tasks", offset, stop)]
        pipe = self.r.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(p + "t:" + task_id, "at", "polls", "canceled_at", "forced", "forced_at",
                       "failure", "rec")
        return [(task_id, self._row(values)) for task_id, values in zip(ids, pipe.execute(),
                                                                         strict=True)]

    @_guard
    def count_tasks(self, epoch: int) -> int:
        return int(self.r.zcard(self._p(epoch) + "tasks"))

    @_guard
    def remove_tasks(self, epoch: int, ids: list[str]) -> int:
        gone = 0
        for i in range(0, len(ids), 500):
            gone += int(self._remove(args=[self._p(epoch), *ids[i:i + 500]]))
        return gone

    @_guard
    def update_task(self, epoch: int, task_id: str, values: dict[str, Any]) -> None:
        flat: list[Any] = []
        for name, value in values.items():
            if name not in MUTABLE_FIELDS:
                continue
            flat += [name, "" if value is None else (repr(value) if isinstance(value, float)
                                                      else str(value))]
        if flat:
            self._hset_if(keys=[self._p(epoch) + "t:" + task_id], args=flat)

    @_guard
    def incr_polls(self, epoch: int, task_id: str) -> int:
        return int(self._poll(keys=[self._p(epoch) + "t:" + task_id], args=[1]))

    @_guard
    def alias(self, epoch: int, key: str, task_id: str) -> None:
        p = self._p(epoch)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(p + "alias", key, task_id)
        pipe.hset(p + "t:" + task_id, "al", key)
        pipe.execute()

    @_guard
    def resolve(self, epoch: int, key: str) -> str | None:
        found = self.r.hget(self._p(epoch) + "alias", key)
        return _s(found) if found is not None else None

    # -- batched writes, journal -------------------------------------------------------------
    @_guard
    def write_batch(self, entries: list[tuple[int, str]],
                    polls: dict[tuple[int, str], int]) -> None:
        epochs = {e for e, _ in entries} | {e for e, _ in polls}
        for epoch in epochs:
            mine = [data for e, data in entries if e == epoch]
            args: list[Any] = [self._p(epoch), self.journal_size, len(mine), *mine]
            for (e, task_id), n in polls.items():
                if e == epoch:
                    args += [task_id, n]
            self._batch(args=args)

    @_guard
    def journal(self, epoch: int) -> list[tuple[int, bytes]]:
        out = []
        items: list[bytes] = self.r.lrange(self._p(epoch) + "j", 0, -1)  # type: ignore[assignment]
        for item in items:
            seq, _, data = item.partition(b"|")
            out.append((int(seq), data))
        return out

    @_guard
    def journal_len(self, epoch: int) -> int:
        return int(self.r.llen(self._p(epoch) + "j"))

    # -- scenario rules ----------------------------------------------------------------------
    @_guard
    def rule_put(self, epoch: int, rule_id: str, data: str) -> None:
        self._rule_put(args=[self._p(epoch), rule_id, data])

    @_guard
    def rules_seed(self, epoch: int, rules: list[tuple[str, str]]) -> bool:
        """Put the option's rules (ids r1..rN) into `epoch` unless some worker did: True
        when these were kept."""
        flat = [x for pair in rules for x in pair]
        return bool(self._script(lua.RULES_SEED)(args=[self._p(epoch), len(rules), *flat]))

    def _script(self, text: str) -> Any:
        """A script registered on first use (the rare operations: seeding, leases)."""
        scripts = self.__dict__.setdefault("_scripts", {})
        found = scripts.get(text)
        if found is None:
            found = scripts[text] = self.r.register_script(text)
        return found

    @_guard
    def rule_remove(self, epoch: int, rule_id: str) -> bool:
        return bool(self._rule_remove(args=[self._p(epoch), rule_id]))

    @_guard
    def rules_clear(self, epoch: int) -> None:
        self._rules_clear(args=[self._p(epoch)])

    @_guard
    def rules(self, epoch: int) -> list[tuple[Any, int, int]]:
        return [(data, int(m), int(a)) for data, m, a in self._rules(args=[self._p(epoch)])]

    @_guard
    def rule_count(self, epoch: int, rule_id: str, column: str, limit: int | None) -> int:
        return int(self._rule_count(args=[self._p(epoch), rule_id, column,
                                          "" if limit is None else limit]))

    # -- rate windows ------------------------------------------------------------------------
    @_guard
    def admit(self, epoch: int, key: str, now: float, qps: float) -> bool:
        member = f"{now!r}:{time.monotonic_ns()}:{id(self)}"
        return bool(self._admit(keys=[self._p(epoch) + "w:" + key],
                                args=[repr(now), repr(qps), member]))

    # -- webhooks ----------------------------------------------------------------------------
    @_guard
    def hook_put(self, epoch: int, seq: int, data: str, pending: bool) -> None:
        p = self._p(epoch)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(p + "h", str(seq), data)
        if pending:
            pipe.sadd(p + "hp", str(seq))
            pipe.hincrby(p + "m", "hooks_pending", 1)
        pipe.execute()

    @_guard
    def hooks(self, epoch: int, pending: bool | None) -> list[tuple[int, Any]]:
        p = self._p(epoch)
        if pending:
            seqs = sorted(int(x) for x in self.r.smembers(p + "hp"))
            if not seqs:
                return []
            values = self.r.hmget(p + "h", [str(s) for s in seqs])
            return [(s, v) for s, v in zip(seqs, values, strict=True) if v is not None]
        return sorted((int(k), v) for k, v in self.r.hgetall(p + "h").items())

    @_guard
    def hook_claim(self, epoch: int, seq: int, until: float | None = None,
                   owner: str = "") -> bool:
        """Claim a due webhook, leased to `owner` until `until` (store time; see outbox.py)."""
        return bool(self._hook_claim(args=[self._p(epoch), str(seq),
                                           "" if until is None else repr(until), owner]))

    @_guard
    def hook_save(self, epoch: int, seq: int, data: str, until: float | None,
                  owner: str) -> bool:
        """Store a webhook and renew its lease (release it: `until` None); False when another
        worker owns the delivery now."""
        return bool(self._script(lua.HOOK_SAVE)(args=[
            self._p(epoch), str(seq), data, "" if until is None else repr(until), owner]))

    @_guard
    def hooks_expired(self, epoch: int, now: float, limit: int) -> list[int]:
        """Webhooks whose lease ran out by `now`, oldest lease first."""
        found: list[bytes] = self.r.zrangebyscore(  # type: ignore[assignment]
            self._p(epoch) + "hl", "-inf", repr(now), start=0, num=limit)
        return [int(x) for x in found]

    @_guard
    def hook_reclaim(self, epoch: int, seq: int, now: float, until: float,
                     owner: str) -> Any:
        """Take over a delivery whose lease ran out by `now`: its record, or None when it
        had not run out (another worker took it first)."""
        found = self._script(lua.HOOK_RECLAIM)(args=[self._p(epoch), str(seq), repr(now),
                                                     repr(until), owner])
        return found or None

    def close(self) -> None:
        self._cache.drop()
        for conn in self._hot_conns:
            conn.disconnect()
        self._hot_conns.clear()
        self._local = threading.local()
        try:
            self.r.close()
        except Exception:  # closing a pool whose server is gone
            pass

    def __repr__(self) -> str:
        return f"RedisDriver(prefix={self.ns!r})"
