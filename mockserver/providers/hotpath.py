"""Per-request helpers on the hot path, each giving exactly what Starlette would, only cheaper.

- `JSONResponse`: Starlette's, rendered by one reused encoder (Starlette's `json.dumps` call
  with keyword arguments builds a new encoder for every response), its two headers built
  directly when it has no others. Same bytes, same headers.
- `JSONBytes`: `Response(body, media_type="application/json")` for a body already rendered
  (DashScope's poll and submit answers), without Starlette's header building.
- `path_and_query(request)`: `request.url.path` and `request.url.query`, remembered per raw
  path, query and Host (building a `URL` parses the whole URL every time).
- `base_url(request)`: `str(request.base_url)`, remembered per scheme, server, root path and Host;
  `public_base(request, public_url)`: the `public_url` option instead when it is set.
- `read_body(request, headers, limit)`: the body as `request.body()` reads it, or None past
  `limit`, without an async generator per request.
- `header_dict(raw, memo)`: the request's headers as one dict, shared by requests with the
  same raw headers (clients send the same ones again and again).
- `Dispatch`: the family routes as one table by method and segment count, matched the way
  Starlette's router would match them (same routes, same order, same path parameters) without
  trying every route's regular expression in turn.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse as _StarletteJSONResponse
from starlette.responses import RedirectResponse, Response

from mockserver.core.memo import Memo
from mockserver.jsonwire import ascii_int

# What starlette.responses.JSONResponse.render passes to json.dumps.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                            separators=(",", ":"))
_encode = _ENCODER.encode


def json_body(content: Any) -> bytes:
    """The bytes `JSONResponse(content)` sends."""
    return _encode(content).encode("utf-8")


_JSON_TYPE = (b"content-type", b"application/json")


class JSONResponse(_StarletteJSONResponse):
    def __init__(self, content: Any, status_code: int = 200,
                 headers: Any = None, media_type: str | None = None,
                 background: BackgroundTask | None = None) -> None:
        if (headers is None and media_type is None and background is None
                and status_code >= 200 and status_code not in (204, 304)):
            # What Starlette's init_headers gives such a response: length, then type.
            self.status_code = status_code
            self.background = None
            self.body = body = _encode(content).encode("utf-8")
            self.raw_headers = [(b"content-length", str(len(body)).encode("latin-1")),
                                _JSON_TYPE]
            return
        super().__init__(content, status_code, headers, media_type, background)

    def render(self, content: Any) -> bytes:
        return _encode(content).encode("utf-8")


class JSONBytes(Response):
    """`Response(body, status_code, media_type="application/json")`: the same status, headers
    and body (`body` is JSON already rendered), built directly."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        if status_code < 200 or status_code in (204, 304):
            super().__init__(body, status_code)
            return
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode("latin-1")), _JSON_TYPE]


def _host(scope: Any) -> bytes | None:
    for key, value in scope["headers"]:
        if key == b"host":
            return bytes(value)
    return None


# Pure functions of their keys (the scope's own fields), so one memo each serves every app;
# what a fake remembers of its clients lives in its Backend (`Backend.memo`).
_PATHS: Memo[tuple[Any, ...], tuple[str, str]] = Memo(1024)
_BASES: Memo[tuple[Any, ...], str] = Memo(1024)


def _server(scope: Any) -> Any:
    server = scope.get("server")
    return server if server is None or type(server) is tuple else tuple(server)  # may be a list


def path_and_query(request: Request) -> tuple[str, str]:
    scope = request.scope
    key = (scope["path"], bytes(scope.get("query_string", b"")), scope.get("scheme"),
           _server(scope), _host(scope))
    found = _PATHS.get(key)
    if found is None:
        url = request.url
        found = _PATHS.put(key, (url.path, url.query))
    return found


def base_url(request: Request) -> str:
    scope = request.scope
    key = (scope.get("scheme"), _server(scope), scope.get("root_path", ""),
           scope.get("app_root_path"), _host(scope))
    found = _BASES.get(key)
    if found is None:
        found = _BASES.put(key, str(request.base_url))
    return found

def public_base(request: Request, public_url: str | None) -> str:
    """The base every self-link (result URL, webhook payload, control API link) starts with:
    the `public_url` option plus "/" when it is set, else the request's own (`base_url`)."""
    return base_url(request) if public_url is None else public_url + "/"


async def read_body(request: Request, headers: dict[str, str], limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` bytes."""
    length = headers.get("content-length")
    if length is None:
        if request.method == "GET" and "transfer-encoding" not in headers:
            return b""  # HTTP/1.1: no Content-Length, no Transfer-Encoding, no body
    elif (ascii_int(length) or 0) > limit:
        return None
    # What `request.stream()` does, without an async generator per request.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            raise ClientDisconnect()
    request._stream_consumed = True
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def header_dict(raw: Any, memo: Any) -> dict[str, str]:
    """Raw ASGI headers as a dict (lower-case names, first value wins), shared through `memo`
    by requests with the same raw headers (None: no memo): read it, never change it.
    Starlette's `request.headers.get` scans the raw list on every call."""
    try:
        key: Any = tuple(raw)
        headers: dict[str, str] | None = memo.get(key) if memo is not None else None
    except TypeError:  # [name, value] lists: fine for ASGI, not hashable
        key = None
        headers = None
    if headers is None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(raw)}
        if key is not None and memo is not None:
            memo.put(key, headers)
    return headers


def body_of(response: Response) -> bytes | None:
    """The bytes a (non-streaming) response sends, else None."""
    body = getattr(response, "body", None)
    return body if isinstance(body, bytes) else None


def json_response(content: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """`content` as JSON (the bytes Starlette's JSONResponse sends)."""
    return JSONResponse(content, status_code=status, headers=headers)


Endpoint = Callable[[Request], Any]


def slashed(endpoint: Endpoint, mode: Callable[[], str | None]) -> Endpoint:
    """The endpoint of a path with a trailing slash: the same answer, or (when `mode()`, read
    per request, says `redirect`) a 307 to the path without it, as Starlette's router answers."""

    async def with_slash(request: Request) -> Any:
        if mode() == "redirect":
            url = request.url.replace(path=request.url.path.rstrip("/"))
            return RedirectResponse(str(url), status_code=307)
        return await endpoint(request)

    with_slash.__name__ = getattr(endpoint, "__name__", "endpoint")
    return with_slash


class Dispatch:
    """`(method, path)` -> `(endpoint, path_params)` for routes whose path parameters are whole
    segments (`/api/v1/tasks/{task_id}`): the shape of every contract path. Routes are kept in
    the order given, so the first route that matches wins, as in Starlette's router; anything
    not in the table (HEAD, another method, a trailing slash, a control route) returns None and
    goes through Starlette as before."""

    def __init__(self, routes: Iterable[tuple[str, str, Endpoint]]) -> None:
        self._table: dict[tuple[str, int], list[tuple[tuple[tuple[int, str], ...],
                                                      tuple[tuple[int, str], ...],
                                                      Endpoint]]] = {}
        for method, path, endpoint in routes:
            parts = path.split("/")
            literals, params = [], []
            for i, part in enumerate(parts):
                if part.startswith("{") and part.endswith("}"):
                    name = part[1:-1]
                    if not name.isidentifier():  # a convertor (`{id:int}`): not ours to match
                        raise ValueError(f"Dispatch: unsupported path parameter in {path}")
                    params.append((i, name))
                elif "{" in part or "}" in part:
                    raise ValueError(f"Dispatch: a parameter inside a segment in {path}")
                else:
                    literals.append((i, part))
            self._table.setdefault((method, len(parts)), []).append(
                (tuple(literals), tuple(params), endpoint))
        # Each bucket by its routes' first segment (`api`, `v1`): the routes whose
        # first segment is that literal or a parameter, in the order given; `None`: the routes
        # whose first segment is a parameter (for any other first segment).
        self._first: dict[tuple[str, int], dict[str | None, list[Any]]] = {}
        for bucket, entries in self._table.items():
            firsts = {lit for literals, _, _ in entries for i, lit in literals if i == 1}
            self._first[bucket] = {
                first: [r for r in entries if _first_literal(r[0]) in (first, None)]
                for first in (*firsts, None)}

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        parts = path.split("/")
        bucket = self._first.get((method, len(parts)))
        if bucket is None:
            return None
        candidates = bucket.get(parts[1] if len(parts) > 1 else None) or bucket[None]
        for literals, params, endpoint in candidates:
            for i, literal in literals:
                if parts[i] != literal:
                    break
            else:
                values = {}
                for i, name in params:
                    value = parts[i]
                    if not value:  # Starlette's `{name}` is `[^/]+`: never empty
                        break
                    values[name] = value
                else:
                    return endpoint, values
        return None


def _first_literal(literals: tuple[tuple[int, str], ...]) -> str | None:
    """A route's first path segment when it is a literal (None: a parameter)."""
    for i, literal in literals:
        if i == 1:
            return literal
    return None
