"""The toy provider over HTTP: submit a job, poll it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mockserver.contracts import Operation
from mockserver.core.tasks import State
from mockserver.errors import ProviderError
from mockserver.providers.base import Family, json_response
from tests.families.toy.family import STATUS
from tests.families.toy.policy import ToyPolicy


class Toy(ToyPolicy, Family):
    """`POST /toy/v1/jobs`, `GET /toy/v1/jobs/{job_id}`."""

    async def create_job(self, request: Request, op: Operation, raw: bytes) -> Response:
        key = self.authenticate(request)
        body = self.parse_json(request, op, raw)
        spec, late = self.settle(op, *self.judge(op, body))
        task = self.submit(request, op, body, spec, late, task_id=self.backend.ids.uuid(),
                           api_key=key, raw=raw)
        return json_response({"job": {"id": task.id, "state": STATUS[State.QUEUED]},
                              "greeting": self.backend.options["toy_greeting"]})

    async def get_job(self, request: Request, op: Operation, raw: bytes) -> Response:
        key = self.authenticate(request)
        task = self.backend.find(self.name, request.path_params["job_id"], key)
        self.note_task(request, task)
        if task is None:
            raise ProviderError(404, "no_job", "no such job")
        snap = self.backend.view(task)
        job: dict[str, Any] = {"id": task.id, "state": STATUS[snap.state],
                               "percent": snap.progress}
        if snap.state is State.SUCCEEDED:
            job["video"] = self.backend.video_url(self.base_url(request), task, snap)
        return json_response({"job": job})
