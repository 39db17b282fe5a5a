"""What wanmock knows about new-api gateways outside the HTTP class (no Starlette): paths,
status words (its task rows and the OpenAI video objects), where its answers carry them, and
its options. A gateway has no host of its own: its contract's `servers:` are examples (users
route theirs with `hosts=`)."""

from __future__ import annotations

import re
from typing import Any

from mockserver.families import FamilySpec, StatusField, read_path
from mockserver.options import Option, at_least

NAME = "newapi"
# neutral state -> new-api's internal TaskStatus as its Ali poller sets it (api-facts §2.7):
# PENDING -> QUEUED, RUNNING -> IN_PROGRESS, SUCCEEDED -> SUCCESS, FAILED/CANCELED/UNKNOWN ->
# FAILURE. Rows also read NOT_START and SUBMITTED before the first poll.
STATUS = {
    "queued": "QUEUED",
    "running": "IN_PROGRESS",
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
    "canceled": "FAILURE",
    "expired": "FAILURE",
    "suspended": "IN_PROGRESS",  # convertAliStatus has no case for SUSPENDED; not ended [C]
}
NOT_START, SUBMITTED = "NOT_START", "SUBMITTED"
# TaskStatus.ToVideoStatus / Ali convertAliStatus (api-facts §2.5, §2.7).
VIDEO_STATUS = {
    SUBMITTED: "queued",
    "QUEUED": "queued",
    "IN_PROGRESS": "in_progress",
    "SUCCESS": "completed",
    "FAILURE": "failed",
}
_ROW = {"QUEUED": "queued", "IN_PROGRESS": "running", "SUCCESS": "succeeded",
        "FAILURE": "failed", NOT_START: "queued", SUBMITTED: "queued", "UNKNOWN": "expired"}
_VIDEO = {**{VIDEO_STATUS[w]: s for w, s in _ROW.items() if w in VIDEO_STATUS},
          "unknown": "expired"}
_FAIL_REASON = re.compile(r"code:\s*(?P<code>[^,\s]+)\s*,\s*message:\s*(?P<message>.*)$", re.S)


def _interval(v: Any) -> str | None:
    return at_least(0, " seconds")(v)


OPTIONS = (
    Option("newapi_build_error_status", 500, "a request new-api cannot convert (a t2v size "
           "without `*`, metadata that changes the model): 500 as new-api answers (default) "
           "or the friendlier 400", kind="int", choices=(400, 500), family=NAME),
    Option("newapi_url_in_fail_reason", True, "on SUCCESS the TaskDto also carries the video "
           "URL in fail_reason (seed 002, old versions; default) besides result_url",
           kind="bool", family=NAME),
    Option("newapi_id_style", "public", "public (task_ + 32 characters in id and task_id, "
           "default) or upstream (older new-api: the DashScope task id in id, no task_id)",
           choices=("public", "upstream"), family=NAME),
    Option("newapi_drop_shot_type", False, "drop shot_type silently, as upstream new-api does "
           "(default: honour it)", kind="bool", family=NAME),
    Option("newapi_completed_at_always", True, "set completed_at (the row's UpdatedAt) on "
           "every /v1/videos object, as new-api's Ali converter does (default); false: only "
           "once the video ended", kind="bool", family=NAME),
    Option("newapi_english_messages", False, "new-api's English middleware messages instead "
           "of the Chinese ones (latest versions also follow Accept-Language)", kind="bool",
           family=NAME),
    Option("newapi_version", "latest", "new-api: latest (main at 4a188dee, 2026-06: i18n "
           "distributor, build_request_failed) or legacy (the Ali relay of 2025-10 to "
           "2026-02: hard-coded distributor messages, convert_to_ali_request_failed)",
           choices=("latest", "legacy"), family=NAME),
    Option("newapi_poll_interval", None, "new-api: seconds between its background polls of "
           "the upstream task (default: 15 realistic, 1 fast, 0 instant; 0 = no lag)",
           kind="float", check=_interval, nullable=True, family=NAME, metavar="S"),
    Option("newapi_kf2v_route", "video-generation", "new-api: where a kf2v model is relayed: "
           "video-generation (its Ali adaptor's one URL, where DashScope refuses it; default) "
           "or image2video (a build that routes kf2v models there: the job runs)",
           choices=("video-generation", "image2video"), family=NAME),
)


class NewApiSpec(FamilySpec):
    """A failed new-api row words its failure in `fail_reason` ("code: X, message: Y")."""

    def failure(self, body: Any) -> tuple[str, str] | None:
        found = super().failure(body)
        if found is not None:
            return found
        reason = read_path(body, "data.fail_reason")
        if isinstance(reason, str) and reason:
            parsed = _FAIL_REASON.search(reason)
            if parsed:
                return parsed["code"], parsed["message"].strip()
            return "TaskFailed", reason
        return None


FAMILY = NewApiSpec(
    name=NAME,
    routes="mockserver.providers.newapi.routes:NewApi",
    policy="mockserver.providers.newapi.policy:NewApiPolicy",
    prefixes=("/v1/video",),
    task_paths=("/v1/video/generations/", "/v1/videos/"),
    statuses=(StatusField("data.status", _ROW), StatusField("status", _VIDEO)),
    task_id_paths=("data.task_id", "id"),
    progress_paths=("data.progress", "progress"),
    video_url_paths=("data.result_url", "data.data.output.video_url", "metadata.url"),
    failure_paths=(("error.code", "error.message"),),
    route_servers=False,
    base_url_hint="{url}/v1       (new-api gateway; OpenAI videos at {url}/v1/videos)",
    key_variables=("NEWAPI_API_KEY",),
    options=OPTIONS,
    order=20,
    metadata_fields=True,
    own_refusals=frozenset({"media_missing"}),
)
