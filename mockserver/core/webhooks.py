"""Webhooks: callbacks the fake owes clients, kept in an outbox and sent when their task ends.

A family schedules a webhook when a submit asks for one (jiekou/Novita `extra.webhook.url`). The
task's state stays a pure function of its plan and the clock: nothing here changes it. A
webhook becomes *due* once its task reads as terminal; `Outbox.flush()` renders every due one
(the family's body for the task at that moment) and hands it to the outbox's listeners. How it
then leaves depends on the `webhooks` option:

- `auto` (the default): under a server (`wanmock serve`, the live server fixture) a loop in the
  app's lifespan (`run_sender`) POSTs each due webhook whose URL is on a loopback host
  (127.0.0.0/8, ::1, `localhost`) as JSON and records every attempt; a webhook for any other
  host is `held` (rendered and kept, not sent), so generated or example URLs never leave the
  machine. In process nothing is sent: the test reads `wanmock.webhooks()` or registers
  `wanmock.on_webhook(callback)`.
- `send`: like `auto` under a server, to any host (a receiver in another container).
- `record`: nothing is ever sent.

Delivery follows the family's `RetryPolicy` (jiekou: contracts/jiekou.yaml `x-wanmock-webhooks`,
Novita's documented policy): each attempt times out after `timeout_s`; a timeout, a refused
connection or a non-2xx answer is retried after the next interval until `retries` retries are
spent; an answer in 2xx ends it. Every attempt is kept on the webhook as plain data
(`attempts`, `next_attempt_at`), so a store can hold it.

Listeners are called outside the app (`Outbox.notify()`): after each in-process request returns
to the caller, when the test moves the clock or reads the webhooks, and from a worker thread
under a server. A listener may therefore call the fake itself (fetch the video, poll again).

Flushes happen when the clock is moved through the toolkit, when a state is forced, on every
request to the family that owes webhooks, and (under a server) every 100 ms.

On a shared store (`mockserver.core.store.outbox`) each delivery is leased to the worker that
claimed it, and a delivery whose worker died is taken over by another once the lease runs out:
at least once, where the in-process `Outbox` gives once.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from mockserver.errors import StoreUnavailable

log = logging.getLogger("mockserver")
Renderer = Callable[[], "dict[str, Any] | None"]  # the body now, or None while not yet due
# A stopping server gives the delivery attempts under way this long to end (SIGTERM gives a
# container 10 s before SIGKILL; the rest is the server's own shutdown).
HANDOVER_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a webhook is delivered: the timeout of one attempt and the waits before each retry
    (so `len(intervals)` retries at most, `1 + len(intervals)` attempts)."""

    timeout_s: float = 10.0
    intervals: tuple[float, ...] = ()

    @property
    def max_attempts(self) -> int:
        return 1 + len(self.intervals)

    def as_dict(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s, "intervals": list(self.intervals),
                "max_attempts": self.max_attempts}


@dataclass(slots=True)
class Webhook:
    """One callback: where it goes, for which task, what it carried and how each attempt went.

    Everything here is plain data (numbers, strings, lists and dicts of them), so a store can
    keep it. Times: `scheduled_at`, `due_at`, `sent_at` and each attempt's `at` are on the
    fake's clock; `next_attempt_at` is wall-clock time (`time.time()`), because deliveries are
    real HTTP and their retries wait real seconds, also under a manual clock."""

    seq: int
    family: str
    task_id: str
    url: str
    scheduled_at: float
    due_at: float | None = None  # clock time it was rendered (the task read as terminal)
    body: dict[str, Any] | None = None
    sent_at: float | None = None  # clock time of the last attempt (or of recording)
    status: int | None = None  # the receiver's HTTP status at the last attempt
    error: str | None = None  # why the last attempt (or a listener) failed
    held: bool = False  # not sent: its host is not loopback and the option is `auto`
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # {at, status, error}
    next_attempt_at: float | None = None  # wall time of the next retry (None: none owed)
    done: bool = False  # delivered (2xx) or given up: no attempt follows

    @property
    def state(self) -> str:
        """`pending` (task not ended), `due` (rendered, not sent yet), `retrying` (an attempt
        failed and a retry is owed), `sent` (a 2xx answer), `failed` (every attempt failed, or a
        listener raised), `held` (not sent to a non-loopback host under `auto`) or `recorded`
        (not sent: in process or `record`; listeners still hear of it)."""
        if self.body is None:
            return "pending"
        if self.held:
            return "held"
        if self.attempts:
            if self.status is not None and 200 <= self.status < 300:
                return "sent"
            return "failed" if self.done else "retrying"
        if self.error is not None:
            return "failed"
        return "recorded" if self.sent_at is not None else "due"

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "family": self.family, "task_id": self.task_id,
                "url": self.url, "state": self.state, "scheduled_at": self.scheduled_at,
                "due_at": self.due_at, "sent_at": self.sent_at, "status": self.status,
                "error": self.error, "attempt_count": len(self.attempts),
                "attempts": [dict(a) for a in self.attempts],
                "next_attempt_at": self.next_attempt_at, "policy": self.policy.as_dict(),
                "body": self.body}

    def record_attempt(self, at: float, wall: float, status: int | None,
                       error: str | None, *, final: bool = False) -> None:
        """Keep one attempt's outcome and decide what follows: nothing after a 2xx or when the
        policy's retries are spent (or `final`: a URL no retry can fix), else a retry after the
        next interval (wall-clock `wall` + interval)."""
        self.attempts.append({"at": at, "status": status, "error": error})
        self.status, self.error, self.sent_at = status, error, at
        ok = status is not None and 200 <= status < 300
        spent = len(self.attempts) >= self.policy.max_attempts
        if ok or spent or final:
            self.done, self.next_attempt_at = True, None
        else:
            self.next_attempt_at = wall + self.policy.intervals[len(self.attempts) - 1]


class Deliveries:
    """What every outbox shares, wherever its records live: rendered webhooks waiting for the
    listeners (`on_webhook`) and for their next attempt (the sender)."""

    def __init__(self) -> None:
        self._unsent: list[Webhook] = []
        self._unheard: list[Webhook] = []  # rendered, not yet handed to the listeners
        self._listeners: list[Callable[[Webhook], None]] = []
        self._lock = threading.Lock()
        self.record_only = True

    def update(self, hook: Webhook) -> None:
        """Keep what sending (or a listener) changed on `hook` where the records live."""

    def has_unheard(self) -> bool:
        return bool(self._unheard)

    def notify(self) -> None:
        """Hand every rendered webhook not yet heard to the listeners (in this thread)."""
        if not self._unheard:
            return
        with self._lock:
            hooks, self._unheard = self._unheard, []
            listeners = list(self._listeners)
        for hook in hooks:
            for listener in listeners:
                try:
                    listener(hook)
                except Exception as exc:  # the listener's bug: shown on the webhook, logged
                    hook.error = f"on_webhook callback raised {type(exc).__name__}: {exc}"
                    log.exception("wanmock: on_webhook callback failed for task %s", hook.task_id)
                    self.update(hook)

    def take_unsent(self, wall: float | None = None) -> list[Webhook]:
        """Rendered webhooks whose next attempt is owed by wall-clock time `wall` (all of them
        when `wall` is None), taken off the queue: the sender claims each attempt once."""
        with self._lock:
            out = [h for h in self._unsent if wall is None or h.next_attempt_at is None
                   or h.next_attempt_at <= wall]
            if out:
                taken = {id(h) for h in out}
                self._unsent = [h for h in self._unsent if id(h) not in taken]
        return out

    def listen(self, callback: Callable[[Webhook], None]) -> None:
        with self._lock:
            self._listeners.append(callback)

    def release(self, cut_short: list[Webhook]) -> int:
        """The worker stops: hand the deliveries it owes (queued ones, and `cut_short`, whose
        attempts were cancelled) to the others. Nothing to hand over in one process: returns
        0 (a shared store's outbox returns how many it released)."""
        return 0


class Outbox(Deliveries):
    """Scheduled webhooks: pending ones with the function that renders each when its task ends,
    and the newest `maxlen` rendered ones."""

    def __init__(self, maxlen: int = 1000) -> None:
        super().__init__()
        self._pending: dict[int, tuple[Webhook, Renderer]] = {}
        self._done: deque[Webhook] = deque(maxlen=maxlen)
        self._seq = 0
        # Set by the Backend; only a shared store's outbox needs it (another worker's webhook).
        self.resolve: Callable[[str, str, list[Any]], Any] | None = None

    def schedule(self, *, family: str, task_id: str, url: str, now: float,
                 render: Renderer, policy: RetryPolicy | None = None,
                 render_args: list[Any] | None = None) -> Webhook:
        """Owe a webhook for a task: `render()` gives its body once the task has ended (None
        before); `policy` says how it is delivered under a server. `render_args` let a shared
        store's other workers build the same renderer (the family's `webhook_renderer(task,
        *render_args)`)."""
        with self._lock:
            self._seq += 1
            hook = Webhook(self._seq, family, task_id, url, now,
                           policy=policy or RetryPolicy())
            self._pending[hook.seq] = (hook, render)
        return hook

    def has_pending(self) -> bool:
        return bool(self._pending)

    def flush(self, now: float) -> list[Webhook]:
        """Render every webhook whose task has ended and return them. Listeners hear of them
        at the next `notify()`: never from inside the app, so a listener may call the fake."""
        if not self._pending:
            return []
        ready: list[Webhook] = []
        with self._lock:
            for seq, (hook, render) in list(self._pending.items()):
                body = render()
                if body is None:
                    continue
                del self._pending[seq]
                hook.body, hook.due_at = body, now
                if self.record_only:
                    hook.sent_at = now
                else:
                    self._unsent.append(hook)
                self._done.append(hook)
                ready.append(hook)
            if self._listeners:
                self._unheard.extend(ready)
        return ready

    def retry_later(self, hook: Webhook) -> None:
        """Queue a webhook again for its next attempt (at `hook.next_attempt_at`)."""
        with self._lock:
            if not hook.done:
                self._unsent.append(hook)

    def entries(self, task_id: str | None = None) -> list[Webhook]:
        """Every webhook, rendered ones first (oldest first), then the pending ones."""
        with self._lock:
            items = list(self._done) + [hook for hook, _ in self._pending.values()]
        return [h for h in items if task_id is None or h.task_id == task_id]

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._done.clear()
            self._unsent.clear()
            self._unheard.clear()
            self._listeners.clear()


class Webhooks(Protocol):
    """The webhook outbox of a store: `Outbox` in memory, `core.store.outbox.SharedOutbox`."""

    record_only: bool
    # A shared store's other workers build a webhook's renderer with it (Backend sets it).
    resolve: Callable[[str, str, list[Any]], Any] | None

    def schedule(self, *, family: str, task_id: str, url: str, now: float,
                 render: Callable[[], dict[str, Any] | None],
                 policy: RetryPolicy | None = None,
                 render_args: list[Any] | None = None) -> Webhook: ...

    def has_pending(self) -> bool: ...

    def flush(self, now: float) -> list[Webhook]: ...

    def entries(self, task_id: str | None = None) -> list[Webhook]: ...

    def update(self, hook: Webhook) -> None: ...

    def retry_later(self, hook: Webhook) -> None: ...

    def has_unheard(self) -> bool: ...

    def notify(self) -> None: ...

    def take_unsent(self, wall: float | None = None) -> list[Webhook]: ...

    def release(self, cut_short: list[Webhook]) -> int: ...

    def listen(self, callback: Callable[[Webhook], None]) -> None: ...

    def clear(self) -> None: ...


def is_loopback_url(url: str) -> bool:
    """Whether a URL's host is loopback by its spelling (no DNS lookup)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # `http://[::1` and the like: not a URL anyone can be sent to
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Signs one attempt: the webhook and the exact bytes sent -> the headers that carry the
# signature; a family registers one as `Backend.webhook_signers[name]`.
Signer = Callable[[Webhook, bytes], "dict[str, str]"]


async def send(hook: Webhook, client: Any, now: Callable[[], float],
               wall: Callable[[], float] = time.time, sign: Signer | None = None) -> None:
    """Make one delivery attempt: POST the webhook as JSON with `client` (an
    `httpx.AsyncClient`) within the policy's timeout, and record the outcome on the webhook.
    With `sign`, the body is encoded here and each attempt carries the headers `sign` gives
    for those very bytes (a fresh timestamp per attempt, as a provider re-signs a retry)."""
    import httpx

    status: int | None = None
    error: str | None = None
    final = False
    headers = {"User-Agent": "wanmock-webhook"}
    try:
        if sign is None:
            response = await client.post(hook.url, json=hook.body,
                                         timeout=hook.policy.timeout_s, headers=headers)
        else:
            content = json.dumps(hook.body, ensure_ascii=False, separators=(",", ":"),
                                 allow_nan=False).encode("utf-8")
            headers = {**headers, "Content-Type": "application/json", **sign(hook, content)}
            response = await client.post(hook.url, content=content,
                                         timeout=hook.policy.timeout_s, headers=headers)
        status = response.status_code
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        # a URL httpx cannot send to (`http://a:notaport/`): no retry can fix it
        error, final = _describe(exc), True
    except httpx.HTTPError as exc:  # unreachable, refused, timed out: retried
        error = _describe(exc)
    hook.record_attempt(now(), wall(), status, error, final=final)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def run_sender(outbox: Webhooks, *, flush: Callable[[], Any], now: Callable[[], float],
                     mode: Callable[[], str], interval: float = 0.1,
                     grace: float = HANDOVER_GRACE_S,
                     signers: Mapping[str, Signer] | None = None) -> None:
    """The delivery loop under a server: every `interval` seconds render the webhooks whose
    tasks have ended, tell the listeners, and start each attempt that is owed (first ones and
    retries whose time has come). `mode()` is the `webhooks` option (`auto` sends to loopback
    hosts only and holds the rest; `send` to any host).

    Cancelled (the server stops: SIGTERM, SIGINT), it gives the attempts under way `grace`
    seconds to end and store their outcome, cancels the rest, and releases what this worker
    still owes (`Outbox.release`): on a shared store another worker takes those deliveries
    over at its next look (within `LEASE_SCAN_S`), instead of when their leases run out."""
    import asyncio

    import httpx

    running: dict[asyncio.Task[None], Webhook] = {}
    down = False

    async def attempt(hook: Webhook, client: Any) -> None:
        await send(hook, client, now, sign=(signers or {}).get(hook.family))
        try:
            outbox.retry_later(hook)  # a shared store also keeps the attempt
        except StoreUnavailable:
            log.warning("wanmock: webhook %s: the attempt was not stored (store down)",
                        hook.seq)

    async with httpx.AsyncClient(trust_env=False) as client:
        try:
            while True:
                try:
                    flush()
                    if outbox.has_unheard():  # listeners may call this very server
                        await asyncio.to_thread(outbox.notify)
                    for hook in outbox.take_unsent(time.time()):
                        if mode() == "auto" and not is_loopback_url(hook.url):
                            hook.held = True  # `--webhooks send` sends to any host
                            outbox.update(hook)  # a shared store keeps it (and ends its lease)
                            continue
                        job = asyncio.create_task(attempt(hook, client))
                        running[job] = hook
                        job.add_done_callback(lambda done: running.pop(done, None))
                    down = False
                except StoreUnavailable as exc:  # kept in the store; delivered once it is back
                    if not down:
                        log.warning("wanmock: webhooks wait for the store: %s", exc)
                    down = True
                except Exception:  # a bug here must not stop later deliveries
                    log.exception("wanmock: webhook delivery failed")
                await asyncio.sleep(interval)
        finally:
            await hand_over(outbox, running, grace)


async def hand_over(outbox: Webhooks, running: dict[Any, Webhook], grace: float) -> None:
    """The sender stops: let attempts under way end within `grace` seconds, cancel the rest,
    release what is still owed (see `run_sender`)."""
    import asyncio

    jobs = dict(running)
    if jobs:
        _, late = await asyncio.wait(jobs, timeout=grace)
        for job in late:
            job.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        cut_short = [jobs[job] for job in late]
    else:
        cut_short = []
    try:
        released = outbox.release(cut_short)
    except StoreUnavailable as exc:  # the leases run out by themselves: taken over then
        log.warning("wanmock: webhook deliveries not handed over (store down): %s", exc)
        return
    if released:
        log.info("wanmock: %d webhook deliveries handed to the other workers", released)
