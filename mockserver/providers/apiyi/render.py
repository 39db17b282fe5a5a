"""apiyi's words for its own task API (`GET /v1/tasks/{id}`, seed 004). No Starlette here.

Its create is DashScope's, passed through under `/wan`, and renders as DashScope does.
"""

from __future__ import annotations

from typing import Any

from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.apiyi.family import STATUS  # neutral state -> word

# apiyi relays the upstream progress, which only takes these values (apiyi docs [B]).
PROGRESS = {State.QUEUED: 10, State.RUNNING: 30, State.SUSPENDED: 30}


def task_body(task: Task, snap: Snapshot, result_url: str | None) -> dict[str, Any]:
    """The task API's body for a task that is not expired; `result_url` once it succeeded."""
    body: dict[str, Any] = {
        "task_id": task.id,
        "status": STATUS[snap.state],
        "progress": PROGRESS.get(snap.state, 100),
    }
    if snap.state is State.SUCCEEDED:
        body["result_url"] = result_url
    elif snap.state is State.CANCELED:
        body["error"] = {"code": "Canceled", "message": "task canceled"}
    elif snap.state is State.FAILED and task.plan.failure is not None:
        body["error"] = {"code": task.plan.failure.code, "message": task.plan.failure.message}
    return body


def task_auth_error(message: str, code: str) -> dict[str, Any]:
    """The task API's 401: apiyi's task API is a new-api deployment, so it is new-api's
    OpenAI-shaped error."""
    return {"error": {"message": message, "type": "new_api_error", "code": code}}
