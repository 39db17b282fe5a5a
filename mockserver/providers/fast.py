"""Per-request helpers on the hot path, each giving exactly what Starlette would, only cheaper.

- `JSONResponse`: Starlette's, rendered by one reused encoder (Starlette's `json.dumps` call
  with keyword arguments builds a new encoder for every response). Same bytes.
- `path_and_query(request)`: `request.url.path` and `request.url.query`, remembered per raw
  path, query and Host (building a `URL` parses the whole URL every time).
- `base_url(request)`: `str(request.base_url)`, remembered per scheme, server, root path and Host.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSONResponse

# What starlette.responses.JSONResponse.render passes to json.dumps.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                            separators=(",", ":"))
_encode = _ENCODER.encode
_LIMIT = 1024  # entries per memo; cleared when full (clients use few hosts and paths)


def json_body(content: Any) -> bytes:
    """The bytes `JSONResponse(content)` sends."""
    return _encode(content).encode("utf-8")


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return _encode(content).encode("utf-8")


def _host(scope: Any) -> bytes | None:
    for key, value in scope["headers"]:
        if key == b"host":
            return bytes(value)
    return None


_PATHS: dict[tuple[Any, ...], tuple[str, str]] = {}
_BASES: dict[tuple[Any, ...], str] = {}


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
        found = (url.path, url.query)
        if len(_PATHS) >= _LIMIT:
            _PATHS.clear()
        _PATHS[key] = found
    return found


def base_url(request: Request) -> str:
    scope = request.scope
    key = (scope.get("scheme"), _server(scope), scope.get("root_path", ""),
           scope.get("app_root_path"), _host(scope))
    found = _BASES.get(key)
    if found is None:
        found = str(request.base_url)
        if len(_BASES) >= _LIMIT:
            _BASES.clear()
        _BASES[key] = found
    return found
