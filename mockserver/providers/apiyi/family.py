"""What wanmock knows about apiyi outside its HTTP class (no Starlette): hosts come from
contracts/apiyi.yaml `servers:`; DashScope's create under `/wan`, its own task API's words."""

from __future__ import annotations

from mockserver.families import FamilySpec, StatusField
from mockserver.providers.dashscope.family import STATUS_FIELD as DASHSCOPE_STATUS

NAME = "apiyi"
# neutral state -> the task API's `status` (seed 004); a canceled task reads as failed.
STATUS = {
    "queued": "submitted",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "failed",
    "suspended": "in_progress",  # apiyi's four words have none for a held task [C]
}

FAMILY = FamilySpec(
    name=NAME,
    routes="mockserver.providers.apiyi.routes:Apiyi",
    policy="mockserver.providers.apiyi.policy:ApiyiPolicy",
    prefixes=("/wan/", "/v1/tasks"),
    task_paths=("/v1/tasks/",),
    # the create answers in DashScope's words, the task API in its own
    statuses=(DASHSCOPE_STATUS, StatusField("status", {w: s for s, w in STATUS.items()})),
    task_id_paths=("output.task_id", "task_id"),
    progress_paths=("progress",),
    video_url_paths=("output.video_url", "result_url"),
    failure_paths=(("output.code", "output.message"), ("error.code", "error.message")),
    base_url_hint="{url}/wan/api/v1 (create)  +  {url}/v1/tasks/{{id}} (poll)",
    key_variables=("APIYI_API_KEY",),
    order=40,
)
