"""The control API under `/_wanmock/` and the result-video route.

    GET  /_wanmock/health                    {"status": "ok"} and the store's reachability
                                             (503 while the store cannot be reached)
    POST /_wanmock/reset                     forget every task and journal entry
    GET  /_wanmock/tasks[?family=]           every task with its state now
    GET  /_wanmock/tasks/{id}                one task
    POST /_wanmock/tasks/{id}/state          {"state": "failed"} pin a task to a state
    GET  /_wanmock/clock                     {"now", "kind", "timing", "mode"}
    POST /_wanmock/clock/advance             {"seconds": N}
    GET  /_wanmock/journal[?family=&operation=&limit=]
    GET  /_wanmock/webhooks[?task_id=]        webhooks owed, recorded and sent (with their bodies)
    GET|POST|DELETE /_wanmock/scenarios      list, add ({scenario, match, times, rate}), clear
    GET|DELETE /_wanmock/scenarios/{id}      one rule
    GET  /_wanmock/contracts                 the families and their contract URLs
    GET  /_wanmock/contracts/{family}.yaml   a contract (also .json)
    GET  /_wanmock/videos/{id}.mp4?OSSAccessKeyId=&Expires=&Signature=   the result video
                                             (HEAD and Range too; refused as OSS refuses)

The dashboard (`/_wanmock/ui`) is `mockserver.ui.ui_routes(backend)`, mounted next to these by
`create_app` (and by `wanmock proxy`).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mockserver.core.artifacts import oss_error
from mockserver.core.backend import Backend
from mockserver.core.store import StoreUnavailable
from mockserver.core.tasks import State, Task
from mockserver.errors import MockServerError
from mockserver.jsonwire import ascii_int
from mockserver.providers.hotpath import public_base, read_body
from mockserver.version import __version__


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message, "type": "MockServerError"}, status_code=status)


def task_info(backend: Backend, task: Task) -> dict[str, Any]:
    """A task as the control API shows it: neutral state plus what the fake planned."""
    snap = backend.view(task)
    spec = task.spec
    return {
        "id": task.id,
        "family": task.family,
        "operation": task.operation,
        "state": snap.state.value,
        "progress": snap.progress,
        "eta": round(snap.eta, 3),
        "submitted_at": snap.submitted_at,
        "started_at": snap.started_at,
        "ended_at": snap.ended_at,
        "polls": task.polls,
        "model": spec.model,
        "mode": spec.mode,
        "width": spec.width,
        "height": spec.height,
        "duration": spec.duration,
        "audio": spec.audio,
        "scenario": task.extra.get("scenario"),
        "plan": {
            "queue_s": task.plan.queue_s,
            "run_s": task.plan.run_s,
            "failure": None if task.plan.failure is None else {
                "code": task.plan.failure.code, "message": task.plan.failure.message},
        },
        "request": task.request,  # type: ignore[attr-defined]  # a property (see Task)
    }


# How deep a control body may nest (a scenario rule needs three levels).
MAX_DEPTH = 32


class BodyTooLarge(MockServerError):
    """A control body over the fake's `body_limit`: 413, read no further."""


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, read chunk by chunk up to `limit` bytes (a larger one is
    refused as soon as it passes the limit, never held whole)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    raw = await read_body(request, headers, limit)
    if raw is None:
        raise BodyTooLarge(f"the control API takes bodies up to {limit} bytes (body_limit)")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise MockServerError("the control API takes a JSON object body") from None
    if not isinstance(data, dict):
        raise MockServerError("the control API takes a JSON object body")
    if depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise MockServerError(f"the control API takes JSON nested at most {MAX_DEPTH} deep")
    return data


def depth(value: Any, stop: int) -> int:
    """How deep `value` nests (a scalar 0, `[]` 1), counted without recursion and no further
    than `stop + 1`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > stop:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def control_routes(backend: Backend) -> list[BaseRoute]:
    """The `/_wanmock/` routes bound to one backend."""

    def guarded(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)  # type: ignore[no-any-return]
            except BodyTooLarge as exc:  # the rest of the body is not read: close after
                response = _error(str(exc), 413)
                response.headers["connection"] = "close"
                return response
            except ClientDisconnect:
                return _error("the client went away", 400)
            except MockServerError as exc:
                return _error(str(exc))
            except StoreUnavailable as exc:
                return _error(f"the store is unavailable: {exc}", 503)

        endpoint.__name__ = fn.__name__
        return endpoint

    async def health(request: Request) -> Response:
        # For HEALTHCHECK and orchestrators' probes: cheap (one round trip to a shared
        # store, none to memory), no task data, 503 while the store cannot be reached.
        # The store's kind, not its URL: no token guards this (mockserver/guard.py).
        store: dict[str, Any] = {"kind": backend.state.url.partition(":")[0],
                                 "shared": backend.state.shared}
        started = time.perf_counter()
        try:
            store["tasks"] = len(backend.store)
        except StoreUnavailable as exc:
            store.update(reachable=False, error=str(exc))
            return JSONResponse({"status": "unavailable", "version": __version__,
                                 "store": store}, status_code=503)
        store.update(reachable=True, round_trip_ms=round((time.perf_counter() - started)
                                                         * 1000, 3))
        return JSONResponse({"status": "ok", "version": __version__, "store": store,
                             "families": list(backend.options.families)})

    async def reset(request: Request) -> Response:
        if await _json_body(request, backend.options.body_limit):
            raise MockServerError("POST /_wanmock/reset takes no body (or {})")
        backend.reset()
        return JSONResponse({"reset": True})

    async def tasks(request: Request) -> Response:
        family = request.query_params.get("family")
        items = [task_info(backend, t) for t in backend.tasks(family)]
        return JSONResponse({"tasks": items, "count": len(items)})

    def _task(request: Request) -> Task:
        task = backend.store.get(request.path_params["task_id"])
        if task is None:
            raise MockServerError(f"no task {request.path_params['task_id']!r}")
        return task

    async def task(request: Request) -> Response:
        try:
            return JSONResponse(task_info(backend, _task(request)))
        except MockServerError as exc:
            return _error(str(exc), 404)

    async def force_state(request: Request) -> Response:
        body = await _json_body(request, backend.options.body_limit)
        if set(body) != {"state"}:
            raise MockServerError('POST /_wanmock/tasks/{id}/state takes {"state": S} and no '
                                  'other field')
        try:
            value = body.get("state")
            state = State(value if isinstance(value, str) else "")
        except ValueError:
            raise MockServerError(
                f"state must be one of {', '.join(s.value for s in State)}"
            ) from None
        found = _task(request)
        backend.force(found, state)
        return JSONResponse(task_info(backend, found))

    async def clock(request: Request) -> Response:
        return JSONResponse({
            "now": backend.now(), "kind": backend.clock.kind,
            "timing": backend.options.timing, "mode": backend.options.mode,
        })

    async def advance(request: Request) -> Response:
        body = await _json_body(request, backend.options.body_limit)
        if set(body) != {"seconds"}:
            raise MockServerError('POST /_wanmock/clock/advance takes {"seconds": N} and no '
                                  'other field')
        now = backend.advance(body["seconds"])  # a finite, bounded number (core/clock)
        backend.flush_webhooks()
        return JSONResponse({"now": now, "kind": backend.clock.kind})

    async def webhooks(request: Request) -> Response:
        backend.flush_webhooks()
        hooks = backend.webhooks.entries(request.query_params.get("task_id"))
        return JSONResponse({"webhooks": [h.as_dict() for h in hooks], "count": len(hooks)})

    async def journal(request: Request) -> Response:
        q = request.query_params
        match = {k: q[k] for k in ("family", "operation", "task_id") if k in q}
        entries = backend.journal.entries(**match)
        limit = q.get("limit")
        if limit is not None:
            count = ascii_int(limit)
            if count is None:
                raise MockServerError("limit must be a non-negative integer")
            entries = entries[-count:] if count else []
        return JSONResponse({"entries": [e.as_dict() for e in entries], "count": len(entries),
                             "maxlen": backend.journal.maxlen})

    async def contracts_index(request: Request) -> Response:
        base = public_base(request, backend.options.public_url).rstrip("/")
        return JSONResponse({
            "families": {
                c.family: {"yaml": f"{base}/_wanmock/contracts/{c.family}.yaml",
                           "json": f"{base}/_wanmock/contracts/{c.family}.json",
                           "operations": sorted(c.operations)}
                for c in backend.contracts
            },
        })

    async def contract(request: Request) -> Response:
        name = request.path_params["name"]
        family, _, ext = name.rpartition(".")
        if family not in backend.contracts.contracts or ext not in ("yaml", "json"):
            return _error(f"no contract {name!r}; see /_wanmock/contracts", 404)
        c = backend.contracts[family]
        if ext == "json":
            return JSONResponse(c.document)
        text = c.path.read_text(encoding="utf-8")
        return Response(text, media_type="application/yaml")

    async def video(request: Request) -> Response:
        # Answered as OSS answers a presigned GET (decision `result-url-oss`).
        task_id = request.path_params["task_id"]
        path = f"/_wanmock/videos/{task_id}.mp4"
        q = request.query_params
        query_auth = any(k in q for k in ("OSSAccessKeyId", "Expires", "Signature"))
        why = None
        if request.headers.get("authorization") and _refuses_auth(request, task_id):
            why = "both" if query_auth else "header"
        if why is None:
            why = backend.signer.check(path, q.get("Expires"), q.get("Signature"),
                                       backend.now(), q.get("OSSAccessKeyId"))
        found = backend.store.get(task_id) if why is None else None
        # The signed URL's Expires alone bounds the file's life: it runs 24 h from the task's
        # end, so it outlives the task id (UNKNOWN 24 h after submit) by the run time.
        if why is None and (found is None
                            or backend.lifecycle.view(found).state is not State.SUCCEEDED):
            why = "no such key"
        if why is not None or found is None:
            why = why or "no such key"
            # Not from backend.ids: a refused download must not move the seeded task ids.
            request_id = hashlib.sha1(f"{path}{backend.now()}".encode()).hexdigest()[:24].upper()
            status, xml = oss_error(why, request_id, request.url.hostname or "")
            return Response(xml, status_code=status, media_type="application/xml",
                            headers={"x-oss-request-id": request_id})
        return FileResponse(backend.video_path(found), media_type="video/mp4")

    def _refuses_auth(request: Request, task_id: str) -> bool:
        """Whether a result-URL GET with an Authorization header is refused: as the task's
        family says (`Policy.result_auth`), else as OSS does unless
        `dashscope_result_auth=accept` (decision `result-url-oss`)."""
        task = backend.store.get(task_id)
        providers = getattr(request.app.state, "providers", {})
        provider = providers.get(task.family) if task is not None else None
        rule = provider.policy.result_auth() if provider is not None else None
        if rule is not None:
            return rule == "reject"
        return bool(backend.options["dashscope_result_auth"] == "reject")

    async def scenarios(request: Request) -> Response:
        book = backend.scenarios
        if request.method == "GET":
            from mockserver.core.faults import descriptions
            from mockserver.core.scenarios import JOB

            rules = book.fresh_rules() if hasattr(book, "fresh_rules") else book.rules()
            return JSONResponse({"rules": [r.as_dict() for r in rules],
                                 "job": JOB, "transport": descriptions()})
        if request.method == "DELETE":
            book.reset()
            return JSONResponse({"rules": []})
        body = await _json_body(request, backend.options.body_limit)
        items = body.get("rules") if "rules" in body else [body]
        if not isinstance(items, list):
            raise MockServerError("POST /_wanmock/scenarios takes a rule or {\"rules\": [...]}")
        added = book.add_many(items)
        return JSONResponse({"rules": [r.as_dict() for r in added]}, status_code=201)

    async def scenario(request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        if request.method == "DELETE":
            if not backend.scenarios.remove(rule_id):
                return _error(f"no scenario rule {rule_id!r}", 404)
            return JSONResponse({"deleted": rule_id})
        for rule in backend.scenarios.rules():
            if rule.id == rule_id:
                return JSONResponse(rule.as_dict())
        return _error(f"no scenario rule {rule_id!r}", 404)

    def route(path: str, fn: Any, methods: list[str]) -> Route:
        return Route(path, guarded(fn), methods=methods)

    return [
        route("/_wanmock/health", health, ["GET"]),
        route("/_wanmock/reset", reset, ["POST"]),
        route("/_wanmock/tasks", tasks, ["GET"]),
        route("/_wanmock/tasks/{task_id}", task, ["GET"]),
        route("/_wanmock/tasks/{task_id}/state", force_state, ["POST"]),
        route("/_wanmock/clock", clock, ["GET"]),
        route("/_wanmock/clock/advance", advance, ["POST"]),
        route("/_wanmock/journal", journal, ["GET"]),
        route("/_wanmock/webhooks", webhooks, ["GET"]),
        route("/_wanmock/scenarios", scenarios, ["GET", "POST", "DELETE"]),
        route("/_wanmock/scenarios/{rule_id}", scenario, ["GET", "DELETE"]),
        route("/_wanmock/contracts", contracts_index, ["GET"]),
        route("/_wanmock/contracts/{name}", contract, ["GET"]),
        route("/_wanmock/videos/{task_id}.mp4", video, ["GET", "HEAD"]),
    ]
