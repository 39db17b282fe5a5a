"""new-api's words for the neutral task, per release: the submit answer, the TaskDto, the OpenAI
video object (no Starlette).

new-api relays the upstream DashScope task body as the row's `data`; the routes build it with
`mockserver.providers.dashscope.render.task_body` and pass it in. Sources at the tag commits
(github.com/QuantumNous/new-api; R = v1.0.0-rc.25 f1164142, L = v0.10.0 ee53a7b6): dto/task.go
TaskDto (R :32-53) and relay/relay_task.go TaskModel2Dto (R :550-573); dto/suno.go TaskDto
(L :81-91) and relay/relay_task.go TaskModel2Dto (L :494-506); model/task.go GetResultURL
(R :136-141); ali/adaptor.go DoResponse (R :507-519, L :379-390) and ConvertToOpenAIVideo
(R :592-623, L :463-494).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.dashscope.family import STATUS as DS_STATUS
from mockserver.providers.newapi.family import STATUS, VIDEO_STATUS
from mockserver.providers.newapi.poller import Row
from mockserver.providers.newapi.releases import Release

# The poller's fixed progress per status (taskcommon.Progress*, R service/task_polling.go
# :527-561; L controller/task_video.go :128-244).
PROGRESS = {"NOT_START": 0, "SUBMITTED": 10, "QUEUED": 20, "IN_PROGRESS": 30,
            "SUCCESS": 100, "FAILURE": 100}
PLATFORM_ALI = "17"  # constant.ChannelTypeAli, the row's platform (R relay_adaptor.go :136-142)
# What the fake's gateway is, where a row shows its deployment (contracts/newapi.yaml decision
# "TaskDto deployment fields"): one Ali channel, the default group, a price of 0.1 per call.
CHANNEL_ID = 1
QUOTA_PER_UNIT = 500_000  # common.QuotaPerUnit
MODEL_PRICE = 0.1


def epoch(value: float | None) -> int:
    """Unix seconds, 0 when not yet (TaskDto's convention)."""
    return int(value) if value is not None else 0


def _small_id(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 1_000_000 + 1


def model_of(task: Task) -> str:
    """The model the row names (a remix keeps its origin's, R relay_task.go :66-78)."""
    return str(task.extra.get("model") or task.spec.model)


def fail_reason(task: Task, snap: Snapshot) -> str:
    """The Ali adaptor's failure text (ali/adaptor.go R :576-584, L :447-455): the upstream
    `output.code`/`message` as "task failed, code: X , message: Y", else "task failed"."""
    if snap.state is State.FAILED and task.plan.failure is not None:
        failure = task.plan.failure
        return f"task failed, code: {failure.code} , message: {failure.message}"
    if snap.state in (State.FAILED, State.CANCELED, State.EXPIRED):
        return "task failed"
    return ""


def row_status(row: Row) -> str:
    """The row's TaskDto status: NOT_START until the poller first fetched the task."""
    return "NOT_START" if row.not_started else STATUS[row.snap.state]


def upstream_word(row: Row) -> str:
    """The DashScope status of the body new-api stored last (the submit answer's PENDING while
    NOT_START)."""
    return "PENDING" if row.not_started else DS_STATUS[row.snap.state]


def task_dto(task: Task, row: Row, release: Release, *, upstream: Mapping[str, Any] | None,
             video_url: str | None) -> dict[str, Any]:
    """The release's TaskDto for the row."""
    status = row_status(row)
    snap = row.snap
    ended = not row.not_started and snap.state.terminal
    reason = fail_reason(task, snap) if ended else ""
    url = video_url if status == "SUCCESS" and video_url else ""
    common = {
        "action": task.extra.get("action", "textGenerate"),
        "status": status,
        # L keeps the video URL in fail_reason (controller/task_video.go :143).
        "fail_reason": reason if release.full_dto else (url or reason),
    }
    times = {"submit_time": epoch(snap.submitted_at), "start_time": row.start_time,
             "finish_time": row.finish_time, "progress": f"{PROGRESS[status]}%"}
    data = dict(upstream) if upstream is not None else None
    if not release.full_dto:
        return {"task_id": task.id, **common, **times, "data": data}
    dto: dict[str, Any] = {
        "id": _small_id(task.id),
        "created_at": epoch(snap.submitted_at),
        "updated_at": row.updated_at,
        "task_id": task.id,
        "platform": PLATFORM_ALI,
        "user_id": _small_id(str(task.api_key or "")),
        "group": "default",
        "channel_id": CHANNEL_ID,
        "quota": int(task.extra.get("quota", 0)),
        **common,
    }
    # GetResultURL: the stored result URL, else fail_reason (so a failure's reason shows twice).
    result_url = url or dto["fail_reason"]
    if result_url:
        dto["result_url"] = result_url
    dto.update(times)
    dto["properties"] = {"input": "", "upstream_model_name": model_of(task),
                         "origin_model_name": model_of(task)}
    dto["data"] = data
    return dto


def quota(ratios: Mapping[str, float] | None) -> int:
    """The quota a submit pre-charges at the fake's price (ModelPriceHelperPerCall, then
    ApplyOtherRatios: price x QuotaPerUnit x group ratio 1 x every other ratio)."""
    value = MODEL_PRICE * QUOTA_PER_UNIT
    for ratio in (ratios or {}).values():
        value *= ratio
    return int(value)


def task_response(dto: Mapping[str, Any]) -> dict[str, Any]:
    """`dto.TaskResponse` around a TaskDto."""
    return {"code": "success", "message": "", "data": dict(dto)}


def submit_body(task: Task, release: Release, *, created_at: float) -> dict[str, Any]:
    """DoResponse's OpenAIVideo: R `id` and `task_id` = the public id; L `id` = the DashScope
    task id and no `task_id` (omitempty)."""
    body: dict[str, Any] = {"id": task.id}
    if release.public_ids:
        body["task_id"] = task.id
    body.update({"object": "video", "model": model_of(task), "status": "queued",
                 "progress": 0, "created_at": int(created_at)})
    return body


def openai_video(task: Task, row: Row, *, video_url: str | None) -> dict[str, Any]:
    """ConvertToOpenAIVideo (both releases): no `task_id`; `status` from the stored upstream
    body (SUSPENDED, or any word it lacks, is "unknown"); `progress` from the row;
    `completed_at` = the row's UpdatedAt (the last poll, always set); `metadata.url` the
    upstream `video_url`, "" until it succeeded."""
    status = row_status(row)
    snap = row.snap
    body: dict[str, Any] = {
        "id": task.id, "object": "video", "model": model_of(task),
        "status": VIDEO_STATUS.get(upstream_word(row), "unknown"),
        "progress": PROGRESS[status], "created_at": epoch(snap.submitted_at),
        "completed_at": row.updated_at,
    }
    if status == "FAILURE" and snap.state is State.FAILED and task.plan.failure is not None:
        body["error"] = {"message": task.plan.failure.message, "code": task.plan.failure.code}
    body["metadata"] = {"url": video_url if status == "SUCCESS" and video_url else ""}
    return body
