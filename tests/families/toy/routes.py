"""The toy provider over HTTP: submit a job, poll it, and be called back when it ends.

The whole HTTP side of a family: handlers named after the contract's operationIds, each given
the `Exchange` the pipeline prepared (the caller's key, the task the path names, the parsed
body), and the webhook body it owes (`webhook_body`)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from mockserver.core.tasks import Snapshot, State, Task
from mockserver.errors import ProviderError
from mockserver.providers.base import Family
from mockserver.providers.exchange import Exchange
from mockserver.providers.hotpath import json_response
from tests.families.toy.family import STATUS
from tests.families.toy.policy import ToyPolicy


class Toy(Family):
    """`POST /toy/v1/jobs`, `GET /toy/v1/jobs/{job_id}`."""

    policy_class = ToyPolicy

    async def create_job(self, ex: Exchange) -> Response:
        # The pipeline has authenticated the caller (ex.api_key) and read the body (ex.body).
        spec, late = self.settle(ex)
        task = self.submit(ex, spec, late, task_id=self.backend.ids.uuid())
        callback = ex.body.get("callback_url")
        if callback:
            self.schedule_webhook(task, callback, args=(self.base_url(ex),))
        return json_response({"job": {"id": task.id, "state": STATUS[State.QUEUED]},
                              "greeting": self.backend.options["toy_greeting"]})

    async def get_job(self, ex: Exchange) -> Response:
        task = self.task(ex)  # ex.task_id (the path's {job_id}), the caller's toy task only
        if task is None:
            raise ProviderError(404, "no_job", "no such job")
        snap = self.backend.view(task, poll=True)  # a poll (poll-count mode moves on it)
        return json_response({"job": self.job(task, snap, self.base_url(ex))})

    def job(self, task: Task, snap: Snapshot, base_url: str) -> dict[str, Any]:
        """The toy's words for a task at one moment."""
        job: dict[str, Any] = {"id": task.id, "state": STATUS[snap.state],
                               "percent": snap.progress}
        if snap.state is State.SUCCEEDED:
            job["video"] = self.backend.video_url(base_url, task, snap)
        return job

    def webhook_body(self, task: Task, *args: Any) -> dict[str, Any] | None:
        """Once the job has ended: `{"job": ...}` as a poll would show it."""
        (base_url,) = args
        snap = self.backend.view(task)
        return {"job": self.job(task, snap, base_url)} if snap.state.terminal else None
