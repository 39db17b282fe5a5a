"""Replicate's words for a task (no Starlette): the prediction object (OAS
schemas_prediction_response) at one moment, its logs, timestamps and metrics; files, models,
versions, the account and list pages."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.replicate.family import ABORTED, STATUS

WEB = "https://replicate.com/p/"
_BAR = 10


@lru_cache(maxsize=4096)  # a task's few moments, asked again on every poll
def timestamp(epoch: float) -> str:
    """RFC 3339 UTC with microseconds and `Z`, as Replicate's GET answers write them."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


@lru_cache(maxsize=4096)  # the same lines on every poll of a task (and of its model's tasks)
def progress_line(done: int, total: int, elapsed: float) -> str:
    """One tqdm line (`50%|█████     | 4/8 [00:02<00:02,  1.90it/s]`): what
    replicate's Prediction.progress parses (replicate/prediction.py:94-137)."""
    pct = int(100 * done / total) if total else 100
    filled = _BAR * done // total if total else _BAR
    bar = "█" * filled + " " * (_BAR - filled)
    if done == 0:
        return f"  0%|{bar}| 0/{total} [00:00<?, ?it/s]"
    rate = done / elapsed if elapsed > 0 else float(done)
    left = (total - done) / rate if rate > 0 else 0.0
    return f"{pct:3d}%|{bar}| {done}/{total} [{_clock(elapsed)}<{_clock(left)}, {rate:5.2f}it/s]"


def logs(task: Task, snap: Snapshot, steps: int, started: float | None, at: float) -> str:
    """What the model has printed by `at`: its seed and job, then a progress line per step
    done (decision logs); "" before it started."""
    if started is None or at < started:
        return ""
    spec = task.spec
    seed = task.extra.get("seed", spec.seed)
    head = [f"Using seed: {seed}",
            f"Generating a {spec.duration}s video at {spec.width}x{spec.height}"]
    run = task.plan.run_s
    if snap.state is State.SUCCEEDED:
        done = steps
    else:
        fraction = (at - started) / run if run > 0 else 1.0
        done = max(0, min(steps - 1, int(math.floor(fraction * steps))))
    lines = [progress_line(k, steps, run * k / steps) for k in range(done + 1)]
    if snap.state is State.SUCCEEDED:
        lines.append("Video saved to /tmp/output.mp4")
    return "\n".join(head + lines) + "\n"


def status_word(task: Task, snap: Snapshot, aborted: str) -> str:
    """The prediction's status: `aborted` for one its deadline stopped before it started
    (`aborted`: the replicate_aborted option's word)."""
    if (snap.state is State.CANCELED and task.extra.get("deadline_s") is not None
            and task.canceled_at is not None
            and task.canceled_at < task.submitted_at + task.plan.queue_s):
        return ABORTED if aborted == ABORTED else STATUS["canceled"]
    return STATUS[snap.state]


def started_at(task: Task, snap: Snapshot) -> float | None:
    """When it started running, if it has (a deadline cancel keeps the start it had)."""
    if snap.started_at is not None:
        return snap.started_at
    start = task.submitted_at + task.plan.queue_s
    if snap.state is State.CANCELED and snap.ended_at is not None and snap.ended_at > start:
        return start
    return None


def prediction(task: Task, snap: Snapshot, *, base_url: str, version: str, status: str,
               output: str | None, logs_text: str, removed: bool = False) -> dict[str, Any]:
    """The prediction object (OAS schemas_prediction_response; replicate 1.0.7 needs id,
    model, version and status, and no null inside urls)."""
    request = task.request  # type: ignore[attr-defined]  # a property (see Task)
    inputs = request.get("input") if isinstance(request, dict) else None
    own = f"{base_url.rstrip('/')}/v1/predictions/{task.id}"
    body: dict[str, Any] = {
        "id": task.id, "model": task.spec.model, "version": version,
        "input": {} if removed or not isinstance(inputs, dict) else inputs,
        "logs": "" if removed else logs_text,
        "output": None if removed else output,
        "data_removed": removed,
        "error": None, "status": status, "source": "api",
        "created_at": timestamp(task.submitted_at),
    }
    if snap.state is State.FAILED and status == STATUS["failed"]:
        failure = task.plan.failure
        body["error"] = failure.message if failure is not None else "Prediction failed"
    started = started_at(task, snap) if status != STATUS["queued"] else None
    if started is not None:
        body["started_at"] = timestamp(started)
    ended = snap.ended_at if snap.state.terminal and status not in (
        STATUS["queued"], STATUS["running"]) else None
    if ended is not None:
        body["completed_at"] = timestamp(ended)
    deployment = task.extra.get("deployment")
    if deployment:
        body["deployment"] = deployment
    deadline = task.extra.get("deadline_s")
    if deadline is not None:
        body["deadline"] = timestamp(task.submitted_at + float(deadline))
    body["urls"] = {"get": own, "cancel": own + "/cancel", "web": WEB + task.id}
    if ended is not None:
        metrics: dict[str, Any] = {"total_time": round(ended - task.submitted_at, 6)}
        if started is not None:
            metrics = {"predict_time": round(ended - started, 6), **metrics}
        body["metrics"] = metrics
    return body


def page(results: list[Any], next_url: str | None, previous_url: str | None) -> dict[str, Any]:
    return {"next": next_url, "previous": previous_url, "results": results}
