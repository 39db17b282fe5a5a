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
middleware/request-id.go, middleware/cors.go Version (R :18-23), middleware/cache.go; gin
v1.9.1 gin.go redirectTrailingSlash.
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
from mockserver.core.scenarios import FaultRequested, RequestInfo
from mockserver.core.tasks import Task
from mockserver.errors import ProviderError
from mockserver.providers.base import Family
from mockserver.providers.dashscope import render as ds_render
from mockserver.providers.exchange import Exchange
from mockserver.providers.hotpath import JSONResponse
from mockserver.providers.newapi import conversion, distributor, poller, relay, render, wire
from mockserver.providers.newapi.policy import NewApiPolicy
from mockserver.providers.newapi.poller import Row

# gin's c.JSON (submit answers, every error); the fetch routes set plain application/json
# (relay/relay_task.go R :310, L :298).
GIN_JSON = "application/json; charset=utf-8"
REQUEST_ID = "X-Oneapi-Request-Id"
_PARAM = re.compile(r"\{[^/]+\}")
Endpoint = Callable[[Request], Awaitable[Response]]


class NewApi(Family):
    """new-api's task relay with the Ali (DashScope) adaptor over HTTP."""

    policy_class = NewApiPolicy
    policy: NewApiPolicy

    # -- every answer ------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """The pipeline's routes with gin's global middleware around them (the request id
        and version headers; HEAD is no route), and each path's trailing-slash twin, which gin
        redirects (Starlette's router would answer 307 with an absolute URL for any method)."""
        routes = []
        for route in super().routes():
            routes.append(Route(route.path, self._stamped(route.endpoint),
                                methods=[m for m in route.methods or () if m != "HEAD"]))
        for op in self.contract.operations.values():
            twin = op.path[:-1] if op.path.endswith("/") else op.path + "/"
            routes.append(Route(twin, self._redirect, methods=[op.method]))
        return routes

    def _stamped(self, endpoint: Endpoint) -> Endpoint:
        stamp = self.stamp

        async def stamped(request: Request) -> Response:
            if request.method == "HEAD":  # gin registers GET only: HEAD is NoRoute
                return self.unrouted_response(request, 404, {})[0]
            return stamp(await endpoint(request))

        stamped.__name__ = getattr(endpoint, "__name__", "endpoint")
        return stamped

    def stamp(self, response: Response) -> Response:
        """The global middleware's headers (RequestId; R also Version)."""
        headers = response.headers
        if REQUEST_ID not in headers:
            headers[REQUEST_ID] = self.policy.request_id()
        release = self.policy.release
        if release.version_header:
            headers["X-New-Api-Version"] = release.tag
        return response

    def error_response(self, err: ProviderError, op: Operation | None = None) -> Response:
        """An error as gin's c.JSON writes it; its request id is also the header's."""
        request_id = self.policy.request_id()
        headers = {**(err.headers or {}), REQUEST_ID: request_id}
        return JSONResponse(self.policy.error_body(err, op, request_id), status_code=err.status,
                            headers=headers, media_type=GIN_JSON)

    async def _redirect(self, request: Request) -> Response:
        return self.unrouted_response(request, 404, {})[0]

    def unrouted_response(self, request: Request, status: int,
                          headers: dict[str, str]) -> tuple[Response, str]:
        """gin's answer to a path or method no route takes: a trailing-slash redirect when the
        other spelling is a route for this method (301 for GET, else 307; gin v1.9.1
        RedirectTrailingSlash, before any middleware), else NoRoute's 404 "Invalid URL" through
        the web middleware (Cache-Control; R also Cache-Version). No 405: gin.New() leaves
        HandleMethodNotAllowed off."""
        path = request.url.path
        other = path[:-1] if path.endswith("/") and len(path) > 1 else path + "/"
        if request.method != "HEAD" and self._routed(request.method, other):
            query = request.url.query
            location = other + ("?" + query if query else "")
            if request.method == "GET":
                return Response(f'<a href="{location}">Moved Permanently</a>.\n\n', 301,
                                {"Location": location},
                                media_type="text/html; charset=utf-8"), "redirect"
            return Response(b"", 307, {"Location": location}), "redirect"
        body = self.contract.render_error(404, "", f"Invalid URL ({request.method} {path})",
                                          envelope="not_found")
        extra = {"Cache-Control": "max-age=604800"}
        release = self.policy.release
        if release.cache_version:
            extra["Cache-Version"] = release.cache_version
        return self.stamp(JSONResponse(body, status_code=404, headers=extra,
                                       media_type=GIN_JSON)), ""

    def _routed(self, method: str, path: str) -> bool:
        return any(op.method == method and re.fullmatch(_PARAM.sub("[^/]+", op.path), path)
                   for op in self.contract.operations.values())

    # -- what the pipeline asks ----------------------------------------------------------------
    def read_body(self, ex: Exchange) -> Any:
        """What the `Distribute` middleware and the relay read (distributor.py)."""
        return distributor.read_submit(self.policy, ex, self.backend.journal,
                                       remix="{" in ex.operation.path)

    def request_info(self, ex: Exchange) -> RequestInfo:
        return distributor.request_info(super().request_info(ex), ex)

    # -- submits -------------------------------------------------------------------------------
    async def create_video_generation(self, ex: Exchange) -> Response:
        """`POST /v1/video/generations` and `POST /v1/videos`: one implementation."""
        return self._create(ex)

    create_video = create_video_generation

    async def remix_video(self, ex: Exchange) -> Response:
        """ResolveOriginTask (R relay/relay_task.go :38-138, L :35-122): the caller's task must
        exist (400 task_not_exist "task_origin_not_exist"); then the submit runs as any other
        on the origin's channel (the Ali adaptor has no remix of its own)."""
        origin = self.task(ex, ex.path_params.get("video_id", ""))
        if origin is None:
            raise self.policy.task_not_exist("task_origin_not_exist")
        return self._create(ex, remix_of=origin)

    def _create(self, ex: Exchange, remix_of: Task | None = None) -> Response:
        policy = self.policy
        found = relay.relay(policy, ex.operation, ex.body, ex.headers,
                            remix=remix_of is not None, assume=self.input_facts(ex))
        spec, late = policy.settle(ex.operation, found.spec, found.violations)
        assert found.request is not None and found.upstream is not None
        self._upstream_rate(found.upstream)
        release = policy.release
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
        stored = None
        form = ex.form
        if form is not None:
            # The Ali relay drops file parts; the task keeps every value and each file.
            stored = {**ex.body, "_wanmock_form": {
                "values": form.values, "files": [part.record() for part in form.files]}}
        task = self.submit(ex, spec, late, task_id=task_id, body=stored, extra=extra,
                           keep_raw=wire.kind_of(ex.headers.get("content-type", "")) == "json")
        if release.public_ids:
            # The upstream id is what DashScope itself knows the task by.
            self.backend.store.alias("dashscope", upstream_id, task)
        headers = {}
        if release.other_ratios_header and ratios is not None:
            headers["X-New-Api-Other-Ratios"] = conversion.ratios_header(ratios)
        return JSONResponse(render.submit_body(task, release, created_at=task.submitted_at),
                            headers=headers, media_type=GIN_JSON)

    def _upstream_rate(self, upstream: dict[str, Any]) -> None:
        """DashScope's documented submit rate for the model (its decision rate-limits, on by
        default): every caller of one new-api shares its channel's DashScope account, so the
        submits are counted together; beyond the rate DashScope answers 429, which new-api
        relays as its `throttle` fault (R controller/relay.go#L614-L620). Tasks in progress
        beyond DashScope's limit wait upstream; new-api shows them queued either way."""
        upstream_policy = self.policy.upstream_policy()
        limits = upstream_policy.documented_limits()
        model = upstream.get("model")
        found = limits.models.get(model) if limits is not None and isinstance(model, str) else None
        if found is not None and found.submit_rps is not None and not self.backend.admit(
                upstream_policy.name, None, qps=found.submit_rps,
                bucket=f"{self.name} channel submit:{model}"):
            raise FaultRequested("throttle")

    # -- queries -------------------------------------------------------------------------------
    def row(self, task: Task, *, poll: bool = False) -> Row:
        """The task as new-api's row shows it: the upstream state at the poller's last tick."""
        backend = self.backend
        opts = backend.options
        now = backend.view(task, poll=poll)
        every = poller.interval(opts.timing, opts.mode, opts["newapi_poll_interval"])
        if "replay" in task.extra:  # a recorded job's plan already holds the lag it showed
            every = 0.0
        retention = backend.task_retention(task)
        return poller.row(now, lambda t: backend.lifecycle.view(task, t, retention=retention),
                          every)

    def _polled(self, ex: Exchange) -> tuple[Task, Row]:
        """The caller's task as a poll sees it, or new-api's 400 `task_not_exist`; another
        user's task is not there."""
        task = self.task(ex)
        if task is None:
            raise self.policy.task_not_exist()
        return task, self.row(task, poll=True)

    def _url(self, ex: Exchange, task: Task, row: Row) -> str | None:
        if row.not_started or render.row_status(row) != "SUCCESS":
            return None
        return self.backend.video_url(self.base_url(ex), task, row.snap)

    async def get_video_generation(self, ex: Exchange) -> Response:
        task, row = self._polled(ex)
        url = self._url(ex, task, row)
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
        dto = render.task_dto(task, row, self.policy.release, upstream=upstream, video_url=url)
        return JSONResponse(render.task_response(dto))

    async def get_video(self, ex: Exchange) -> Response:
        task, row = self._polled(ex)
        return JSONResponse(render.openai_video(task, row, video_url=self._url(ex, task, row)))

    async def get_video_content(self, ex: Exchange) -> Response:
        """VideoProxy (R controller/video_proxy.go :33-180, L :19-189)."""
        policy = self.policy
        video_id = ex.task_id or ""
        if policy.release.content_scoped:
            task = self.task(ex)
        else:  # L: GetByOnlyTaskId, anyone's task
            task = self.backend.store.find(self.name, video_id)
            if task is not None:
                ex.entry.task_id = task.id
        if task is None:
            raise policy.content_error(404, "invalid_request_error", "Task not found")
        row = self.row(task)  # the proxy reads new-api's own row; it does not poll
        status = render.row_status(row)
        if status != "SUCCESS":
            raise policy.content_error(400, "invalid_request_error",
                                       f"Task is not completed yet, current status: {status}")
        ended = row.snap.ended_at
        if ended is not None and self.backend.now() >= ended + self.backend.url_ttl(task):
            # OSS refuses the expired signed URL (403); the proxy answers 502.
            raise policy.content_error(502, "server_error",
                                       "Upstream service returned status 403")
        data = await anyio.to_thread.run_sync(self.backend.video_path(task).read_bytes)
        # The upstream object's headers, then Cache-Control (video_proxy.go R :171-178).
        return Response(data, 200, {"Cache-Control": "public, max-age=86400"},
                        media_type="video/mp4")
