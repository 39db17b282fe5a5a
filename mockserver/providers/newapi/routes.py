"""new-api's video relay in front of DashScope over HTTP, one release at a time
(contracts/newapi.yaml; the release: releases.py).

`POST /v1/video/generations`, `POST /v1/videos` and `POST /v1/videos/{video_id}/remix` submit;
`GET /v1/video/generations/{task_id}` answers the TaskDto envelope, `GET /v1/videos/{video_id}`
the OpenAI video object and `GET /v1/videos/{video_id}/content` the MP4. Every answer carries
`X-Oneapi-Request-Id` (and, in v1.0.0-rc.25, `X-New-Api-Version`); any other method or path
under the family's prefix is gin's NoRoute: 404 "Invalid URL (METHOD /path)", never 405.
Sources at the tag commits (github.com/QuantumNous/new-api; R = v1.0.0-rc.25 f1164142,
L = v0.10.0 ee53a7b6): router/video-router.go (R :10-32, L :10-24), router/web-router.go
NoRoute (R :29-37, L :21-28), controller/relay.go RelayNotFound (R :465-475, L :380-390),
middleware/request-id.go, middleware/cors.go Version (R :18-23), middleware/cache.go.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver.contracts import Operation
from mockserver.core.tasks import Task
from mockserver.errors import ProviderError
from mockserver.providers.base import headers_of
from mockserver.providers.dashscope import render as ds_render
from mockserver.providers.hotpath import JSONResponse
from mockserver.providers.newapi import conversion, poller, relay, render, wire
from mockserver.providers.newapi.distributor import Distributor
from mockserver.providers.newapi.poller import Row

# gin's c.JSON (submit answers, every error); the fetch routes set plain application/json
# (relay/relay_task.go R :310, L :298).
GIN_JSON = "application/json; charset=utf-8"
REQUEST_ID = "X-Oneapi-Request-Id"
_PARAM = re.compile(r"\{[^/]+\}")


class NewApi(Distributor):
    """new-api's task relay with the Ali (DashScope) adaptor over HTTP."""

    # -- every answer ------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """The contract's routes, and each one's trailing-slash twin, which gin redirects
        (Starlette's own redirect would answer 307 with an absolute URL for any method)."""
        routes = super().routes()
        for op in self.contract.operations.values():
            twin = op.path[:-1] if op.path.endswith("/") else op.path + "/"
            routes.append(Route(twin, self._redirect, methods=[op.method]))
        return routes

    async def _redirect(self, request: Request) -> Response:
        return self.unrouted_response(request, 404, {})[0]

    def _endpoint(self, op: Operation, handler: Any) -> Callable[[Request], Awaitable[Response]]:
        inner = super()._endpoint(op, handler)
        stamp = self.stamp

        async def endpoint(request: Request) -> Response:
            if request.method == "HEAD":  # gin registers GET only: HEAD is NoRoute
                return self.unrouted_response(request, 404, {})[0]
            return stamp(await inner(request))

        endpoint.__name__ = inner.__name__
        return endpoint

    def stamp(self, response: Response, request_id: str | None = None) -> Response:
        """The global middleware's headers (RequestId; R also Version)."""
        headers = response.headers
        if REQUEST_ID not in headers:
            headers[REQUEST_ID] = request_id or self.request_id()
        if self.release.version_header:
            headers["X-New-Api-Version"] = self.release.tag
        return response

    def error_response(self, err: ProviderError, op: Operation | None = None) -> Response:
        """An error as gin's c.JSON writes it; its request id is also the header's."""
        request_id = self.request_id()
        headers = {**(err.headers or {}), REQUEST_ID: request_id}
        return JSONResponse(self.error_body(err, op, request_id), status_code=err.status,
                            headers=headers, media_type=GIN_JSON)

    def unrouted_response(self, request: Request, status: int,
                          headers: dict[str, str]) -> tuple[Response, str]:
        """gin's answer to a path or method no route takes: a trailing-slash redirect when
        the other spelling is a route for this method (301 for GET, else 307; gin v1.9.1
        RedirectTrailingSlash, before any middleware), else NoRoute's 404 "Invalid URL",
        through the web middleware (Cache-Control; R also Cache-Version). No 405: gin.New()
        leaves HandleMethodNotAllowed off."""
        path = request.url.path
        other = path[:-1] if path.endswith("/") and len(path) > 1 else path + "/"
        if request.method != "HEAD" and self._routed(request.method, other):
            code = 301 if request.method == "GET" else 307
            query = request.url.query
            location = other + ("?" + query if query else "")
            if request.method == "GET":
                text = "Moved Permanently"
                return Response(f'<a href="{location}">{text}</a>.\n\n', code,
                                {"Location": location},
                                media_type="text/html; charset=utf-8"), "redirect"
            return Response(b"", code, {"Location": location}), "redirect"
        body = self.contract.render_error(404, "", f"Invalid URL ({request.method} {path})",
                                          envelope="not_found")
        extra = {"Cache-Control": "max-age=604800"}
        if self.release.cache_version:
            extra["Cache-Version"] = self.release.cache_version
        response = JSONResponse(body, status_code=404, headers=extra, media_type=GIN_JSON)
        return self.stamp(response), ""

    def _routed(self, method: str, path: str) -> bool:
        for op in self.contract.operations.values():
            if op.method == method and re.fullmatch(_PARAM.sub("[^/]+", op.path), path):
                return True
        return False

    # -- submits -----------------------------------------------------------------------------
    async def create_video_generation(self, request: Request, op: Operation, raw: bytes
                                      ) -> Response:
        return self._create(request, op, raw)

    async def create_video(self, request: Request, op: Operation, raw: bytes) -> Response:
        return self._create(request, op, raw)

    async def remix_video(self, request: Request, op: Operation, raw: bytes) -> Response:
        """ResolveOriginTask (R relay/relay_task.go :38-138, L :35-122): the caller's task must
        exist (400 task_not_exist "task_origin_not_exist"); then the submit runs as any other
        on the origin's channel (the Ali adaptor has no remix of its own)."""
        key = self.authenticate(request)
        origin = self.find(request, request.path_params["video_id"], key)
        if origin is None:
            raise self.task_not_exist("task_origin_not_exist")
        return self._create(request, op, raw, remix_of=origin)

    def _create(self, request: Request, op: Operation, raw: bytes,
                remix_of: Task | None = None) -> Response:
        key = self.authenticate(request)
        remix = remix_of is not None
        body, form = self.read_submit(request, op, raw, remix=remix)
        found = relay.relay(self, op, body, headers_of(request), remix=remix)
        spec, late = self.settle(op, found.spec, found.violations)
        assert found.request is not None and found.upstream is not None
        release = self.release
        ids = self.backend.ids
        upstream_id = ids.uuid()
        task_id = "task_" + ids.token(32) if release.public_ids else upstream_id
        ratios = conversion.other_ratios(found.upstream, release)
        extra: dict[str, Any] = {
            "upstream_id": upstream_id, "request_id": ids.uuid(),
            "action": found.request.action(release), "upstream_request": found.upstream,
            "release": release.key,
        }
        if remix_of is not None:
            # The origin's model names the task; its billing ratios come first (R
            # relay_task.go :110-118); DashScope gets the body's model.
            extra["remix_of"] = remix_of.id
            extra["model"] = render.model_of(remix_of)
            if ratios is not None:
                ratios = {**remix_of.extra.get("ratios", {}), **ratios}
        extra["ratios"] = ratios or {}
        extra["quota"] = render.quota(ratios)
        stored = body
        if form is not None:
            # The Ali relay drops file parts; the task keeps every value and each file.
            stored = {**body, "_wanmock_form": {
                "values": form.values, "files": [part.record() for part in form.files]}}
        task = self.submit(
            request, op, stored, spec, late, task_id=task_id, api_key=key, extra=extra,
            raw=raw if form is None and wire.kind_of(
                headers_of(request).get("content-type", "")) == "json" else None,
        )
        if release.public_ids:
            # The upstream id is what DashScope itself knows the task by.
            self.backend.store.alias("dashscope", upstream_id, task)
        headers = {}
        if release.other_ratios_header and ratios is not None:
            headers["X-New-Api-Other-Ratios"] = conversion.ratios_header(ratios)
        return JSONResponse(render.submit_body(task, release, created_at=task.submitted_at),
                            headers=headers, media_type=GIN_JSON)

    # -- queries -----------------------------------------------------------------------------
    def find(self, request: Request, task_id: str, key: str, *, anyone: bool = False
             ) -> Task | None:
        """The caller's task (anyone's with `anyone`); another user's is not there."""
        if anyone:
            task = self.backend.store.find(self.name, task_id)
        else:
            task = self.backend.find(self.name, task_id, key, normalize=conversion.norm_key)
        if task is None:
            return None
        self.note_task(request, task)
        return task

    def row(self, task: Task, *, poll: bool = False) -> Row:
        """The task as new-api's row shows it: the upstream state at the poller's last tick."""
        backend = self.backend
        opts = backend.options
        now = backend.view(task, poll=poll)
        every = poller.interval(opts.timing, opts.mode, opts["newapi_poll_interval"])
        retention = backend.task_retention(task)
        return poller.row(now, lambda t: backend.lifecycle.view(task, t, retention=retention),
                          every)

    def _polled(self, request: Request, task_id: str) -> tuple[Task, Row]:
        """The caller's task as a poll sees it, or new-api's 400 `task_not_exist`."""
        task = self.find(request, task_id, self.authenticate(request))
        if task is None:
            raise self.task_not_exist()
        return task, self.row(task, poll=True)

    def _url(self, request: Request, task: Task, row: Row) -> str | None:
        if row.not_started or render.row_status(row) != "SUCCESS":
            return None
        return self.backend.video_url(self.base_url(request), task, row.snap)

    async def get_video_generation(self, request: Request, op: Operation, raw: bytes) -> Response:
        task, row = self._polled(request, request.path_params["task_id"])
        url = self._url(request, task, row)
        upstream_id = task.extra.get("upstream_id", task.id)
        if row.not_started:  # `data` is still DashScope's answer to the submit
            upstream: dict[str, Any] = {
                "request_id": task.extra.get("request_id", ""),
                "output": {"task_id": upstream_id, "task_status": "PENDING"}}
        else:
            opts = self.backend.options
            upstream = ds_render.task_body(
                task, row.snap, url, self.backend.ids.uuid(), task_id=upstream_id,
                wan27_actual_prompt=opts["dashscope_actual_prompt_wan27"],
                usage_sr=opts["dashscope_usage_sr"])
        dto = render.task_dto(task, row, self.release, upstream=upstream, video_url=url)
        return JSONResponse(render.task_response(dto))

    async def get_video(self, request: Request, op: Operation, raw: bytes) -> Response:
        task, row = self._polled(request, request.path_params["video_id"])
        return JSONResponse(render.openai_video(task, row,
                                                video_url=self._url(request, task, row)))

    async def get_video_content(self, request: Request, op: Operation, raw: bytes) -> Response:
        """VideoProxy (R controller/video_proxy.go :33-180, L :19-189)."""
        key = self.authenticate(request)
        video_id = request.path_params["video_id"]
        task = self.find(request, video_id, key, anyone=not self.release.content_scoped)
        if task is None:
            raise self.content_error(404, "invalid_request_error", "Task not found")
        row = self.row(task)  # the proxy reads new-api's own row; it does not poll
        status = render.row_status(row)
        if status != "SUCCESS":
            raise self.content_error(400, "invalid_request_error",
                                     f"Task is not completed yet, current status: {status}")
        ended = row.snap.ended_at
        if ended is not None and self.backend.now() >= ended + self.backend.url_ttl(task):
            # OSS refuses the expired signed URL (403); the proxy answers 502.
            raise self.content_error(502, "server_error",
                                     "Upstream service returned status 403")
        path = self.backend.video_path(task)
        data = await anyio.to_thread.run_sync(path.read_bytes)
        # The upstream object's headers, then Cache-Control (video_proxy.go R :171-178).
        return Response(data, 200, {"Cache-Control": "public, max-age=86400"},
                        media_type="video/mp4")
