"""Replicate's webhooks (no Starlette): which events a prediction owes (webhook_events_filter,
decision webhook-events), when each is due and as of which moment its body is rendered
(decision webhook-events-timing), and their Standard Webhooks signatures (decision
webhook-signing)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from mockserver.core.tasks import Snapshot, State, Task

EVENTS = ("start", "output", "logs", "completed")
DEFAULT_EVENTS = ("output", "completed")
THROTTLE_S = 0.5  # output and logs requests: at most one every 500 ms (OAS)


def wanted(filters: Any, default: str) -> tuple[str, ...]:
    """The events a webhook gets: its webhook_events_filter (schema-checked), else the
    option's default (output and completed, or all four)."""
    if isinstance(filters, list) and filters:
        return tuple(e for e in EVENTS if e in filters)
    return EVENTS if default == "all" else DEFAULT_EVENTS


def log_moments(task: Task, steps: int) -> int:
    """How many `logs` events a prediction sends: one per step of its progress, no closer
    than 500 ms of its run apart, at least one."""
    run = task.plan.run_s
    return max(1, min(steps, int(run // THROTTLE_S)))


def schedule(events: Iterable[str], count: int) -> list[tuple[str, int]]:
    """(event, index) for each delivery owed, in the order they become due."""
    out: list[tuple[str, int]] = []
    for event in events:
        if event == "logs":
            out.extend(("logs", k) for k in range(1, count + 1))
        else:
            out.append((event, 0))
    order = {"start": 0, "logs": 1, "output": 2, "completed": 3}
    return sorted(out, key=lambda item: (order[item[0]], item[1]))


def moment(task: Task, event: str, index: int, count: int) -> float:
    """When an event happens on the fake's clock (start, the index-th logs, output)."""
    plan = task.plan
    start = task.submitted_at + plan.queue_s
    if event == "start":
        return start
    if event == "logs":
        return start + plan.run_s * index / count
    return task.submitted_at + plan.end_s


class Owed:
    """Whether an event is due now, never (the prediction ended without it), or later."""

    DUE, NEVER, LATER = "due", "never", "later"


def due(task: Task, snap: Snapshot, event: str, index: int, count: int) -> str:
    """Is the event due at `snap` (the prediction now)?"""
    state = snap.state
    if event == "completed":
        return Owed.DUE if state.terminal else Owed.LATER
    if event == "output":
        if state is State.SUCCEEDED:
            return Owed.DUE
        return Owed.NEVER if state.terminal else Owed.LATER
    ran = snap.started_at is not None or (
        state.terminal and snap.ended_at is not None
        and snap.ended_at > task.submitted_at + task.plan.queue_s)
    if event == "start":
        if ran and state is not State.QUEUED:
            return Owed.DUE
        return Owed.NEVER if state.terminal else Owed.LATER
    # logs: the index-th step of the run, if the run got that far
    if state is State.SUCCEEDED:
        return Owed.DUE
    at = moment(task, "logs", index, count)
    if state.terminal:
        ended = snap.ended_at if snap.ended_at is not None else snap.now
        return Owed.DUE if ran and at <= ended else Owed.NEVER
    return Owed.DUE if state is State.RUNNING and snap.now >= at else Owed.LATER


# -- Standard Webhooks signatures ----------------------------------------------------------------
def secret(signing: str, account: str) -> str:
    """The account's `whsec_<base64>` secret: 24 bytes from the fake's signing secret and the
    account (a digest of the key), so every worker and every restart under --seed agree. The
    standard base64 alphabet has no `_`, which replicate's validate splits on."""
    key = hmac.new(signing.encode("utf-8"), f"replicate-webhook:{account}".encode(),
                   hashlib.sha256).digest()[:24]
    return "whsec_" + base64.b64encode(key).decode("ascii")


def message_id(task_id: str, seq: int) -> str:
    """`webhook-id`: one per delivery, the same on its retries."""
    digest = hashlib.sha256(f"{task_id}:{seq}".encode()).digest()
    return "msg_" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:27]


def sign(secret_key: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one delivery: `v1,<base64 HMAC-SHA256>` over
    `<id>.<timestamp>.<body>` with the base64 part of the secret as key."""
    key = base64.b64decode(secret_key.split("_", 1)[1])
    content = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{signature}"}
