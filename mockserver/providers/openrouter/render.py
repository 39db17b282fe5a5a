"""OpenRouter's JSON (no Starlette): the video job, its webhook event, the model list.

Shapes from openrouter 1.3.84 (components/videogenerationresponse.py, videogenerationusage.py,
videomodel.py) and the video guide's examples
(https://openrouter.ai/docs/guides/overview/multimodal/video-generation: the job, the
`video.generation.*` webhook envelope and its error texts); contracts/openrouter.yaml holds
the decisions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mockserver.catalogue import Catalogue, ModelEntry
from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.openrouter.family import STATUS

# The error text of a job that ended without a video, by status (the guide's webhook
# examples; a failed job's text is its failure's message).
CANCELLED = "Job was cancelled"
EXPIRED = "Job exceeded maximum time to live"
WEBHOOK_TYPE = "video.generation.{status}"


def status_of(task: Task, snap: Snapshot) -> str:
    """The job's status word; a job that failed on the provider's time limit `expired`."""
    failure = task.plan.failure
    if snap.state is State.FAILED and failure is not None and failure.kind == "timeout":
        return STATUS["expired"]
    return STATUS[snap.state]


def error_of(task: Task, snap: Snapshot, status: str) -> str | None:
    """What `error` says of a job that ended without a video (None otherwise)."""
    if status == STATUS["canceled"]:
        return CANCELLED
    if status == STATUS["expired"]:
        return EXPIRED
    if snap.state is State.FAILED:
        failure = task.plan.failure
        return failure.message if failure is not None else "Generation failed"
    return None


def job(task: Task, snap: Snapshot, *, polling_url: str, content_url: str,
        signed: tuple[str, int] | None, cost: float | None) -> dict[str, Any]:
    """`GET /api/v1/videos/{jobId}` (and the submit's answer while pending): `generation_id`
    once the job is being processed, `unsigned_urls` and `usage` once completed (and `urls`,
    `expires_at` while the stored copy lasts: `signed`), `error` once it ended without one."""
    status = status_of(task, snap)
    body: dict[str, Any] = {"id": task.id, "polling_url": polling_url, "status": status}
    if snap.state is not State.QUEUED and not (
            snap.state is State.CANCELED and snap.started_at is None):
        body["generation_id"] = task.extra.get("generation_id")
    if status == STATUS["succeeded"]:
        body["unsigned_urls"] = [content_url]
        if signed is not None:
            body["urls"] = [signed[0]]
            body["expires_at"] = signed[1]
        body["usage"] = {"cost": cost, "is_byok": False}
    error = error_of(task, snap, status)
    if error is not None:
        body["error"] = error
    return body


def event(task: Task, snap: Snapshot, polled: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The webhook of a job that reached a terminal status: `{type, created_at, data}` with
    `data` as a poll shows the job (no polling URL, `model` added; `generation_id` null when
    the job failed before one was assigned)."""
    data: dict[str, Any] = {"id": task.id, "status": polled["status"],
                            "generation_id": polled.get("generation_id"), "model": model}
    for key in ("unsigned_urls", "usage", "error"):
        if key in polled:
            data[key] = polled[key]
    ended = snap.ended_at if snap.ended_at is not None else snap.now
    return {"type": WEBHOOK_TYPE.format(status=polled["status"]),
            "created_at": iso_ms(ended), "data": data}


def iso_ms(when: float) -> str:
    """`2026-04-24T12:00:00.000Z` (the guide's webhook `created_at`)."""
    millis = int(round(when * 1000))
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def cost(entry: ModelEntry | None, mode: str, tier: str | None, seconds: int) -> float | None:
    """`usage.cost` in USD: the output seconds at the model's SKU for the mode and tier
    (`image_to_video_duration_seconds_720p`, `duration_seconds_720p`, `duration_seconds`...);
    None when no SKU fits."""
    skus = ((entry.get("openrouter") or {}).get("pricing_skus") or {}) if entry else {}
    res = (tier or "").lower()
    kind = "image_to_video" if mode == "i2v" else "text_to_video"
    for name in (f"{kind}_duration_seconds_{res}", f"text_to_video_duration_seconds_{res}",
                 f"duration_seconds_{res}", "duration_seconds"):
        price = skus.get(name)
        if price is not None:
            return round(float(price) * seconds, 6)
    return None


def model(catalogue: Catalogue, entry: ModelEntry) -> dict[str, Any]:
    """One `VideoModel` of `GET /api/v1/videos/models`: every key the SDK requires, present
    (null where the model has no such capability)."""
    own: Mapping[str, Any] = entry.get("openrouter") or {}
    tiers = catalogue.resolutions(entry)
    return {
        "id": entry.model,
        "canonical_slug": own.get("canonical_slug", entry.model),
        "name": own.get("name", entry.model),
        "created": int(own.get("created", 0)),
        "supported_resolutions": [t.lower() for t in tiers] or None,
        "supported_aspect_ratios": list(entry.get("ratios") or []) or None,
        "supported_sizes": list(own["sizes"]) if own.get("sizes") else None,
        "supported_durations": catalogue.durations(entry) or None,
        "supported_frame_images": list(own.get("frame_images") or []) or None,
        "generate_audio": own.get("generate_audio", entry.audio),
        "seed": own.get("seed"),
        "upscale_factor": None,
        "creativity": None,
        "allowed_passthrough_parameters": list(own.get("passthrough") or []),
        "pricing_skus": dict(own["pricing_skus"]) if own.get("pricing_skus") else None,
        "input_modalities": list(own.get("input_modalities") or ["text"]),
    }
