"""apiyi: DashScope's create passed through under `/wan`, and apiyi's own task API (seed 004)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from mockserver.core.tasks import State, Task
from mockserver.providers.apiyi import render
from mockserver.providers.apiyi.policy import ApiyiPolicy
from mockserver.providers.dashscope.routes import DashScope
from mockserver.providers.exchange import Exchange
from mockserver.providers.hotpath import json_response


class Apiyi(DashScope):
    """`POST /wan/api/v1/services/aigc/video-generation/video-synthesis`, `GET /v1/tasks/{id}`."""

    policy_class = ApiyiPolicy

    def task_json(self, ex: Exchange, task: Task, *, poll: bool = True) -> dict[str, Any]:
        snap = self.backend.view(task, poll=poll)
        if snap.state is State.EXPIRED:
            raise ApiyiPolicy.task_not_found()
        url = None
        if snap.state is State.SUCCEEDED:
            url = self.backend.video_url(self.base_url(ex), task, snap)
        return render.task_body(task, snap, url)

    async def get_task(self, ex: Exchange) -> Response:
        task = self.task(ex)
        if task is None:
            raise ApiyiPolicy.task_not_found()
        return json_response(self.task_json(ex, task))
