"""The app factory: every family at its real paths on one Starlette app, plus `/_wanmock/`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from mockserver.contracts import ContractSet
from mockserver.core.backend import Backend, Options
from mockserver.core.clock import Clock
from mockserver.core.replay import ReplayOpener
from mockserver.core.store import StoreUnavailable
from mockserver.families import owner, spec
from mockserver.guard import ControlGuard, send_refusal
from mockserver.providers.base import family_class
from mockserver.providers.hotpath import Dispatch

log = logging.getLogger("mockserver")
# Control-API paths followed by a task id (the families add their `FamilySpec.task_paths`).
CONTROL_TASK_PATHS = ("/_wanmock/tasks/", "/_wanmock/videos/")


class MockApp(Starlette):
    """Starlette, with the contract operations dispatched from one prebuilt table.

    A request for a contract operation goes straight to its endpoint (which answers every error
    itself, in the family's envelope); everything else (control API, HEAD, unknown paths and
    methods, a root path, an app with added middleware) goes through Starlette's router and
    exception handlers as usual.
    """

    def __init__(self, *args: Any, dispatch: Dispatch | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dispatch = dispatch
        self.backend: Backend | None = None
        self.task_prefixes: tuple[str, ...] = CONTROL_TASK_PATHS
        # A family's other hosts (`x-wanmock-mounts`): host -> the path prefix it is served
        # under on this port.
        self.mounts: dict[str, str] = {}
        self.guard = ControlGuard()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_wanmock"):
            refusal = self.guard.check(scope)  # who may drive the control plane (guard.py)
            if refusal is not None:
                await send_refusal(refusal, send)
                return
        if self.mounts and scope["type"] == "http":
            scope = mounted(scope, self.mounts)
        backend = self.backend
        if backend is not None and backend.state.shared and scope["type"] == "http":
            # One read of the shared state for the whole request (epoch, clock, the task).
            try:
                token = backend.begin(_task_id(scope, self.task_prefixes))
            except StoreUnavailable:  # every route answers its own 503
                token = None
            try:
                await self._serve(scope, receive, send)
            finally:
                backend.end(token)
            return
        await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and self.dispatch is not None and not self.user_middleware
                and not scope.get("root_path")):
            found = self.dispatch.match(scope["method"], scope["path"])
            if found is not None:
                endpoint, params = found
                scope["app"] = self
                scope["router"] = self.router
                scope["endpoint"] = endpoint
                scope["path_params"] = params
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def mounted(scope: Scope, mounts: dict[str, str]) -> Scope:
    """The scope of a request to a mounted host (its Host header names one) with the mount's
    prefix put before its path (`https://run.example/x` served as `/run.example/x`; the Host
    header still says where it was sent). Any other request is unchanged."""
    host = None
    for key, value in scope["headers"]:
        if key == b"host":
            host = value.decode("latin-1").lower()
            if not host.startswith("["):  # `[::1]:8000` is never a mounted host
                host = host.partition(":")[0]
            break
    prefix = mounts.get(host) if host is not None else None
    if prefix is None:
        return scope
    path = scope["path"]
    if path == prefix or path.startswith((prefix + "/", "/_wanmock/")):
        return scope  # already mounted, or the fake's own (its videos, its control API)
    raw = scope.get("raw_path") or path.encode("latin-1")
    return {**scope, "path": prefix + path, "raw_path": prefix.encode("latin-1") + raw}


def create_app(
    families: Sequence[str] | None = None,
    *,
    clock: Clock | str | None = None,
    seed: int | None = None,
    backend: Backend | None = None,
    contracts: ContractSet | None = None,
    open_replay: ReplayOpener | None = None,
    **options: Any,
) -> MockApp:
    """Build the fake from the layers below the app (`mockserver.create_app` is this with the
    differential loop's cassette reader, so that `replay=FILE` works).

    Parameters:
        families: which families to serve (default all: dashscope, newapi, jiekou, apiyi).
        clock: a clock to drive tasks (`ManualClock()` for tests), or the `Options.clock` name
            (`"system"`/`"manual"`), as `wanmock serve --clock` and the pytest plugin pass it.
        seed: seeds ids, timings and URL signatures.
        backend: an existing `Backend` to serve (its options win).
        contracts: a loaded `ContractSet` (default: the bundled contracts).
        open_replay: opens the cassette of the `replay` option (`mockserver.replay.open_replay`;
            without it, a fake given `replay=` refuses to start).
        **options: any `Options` field (`timing`, `mode`, `api_keys`, `rule_timing`, ...).

    The `Backend` is at `app.state.backend`: tests and the pytest plugin use it to move the
    clock, inspect tasks and read the journal.
    """
    from mockserver.control import control_routes
    from mockserver.ui import ui_routes

    if isinstance(clock, str):  # the `clock` option, not a Clock object
        options["clock"], clock = clock, None
    if backend is None:
        opts = Options().merged(families=families, seed=seed, **options)
        backend = Backend(opts, clock=clock, contracts=contracts, open_replay=open_replay)
    routes: list[BaseRoute] = []
    providers = {}
    route_families: list[tuple[Route, str]] = []
    for name in backend.options.families:
        provider = family_class(name)(backend)
        providers[name] = provider
        built = provider.routes()
        routes.extend(built)
        route_families.extend((route, name) for route in built if isinstance(route, Route))
    dispatch = Dispatch((method, route.path, route.endpoint)
                        for route in routes if isinstance(route, Route)
                        for method in route.methods or () if method != "HEAD")
    routes.extend(control_routes(backend))
    routes.extend(ui_routes(backend))
    app = MockApp(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed},
                  dispatch=dispatch, lifespan=_lifespan)
    app.state.backend = backend
    app.state.providers = providers
    app.state.route_families = route_families
    app.backend = backend
    app.guard = ControlGuard.from_options(backend.options)
    app.task_prefixes = (*(p for name in providers for p in spec(name).task_paths),
                         *CONTROL_TASK_PATHS)
    app.mounts = backend.contracts.mounts(providers)
    return app


OPTIONS_ENV = "WANMOCK_APP_OPTIONS"


def encode_options(options: Options) -> str:
    """Options as JSON, for the worker processes of `wanmock serve --workers N`."""
    import json
    from dataclasses import asdict

    data = asdict(options)
    for name, value in data.items():
        if isinstance(value, frozenset | tuple):
            data[name] = sorted(value) if isinstance(value, frozenset) else list(value)
    return json.dumps(data)


def _task_id(scope: Scope, prefixes: Sequence[str] = CONTROL_TASK_PATHS) -> str | None:
    """The task a request names (path `{task_id}`/`{video_id}` after one of `prefixes`, the
    families' `task_paths` and the control API's, or `?task_id=`), to read it with the
    request's one round trip to a shared store."""
    path = scope["path"]
    for prefix in prefixes:
        if path.startswith(prefix):
            rest = path[len(prefix):]
            task_id = rest.split("/", 1)[0].removesuffix(".mp4")
            return task_id or None
    query = scope.get("query_string") or b""
    if b"task_id=" in query:
        from urllib.parse import parse_qs

        found = parse_qs(query.decode("latin-1")).get("task_id")
        return found[0] if found else None
    return None


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """Under a server (uvicorn runs the lifespan), webhooks are sent over HTTP unless the
    `webhooks` option says `record`; in process nothing runs this and they are recorded."""
    from mockserver.ui import open_streams

    backend: Backend = app.state.backend
    open_streams(backend)  # a stopped server closed them (ThreadedMockServer.stop)
    backend.serving = True
    backend.webhooks.record_only = backend.options.webhooks == "record"
    sender = asyncio.create_task(_send_webhooks(backend))
    try:
        yield
    finally:
        sender.cancel()
        with suppress(asyncio.CancelledError):
            await sender
        backend.serving = False
        backend.webhooks.record_only = True
        with suppress(StoreUnavailable):
            backend.state.flush()  # a shared store's batched journal, before the process ends


async def _send_webhooks(backend: Backend, interval: float = 0.1) -> None:
    """The webhook sender (mockserver.core.webhooks.run_sender) over this backend."""
    from mockserver.core.webhooks import run_sender

    await run_sender(backend.webhooks, flush=backend.flush_webhooks, now=backend.now,
                     mode=lambda: backend.options.webhooks, interval=interval,
                     signers=backend.webhook_signers)


def _owner(request: Request) -> Any:
    """The served family owning an unknown path by its `prefixes`, else the family one of
    whose operations has that path (its 404/405 envelope)."""
    providers = getattr(request.app.state, "providers", {})
    family = owner(request.url.path, providers)
    if family is None:  # a path one of its operations has, with another method (405)
        for route, name in getattr(request.app.state, "route_families", ()):
            if route.path_regex.match(request.url.path):
                family = name
                break
    return providers[family] if family is not None else None


async def _not_found(request: Request, exc: Exception) -> Response:
    return await _unrouted(request, 404, {})


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return await _unrouted(request, 405, dict(getattr(exc, "headers", None) or {}))


async def _unrouted(request: Request, status: int, headers: dict[str, str]) -> Response:
    """404/405 as the family owning the path answers it (`Family.unrouted_response`; a
    generic JSON body outside any family)."""
    provider = _owner(request)
    if provider is not None:
        response, code = provider.unrouted_response(request, status, headers)
    else:
        code = {404: "NotFound", 405: "MethodNotAllowed"}[status]
        message = (f"no operation at {request.method} {request.url.path}" if status == 404
                   else f"{request.method} is not allowed on {request.url.path}")
        response = JSONResponse({"code": code, "message": f"wanmock: {message}; see "
                                 "GET /_wanmock/contracts"}, status_code=status, headers=headers)
    await _journal_unknown(request, response, code)
    return response


async def _unread_body(request: Request, limit: int) -> bytes | None:
    """The body of a request no operation read (None when over `limit` or cut off)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except (ClientDisconnect, RuntimeError):  # gone, or already read
        return None
    return b"".join(chunks)


async def _journal_unknown(request: Request, response: Response, code: str) -> None:
    """A request to no contract operation is a violation the pytest plugin reports; what it
    carried is kept like any other request's."""
    backend: Backend | None = getattr(request.app.state, "backend", None)
    if backend is None or request.url.path.startswith("/_wanmock/"):
        return
    try:
        await _journal_unknown_entry(backend, request, response, code)
    except StoreUnavailable:  # nowhere to keep it; the answer itself stands
        pass


async def _journal_unknown_entry(backend: Backend, request: Request, response: Response,
                                 code: str) -> None:
    body = await _unread_body(request, backend.options.body_limit)
    entry = backend.journal.record(
        time=backend.now(), method=request.method, path=request.url.path,
        query=request.url.query, headers=request.headers.items(), body=body,
    )
    entry.violations.append({"field": "", "rule": "unknown_operation", "status":
                             response.status_code, "code": code,
                             "message": "no contract operation here"})
    backend.journal.complete(entry, response.status_code, bytes(response.body))
