"""What the `Backend` asks of a store, and what a shared store asks of its driver.

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

The interfaces: `Store` (what the Backend asks of a store), whose components each have theirs
beside their in-memory implementation (`core.tasks.Tasks`, `core.ids.IdSource`,
`core.webhooks.Webhooks`, `Limiter` here; the journal, the scenario book and the URL signer
are classes a shared store subclasses); `Driver` (the atomic operations a shared store needs
of a database: SQLite, Redis, or any other; see ARCHITECTURE.md "Adding a store"); and
`SharedState` (what the shared components read of the `SharedStore` over a driver).
tests/test_store_driver.py holds every driver to `Driver`; tests/test_store.py every store to
the behaviour the Backend relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from mockserver.core.clock import Clock
from mockserver.core.ids import IdSource
from mockserver.core.tasks import Tasks
from mockserver.core.webhooks import Webhooks
from mockserver.errors import StoreUnavailable

if TYPE_CHECKING:
    from mockserver.core.artifacts import Signer
    from mockserver.core.journal import Journal
    from mockserver.core.scenarios import ScenarioBook
    from mockserver.core.tasks import Task

__all__ = ["META_WRITES", "MUTABLE_FIELDS", "ROW_WRITES", "Driver", "IdSource", "Limiter",
           "SharedState", "Store", "StoreUnavailable", "TaskRow", "Tasks", "View", "Webhooks",
           "store_label"]

# A task's row: (record or None when not asked for, polls, canceled_at, forced, forced_at,
# failure). Values may come back as the driver reads them (str or bytes, numbers or their text,
# None or "" for not set); `records.apply_fields` reads either.
TaskRow = tuple[Any, Any, Any, Any, Any, Any]
# The fields of a task's row `Driver.update_task` sets (the record itself is written once).
MUTABLE_FIELDS = ("canceled_at", "forced", "forced_at", "failure")

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


class Driver(Protocol):
    """The atomic operations a shared store asks of its database (`core/store/shared.py`).

    Every record belongs to an *epoch*; a method given `epoch` reads and writes that epoch's
    records only. Each method is atomic on its own (one statement, one transaction or one
    script): two workers calling it at once see one happen before the other. A driver raises
    `StoreUnavailable` when the database cannot be reached (families answer 503) and
    `MockServerError` for a URL it cannot use. Times are epoch seconds on the fake's clock
    unless said otherwise.
    """

    journal_size: int  # journal entries `write_batch` keeps (the newest ones)

    # -- the per-request read ------------------------------------------------------------------
    def sync(self, task_id: str | None, want_rec: bool) -> dict[str, Any]:
        """What one request reads, in one round trip: `epoch`, `now` (the manual clock),
        `offset` (the system clock's), `skew` (the database server's clock minus this host's;
        0.0 when it has none), `rules` (the rules' revision in this epoch), `hooks` (webhooks
        pending), `task_id`, and `row`: that task's `TaskRow` (with its record when
        `want_rec`; a driver may give it without), None when there is no such task or no
        `task_id`."""
        ...

    def bump_epoch(self) -> int:
        """Move the epoch on, dropping every record of the older ones; the new epoch."""
        ...

    # -- clock, secret, counters -------------------------------------------------------------
    def init_clock(self, start: float) -> None:
        """Set the manual clock to `start` and the offset to 0, unless already set."""
        ...

    def restart_clock(self, start: float) -> None:
        """Set the manual clock to `start` and the offset to 0."""
        ...

    def advance(self, kind: str, seconds: float) -> tuple[float, float]:
        """Move the `manual` clock, or the `system` clock's offset, on by `seconds`; the
        (manual time, offset) after it."""
        ...

    def secret(self, candidate: str) -> str:
        """The store's secret: `candidate` if none was set yet (set once, for every worker)."""
        ...

    def counter(self, epoch: int, name: str, by: int) -> int:
        """Add `by` to a counter (0 when new); its new value."""
        ...

    # -- tasks ---------------------------------------------------------------------------------
    def put_tasks(self, epoch: int, rows: list[tuple[str, float, str]]) -> list[bool]:
        """Insert tasks (id, submitted at, record) at once; for each, whether it was new (an
        id already taken keeps its first record)."""
        ...

    def task(self, epoch: int, task_id: str, want_rec: bool) -> TaskRow | None:
        """The task's row (with its record when `want_rec`), or None."""
        ...

    def tasks(self, epoch: int, limit: int | None,
              offset: int = 0) -> list[tuple[str, TaskRow]]:
        """(id, row with its record) of tasks in the order they were put (tasks are put in
        the order of their submit times), oldest first: `limit` of them from `offset`, all
        without a limit."""
        ...

    def count_tasks(self, epoch: int) -> int:
        ...

    def remove_tasks(self, epoch: int, ids: list[str]) -> int:
        """Forget tasks and the aliases pointing at them; how many tasks went."""
        ...

    def update_task(self, epoch: int, task_id: str, values: dict[str, Any]) -> None:
        """Set a task's `MUTABLE_FIELDS` (other keys are ignored)."""
        ...

    def incr_polls(self, epoch: int, task_id: str) -> int:
        """Count a poll of the task; its new count (0: no such task)."""
        ...

    def alias(self, epoch: int, key: str, task_id: str) -> None:
        """Another key (`family:id`) for a task (replacing what the key named)."""
        ...

    def resolve(self, epoch: int, key: str) -> str | None:
        """The task id an alias key names, or None."""
        ...

    # -- batched writes, journal -----------------------------------------------------------------
    def write_batch(self, entries: list[tuple[int, str]],
                    polls: dict[tuple[int, str], int]) -> None:
        """Append journal entries (epoch, record), keeping the newest `journal_size`, and
        add poll counts ((epoch, task id) -> polls) to their tasks, at once."""
        ...

    def journal(self, epoch: int) -> list[tuple[int, Any]]:
        """(sequence number, record) of the journal, oldest first."""
        ...

    def journal_len(self, epoch: int) -> int:
        ...

    # -- scenario rules ------------------------------------------------------------------------
    def rule_put(self, epoch: int, rule_id: str, data: str) -> None:
        """Append a rule (its record) after the others; the rules' revision moves on."""
        ...

    def rules_seed(self, epoch: int, rules: list[tuple[str, str]]) -> bool:
        """Put the option's rules (id, record) into an epoch unless some worker did already
        (claim and rules at once): True when these were kept. The revision moves on."""
        ...

    def rule_remove(self, epoch: int, rule_id: str) -> bool:
        """Forget a rule; whether there was one. The revision moves on."""
        ...

    def rules_clear(self, epoch: int) -> None:
        """Forget every rule of the epoch. The revision moves on."""
        ...

    def rules(self, epoch: int) -> list[tuple[Any, int, int]]:
        """(record, matched, applied) of every rule, in the order they were put."""
        ...

    def rule_count(self, epoch: int, rule_id: str, column: str, limit: int | None) -> int:
        """Count a match (`matched`) or claim an application (`applied`, only below `limit`)
        atomically; the new count, or 0 when the limit is reached or the rule is gone."""
        ...

    # -- rate windows --------------------------------------------------------------------------
    def admit(self, epoch: int, key: str, now: float, qps: float) -> bool:
        """Count a request at `now` in `key`'s one-second window; False (not counted) when
        `qps` requests are in it already."""
        ...

    # -- webhooks ------------------------------------------------------------------------------
    def hook_put(self, epoch: int, seq: int, data: str, pending: bool) -> None:
        """Store a new pending webhook (`pending`: the pending count moves on), or replace the
        record of one stored before."""
        ...

    def hooks(self, epoch: int, pending: bool | None) -> list[tuple[int, Any]]:
        """(seq, record) of the webhooks, by seq: the pending ones only with `pending`."""
        ...

    def hook_claim(self, epoch: int, seq: int, until: float | None = None,
                   owner: str = "") -> bool:
        """Claim a pending webhook (no longer pending; the pending count moves down), leased
        to `owner` until `until` (the store's time) when given; False when another worker
        claimed it first."""
        ...

    def hook_save(self, epoch: int, seq: int, data: str, until: float | None,
                  owner: str) -> bool:
        """Store a webhook's record and renew its lease (release it: `until` None); False
        (nothing stored) when another worker holds the lease now."""
        ...

    def hooks_expired(self, epoch: int, now: float, limit: int) -> list[int]:
        """Seqs of webhooks whose lease ran out by `now`, the oldest lease first."""
        ...

    def hook_reclaim(self, epoch: int, seq: int, now: float, until: float,
                     owner: str) -> Any:
        """Take over a delivery whose lease ran out by `now` (leased to `owner` until
        `until`): its record, or None when the lease had not run out."""
        ...

    def close(self) -> None:
        """Let go of connections (the data stays)."""
        ...


@dataclass(slots=True)
class View:
    """What one request reads of the shared state (`Driver.sync`)."""

    epoch: int
    now: float  # the manual clock's time
    offset: float  # the system clock's offset (advance)
    skew: float  # the store server's clock minus this host's
    rules: int  # revision of the scenario rules
    hooks: int  # webhooks pending
    task_id: str | None = None
    row: Any = None
    writes: list[Task] | None = None  # this request's new tasks, written by `commit()`


class SharedState(Protocol):
    """What the components of a shared store read of it (`shared.SharedStore`)."""

    driver: Driver

    @property
    def epoch(self) -> int:
        """The epoch this worker read last."""
        ...

    def view(self) -> View:
        """This request's view of the shared state (a fresh read outside requests)."""
        ...

    def current_view(self) -> View | None:
        """This request's view, None outside a request (nothing is read)."""
        ...

    def on_epoch(self, callback: Callable[[], None]) -> None:
        """Call `callback` when this worker sees a new epoch (drop caches)."""
        ...

    def queue_entry(self, epoch: int, entry: Any) -> None:
        """Append a journal entry in the next batch."""
        ...

    def queue_poll(self, epoch: int, task_id: str) -> None:
        """Count a poll in the next batch (time mode: polls drive nothing)."""
        ...

    def queued_polls(self, epoch: int, task_id: str) -> int:
        """Polls of a task counted here and not written yet."""
        ...

    def write_now(self, writes: list[Task]) -> None:
        """Write deferred new tasks now."""
        ...

    def flush(self) -> None:
        """Write what is batched now."""
        ...


class Limiter(Protocol):
    """Per-key request windows (the request-rate limits): `memory.LocalLimiter`,
    `parts.SharedLimiter`."""

    def admit(self, key: str, now: float, qps: float) -> bool:
        """Count a request at `now` in `key`'s one-second window; False (not counted) when
        `qps` requests are in it already."""
        ...

    def clear(self) -> None: ...


class Store(Protocol):
    """The state of one fake, as components the `Backend` works with (see the module doc)."""

    url: str
    shared: bool  # True when several processes (or hosts) may share this store

    def tasks(self) -> Tasks: ...

    def clock(self, kind: str) -> Clock: ...

    def ids(self, seed: int | None) -> IdSource: ...

    def secret(self, seed: int | None, fallback: bytes) -> bytes: ...

    def signer(self, seed: int | None, fallback: bytes) -> Signer:
        """The result-URL signer over `secret()` (a shared store's follows its secret)."""
        ...

    def journal(self, maxlen: int) -> Journal: ...

    def scenarios(self, seed: int | None, load: Callable[[Any], None]) -> ScenarioBook: ...

    def limiter(self) -> Limiter: ...

    def outbox(self, maxlen: int) -> Webhooks: ...

    def reset(self) -> None:
        """Forget every task, journal entry, webhook and rule on every worker (epoch + 1)."""
        ...

    def begin(self, task_id: str | None = None) -> Any:
        """Start one request: read what every request needs (epoch, clock) in one round trip,
        prefetching `task_id`'s mutable fields; returns a token for `end()`."""
        ...

    def end(self, token: Any) -> None: ...

    def flush(self) -> None:
        """Write what is batched (journal entries, poll counts) now."""
        ...

    def close(self) -> None: ...


def store_label(url: str) -> str:
    """The store URL without a password (`redis://:secret@host` -> `redis://***@host`), for
    banners and the health endpoint."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.netloc, "***@" + parts.netloc.rpartition("@")[2])
    return url

