"""The proxy forwards the path as sent and bounds the bodies it reads (issue 20, points 2 and 7):
`%2F` is not decoded to `/` before forwarding, and a body over `proxy.BODY_LIMIT` is refused
with 413 without being read whole."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import mockserver.proxy
from mockserver.proxy import Proxy
from mockserver.server import ThreadedMockServer


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"raw_path": request.scope["raw_path"].decode(),
                         "size": len(await request.body())})


@pytest.fixture(scope="module")
def upstream():
    app = Starlette(routes=[Route("/{rest:path}", echo, methods=["GET", "POST"])])
    with ThreadedMockServer(app) as server:
        yield server


def test_an_encoded_slash_is_forwarded_as_sent(upstream) -> None:
    proxy = Proxy(upstream.url, budget=None)
    with ThreadedMockServer(app=proxy.app()) as server:
        r = httpx.get(server.url + "/v1/videos/a%2Fb/content?x=%2F", trust_env=False)
        assert r.status_code == 200, r.text
        assert r.json()["raw_path"] == "/v1/videos/a%2Fb/content"


def test_a_body_over_the_limit_is_413_and_not_forwarded(upstream, monkeypatch) -> None:
    monkeypatch.setattr(mockserver.proxy, "BODY_LIMIT", 64 * 1024)
    proxy = Proxy(upstream.url, budget=None)
    with ThreadedMockServer(app=proxy.app()) as server, \
            httpx.Client(base_url=server.url, trust_env=False) as c:
        ok = c.post("/v1/anything", content=b"x" * 1000)
        assert ok.status_code == 200 and ok.json()["size"] == 1000
        big = c.post("/v1/anything", content=(b"x" * 8192 for _ in range(64)))  # chunked
        assert big.status_code == 413 and big.json()["type"] == "MockServerError"
        assert big.headers["connection"] == "close"
