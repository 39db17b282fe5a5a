"""DashScope's words for the neutral task: statuses, timestamps, `output` and `usage`.

No Starlette here: new-api embeds these bodies as its upstream data (`data.data`).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from mockserver.catalogue import JobSpec
from mockserver.core.ids import key_id
from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.dashscope.family import STATUS as FAMILY_STATUS

# DashScope renders times in Beijing time (UTC+8), "YYYY-MM-DD HH:mm:ss.SSS".
BEIJING = timezone(timedelta(hours=8))

# neutral state -> `output.task_status` (family.py; State is a str, so State keys find them)
STATUS = FAMILY_STATUS
# Generations whose SUCCEEDED output nests the URL, `output.results.video_url` (S2V, animate).
NESTED = frozenset({"s2v", "animate"})


@lru_cache(maxsize=4096)  # a task's times do not change while it is polled
def fmt_time(epoch: float) -> str:
    dt = datetime.fromtimestamp(epoch, BEIJING)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def usage(spec: JobSpec, *, sr: bool = False) -> dict[str, Any]:
    """`usage` in the shape of the model's generation
    (help.aliyun.com/zh/model-studio/text-to-video-api-reference (responses)). `sr`: wan2.5/wan2.2
    usage carries `SR` (help.aliyun.com/zh/model-studio/text-to-video-api-reference (responses) and
    a DashScope mirror; seed 002 shows none)."""
    d = spec.duration
    seconds = spec.output_s if spec.output_s is not None else float(d)
    if spec.generation == "s2v":  # as long as its audio (S2V's example: 18.13)
        return {"duration": round(seconds, 3), "video_count": 1, "SR": spec.sr}
    if spec.generation == "animate":  # the copied official example: 5.2, "standard"
        return {"video_duration": round(seconds, 3), "video_ratio": "standard"}
    if spec.generation == "wan3":
        # W3's SUCCEEDED example: seconds as floats, fps 30, SR the tier, the ratio chosen.
        billed = spec.input_video_s
        return {"video_count": 1, "duration": float(d + billed),
                "input_video_duration": float(billed), "output_video_duration": float(d),
                "fps": 30, "SR": spec.sr, "ratio": spec.ratio or "16:9"}
    if spec.generation == "wan21":
        return {"video_duration": d, "video_ratio": "standard", "video_count": 1}
    if spec.generation == "wan25":
        if sr:
            return {"video_count": 1, "video_duration": d, "video_ratio": spec.size,
                    "SR": spec.sr}
        return {"video_count": 1, "video_duration": d, "video_ratio": spec.size}
    billed = spec.input_video_s
    out: dict[str, Any] = {
        # With a reference video the input seconds are billed too.
        "duration": _seconds(d + billed),
        "input_video_duration": _seconds(billed),
        "output_video_duration": d,
        "SR": spec.sr,
        "video_count": 1,
    }
    if spec.generation == "wan26" and spec.mode != "i2v":
        out["size"] = spec.size
    if spec.generation == "wan26" and spec.model.startswith("wan2.6-i2v-flash"):
        out["audio"] = spec.audio
    if spec.generation == "wan27" and spec.ratio:
        out["ratio"] = spec.ratio
    return out


def _seconds(value: float) -> int | float:
    """Seconds as the fake has always shown them: an integer when whole (decision on usage
    numeric types), else the float."""
    return int(value) if float(value).is_integer() else round(value, 3)


def actual_prompt(spec: JobSpec, *, wan27: bool = False) -> str | None:
    """The rewritten prompt: only with prompt_extend, never for wan2.6
    (help.aliyun.com/zh/model-studio/text-to-video-api-reference (responses)), and
    for wan2.7 only when `wan27` (the official wan2.7 query examples show none)."""
    # Wan 3.0's examples show only orig_prompt too (W3).
    if spec.prompt_extend is False or spec.generation in ("wan26", "wan3") or (
            not spec.actual_prompt):
        return None
    if spec.generation == "wan27" and not wan27:
        return None
    return f"{spec.actual_prompt} Cinematic lighting, smooth camera motion, rich detail."


def output(
    task: Task, snap: Snapshot, video_url: str | None, *, task_id: str | None = None,
    wan27_actual_prompt: bool = False,
) -> dict[str, Any]:
    """The `output` object of GET /api/v1/tasks/{id} for this moment; `task_id` overrides the
    id shown (new-api relays the body under the upstream id)."""
    shown = task.id if task_id is None else task_id
    if snap.state is State.EXPIRED:
        return {"task_id": shown, "task_status": "UNKNOWN"}
    out: dict[str, Any] = {
        "task_id": shown,
        "task_status": STATUS[snap.state],
        "submit_time": fmt_time(snap.submitted_at),
    }
    if snap.started_at is not None:
        out["scheduled_time"] = fmt_time(snap.started_at)
    if snap.ended_at is not None:
        out["end_time"] = fmt_time(snap.ended_at)
    if snap.state is State.SUCCEEDED:
        if task.spec.generation in NESTED:  # s2v, animate: no prompt, the URL in `results`
            out["results"] = {"video_url": video_url}
            return out
        out["orig_prompt"] = task.spec.prompt or ""
        extended = actual_prompt(task.spec, wan27=wan27_actual_prompt)
        if extended:
            out["actual_prompt"] = extended
        out["video_url"] = video_url
    elif snap.state is State.FAILED and task.plan.failure is not None:
        out["code"] = task.plan.failure.code
        out["message"] = task.plan.failure.message
    return out


def task_body(
    task: Task, snap: Snapshot, video_url: str | None, request_id: str,
    *, task_id: str | None = None, wan27_actual_prompt: bool = False, usage_sr: bool = False,
) -> dict[str, Any]:
    """The whole GET /api/v1/tasks/{id} body (`task_id` overrides the id shown; the flags are
    the `dashscope_actual_prompt_wan27` and `dashscope_usage_sr` options)."""
    body: dict[str, Any] = {
        "request_id": request_id,
        "output": output(task, snap, video_url, task_id=task_id,
                         wan27_actual_prompt=wan27_actual_prompt),
    }
    if snap.state is State.SUCCEEDED:
        body["usage"] = usage(task.spec, sr=usage_sr)
    return body


def unknown_body(task_id: str, request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "output": {"task_id": task_id, "task_status": "UNKNOWN"}}


def api_key_id(task: Task) -> str:
    """The task's key as the list shows it: a stable digest of the key, never the key."""
    return key_id(task.api_key) if task.api_key else ""


def list_item(task: Task, snap: Snapshot, group: str = "video-generation") -> dict[str, Any]:
    """One row of GET /api/v1/tasks: `status`, epoch-millisecond times (the list's own shape);
    `group` the DashScope task of the path it was submitted to (`image2video` for kf2v)."""
    row: dict[str, Any] = {
        "api_key_id": api_key_id(task),
        "gmt_create": int(snap.submitted_at * 1000),
        "model_name": task.spec.model,
        "region": "cn-beijing",
        "request_id": task.extra.get("request_id", ""),
        "status": STATUS[snap.state],
        "task_id": task.id,
        "user_api_unique_key": f"apikey:v1:aigc:{group}:video-synthesis:{task.spec.model}",
    }
    if snap.started_at is not None:
        row["start_time"] = int(snap.started_at * 1000)
    if snap.ended_at is not None:
        row["end_time"] = int(snap.ended_at * 1000)
    return row


_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def created_json(task_id: str, request_id: str) -> bytes:
    """The submit answer, `{"output": {"task_id", "task_status": "PENDING"}, "request_id"}`,
    spelled out as bytes: the same bytes as the dict through JSONResponse, without walking a
    dict on the hot path."""
    return (b'{"output":{"task_id":' + _encode(task_id).encode("utf-8")
            + b',"task_status":"PENDING"},"request_id":' + _encode(request_id).encode("utf-8")
            + b"}")


def poll_tail(body: dict[str, Any]) -> bytes | None:
    """The JSON of a poll body after its leading `request_id` (what stays the same from poll
    to poll of one task moment), or None when `request_id` is not its first key."""
    if next(iter(body), None) != "request_id":
        return None
    rest = dict(body)
    del rest["request_id"]
    return _encode(rest).encode("utf-8")[1:]


def poll_json(request_id: str, tail: bytes) -> bytes:
    """A poll body from a fresh `request_id` and a `poll_tail`: the bytes JSONResponse would
    send for the whole dict."""
    return (b'{"request_id":' + _encode(request_id).encode("utf-8")
            + (b"," if len(tail) > 1 else b"") + tail)


def canceled_body(request_id: str) -> dict[str, Any]:
    """A cancel DashScope accepted (K03)."""
    return {"request_id": request_id}


def list_body(request_id: str, rows: list[dict[str, Any]], page_no: int,
              page_size: int) -> dict[str, Any]:
    """`GET /api/v1/tasks`: page `page_no` of `rows` (the manage-async-tasks page, K14)."""
    total = len(rows)
    return {
        "request_id": request_id,
        "data": rows[(page_no - 1) * page_size: page_no * page_size],
        "total": total,
        "total_page": math.ceil(total / page_size) if total else 0,
        "page_no": page_no,
        "page_size": page_size,
    }
