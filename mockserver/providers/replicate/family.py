"""What wanmock knows about Replicate outside its HTTP class (no Starlette): its host comes
from contracts/replicate.yaml `servers:`; paths, status words, where its answers carry them,
options."""

from __future__ import annotations

from typing import Any

from mockserver.families import FamilySpec, StatusField, read_path
from mockserver.options import Option

NAME = "replicate"
# neutral state -> a prediction's `status` (OAS status description). Replicate has no expired
# state: predictions are kept (their data removed after an hour); `aborted` is a prediction
# canceled by its deadline before it started (contracts/replicate.yaml decision task-states).
STATUS = {
    "queued": "starting",
    "running": "processing",
    "suspended": "processing",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
    "expired": "canceled",
}
ABORTED = "aborted"
WORDS = {"starting": "queued", "processing": "running", "succeeded": "succeeded",
         "failed": "failed", "canceled": "canceled", ABORTED: "canceled"}


def _deployments(value: Any) -> str | None:
    """`owner/name=wan-video/<model>` pairs, comma-separated."""
    for pair in str(value or "").split(","):
        if not pair.strip():
            continue
        name, sep, model = pair.partition("=")
        if not sep or name.strip().count("/") != 1 or model.strip().count("/") != 1:
            return f"takes owner/name=owner/model pairs, not {pair.strip()!r}"
    return None


def _page_size(value: Any) -> str | None:
    return None if isinstance(value, int) and 1 <= value <= 1000 else "must be 1..1000"


OPTIONS = (
    Option("replicate_wait_status", "starting", "Replicate: the status of an unfinished "
           "prediction answered to `Prefer: wait` when the window is over: starting (default, "
           "as Replicate documents; replicate.run then polls) or actual (its real status, as "
           "2024 recordings show; replicate.run then returns None)",
           choices=("starting", "actual"), family=NAME),
    Option("replicate_unfinished_status", "201", "Replicate: the HTTP status of a create whose "
           "prediction has not finished: 201 (default, every recording) or 202 (the OpenAPI "
           "spec's 'does not yet have all outputs')", choices=("201", "202"), family=NAME),
    Option("replicate_versions", "listed", "Replicate: listed (default: each wan-video model "
           "has one 64-hex version, predictions carry it) or hidden (version \"hidden\", the "
           "versions endpoints 404, as official models without versions)",
           choices=("listed", "hidden"), family=NAME),
    Option("replicate_output", "url", "Replicate: a succeeded prediction's output as the "
           "fake's result URL (url, default; https under --tls, so replicate.run gives a "
           "FileOutput) or as a data: URI of the MP4 (data)", choices=("url", "data"),
           family=NAME),
    Option("replicate_rate_limits", "on", "Replicate: the documented limits per key, 600 "
           "creates and 3000 other requests a minute, 429 with Retry-After beyond them (on, "
           "default) or none (off)", choices=("on", "off"), family=NAME),
    Option("replicate_webhook_events", "output-completed", "Replicate: the events a webhook "
           "gets without webhook_events_filter: output and completed (output-completed, "
           "default, Replicate's API doc) or all four (all, Cog's doc)",
           choices=("output-completed", "all"), family=NAME),
    Option("replicate_aborted", "aborted", "Replicate: a prediction whose Cancel-After "
           "deadline passes before it starts reads aborted (default, the API's word) or "
           "canceled (replicate 1.0.7 cannot parse aborted)", choices=("aborted", "canceled"),
           family=NAME),
    Option("replicate_deployments", "", "Replicate: the deployments the fake knows, "
           "owner/name=wan-video/<model> pairs, comma-separated (default: none; others 404)",
           check=_deployments, family=NAME, metavar="PAIRS"),
    Option("replicate_page_size", 100, "Replicate: predictions and files per list page "
           "(default 100, as Replicate pages)", kind="int", check=_page_size, family=NAME,
           metavar="N"),
)


class ReplicateSpec(FamilySpec):
    """A failed prediction carries its message in `error`, with no code: the status word is
    the code."""

    def failure(self, body: Any) -> tuple[str, str] | None:
        error = read_path(body, "error")
        if isinstance(error, str) and error:
            return "failed", error
        return None


FAMILY = ReplicateSpec(
    name=NAME,
    routes="mockserver.providers.replicate.routes:Replicate",
    policy="mockserver.providers.replicate.policy:ReplicatePolicy",
    prefixes=("/v1/predictions", "/v1/models/", "/v1/deployments/", "/v1/files",
              "/v1/webhooks/", "/v1/account"),
    task_paths=("/v1/predictions/",),
    statuses=(StatusField("status", WORDS),),
    task_id_paths=("id",),
    video_url_paths=("output",),
    base_url_hint="{url}   (Replicate: REPLICATE_BASE_URL={url}; replicate.run gives a "
                  "FileOutput over https only: serve with --tls)",
    key_variables=("REPLICATE_API_TOKEN",),
    options=OPTIONS,
    order=60,
)
