"""What the `Backend` asks of a store, and how a store is chosen by URL.

A store holds every piece of the fake's mutable state. The `Backend` keeps none of its own: it
asks its store for the components it works with (WireMock's `Stores`, MockServer's
`StateBackend`):

| component | memory (default)             | shared stores (`sqlite:///`, `redis://`)        |
|-----------|------------------------------|--------------------------------------------------|
| tasks     | `TaskStore` (objects)        | write-once records + mutable fields (`polls`...) |
| clock     | `ManualClock`/`SystemClock`  | manual time / offset kept in the store           |
| ids       | `Ids` (seeded RNG)           | blocks b of draws seeded by (seed, b), b counted |
| secret    | derived from the seed        | set once in the store (SET NX), or from the seed |
| journal   | `Journal` (ring buffer)      | appended in batches, trimmed to its size         |
| scenarios | `ScenarioBook`               | rules + atomic `times`/`nth` claims              |
| limiter   | per-process windows          | one sliding window per key in the store          |
| webhooks  | `Outbox`                     | hook records, each delivery leased (outbox.py)   |

Because a task's state is derived from its plan and the clock, a shared store only holds small,
mostly write-once records and a few counters. `reset()` bumps an *epoch* in the store: every
worker compares it with the epoch it cached and forgets its caches when it moved on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from mockserver.core.clock import Clock
from mockserver.errors import MockServerError

SCHEMES = ("memory", "sqlite:///PATH", "redis://HOST:PORT/DB")

# For the drivers' read caches: the driver methods whose write changes the per-request read of
# epoch, clock, rules and webhooks (the cache forgets it), and, for those that write task rows,
# the task ids they touch (from the positional arguments after `self`; only those rows are
# forgotten).
META_WRITES = {"bump_epoch", "init_clock", "restart_clock", "advance", "rule_put", "rule_remove",
               "rules_clear", "rules_seed", "hook_put", "hook_claim"}
ROW_WRITES: dict[str, Callable[[tuple[Any, ...]], Any]] = {
    "put_tasks": lambda a: [row[0] for row in a[1]],
    "update_task": lambda a: [a[1]],
    "incr_polls": lambda a: [a[1]],
    "remove_tasks": lambda a: a[1],
    "write_batch": lambda a: [task_id for _, task_id in a[1]],
}


class StoreUnavailable(Exception):  # noqa: N818 - it is a condition, as `ConnectionError` is
    """The store cannot be reached (or is restarting): families answer their own 503."""


class Store(Protocol):
    """The state of one fake, as components the `Backend` works with (see the module doc)."""

    url: str
    shared: bool  # True when several processes (or hosts) may share this store

    def tasks(self) -> Any: ...

    def clock(self, kind: str) -> Clock: ...

    def ids(self, seed: int | None) -> Any: ...

    def secret(self, seed: int | None, fallback: bytes) -> bytes: ...

    def signer(self, seed: int | None, fallback: bytes) -> Any:
        """The result-URL signer over `secret()` (a shared store's follows its secret)."""

    def journal(self, maxlen: int) -> Any: ...

    def scenarios(self, seed: int | None, load: Callable[[Any], None]) -> Any: ...

    def limiter(self) -> Any: ...

    def outbox(self, maxlen: int) -> Any: ...

    def reset(self) -> None:
        """Forget every task, journal entry, webhook and rule on every worker (epoch + 1)."""

    def begin(self, task_id: str | None = None) -> Any:
        """Start one request: read what every request needs (epoch, clock) in one round trip,
        prefetching `task_id`'s mutable fields; returns a token for `end()`."""

    def end(self, token: Any) -> None: ...

    def flush(self) -> None:
        """Write what is batched (journal entries, poll counts) now."""

    def close(self) -> None: ...


def store_label(url: str) -> str:
    """The store URL without a password (`redis://:secret@host` -> `redis://***@host`), for
    banners and the health endpoint."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.netloc, "***@" + parts.netloc.rpartition("@")[2])
    return url


def open_store(url: str | None) -> Store:
    """The store for a URL: `memory` (default), `sqlite:///path.db`, `redis://host:port/db`."""
    url = (url or "memory").strip()
    if url in ("memory", "memory://", "mem"):
        from mockserver.core.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:"):
        from mockserver.core.store.sqlite import SqliteDriver

        return _shared(SqliteDriver(url), url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mockserver.core.store.redis import RedisDriver

        return _shared(RedisDriver(url), url)
    raise MockServerError(f"unknown store {url!r}; use one of: {', '.join(SCHEMES)}")


def _shared(driver: Any, url: str) -> Store:
    from mockserver.core.store.shared import SharedStore

    return SharedStore(driver, url)
