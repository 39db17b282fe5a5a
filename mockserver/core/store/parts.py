"""The journal, scenario rules, rate limiter and URL signer of a shared store (webhooks:
outbox.py)."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from mockserver.core.artifacts import Signer
from mockserver.core.journal import Entry, Journal
from mockserver.core.scenarios import RequestInfo, Rule, Scenario, ScenarioBook
from mockserver.core.store.base import SharedState
from mockserver.core.store.records import (
    decode_entry,
    decode_rule,
    encode_entry,
    encode_rule,
)
from mockserver.errors import MockServerError

log = logging.getLogger("mockserver")


class SharedJournal(Journal):
    """Entries are kept locally until complete, then written in batches (see shared.py)."""

    keeps = False  # the store keeps them

    def __init__(self, store: SharedState, maxlen: int = 1000) -> None:
        super().__init__(maxlen)
        self.store = store
        store.driver.journal_size = maxlen
        self._local = 0

    def complete(self, entry: Entry, status: int, body: bytes | None) -> None:  # type: ignore[override]
        Journal.complete(entry, status, body)
        # The epoch this worker last read (no round trip: the request already read it).
        self.store.queue_entry(self.store.epoch, encode_entry(entry))

    def entries(self, **match: Any) -> list[Entry]:
        self.store.flush()
        rows = self.store.driver.journal(self.store.view().epoch)
        items = [decode_entry(seq, data) for seq, data in rows]
        return [e for e in items if all(getattr(e, k) == v for k, v in match.items())]

    def clear(self) -> None:
        return None  # the epoch moved on (SharedStore.reset)

    def __len__(self) -> int:
        self.store.flush()
        return int(self.store.driver.journal_len(self.store.view().epoch))


class SharedBook(ScenarioBook):
    """Rules kept in the store; `times` and `nth` are counted there, each hit claimed
    atomically, so `times: 1` fires once in total across workers.

    The option's rules (`--scenarios FILE`) belong to every epoch, as the memory store reloads
    them on every reset: the first time a worker meets an epoch (its start, a
    `POST /_wanmock/reset` on any worker, a Redis that restarted without its data) it offers
    them to the store, which keeps them only if nobody did before (`driver.rules_seed`: the
    claim and the rules in one transaction), so each epoch gets them once in total and no
    worker ever reads the epoch's rules half loaded."""

    def __init__(self, store: SharedState, seed: int | None,
                 load: Callable[[Any], None]) -> None:
        super().__init__(seed)
        self.store = store
        self.driver = store.driver
        self._rev = -1
        self._cache: list[Rule] = []
        self._load = load
        self._seeded: int | None = None  # the epoch whose option rules this worker offered
        self._seeding = threading.Lock()
        self._collector: int | None = None  # the thread reading the option's rules
        self._collected: list[Rule] = []
        self._last: list[tuple[str, str]] | None = None  # the option's rules, as last read
        store.on_epoch(self._forget)
        self._ensure(self.store.view().epoch)

    def _forget(self) -> None:
        self._rev = -1
        self._rng = random.Random(self.seed if self.seed is not None else 0)  # as a reset

    def _ensure(self, epoch: int) -> None:
        """Offer the option's rules to this epoch (once per worker and epoch; the store keeps
        the first offer)."""
        if self._seeded == epoch or self._collector == threading.get_ident():
            return
        with self._seeding:
            if self._seeded == epoch:
                return
            self._collector, self._collected = threading.get_ident(), []
            try:
                self._load(self)  # ScenarioBook.load -> add -> _append, collected below
                self._last = [(r.id, encode_rule(r)) for r in self._collected]
            except MockServerError as exc:
                if self._last is None:
                    raise  # at start: the option is wrong, as on the memory store
                # Later (a reset elsewhere, a Redis that lost its data) the file may have gone
                # or broken: keep serving with the rules this worker last read.
                log.warning("wanmock: %s; this epoch gets the scenario rules read before", exc)
            finally:
                self._collector, self._collected = None, []
            self.driver.rules_seed(epoch, self._last)
            self._seeded = epoch

    def _append(self, scenario: Scenario, match: dict[str, Any], times: int | None,
                rate: float | None) -> Rule:
        if self._collector == threading.get_ident():  # the option's rules: r1, r2, ...
            rule = Rule(f"r{len(self._collected) + 1}", scenario, match, times, rate)
            self._collected.append(rule)
            return rule
        epoch = self.store.view().epoch
        self._ensure(epoch)  # the option's rules come first (and keep r1...rN)
        rule = Rule(f"r{self.driver.counter(epoch, 'rules', 1)}", scenario, match, times, rate)
        self.driver.rule_put(epoch, rule.id, encode_rule(rule))
        return rule

    def remove(self, rule_id: str) -> bool:
        epoch = self.store.view().epoch
        self._ensure(epoch)
        return bool(self.driver.rule_remove(epoch, rule_id))

    def reset(self) -> None:
        """Remove every rule of this epoch, the option's too (as `DELETE /_wanmock/scenarios`
        does on the memory store); they come back with the next epoch."""
        epoch = self.store.view().epoch
        self._ensure(epoch)  # else a later first look at this epoch would load them again
        self.driver.rules_clear(epoch)

    def rules(self) -> list[Rule]:
        view = self.store.view()
        if self._seeded != view.epoch:
            self._ensure(view.epoch)
            self._rev = -1
        if view.rules != self._rev:
            self._cache = [decode_rule(data, matched, applied) for data, matched, applied
                           in self.driver.rules(view.epoch)]
            self._rev = view.rules
        return list(self._cache)

    def fresh_rules(self) -> list[Rule]:
        """The rules with their counters now (what the control API shows)."""
        self._rev = -1
        return self.rules()

    def __bool__(self) -> bool:
        return bool(self.rules())

    def pick(self, info: RequestInfo, *, job: bool) -> Scenario | None:
        epoch = self.store.view().epoch
        for rule in self.rules():
            if rule.scenario.is_job != job or not rule.fits(info):
                continue
            matched = int(self.driver.rule_count(epoch, rule.id, "matched", None))
            nth = rule.match.get("nth")
            if nth is not None and matched != nth:
                continue
            if rule.rate is not None and self._chance(rule.id, matched) >= rule.rate:
                continue
            if not self.driver.rule_count(epoch, rule.id, "applied", rule.times):
                continue  # its `times` are used up (claimed by this or another worker)
            return rule.scenario
        return None

    def _chance(self, rule_id: str, matched: int) -> float:
        digest = hashlib.sha256(f"wanmock:{self.seed or 0}:{rule_id}:{matched}".encode())
        return (int.from_bytes(digest.digest()[:8], "big") >> 11) / float(1 << 53)


class SharedLimiter:
    """One sliding window per key for all workers."""

    def __init__(self, store: SharedState) -> None:
        self.store = store

    def admit(self, key: str, now: float, qps: float) -> bool:
        return bool(self.store.driver.admit(self.store.view().epoch, key, now, qps))

    def clear(self) -> None:
        return None


class SharedSigner(Signer):
    """The result-URL signer without a seed: one random secret in the store (set once, SET NX),
    which every worker uses.

    A Redis that restarts without its data loses the secret with the rest. Every worker keeps
    the secret it used and, the first time it signs or checks a URL in a new epoch, puts it
    back (SET NX again) and adopts whatever the store holds then: the workers that were running
    agree on the old secret, so URLs they signed before the restart still verify (their tasks
    are gone, so they answer 404 NoSuchKey, not 403). A worker started after the restart and
    before any running worker signed or checked may set a new secret first; the running ones
    adopt it and URLs from before answer 403. With `--seed` the secret is derived from the
    seed instead and never changes."""

    def __init__(self, store: SharedState, candidate: bytes) -> None:
        self.store = store
        self._candidate = hashlib.sha256(candidate).hexdigest()[:32]
        self._epoch = store.epoch
        super().__init__(self._fetch())
        self._lock = threading.Lock()

    def _fetch(self) -> bytes:
        value = str(self.store.driver.secret(self._candidate))
        self._candidate = value  # put back what every worker used, after a data loss
        return value.encode()

    def _fresh(self) -> None:
        epoch = self.store.epoch
        if epoch == self._epoch:
            return
        with self._lock:
            if epoch == self._epoch:
                return
            secret = self._fetch()
            if secret != self._secret:
                Signer.__init__(self, secret)
            self._epoch = epoch

    def sign(self, path: str, expires: int) -> str:
        self._fresh()
        return Signer.sign(self, path, expires)

    def check(self, *args: Any, **kwargs: Any) -> str | None:
        self._fresh()
        return Signer.check(self, *args, **kwargs)
