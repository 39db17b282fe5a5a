"""Webhooks: callbacks the fake owes clients, kept in an outbox and sent when their task ends.

A family schedules a webhook when a submit asks for one (jiekou/Novita `extra.webhook.url`). The
task's state stays a pure function of its plan and the clock: nothing here changes it. A
webhook becomes *due* once its task reads as terminal; `Outbox.flush()` renders every due one
(the family's body for the task at that moment) and hands it to the outbox's listeners. How it
then leaves depends on the `webhooks` option:

- `auto` (the default): under a server (`wanmock serve`, the live server fixture) a loop in the
  app's lifespan POSTs each due webhook whose URL is on a loopback host (127.0.0.0/8, ::1,
  `localhost`) as JSON and records the receiver's status (or the error); a webhook for any other
  host is `held` (rendered and kept, not sent), so generated or example URLs never leave the
  machine. In process nothing is sent: the test reads `wanmock.webhooks()` or registers
  `wanmock.on_webhook(callback)`.
- `send`: like `auto` under a server, to any host (a receiver in another container).
- `record`: nothing is ever sent.

Listeners are called outside the app (`Outbox.notify()`): after each in-process request returns
to the caller, when the test moves the clock or reads the webhooks, and from a worker thread
under a server. A listener may therefore call the fake itself (fetch the video, poll again).

Flushes happen when the clock is moved through the toolkit, when a state is forced, on every
request to the family that owes webhooks, and (in `send` mode) every 100 ms.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("mockserver")
Renderer = Callable[[], "dict[str, Any] | None"]  # the body now, or None while not yet due


@dataclass(slots=True)
class Webhook:
    """One callback: where it goes, for which task, what it carried and how it went."""

    seq: int
    family: str
    task_id: str
    url: str
    scheduled_at: float
    due_at: float | None = None  # clock time it was rendered (the task read as terminal)
    body: dict[str, Any] | None = None
    sent_at: float | None = None
    status: int | None = None  # the receiver's HTTP status (send mode)
    error: str | None = None  # why sending failed (send mode)
    held: bool = False  # not sent: its host is not loopback and the option is `auto`

    @property
    def state(self) -> str:
        """`pending` (task not ended), `due` (rendered, not sent yet), `sent`, `failed`,
        `held` (not sent to a non-loopback host under `auto`) or `recorded` (not sent: in
        process or `record`; listeners still hear of it)."""
        if self.body is None:
            return "pending"
        if self.held:
            return "held"
        if self.error is not None:
            return "failed"
        if self.status is not None:
            return "sent"
        return "recorded" if self.sent_at is not None else "due"

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "family": self.family, "task_id": self.task_id,
                "url": self.url, "state": self.state, "scheduled_at": self.scheduled_at,
                "due_at": self.due_at, "sent_at": self.sent_at, "status": self.status,
                "error": self.error, "body": self.body}


class Outbox:
    """Scheduled webhooks: pending ones with the function that renders each when its task ends,
    and the newest `maxlen` rendered ones."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._pending: dict[int, tuple[Webhook, Renderer]] = {}
        self._done: deque[Webhook] = deque(maxlen=maxlen)
        self._unsent: deque[Webhook] = deque()
        self._unheard: deque[Webhook] = deque()  # rendered, not yet handed to the listeners
        self._listeners: list[Callable[[Webhook], None]] = []
        self._seq = 0
        self._lock = threading.Lock()
        self.record_only = True

    def schedule(self, *, family: str, task_id: str, url: str, now: float,
                 render: Renderer, base_url: str | None = None) -> Webhook:
        """Owe a webhook for `task_id`; `render()` gives its body once the task has ended
        (`base_url` lets a shared store's other workers render it too)."""
        with self._lock:
            self._seq += 1
            hook = Webhook(self._seq, family, task_id, url, now)
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

    def has_unheard(self) -> bool:
        return bool(self._unheard)

    def notify(self) -> None:
        """Hand every rendered webhook not yet heard to the listeners (in this thread)."""
        if not self._unheard:
            return
        with self._lock:
            hooks = list(self._unheard)
            self._unheard.clear()
            listeners = list(self._listeners)
        for hook in hooks:
            for listener in listeners:
                try:
                    listener(hook)
                except Exception as exc:  # the listener's bug: shown on the webhook, logged
                    hook.error = f"on_webhook callback raised {type(exc).__name__}: {exc}"
                    log.exception("wanmock: on_webhook callback failed for task %s", hook.task_id)

    def update(self, hook: Webhook) -> None:
        """Keep what sending changed (the objects are the records here: nothing to do)."""

    def take_unsent(self) -> list[Webhook]:
        """Rendered webhooks the sender has not picked up yet (send mode)."""
        with self._lock:
            out = list(self._unsent)
            self._unsent.clear()
        return out

    def listen(self, callback: Callable[[Webhook], None]) -> None:
        with self._lock:
            self._listeners.append(callback)

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


async def send(hook: Webhook, client: Any, now: Callable[[], float]) -> None:
    """POST one webhook as JSON with `client` (an `httpx.AsyncClient`) and record the outcome."""
    import httpx

    try:
        response = await client.post(hook.url, json=hook.body,
                                     headers={"User-Agent": "wanmock-webhook"})
        hook.status = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # unreachable, refused,
        # timeout, or a URL httpx cannot send to (`http://a:notaport/`)
        hook.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    hook.sent_at = now()
