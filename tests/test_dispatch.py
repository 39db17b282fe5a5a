"""The prebuilt dispatch table routes exactly as Starlette's router would.

`MockApp` sends a request for a contract operation straight to its endpoint. These tests hold it
to the router it bypasses: the same route (or none) for every contract path and a set of near
misses, and everything the table does not cover (HEAD, other methods, trailing slashes, a root
path, added middleware) still handled by Starlette.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mockserver.app import MockApp, create_app
from mockserver.core.clock import ManualClock
from mockserver.providers.hotpath import Dispatch

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer sk-dispatch-test-0001", "X-DashScope-Async": "enable"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _family_routes(app: MockApp) -> list[Route]:
    return [r for r in app.routes if isinstance(r, Route) and not r.path.startswith("/_wanmock")]


def _starlette_match(app: MockApp, method: str, path: str) -> tuple[Any, dict[str, Any]] | None:
    """The first route Starlette's router fully matches (the rule `Router.app` applies)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in app.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route.endpoint, child["path_params"]
    return None


def _probes(app: MockApp) -> list[str]:
    out = []
    for route in _family_routes(app):
        filled = route.path.replace("{task_id}", "t-1").replace("{video_id}", "video_abc")
        out += [filled, filled + "/", filled + "/extra", filled.rstrip("/") + "x",
                filled.replace("t-1", "").replace("video_abc", ""),
                "/" + filled.lstrip("/").upper()]
    return out + ["/", "", "/api", "/api/v1/tasks//cancel", "/v1/videos/a/b/content"]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PUT"])
def test_table_matches_starlette_on_every_probe(method: str) -> None:
    app = create_app(clock=ManualClock())
    assert app.dispatch is not None
    probes = _probes(app)
    assert len(probes) > 100
    for path in probes:
        ours = app.dispatch.match(method, path)
        theirs = _starlette_match(app, method, path)
        if theirs is not None and theirs[0] not in {r.endpoint for r in _family_routes(app)}:
            theirs = None  # a control route: the table leaves those to Starlette
        assert ours == theirs, (method, path)


def test_head_is_left_to_starlette() -> None:
    app = create_app(clock=ManualClock())
    assert app.dispatch.match("HEAD", "/api/v1/tasks/t-1") is None
    assert _starlette_match(app, "HEAD", "/api/v1/tasks/t-1") is not None


def test_first_route_wins_like_the_router() -> None:
    async def first(request: Any) -> Any: ...
    async def second(request: Any) -> Any: ...
    table = Dispatch([("GET", "/a/{x}", first), ("GET", "/a/b", second)])
    assert table.match("GET", "/a/b") == (first, {"x": "b"})
    assert table.match("GET", "/a/") is None  # `{x}` is never empty


def test_the_first_segment_index_keeps_the_order_across_parameter_routes() -> None:
    """Routes are looked up by their first segment; a route whose first segment is a parameter
    still wins over a later literal one, and serves first segments no literal route has."""
    async def owner(request: Any) -> Any: ...
    async def api(request: Any) -> Any: ...
    async def later(request: Any) -> Any: ...
    table = Dispatch([("GET", "/api/v1/{t}", api), ("GET", "/{o}/{a}/{r}", owner),
                      ("GET", "/fal-ai/wan/x", later)])
    assert table.match("GET", "/api/v1/t") == (api, {"t": "t"})
    assert table.match("GET", "/fal-ai/wan/x") == (owner, {"o": "fal-ai", "a": "wan", "r": "x"})
    assert table.match("GET", "/other/a/b") == (owner, {"o": "other", "a": "a", "r": "b"})
    assert table.match("GET", "/api/v2/t") == (owner, {"o": "api", "a": "v2", "r": "t"})
    assert table.match("GET", "/api/v1") is None


@pytest.mark.parametrize("path", ["/a/{x:int}", "/a/x{y}"])
def test_table_refuses_paths_it_cannot_match_exactly(path: str) -> None:
    async def endpoint(request: Any) -> Any: ...
    with pytest.raises(ValueError, match="Dispatch"):
        Dispatch([("GET", path, endpoint)])


async def _create_and_poll(app: Any, root_path: str = "") -> tuple[int, int, str]:
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    base = "https://dashscope.aliyuncs.com"
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        created = await c.post(f"{root_path}/api/v1/services/aigc/video-generation/video-synthesis",
                               headers=AUTH,
                               json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"}})
        task_id = created.json()["output"]["task_id"]
        polled = await c.get(f"{root_path}/api/v1/tasks/{task_id}", headers=AUTH)
        return created.status_code, polled.status_code, polled.json()["output"]["task_status"]


async def test_added_middleware_still_runs_on_contract_paths() -> None:
    seen: list[str] = []

    class Spy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])
            await self.app(scope, receive, send)

    app = create_app(clock=ManualClock())
    app.user_middleware.insert(0, Middleware(Spy))
    assert await _create_and_poll(app) == (200, 200, "PENDING")
    assert len(seen) == 2 and seen[1].startswith("/api/v1/tasks/")


async def test_root_path_goes_through_the_router() -> None:
    app = create_app(clock=ManualClock())
    assert await _create_and_poll(app, root_path="/mounted") == (200, 200, "PENDING")


async def test_unknown_method_on_a_contract_path_is_the_family_405() -> None:
    app = create_app(clock=ManualClock())
    transport = httpx.ASGITransport(app=app)
    base = "https://dashscope.aliyuncs.com"
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        response = await c.delete("/api/v1/tasks/t-1", headers=AUTH)
    assert response.status_code == 405
    assert response.json()["code"] == "MethodNotAllowed"
    assert "request_id" in response.json()


async def _raw_call(app: Any, headers: list[Any], path: str) -> tuple[int, dict[str, Any]]:
    """One request as a server hands it over, with the raw header list given as is."""
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return out[0]["status"], json.loads(b"".join(m.get("body", b"") for m in out[1:]))


async def test_header_sets_seen_before_are_read_afresh_per_request() -> None:
    """The parsed headers are shared between requests with the same raw headers; a request
    with other headers (or headers as lists) never sees them."""
    app = create_app(clock=ManualClock(), api_keys=["sk-right-key-000001"])
    good = [(b"host", b"x"), (b"authorization", b"Bearer sk-right-key-000001")]
    wrong = [(b"host", b"x"), (b"authorization", b"Bearer sk-wrong-key-00002")]
    as_lists = [[b"host", b"x"], [b"authorization", b"Bearer sk-right-key-000001"]]
    path = "/api/v1/tasks/no-such-task"
    for _ in range(2):
        assert (await _raw_call(app, good, path))[0] == 200
        status, body = await _raw_call(app, wrong, path)
        assert (status, body["code"]) == (401, "InvalidApiKey")
        assert (await _raw_call(app, as_lists, path))[0] == 200
    journal = app.state.backend.journal.entries()
    assert [e.status for e in journal] == [200, 401, 200] * 2
    assert all("sk-" not in json.dumps(e.as_dict()) for e in journal)


@pytest.mark.parametrize(("base", "path", "status", "field", "code"), [
    ("https://dashscope.aliyuncs.com", "/api/v1/services/aigc/nope", 404, "code", "NotFound"),
    ("https://api.novita.ai", "/v3/async/img2video", 404, "reason", "NOT_FOUND"),
    ("https://api.novita.ai", "/v3/async/task-result", 405, "reason", "METHOD_NOT_ALLOWED"),
    # new-api: gin's NoRoute, never 405 (contracts/newapi.yaml "Routes, unknown paths...")
    ("https://gw.example.com", "/v1/video/nope", 404, "error", {
        "message": "Invalid URL (POST /v1/video/nope)", "type": "invalid_request_error",
        "param": "", "code": ""}),
    ("https://gw.example.com", "/v1/videos/v1/content", 404, "error", {
        "message": "Invalid URL (POST /v1/videos/v1/content)", "type": "invalid_request_error",
        "param": "", "code": ""}),
])
async def test_unknown_routes_in_the_family_words_and_journaled_with_their_body(
        base: str, path: str, status: int, field: str, code: Any) -> None:
    app = create_app(clock=ManualClock())
    transport = httpx.ASGITransport(app=app)
    body = {"prompt": "kept", "api_key": "sk-secret-in-body-0001"}
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        response = await c.post(path, json=body, headers={"Authorization": "Bearer sk-route-1"})
    assert response.status_code == status
    assert response.json()[field] == code
    [entry] = app.state.backend.journal.entries()
    assert entry.violations[0]["rule"] == "unknown_operation"
    assert entry.violations[0]["code"] == (code if isinstance(code, str) else code["code"])
    kept = json.loads(entry.request_body or "")
    assert kept == {"prompt": "kept", "api_key": "[redacted]"}  # kept, with the key hidden


@pytest.mark.parametrize("content, status", [
    ({"output": {"task_id": "t1", "task_status": "PENDING"}, "request_id": "r"}, 200),
    ({"code": "InvalidParameter", "message": "中文 and \u2028"}, 400),
    ([1, 2.5, None, True], 503),
])
def test_hot_responses_are_starlettes_byte_for_byte(content: Any, status: int) -> None:
    """The hot path's responses build their headers directly: the same status, headers and
    body as Starlette's own classes."""
    from starlette.responses import JSONResponse as StarletteJSON
    from starlette.responses import Response

    from mockserver.providers.hotpath import JSONBytes, JSONResponse, json_body

    theirs = StarletteJSON(content, status_code=status)
    for ours in (JSONResponse(content, status_code=status),
                 JSONBytes(json_body(content), status)):
        assert (ours.status_code, ours.raw_headers, ours.body) == (
            theirs.status_code, theirs.raw_headers, theirs.body)
        assert ours.background is None and ours.headers["content-type"] == "application/json"
    plain = Response(json_body(content), status, media_type="application/json")
    assert JSONBytes(json_body(content), status).raw_headers == plain.raw_headers
    with_headers = JSONResponse(content, status_code=status, headers={"Retry-After": "1"})
    assert with_headers.headers["retry-after"] == "1"  # other headers: Starlette's own path
