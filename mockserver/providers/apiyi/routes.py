"""apiyi: DashScope's create passed through under `/wan`, and apiyi's own task API (seed 004)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mockserver.contracts import Operation
from mockserver.core.tasks import State, Task
from mockserver.errors import ProviderError
from mockserver.providers.apiyi import render
from mockserver.providers.apiyi.policy import ApiyiPolicy
from mockserver.providers.base import json_response
from mockserver.providers.dashscope.routes import DashScope


class Apiyi(ApiyiPolicy, DashScope):
    """`POST /wan/api/v1/services/aigc/video-generation/video-synthesis`, `GET /v1/tasks/{id}`."""

    def task_json(self, request: Request, task: Task, *, poll: bool = True) -> dict[str, Any]:
        snap = self.backend.view(task, poll=poll)
        if snap.state is State.EXPIRED:
            raise self.task_not_found()
        url = None
        if snap.state is State.SUCCEEDED:
            url = self.backend.video_url(self.base_url(request), task, snap)
        return render.task_body(task, snap, url)

    async def get_task(self, request: Request, op: Operation, raw: bytes) -> Response:
        key = self.authenticate_task_api(request)
        task = self.backend.find(self.name, request.path_params["task_id"], key)
        self.note_task(request, task)
        if task is None:
            raise self.task_not_found()
        return json_response(self.task_json(request, task))

    def preflight(self, request: Request, op: Operation) -> None:
        if op.role == "query":
            self.authenticate_task_api(request)
        super().preflight(request, op)

    def authenticate_task_api(self, request: Request) -> str:
        """apiyi's task API is a new-api deployment: its 401 is new-api's OpenAI-shaped one."""
        try:
            return self.authenticate(request)
        except ProviderError as err:
            raise self.task_auth_error() from err
