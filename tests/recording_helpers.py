"""Recording jobs through `wanmock proxy` on 127.0.0.1, and deliberately wrong providers.

The upstream is a live fake on a manual clock; the proxy reads the same clock, so every
recorded `since_submit` is exact and nothing sleeps. A wrong provider is a tiny Starlette app in
front of the fake that changes its answers (`mutate`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver.proxy import Proxy
from mockserver.server import ThreadedMockServer

KEY = "sk-recording-secret-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
DS = {**AUTH, "X-DashScope-Async": "enable"}
DS_SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
DS_BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse"},
           "parameters": {"size": "1280*720", "duration": 5}}
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN", "TASK_STATUS_SUCCEED",
            "TASK_STATUS_FAILED", "SUCCESS", "FAILURE", "completed", "failed"}
Mutate = Callable[[Request, int, Any], tuple[int, Any]]


def wrong_provider(upstream: str, mutate: Mutate) -> Starlette:
    """A provider that answers what the fake answers, changed by `mutate(request, status,
    body)`."""

    async def handle(request: Request) -> Response:
        async with httpx.AsyncClient(base_url=upstream) as client:
            answer = await client.request(
                request.method, request.url.path, params=request.url.query or None,
                headers=[(k, v) for k, v in request.headers.items()
                         if k not in ("host", "content-length")],
                content=await request.body())
        if "json" not in answer.headers.get("content-type", ""):
            return Response(answer.content, answer.status_code,
                            media_type=answer.headers.get("content-type"))
        status, body = mutate(request, answer.status_code, answer.json())
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])


def dashscope_job(client: httpx.Client, clock: Any, *, step: float = 0.5,
                  body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
                  ) -> tuple[str, list[str]]:
    """Submit a DashScope job and poll it every `step` (manual) seconds until it ends."""
    created = client.post(DS_SUBMIT, json=body or DS_BODY, headers={**DS, **(headers or {})})
    assert created.status_code == 200, created.text
    task_id = created.json()["output"]["task_id"]
    seen = [created.json()["output"]["task_status"]]
    for _ in range(60):
        clock.advance(step)
        seen.append(client.get(f"/api/v1/tasks/{task_id}", headers=DS).json()["output"]
                    .get("task_status", "?"))
        if seen[-1] in TERMINAL:
            break
    return task_id, seen


def record(path: Path, target: str, clock: Any,
           session: Callable[[httpx.Client], None]) -> Path:
    """Run `session` through a recording proxy in front of `target`; returns the cassette."""
    proxy = Proxy(target, record=path, budget=None, clock=clock.now)
    with ThreadedMockServer(app=proxy.app()) as server, \
            httpx.Client(base_url=server.url) as client:
        session(client)
    return path


def start(app: Starlette) -> ThreadedMockServer:
    return ThreadedMockServer(app=app).start()
