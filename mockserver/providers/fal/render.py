"""fal's words for the neutral task (no Starlette): the queue's submit and status bodies, the
model's output, a failed run's error, the log lines and the webhook event.

A fal request is IN_QUEUE, IN_PROGRESS or COMPLETED; a failed or cancelled one is COMPLETED
with `error` (contracts/fal.yaml decisions status-words, failed-request, cancelled-request).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.fal.family import STATUS
from mockserver.providers.fal.policy import NOT_RETRYABLE, REQUEST_ERRORS, RETRYABLE

# Seconds of queue per request ahead of this one: the position is derived from the time the
# request still has to wait, so polls are cheap and it falls to 0 before the run starts.
QUEUE_SLOT_S = 2.0
FPS = {"wan21": 16, "wan25": 24, "wan26": 30, "wan27": 30}
# Outputs that are not the generation's usual one (fal-js output types): wan-pro's and Wan 2.2
# speech-to-video's I2VOutput is the video alone; wan-vace-14b's (and its task apps')
# edittoOutput a VideoFile with the prompt.
VIDEO_ONLY = frozenset({"wan2.1-pro-t2v", "wan2.1-pro-i2v", "wan2.2-14b-s2v"})
VIDEO_FILE_AND_PROMPT = frozenset({"wan2.1-vace-14b", "wan2.1-vace-14b-v2v",
                                   "wan2.1-vace-14b-reframe"})
CANCELLED = ("request_cancelled", "Request cancelled")


def request_root(endpoint: str) -> str:
    """The part of an endpoint id its request URLs keep: owner and alias
    (`fal-ai/wan/v2.7/text-to-video` -> `fal-ai/wan`)."""
    return "/".join(endpoint.strip("/").split("/")[:2])


def request_urls(base: str, root: str, request_id: str) -> dict[str, str]:
    """`response_url`, `status_url` and `cancel_url` of a request (base ends with `/`)."""
    response = f"{base}{root}/requests/{request_id}"
    return {"response_url": response, "status_url": response + "/status",
            "cancel_url": response + "/cancel"}


def queue_position(snap: Snapshot) -> int:
    """Requests ahead (0-indexed): the seconds this one still waits, in queue slots."""
    if snap.state is not State.QUEUED or snap.started_at is None:
        return 0
    return max(0, math.ceil(round((snap.started_at - snap.now) / QUEUE_SLOT_S, 6)) - 1)


def submitted(task: Task, base: str, root: str) -> dict[str, Any]:
    """The submit's answer (Queue API doc; fal-client reads the id and the three URLs)."""
    return {"status": STATUS["queued"], "request_id": task.id,
            **request_urls(base, root, task.id), "queue_position": 0,
            "gateway_request_id": task.id}


def _stamp(epoch: float) -> str:
    """fal's log timestamp: naive UTC with microseconds (the Queue API doc's stream example)."""
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None).isoformat(
        timespec="microseconds")


def logs(task: Task, snap: Snapshot) -> list[dict[str, Any]]:
    """The run's log lines so far: a pure function of the task's state and progress (in time
    mode and in poll-count mode alike), stamped with the run's own times."""
    if snap.state is State.QUEUED:
        return []
    start = snap.started_at if snap.started_at is not None else snap.now
    end = snap.ended_at if snap.ended_at is not None else snap.now
    spec = task.spec
    lines = [(start, "Loading model"),
             (start, f"Generating {spec.duration} s of video at {spec.width}x{spec.height}")]
    if snap.progress >= 50 or snap.state.terminal:
        lines.append((start + (end - start) / 2, "Denoising: 50%"))
    if snap.state is State.SUCCEEDED:
        lines.append((end, "Encoding video"))
    return [{"message": text, "level": "INFO", "source": "stdout", "timestamp": _stamp(at),
             "labels": {}} for at, text in lines]


def failure_of(task: Task, snap: Snapshot) -> tuple[str, str] | None:
    """(error_type or code, message) of a request that ended without output, else None."""
    if snap.state is State.CANCELED:
        return CANCELLED
    if snap.state is State.FAILED:
        failure = task.plan.failure
        if failure is not None:
            return failure.code, failure.message
        return "internal_server_error", "Internal server error"
    if snap.state is State.EXPIRED:
        return "request_timeout", "Request timed out"
    return None


def error_answer(task: Task, snap: Snapshot) -> tuple[int, Any, dict[str, str]] | None:
    """The result of a failed request: (status, body, headers) as the model or the platform
    answered (decision failed-request); None when it did not fail."""
    found = failure_of(task, snap)
    if found is None:
        return None
    code, message = found
    kept = task.extra.get("fal_error")
    if snap.state is State.FAILED and isinstance(kept, dict) and code == kept.get("code"):
        return int(kept["status"]), {"detail": kept["detail"]}, dict(NOT_RETRYABLE)
    status = REQUEST_ERRORS.get(code)
    if status is not None:
        headers = {"X-Fal-Error-Type": code}
        if code in RETRYABLE:
            headers["X-Fal-Retryable"] = "true"
        if code == "request_timeout" and task.extra.get("fal_start_timeout") is not None:
            headers["X-Fal-Request-Timeout-Type"] = "user"
        return status, {"detail": message, "error_type": code}, headers
    loc = ["body", "prompt"] if code == "content_policy_violation" else ["body"]
    return 422, {"detail": [{"loc": loc, "msg": message, "type": code,
                             "url": "https://docs.fal.ai/errors/#" + code}]}, dict(NOT_RETRYABLE)


def status_body(task: Task, snap: Snapshot, base: str, root: str,
                with_logs: bool) -> dict[str, Any]:
    """GET .../status: the keys fal-client requires for each word, `logs` null unless asked."""
    word = STATUS[snap.state.value]
    body: dict[str, Any] = {"status": word, "request_id": task.id,
                            **request_urls(base, root, task.id)}
    if snap.state is State.QUEUED:
        body["queue_position"] = queue_position(snap)
        body["logs"] = None
        return body
    body["logs"] = logs(task, snap) if with_logs else None
    metrics: dict[str, Any] = {}
    if snap.state is State.SUCCEEDED and snap.started_at is not None and snap.ended_at:
        metrics["inference_time"] = round(snap.ended_at - snap.started_at, 6)
    body["metrics"] = metrics
    found = failure_of(task, snap)
    if found is not None:
        code, message = found
        if code in REQUEST_ERRORS:
            body["error"], body["error_type"] = message, code
        else:
            answer = error_answer(task, snap)
            body["error"] = f"Invalid status code: {answer[0] if answer else 422}"
    return body


def output(task: Task, video_url: str, file_size: int | None) -> dict[str, Any]:
    """The model's output (fal-js output types): `video` (a File; a VideoFile from Wan 2.5
    on), `seed`, and `prompt` (2.2) or `actual_prompt` (2.5+, with prompt expansion)."""
    spec = task.spec
    video: dict[str, Any] = {"url": video_url, "content_type": "video/mp4",
                             "file_name": "output.mp4"}
    if file_size is not None:
        video["file_size"] = file_size
    generation, model = spec.generation, spec.model
    if (generation in ("wan26", "wan27") or model.startswith("wan2.5")
            or model in VIDEO_FILE_AND_PROMPT):
        fps = FPS.get(generation, 24)
        video.update(width=spec.width, height=spec.height, fps=fps,
                     duration=float(spec.duration), num_frames=spec.duration * fps)
    if model in VIDEO_ONLY:
        return {"video": video}
    body: dict[str, Any] = {"video": video, "seed": int(task.extra.get("seed", 0))}
    if model.startswith("wan2.2") or model in VIDEO_FILE_AND_PROMPT:
        body["prompt"] = spec.prompt or ""
    elif generation != "wan21" and spec.prompt_extend is not False and spec.prompt:
        body["actual_prompt"] = spec.prompt
    return body


def webhook_event(task: Task, snap: Snapshot, payload: Any,
                  error: tuple[int, Any] | None) -> dict[str, Any]:
    """The Webhooks API doc's body: OK with the output, or ERROR with the error's payload."""
    event: dict[str, Any] = {"request_id": task.id, "gateway_request_id": task.id}
    if error is None:
        event.update(status="OK", payload=payload)
    else:
        status, body = error
        event.update(status="ERROR", error=f"Invalid status code: {status}", payload=body)
    return event
