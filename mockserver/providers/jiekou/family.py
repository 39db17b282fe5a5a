"""What wanmock knows about jiekou/Novita outside its HTTP class (no Starlette): hosts come
from contracts/jiekou.yaml `servers:`; paths, status words, where its answers carry them,
options."""

from __future__ import annotations

from typing import Any

from mockserver.families import FamilySpec, StatusField, read_path
from mockserver.options import Option

NAME = "jiekou"
# neutral state -> `task.status` (Novita task-result doc); a canceled task reads as failed.
STATUS = {
    "queued": "TASK_STATUS_QUEUED",
    "running": "TASK_STATUS_PROCESSING",
    "succeeded": "TASK_STATUS_SUCCEED",
    "failed": "TASK_STATUS_FAILED",
    "canceled": "TASK_STATUS_FAILED",
    "suspended": "TASK_STATUS_PROCESSING",  # Novita has no held state [C]
}
FAILED = STATUS["failed"]

OPTIONS = (
    Option("jiekou_bare_key", "accept", "jiekou/Novita: take `Authorization: <key>` without "
           "Bearer as the key (accept, default, as the npm novita-sdk sends it) or answer 401 "
           "(reject, as Novita's error guide describes)", choices=("reject", "accept"),
           family=NAME),
    Option("jiekou_url_ttl", "string", "jiekou/Novita videos[].video_url_ttl: the TTL constant "
           "as a string (\"3600\", default, per Novita's doc) or the seconds left as an int",
           choices=("string", "countdown"), family=NAME),
    Option("jiekou_content_type", "optional", "jiekou/Novita: read a submit without "
           "Content-Type as JSON (optional, default) or answer it 400 (required)",
           choices=("optional", "required"), family=NAME),
)


class JiekouSpec(FamilySpec):
    """A failed jiekou task carries only a reason: its code is the status word."""

    def failure(self, body: Any) -> tuple[str, str] | None:
        reason = read_path(body, "task.reason")
        if isinstance(reason, str) and reason:
            return FAILED, reason
        return None


FAMILY = JiekouSpec(
    name=NAME,
    routes="mockserver.providers.jiekou.routes:Jiekou",
    policy="mockserver.providers.jiekou.policy:JiekouPolicy",
    prefixes=("/v3/",),
    statuses=(StatusField("task.status", {w: s for s, w in STATUS.items()}),),
    task_id_paths=("task.task_id",),
    progress_paths=("task.progress_percent",),
    video_url_paths=("videos.0.video_url",),
    base_url_hint="{url}          (Novita/jiekou: base_url for /v3/async/*)",
    key_variables=("JIEKOU_API_KEY", "NOVITA_API_KEY"),
    options=OPTIONS,
    order=30,
)
