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
# `newapi_version`: the two releases modelled (providers/newapi/releases.py) and their tags.
VERSION_CHOICES = ("latest", "legacy", "v1.0.0-rc.25", "v0.10.0")
# neutral state -> the TaskDto status new-api's poller writes from the Ali adaptor's
# ParseTaskResult (ali/adaptor.go R :567-587, L :438-458): PENDING -> QUEUED, RUNNING ->
# IN_PROGRESS, SUCCEEDED -> SUCCESS, FAILED/CANCELED/UNKNOWN -> FAILURE, anything else
# (SUSPENDED) -> QUEUED. A row reads NOT_START until the first poll.
STATUS = {
    "queued": "QUEUED",
    "running": "IN_PROGRESS",
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
    "canceled": "FAILURE",
    "expired": "FAILURE",
    "suspended": "QUEUED",
}
NOT_START, SUBMITTED = "NOT_START", "SUBMITTED"
# convertAliStatus (ali/adaptor.go R :625-638, L :496-509), over the DashScope status word of
# the upstream body new-api stored last: anything else is "unknown".
VIDEO_STATUS = {"PENDING": "queued", "RUNNING": "in_progress", "SUCCEEDED": "completed",
                "FAILED": "failed", "CANCELED": "failed", "UNKNOWN": "failed"}
_ROW = {"QUEUED": "queued", "IN_PROGRESS": "running", "SUCCESS": "succeeded",
        "FAILURE": "failed", NOT_START: "queued", SUBMITTED: "queued", "UNKNOWN": "expired"}
_VIDEO = {"queued": "queued", "in_progress": "running", "completed": "succeeded",
          "failed": "failed", "unknown": "suspended"}
_FAIL_REASON = re.compile(r"code:\s*(?P<code>[^,\s]+)\s*,\s*message:\s*(?P<message>.*)$", re.S)


def _interval(v: Any) -> str | None:
    return at_least(0, " seconds")(v)


OPTIONS = (
    Option("newapi_version", "latest", "which new-api release the gateway is, one coherent "
           "release: latest = v1.0.0-rc.25 (f1164142, 2026-08-18: English i18n messages, "
           "task_ ids, the 20-field TaskDto with result_url, X-New-Api-* headers) or legacy = "
           "v0.10.0 (ee53a7b6, 2025-12-11, seed 002: Chinese messages, DashScope task ids, the "
           "9-field TaskDto with the video URL in fail_reason); the tag names work too",
           choices=VERSION_CHOICES, family=NAME),
    Option("newapi_user_language", "none", "latest only: the language saved in the calling "
           "user's settings, which new-api's distributor messages follow before "
           "Accept-Language (none = no saved language: Accept-Language, else English)",
           choices=("none", "en", "zh-CN", "zh-TW"), family=NAME),
    Option("newapi_build_error_status", 500, "a request new-api cannot convert (a t2v size "
           "without `*`, metadata that changes the model): 500 as both releases answer "
           "(default) or 400, a non-faithful convenience for clients that retry every 5xx",
           kind="int", choices=(400, 500), family=NAME),
    Option("newapi_poll_interval", None, "new-api: seconds between its background polls of "
           "the upstream task (default: 15 realistic, 1 fast, 0 instant; 0 = no lag)",
           kind="float", check=_interval, nullable=True, family=NAME, metavar="S"),
    Option("newapi_kf2v_route", "video-generation", "new-api: where a kf2v model is relayed: "
           "video-generation (its Ali adaptor's one URL in both releases, where DashScope "
           "refuses it; default) or image2video (a fork's adaptor, not a release: the job runs)",
           choices=("video-generation", "image2video"), family=NAME),
)


class NewApiSpec(FamilySpec):
    """A failed new-api row words its failure in `fail_reason` ("code: X, message: Y"), and
    v1.0.0-rc.25's `result_url` repeats that reason on a failure (GetResultURL's fallback)."""

    def video_url(self, body: Any) -> str | None:
        status = read_path(body, "data.status")
        if isinstance(status, str) and status != "SUCCESS":
            url = read_path(body, "data.data.output.video_url")
            return url if isinstance(url, str) and url else None
        return super().video_url(body)

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
    prefixes=("/v1/",),  # gin NoRoute: every unknown /v1 path (router/web-router.go)
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
    metadata_fields="nested",
    own_refusals=frozenset({"media_missing"}),
)
