"""jiekou's (Novita's) words for the neutral task: the GET /v3/async/task-result body.

No Starlette here. jiekou knows four states only (contracts/jiekou.yaml, decision `task-states`):
a canceled task is reported FAILED with a reason; an expired one is a 404 (the routes decide).
"""

from __future__ import annotations

import math
from typing import Any

from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.jiekou.family import STATUS  # neutral state -> word

CANCELED_REASON = "The task was canceled."
DEFAULT_FAILURE = "The task failed."


def ms(epoch: float | None) -> str:
    """Epoch milliseconds as a string (int64 in protobuf JSON); "0" when not yet reached."""
    return "0" if epoch is None else str(int(round(epoch * 1000)))


def reason(task: Task, snap: Snapshot) -> str:
    if snap.state is State.CANCELED:
        return CANCELED_REASON
    if snap.state is State.FAILED:
        failure = task.plan.failure
        return failure.message if failure is not None and failure.message else DEFAULT_FAILURE
    return ""


def progress(task: Task, snap: Snapshot) -> int:
    """0..100, never falling: a failed task keeps the progress it had when it failed."""
    if snap.state is State.SUCCEEDED:
        return 100
    if snap.state is State.QUEUED:
        return 0
    if snap.state is State.FAILED and snap.progress >= 100:
        at = task.plan.fail_at if task.plan.failure is not None else 1.0
        return max(0, min(99, int(at * 100)))
    return max(0, min(99 if not snap.state.terminal else 100, snap.progress))


def eta(snap: Snapshot) -> int:
    if snap.state.terminal:
        return 0
    return max(0, math.ceil(round(snap.eta, 6)))


def task_result(
    task: Task, snap: Snapshot, video_url: str | None = None,
    video_url_ttl: int | str | None = None,
) -> dict[str, Any]:
    """The whole task-result body for a task seen at `snap` (not for EXPIRED: that is a 404).

    `video_url` and `video_url_ttl` are used only when the task succeeded; the TTL is emitted
    as given (the string constant "3600" by default, decision `video-url-ttl-type`).
    """
    if snap.state is State.EXPIRED:
        raise ValueError("an expired jiekou task has no task-result body (it is a 404)")
    videos: list[dict[str, Any]] = []
    if snap.state is State.SUCCEEDED and video_url is not None:
        videos.append({
            "video_url": video_url,
            "video_url_ttl": video_url_ttl if video_url_ttl is not None else "0",
            "video_type": "mp4",
        })
    seed = task.extra.get("seed", task.spec.seed if task.spec.seed is not None else -1)
    return {
        "task": {
            "task_id": task.id,
            "task_type": str(task.extra.get("task_type", "")),
            "status": STATUS[snap.state],
            "reason": reason(task, snap),
            "eta": eta(snap),
            "progress_percent": progress(task, snap),
        },
        "images": [],
        "videos": videos,
        "audios": [],  # always present (Novita task-result doc); Wan tasks make no audio files
        "extra": {
            "seed": str(seed),
            "enable_nsfw_detection": False,
            "debug_info": {
                "request_info": "",
                "submit_time_ms": ms(snap.submitted_at),
                "execute_time_ms": ms(snap.started_at),
                "complete_time_ms": ms(snap.ended_at),
            },
        },
    }


EVENT_TYPE = "ASYNC_TASK_RESULT"


def webhook_event(result: dict[str, Any], webhook: dict[str, Any],
                  event_type: str = EVENT_TYPE) -> dict[str, Any]:
    """Novita's webhook body: `{"event_type": "ASYNC_TASK_RESULT", "payload": <task-result>}`
    with the submit's `extra.webhook` echoed in `payload.extra.webhook` (Novita webhook doc)."""
    payload = dict(result)
    payload["extra"] = dict(result.get("extra") or {}, webhook=webhook)
    return {"event_type": event_type, "payload": payload}


def created_body(task_id: str) -> dict[str, Any]:
    """The answer to a submit: the task id alone (novita.ai/docs/api-reference/model-apis-wan-t2v;
    novita-client 0.7.1 novita.py)."""
    return {"task_id": task_id}
