"""A per-process cache of the Redis store's per-request read, which Redis itself invalidates.

The hot connections turn on `CLIENT TRACKING ... BCAST PREFIX <ns>: REDIRECT <id>`: from then on
Redis publishes the name of every key under the prefix that anyone changes on
`__redis__:invalidate` to one connection of this process (subscribed, RESP2). Redis queues that
message to this process *before* it answers the writer, so by the time a client has heard
from the worker that wrote, the message is in this process's socket buffer; every read drains
that socket (non-blocking) before it trusts the cache. Whenever the subscription may have
missed something (it broke, it is being set up, a connection reconnected) the cache is emptied
and not trusted until tracking is on again.

What is cached: the epoch/clock part of the read (`meta`: invalidated by `epoch`, `clock` and
the epoch's `m` hash, which holds the rules revision and the pending webhooks) and each task's
row (invalidated by its `t:<id>` key).
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Any

CHANNEL = b"__redis__:invalidate"


class ReadCache:
    """The last read of `meta` and of task rows, good until Redis says a key changed."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.ns = driver.ns.encode()
        self.lock = threading.Lock()
        self.meta: tuple[Any, ...] | None = None  # epoch, now, offset, rules, hooks (read)
        self.rows: dict[str, Any] = {}  # task id -> its row as RedisDriver._row reads it
        self._poller: Any = None
        self.generation = 0  # moves on with every new subscription
        self._conn: Any = None
        self._reader: Any = None
        self._client_id: int | None = None
        try:
            import hiredis  # noqa: F401
        except ImportError:  # without hiredis: no cache, every request reads
            self.enabled = False
        else:
            self.enabled = True

    # -- the subscription --------------------------------------------------------------------
    def _subscribe(self) -> bool:
        import hiredis

        pool = self.driver.r.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["protocol"] = 2
        kwargs.pop("retry", None)
        try:
            conn = pool.connection_class(**kwargs)
            conn.connect()
            conn.send_command("CLIENT", "ID")
            client_id = int(conn.read_response())
            conn.send_command("SUBSCRIBE", CHANNEL)
            conn.read_response()
        except Exception:  # the store is down: no cache until it is back
            return False
        conn._sock.setblocking(False)  # drain() must never wait (a timeout would)
        self._poller = select.poll()  # "anything to read?" without a recv that raises
        self._poller.register(conn._sock, select.POLLIN)
        self._conn, self._client_id = conn, client_id
        self._reader = hiredis.Reader()
        self.generation += 1
        self.clear()
        return True

    def drop(self) -> None:
        """Forget everything and the subscription (a connection broke somewhere)."""
        if self._conn is not None:
            try:
                self._conn.disconnect()
            except Exception:  # already gone
                pass
        self._conn = self._client_id = None
        self.clear()

    def clear(self) -> None:
        self.meta = None
        self.rows = {}

    def track(self, conn: Any) -> bool:
        """Turn tracking on for a hot connection (once per subscription); False when the
        cache cannot be trusted now."""
        if not self.enabled:
            return False
        if self._conn is None and not self._subscribe():
            return False
        if getattr(conn, "_wanmock_tracking", None) == self.generation:
            return True
        conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", self._client_id, "BCAST",
                          "PREFIX", self.ns + b":", check_health=False)
        conn.read_response()
        conn._wanmock_tracking = self.generation
        self.clear()  # what was read before tracking began is not covered
        return True

    def drain(self) -> bool:
        """Apply every invalidation already received; False when the subscription broke."""
        conn = self._conn
        if conn is None or conn._sock is None:
            return False
        sock = conn._sock
        if not self._poller.poll(0):  # nothing arrived (a closed socket polls readable)
            return True
        while True:
            try:
                data = sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                self.drop()
                return False
            if not data:  # closed by the server
                self.drop()
                return False
            self._reader.feed(data)
            while True:
                message = self._reader.gets()
                if message is False:
                    break
                self._apply(message)

    def _apply(self, message: Any) -> None:
        if not isinstance(message, list) or len(message) < 3 or message[1] != CHANNEL:
            return
        keys = message[2]
        if keys is None:  # FLUSHALL/FLUSHDB: everything changed
            self.clear()
            return
        ns = self.ns
        for key in keys:
            rest = key[len(ns) + 1:] if key.startswith(ns + b":") else b""
            if rest in (b"epoch", b"clock"):
                self.clear()
                continue
            _, _, tail = rest.partition(b":")
            if tail == b"m":
                self.meta = None
            elif tail.startswith(b"t:"):
                self.rows.pop(tail[2:].decode(), None)
