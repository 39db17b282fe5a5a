"""The webhook outbox of a shared store: at-least-once delivery with leases.

A webhook's record lives in the store from its submit on. Once its task has ended, any worker
may render it (the family's renderer, from `resolve`); one *claims* it atomically, and the
claim is a **lease**: the worker owns the delivery until `claimed_until` (store time, see
below) = now + the wait for its next attempt + the attempt's timeout + `LEASE_MARGIN_S`. Each
attempt's outcome is saved with the lease renewed for the next attempt (the family's
`RetryPolicy`: jiekou/Novita five retries at the timing profile's intervals) or released when
the delivery is over (a 2xx, the retries spent, held, recorded). A save is refused to a worker
whose lease another worker has taken over, so that worker stops.

If the owner dies (SIGKILL, a crashed host) between the claim and the outcome, its lease runs
out and any worker takes the delivery over (`driver.hook_reclaim`, atomic: one worker wins),
renders it again if it had not been rendered, and makes the next attempt (at once: it is
overdue); the attempts already stored count against the policy. A worker that stops
(SIGTERM) does not leave that to its leases: `release` hands what it owes over at once. So a
webhook is delivered *at least once*: exactly once in normal operation, and a second time only
when a worker died (or stopped mid-attempt) after the receiver had its POST but before the
outcome was stored (as providers retry deliveries, receivers must be idempotent anyway). Each
worker looks for expired leases at most every `LEASE_SCAN_S`.

Store time: this host's `wall()` (default `time.time`) plus the store server's skew (Redis:
its `TIME`, measured by the driver; SQLite: one host, no skew), so hosts whose clocks disagree
agree on when a lease ran out. Leases are wall-clock, not the fake's clock: deliveries are
real HTTP, also under a manual clock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from mockserver.core.store.base import SharedState, View
from mockserver.core.store.records import decode_hook, encode_hook
from mockserver.core.webhooks import NOT_OWED, Deliveries, RetryPolicy, Webhook
from mockserver.errors import StoreUnavailable

Renderer = Callable[[], "dict[str, Any] | None"]
LEASE_MARGIN_S = 10.0  # beyond the attempt's timeout: the sender's tick, a slow store write
LEASE_SCAN_S = 1.0  # how often a worker looks for leases that ran out
SCAN_BATCH = 32


def is_final(hook: Webhook) -> bool:
    """No attempt follows: delivered or given up, held, or recorded (never sent)."""
    return hook.done or hook.held or (hook.sent_at is not None and not hook.attempts)


class SharedOutbox(Deliveries):
    """Webhook records in the store, each delivery leased to one worker (see the module doc)."""

    def __init__(self, store: SharedState, maxlen: int = 1000) -> None:
        super().__init__()
        self.store = store
        self.driver = store.driver
        self.maxlen = maxlen
        self.resolve: Callable[[str, str, list[Any]], Renderer | None] | None = None
        self.owner = uuid.uuid4().hex[:16]  # this worker, as the holder of leases
        self.wall: Callable[[], float] = time.time  # this host's clock (tests move it)
        self._render: dict[int, Renderer] = {}
        self._scanned = float("-inf")
        self._scanning = threading.Lock()
        store.on_epoch(self._forget)

    def _forget(self) -> None:
        with self._lock:
            self._render.clear()
            self._unsent.clear()
            self._unheard.clear()

    # -- leases --------------------------------------------------------------------------------
    def _store_now(self, view: View) -> float:
        return self.wall() + view.skew

    def _until(self, view: View, hook: Webhook) -> float:
        """The lease for the next attempt: its wait, its timeout and the margin."""
        wait = 0.0
        if hook.next_attempt_at is not None:  # wall time on this host (webhooks.send)
            wait = max(0.0, hook.next_attempt_at - time.time())
        return self._store_now(view) + wait + hook.policy.timeout_s + LEASE_MARGIN_S

    def _save(self, view: View, hook: Webhook, render_args: Any = None) -> bool:
        """Store the webhook with its lease renewed (released when final); False when
        another worker has taken the delivery over."""
        until = None if is_final(hook) else self._until(view, hook)
        data = encode_hook(hook, render_args=render_args)
        return bool(self.driver.hook_save(view.epoch, hook.seq, data, until, self.owner))

    # -- the outbox ------------------------------------------------------------------------------
    def schedule(self, *, family: str, task_id: str, url: str, now: float,
                 render: Renderer, policy: RetryPolicy | None = None,
                 render_args: list[Any] | None = None) -> Webhook:
        epoch = self.store.view().epoch
        hook = Webhook(int(self.driver.counter(epoch, "hooks", 1)), family, task_id, url, now,
                       policy=policy or RetryPolicy())
        self._render[hook.seq] = render
        self.driver.hook_put(epoch, hook.seq, encode_hook(hook, render_args=render_args), True)
        return hook

    def has_pending(self) -> bool:
        try:
            return self.store.view().hooks > 0
        except StoreUnavailable:
            return False

    def _renderer(self, seq: int, hook: Webhook, raw: dict[str, Any]) -> Renderer | None:
        render = self._render.get(seq)
        if render is None and self.resolve is not None and raw.get("render_args"):
            render = self.resolve(hook.family, hook.task_id, raw["render_args"])
        return render

    def flush(self, now: float) -> list[Webhook]:
        """Render and claim every due webhook (and take over those whose lease ran out);
        the ones this worker now owns are queued for the sender."""
        view = self.store.view()
        ready = self._take_over(view, now)
        if view.hooks > 0:
            ready += self._claim_due(view, now)
        if self._listeners and ready:
            with self._lock:
                self._unheard.extend(ready)
        return ready

    def _claim_due(self, view: View, now: float) -> list[Webhook]:
        ready = []
        for seq, data in self.driver.hooks(view.epoch, pending=True):
            hook, raw = decode_hook(data)
            render = self._renderer(seq, hook, raw)
            body = render() if render is not None else None
            if body is None:
                continue
            if body is NOT_OWED:  # never to be sent: no longer pending, never rendered
                self.driver.hook_claim(view.epoch, seq)
                self._render.pop(seq, None)
                continue
            hook.body, hook.due_at = body, now
            if self.record_only:
                hook.sent_at = now
            # Leased even when final at once: if this worker dies before the save, the
            # lease runs out and another worker records it.
            won = self.driver.hook_claim(view.epoch, seq, self._until(view, hook), self.owner)
            self._render.pop(seq, None)
            if not won:
                continue  # another worker rendered it first and sends it
            if self._save(view, hook, raw.get("render_args")) and not self.record_only:
                with self._lock:
                    self._unsent.append(hook)
            ready.append(hook)
        return ready

    def _take_over(self, view: View, now: float) -> list[Webhook]:
        """Deliveries whose worker died: their lease ran out without an outcome."""
        clock = time.monotonic()
        if clock - self._scanned < LEASE_SCAN_S or not self._scanning.acquire(blocking=False):
            return []
        try:
            self._scanned = clock
            store_now = self._store_now(view)
            ready = []
            for seq in self.driver.hooks_expired(view.epoch, store_now, SCAN_BATCH):
                data = self.driver.hook_reclaim(view.epoch, seq, store_now,
                                                store_now + LEASE_MARGIN_S, self.owner)
                if data is None:
                    continue  # another worker took it over first
                hook, raw = decode_hook(data)
                if self._resume(view, hook, raw, now):
                    ready.append(hook)
            return ready
        finally:
            self._scanning.release()

    def _resume(self, view: View, hook: Webhook, raw: dict[str, Any], now: float) -> bool:
        """Carry on a delivery taken over: render it if its worker died before that, then
        queue the next attempt for now. True when it was rendered here (listeners hear it)."""
        rendered = False
        if hook.body is None:
            render = self._renderer(hook.seq, hook, raw)
            body = render() if render is not None else None
            if body is None or body is NOT_OWED:  # its task is gone (or ended without it)
                hook.error, hook.done = "the task was gone when the delivery was taken over", True
            else:
                hook.body, hook.due_at, rendered = body, now, True
        if not is_final(hook):
            # Its next attempt is overdue when its worker died (the lease outlasts the wait);
            # one handed over by a stopping worker (`release`) keeps its retry interval.
            if self.record_only:
                hook.sent_at = now
        if not self._save(view, hook, raw.get("render_args")):
            return False
        if not is_final(hook):
            with self._lock:
                self._unsent.append(hook)
        return rendered

    def update(self, hook: Webhook) -> None:
        """Keep what sending a webhook changed (status, error, attempts)."""
        self._save(self.store.view(), hook)

    def retry_later(self, hook: Webhook) -> None:
        """Keep the attempt just made in the store with the lease renewed; queue the next one
        here, on the worker that owns the delivery. A worker whose lease was taken over
        stops (the new owner sends)."""
        if not self._save(self.store.view(), hook):
            return
        if not hook.done:
            with self._lock:
                self._unsent.append(hook)

    def release(self, cut_short: list[Webhook]) -> int:
        """This worker stops: every delivery it owes (queued here, or `cut_short`: its attempt
        was cancelled, so the receiver may have had it) gets a lease that has run out, so any
        other worker takes it over at its next look (`_take_over`, within `LEASE_SCAN_S`)
        instead of `LEASE_MARGIN_S` and more after its attempt's timeout. Returns how many."""
        with self._lock:
            owed, self._unsent = [*self._unsent, *cut_short], []
        if not owed:
            return 0
        view = self.store.view()
        expired = self._store_now(view)
        released = 0
        for hook in owed:
            if is_final(hook):
                continue
            data = encode_hook(hook)
            released += bool(self.driver.hook_save(view.epoch, hook.seq, data, expired,
                                                   self.owner))
        return released

    def entries(self, task_id: str | None = None) -> list[Webhook]:
        rows: Iterable[tuple[int, Any]] = self.driver.hooks(self.store.view().epoch, pending=None)
        items = [decode_hook(data)[0] for _, data in rows]
        return [h for h in items if task_id is None or h.task_id == task_id][-self.maxlen:]

    def clear(self) -> None:
        with self._lock:
            self._render.clear()
            self._unsent.clear()
            self._unheard.clear()
            self._listeners.clear()
