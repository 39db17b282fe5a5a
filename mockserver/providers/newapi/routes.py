"""new-api's video relay in front of DashScope (contracts/newapi.yaml; api-facts §2).

`POST /v1/video/generations` and `POST /v1/videos` submit (one implementation);
`GET /v1/video/generations/{task_id}` answers the TaskDto envelope, `GET /v1/videos/{video_id}`
the OpenAI video object and `GET /v1/videos/{video_id}/content` streams the MP4.

Errors come in three shapes (`x-wanmock-envelope`): new-api's TaskError `{code, message,
data: null}`, the OpenAI-shaped middleware error (`auth`: 401, 503 unknown model) and the video
proxy's error without `code` (`content`). A DashScope rule rejected at submit is relayed as
HTTP 400 `fail_to_fetch_task` with the DashScope JSON body as the message string; a rule DashScope
reports asynchronously fails the task ("task failed, code: X , message: Y").
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.responses import FileResponse, Response

from mockserver.core.scenarios import RequestInfo
from mockserver.core.tasks import Snapshot, State, Task
from mockserver.providers.base import Family
from mockserver.providers.dashscope import render as ds_render
from mockserver.providers.exchange import Exchange
from mockserver.providers.hotpath import json_response
from mockserver.providers.newapi import distributor, poller, render, wire
from mockserver.providers.newapi.policy import NewApiPolicy
from mockserver.providers.newapi.poller import Row


class NewApi(Family):
    """new-api's task relay with the Ali (DashScope) adaptor over HTTP."""

    policy_class = NewApiPolicy
    policy: NewApiPolicy

    def read_body(self, ex: Exchange) -> Any:
        """What the `Distribute` middleware and the relay read (distributor.py)."""
        return distributor.read_submit(self.policy, ex, self.backend.journal)

    def request_info(self, ex: Exchange) -> RequestInfo:
        return distributor.request_info(super().request_info(ex), ex)

    # -- handlers ----------------------------------------------------------------------------
    async def create_video_generation(self, ex: Exchange) -> Response:
        """`POST /v1/video/generations` and `POST /v1/videos`: one implementation."""
        spec, late = self.settle(ex)
        ids = self.backend.ids
        public = self.backend.options["newapi_id_style"] == "public"
        video_id = "task_" + ids.token(32) if public else ""
        upstream_id = ids.uuid()
        form = ex.form
        stored = None
        if form is not None:
            # The Ali relay drops file parts; the task keeps every value and each file.
            stored = {**ex.body, "_wanmock_form": {
                "values": form.values, "files": [part.record() for part in form.files]}}
        task = self.submit(
            ex, spec, late, task_id=video_id or upstream_id, body=stored,
            extra={"upstream_id": upstream_id, "request_id": ids.uuid()},
            keep_raw=wire.kind_of(ex.headers.get("content-type", "")) == "json",
        )
        if public:
            # The upstream id is what DashScope itself knows the task by.
            self.backend.store.alias("dashscope", upstream_id, task)
        return json_response(render.submit_body(
            task, video_id=task.id, with_task_id=public, created_at=task.submitted_at))

    create_video = create_video_generation

    def _url(self, ex: Exchange, task: Task, state: State, snap: Snapshot) -> str | None:
        if state is not State.SUCCEEDED:
            return None
        return self.backend.video_url(self.base_url(ex), task, snap)

    def row(self, task: Task, *, poll: bool = False) -> Row:
        """The task as new-api's row shows it: the upstream state at the poller's last tick."""
        backend = self.backend
        opts = backend.options
        now = backend.view(task, poll=poll)
        every = poller.interval(opts.timing, opts.mode, opts["newapi_poll_interval"])
        retention = backend.task_retention(task)
        return poller.row(now, lambda t: backend.lifecycle.view(task, t, retention=retention),
                          every)

    def _polled(self, ex: Exchange) -> tuple[Task, Row]:
        """The caller's task as a poll sees it, or new-api's 400 `task_not_exist` (§2.4).
        Another family's or another user's task is not there (api-facts §2.4)."""
        task = self.task(ex)
        if task is None:
            raise self.policy.task_not_exist()
        return task, self.row(task, poll=True)

    async def get_video_generation(self, ex: Exchange) -> Response:
        task, row = self._polled(ex)
        snap = row.snap
        url = None if row.not_started else self._url(ex, task, snap.state, snap)
        upstream_id = task.extra.get("upstream_id", task.id)
        if row.not_started:  # `data` is still DashScope's answer to the submit
            upstream: dict[str, Any] = {
                "request_id": task.extra.get("request_id", ""),
                "output": {"task_id": upstream_id, "task_status": "PENDING"}}
        else:
            opts = self.backend.options
            upstream = ds_render.task_body(
                task, snap, url, self.backend.ids.uuid(), task_id=upstream_id,
                wan27_actual_prompt=opts["dashscope_actual_prompt_wan27"],
                usage_sr=opts["dashscope_usage_sr"])
        dto = render.task_dto(task, row, task_id=task.id, upstream=upstream, video_url=url,
                              url_in_fail_reason=self.backend.options["newapi_url_in_fail_reason"])
        return json_response(render.task_response(dto))

    async def get_video(self, ex: Exchange) -> Response:
        task, row = self._polled(ex)
        opts = self.backend.options
        url = None if row.not_started else self._url(ex, task, row.snap.state, row.snap)
        return json_response(render.openai_video(
            task, row, video_id=task.id, with_task_id=opts["newapi_id_style"] == "public",
            video_url=url, completed_at_always=opts["newapi_completed_at_always"],
        ))

    async def get_video_content(self, ex: Exchange) -> Response:
        policy = self.policy
        video_id = (ex.task_id or "").strip()
        if not video_id:
            raise policy.content_error(400, "invalid_request_error", "task_id is required")
        task = self.task(ex, video_id)
        if task is None:
            raise policy.content_error(404, "not_found", "Task not found")
        # The proxy reads new-api's own row; it does not poll the upstream.
        row = self.row(task)
        status = render.row_status(row)
        if status != "SUCCESS":
            raise policy.content_error(400, "invalid_request_error",
                                       f"Task is not completed yet, current status: {status}")
        path = await anyio.to_thread.run_sync(self.backend.video_path, task)
        return FileResponse(path, media_type="video/mp4")
