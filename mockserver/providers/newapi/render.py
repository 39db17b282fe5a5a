"""new-api's words for the neutral task: TaskDto, the OpenAI video object, TaskError bodies.

No Starlette here. new-api relays the upstream DashScope task body as `data.data`; the routes
build it with `mockserver.providers.dashscope.render.task_body` and pass it in.
Sources: api-facts §2.3-2.9 and contracts/newapi.yaml (x-wanmock-decisions).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.newapi.family import STATUS, VIDEO_STATUS  # word tables
from mockserver.providers.newapi.poller import Row

# The poller writes fixed progress strings per status (api-facts §2.7).
PROGRESS = {"NOT_START": 0, "SUBMITTED": 10, "QUEUED": 20, "IN_PROGRESS": 30,
            "SUCCESS": 100, "FAILURE": 100}


def epoch(value: float | None) -> int:
    """Unix seconds, 0 when not yet (TaskDto's convention)."""
    return int(value) if value is not None else 0


def finished_at(snap: Snapshot) -> float | None:
    """When the task reached its terminal state (None while it runs)."""
    if snap.ended_at is not None:
        return snap.ended_at
    return snap.now if snap.state.terminal else None


def has_image(body: Any) -> bool:
    """new-api's action: any of `image`, `images`, `input_reference` makes it `generate`."""
    if not isinstance(body, Mapping):
        return False
    images = body.get("images")
    return bool(
        (isinstance(body.get("image"), str) and body["image"])
        or (isinstance(images, list) and any(images))
        or (isinstance(body.get("input_reference"), str) and body["input_reference"])
    )


def action(body: Any) -> str:
    return "generate" if has_image(body) else "textGenerate"


def fail_reason(
    task: Task, snap: Snapshot, video_url: str | None, *, url_in_fail_reason: bool
) -> str:
    """TaskDto `fail_reason`: the adaptor's text on FAILURE; the URL on SUCCESS (seed 002)."""
    if snap.state is State.SUCCEEDED:
        return (video_url or "") if url_in_fail_reason else ""
    if snap.state is State.FAILED and task.plan.failure is not None:
        failure = task.plan.failure
        return f"task failed, code: {failure.code} , message: {failure.message}"
    if snap.state in (State.FAILED, State.CANCELED, State.EXPIRED):
        return "task failed"
    return ""


def row_status(row: Row) -> str:
    """The row's TaskDto status: NOT_START until the poller first fetched the task."""
    return "NOT_START" if row.not_started else STATUS[row.snap.state]


def task_dto(
    task: Task,
    row: Row,
    *,
    task_id: str,
    upstream: Mapping[str, Any] | None,
    video_url: str | None,
    url_in_fail_reason: bool = True,
) -> dict[str, Any]:
    """new-api `dto.TaskDto` (old field set plus `result_url` on success)."""
    status = row_status(row)
    snap = row.snap
    dto: dict[str, Any] = {
        "task_id": task_id,
        "action": action(task.request),  # type: ignore[attr-defined]  # a property (see Task)
        "status": status,
        "fail_reason": "" if row.not_started else fail_reason(
            task, snap, video_url, url_in_fail_reason=url_in_fail_reason),
        "submit_time": epoch(snap.submitted_at),
        "start_time": row.start_time,
        "finish_time": row.finish_time,
        "progress": f"{PROGRESS[status]}%",
    }
    if status == "SUCCESS" and video_url:
        dto["result_url"] = video_url
    dto["data"] = dict(upstream) if upstream is not None else None
    return dto


def task_response(dto: Mapping[str, Any]) -> dict[str, Any]:
    """`dto.TaskResponse` around a TaskDto."""
    return {"code": "success", "message": "", "data": dict(dto)}


def submit_body(
    task: Task, *, video_id: str, with_task_id: bool, created_at: float
) -> dict[str, Any]:
    """The OpenAIVideo answer to a submit (api-facts §2.3)."""
    return _video_head(task, video_id, with_task_id, "queued", 0, int(created_at))


def _video_head(task: Task, video_id: str, with_task_id: bool, status: str, progress: int,
                created_at: int) -> dict[str, Any]:
    """The fields every OpenAIVideo body starts with, in new-api's order."""
    body: dict[str, Any] = {"id": video_id}
    if with_task_id:
        body["task_id"] = video_id
    body.update({"object": "video", "model": task.spec.model, "status": status,
                 "progress": progress, "created_at": created_at})
    return body


def openai_video(
    task: Task,
    row: Row,
    *,
    video_id: str,
    with_task_id: bool,
    video_url: str | None,
    completed_at_always: bool = True,
) -> dict[str, Any]:
    """The Ali adaptor's `ConvertToOpenAIVideo` (api-facts §2.5): the status from the upstream
    body new-api stored last (the submit answer, PENDING, while NOT_START), the progress from
    the row, `completed_at` = the row's `UpdatedAt`."""
    status = row_status(row)
    snap = row.snap
    video_status = "queued" if row.not_started else VIDEO_STATUS.get(status, "unknown")
    body = _video_head(task, video_id, with_task_id, video_status, PROGRESS[status],
                       epoch(snap.submitted_at))
    if completed_at_always:
        body["completed_at"] = row.updated_at
    elif row.finish_time:
        body["completed_at"] = row.finish_time
    if status == "FAILURE" and snap.state is State.FAILED and task.plan.failure is not None:
        body["error"] = {"message": task.plan.failure.message, "code": task.plan.failure.code}
    body["metadata"] = {"url": video_url if status == "SUCCESS" and video_url else ""}
    return body


def upstream_error_message(code: str, message: str, request_id: str) -> str:
    """The DashScope error body, as text, that new-api relays in `fail_to_fetch_task`."""
    return json.dumps({"request_id": request_id, "code": code, "message": message},
                      ensure_ascii=False, separators=(",", ":"))
