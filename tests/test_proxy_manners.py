"""`wanmock proxy` as a polite reverse proxy: redirects stay on the proxy, hop-by-hop headers
stay on their hop, X-Forwarded-* say who asked, big downloads stream through, and the
dashscope SDK's aio client (trailing-slash polls) completes through it.

The upstreams are real servers on 127.0.0.1: a wanmock fake, and a tiny Starlette app that
shows what it received and streams a download in two halves."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus

import dashscope
import httpx
import pytest
from dashscope.aigc.video_synthesis import AioVideoSynthesis
from dashscope.api_entities.aio_session import close_shared_aio_session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mockserver import tls_cli
from mockserver.cli import build_parser
from mockserver.cli_loop import make_proxy
from mockserver.proxy import Proxy
from mockserver.server import ThreadedMockServer
from tests.helpers import missing

KEY = "sk-manners-0123456789abcdef"
HALF = 4 * 1024 * 1024  # each half of the streamed download
pytestmark = pytest.mark.usefixtures("loopback_only")


class Echo:
    """A tiny upstream: `/echo` shows the headers it got and answers with Locations on its own
    host; `/v1/videos/{id}/content` sends one half, waits for the test, then the other."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.url = ""

    def app(self) -> Starlette:
        async def echo(request: Request) -> Response:
            headers = [[k, v] for k, v in request.headers.items()]
            return JSONResponse(headers, status_code=307, headers={
                "Location": self.url + "/api/v1/tasks/abc?x=1",
                "Content-Location": self.url + "/echo",
                "Connection": "close, X-Upstream-Secret",
                "X-Upstream-Secret": "hop only",
                "Keep-Alive": "timeout=5",
                "X-Kept": "end to end"})

        async def content(request: Request) -> Response:
            async def halves() -> AsyncIterator[bytes]:
                yield b"\x00" * HALF
                # The proxy must have passed the first half on before the second exists.
                import asyncio

                await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
                yield b"\x01" * HALF

            return StreamingResponse(halves(), media_type="video/mp4")

        async def shown(request: Request) -> Response:
            return JSONResponse([[k, v] for k, v in request.headers.items()])

        return Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"]),
                                 Route("/v1/videos/{video_id}/content", content),
                                 Route("/api/v1/tasks/{task_id}", shown),
                                 Route("/v1/videos/{video_id}", shown)])


@pytest.fixture(scope="module")
def echo() -> Iterator[Echo]:
    upstream = Echo()
    with ThreadedMockServer(app=upstream.app()) as server:
        upstream.url = server.url
        yield upstream


@pytest.fixture(scope="module")
def via_echo(echo, tmp_path_factory) -> Iterator[tuple[Proxy, ThreadedMockServer]]:
    proxy = Proxy(echo.url, budget=None, echo=None,
                  record=tmp_path_factory.mktemp("manners") / "echo.jsonl")
    with ThreadedMockServer(app=proxy.app()) as server:
        yield proxy, server


def test_locations_pointing_at_the_target_are_rewritten_to_the_proxy(via_echo):
    _, server = via_echo
    answer = httpx.get(server.url + "/echo", headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 307
    assert answer.headers["location"] == server.url + "/api/v1/tasks/abc?x=1"
    assert answer.headers["content-location"] == server.url + "/echo"


def test_hop_by_hop_headers_stay_on_their_hop_both_ways(via_echo):
    _, server = via_echo
    answer = httpx.get(server.url + "/echo", headers={
        "Authorization": f"Bearer {KEY}", "Connection": "keep-alive, X-Client-Hop",
        "X-Client-Hop": "drop me", "Keep-Alive": "timeout=9", "TE": "trailers",
        "Proxy-Authorization": "Basic cHJveHk6cHJveHk=", "X-Client-Kept": "keep me"})
    seen = {k: v for k, v in answer.json()}
    assert seen["x-client-kept"] == "keep me" and seen["authorization"] == f"Bearer {KEY}"
    for hop in ("x-client-hop", "keep-alive", "te", "proxy-authorization"):
        assert hop not in seen, hop
    assert answer.headers["x-kept"] == "end to end"
    assert "x-upstream-secret" not in answer.headers and "keep-alive" not in answer.headers


def test_host_and_x_forwarded_are_set_as_a_reverse_proxy_sets_them(via_echo, echo):
    _, server = via_echo
    answer = httpx.get(server.url + "/echo", headers={"X-Forwarded-For": "203.0.113.7"})
    seen = {k: v for k, v in answer.json()}
    assert seen["host"] == echo.url.removeprefix("http://")  # the target's own
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == server.url.removeprefix("http://")


def test_a_large_download_streams_through_without_being_held(via_echo, echo):
    proxy, server = via_echo
    echo.release.clear()
    got = 0
    with httpx.stream("GET", server.url + "/v1/videos/video_1/content",
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as answer:
        assert answer.status_code == 200
        for chunk in answer.iter_raw():
            got += len(chunk)
            if got >= HALF:
                # The first half arrived while the upstream still holds the second: the proxy
                # streams (had it buffered, the upstream would wait for this forever).
                echo.release.set()
    assert got == 2 * HALF
    last = json.loads(proxy.writer.path.read_text().splitlines()[-1])
    assert last["operation"] == "getVideoContent"
    assert (last["response"]["encoding"], last["response"]["size"]) == ("omitted", 2 * HALF)


@pytest.mark.parametrize(("path", "sent", "forwarded"), [
    ("/api/v1/tasks/t1", "Bearer sk-placeholder", "Bearer sk-real-dashscope"),  # DashScope
    ("/v1/videos/v1", "sk-placeholder", "sk-real-newapi"),  # new-api reads a bare key: kept bare
])
def test_the_real_key_replaces_the_clients_in_the_form_it_was_sent(echo, path, sent, forwarded):
    proxy = Proxy(echo.url, budget=None, echo=None,
                  keys={"dashscope": "sk-real-dashscope", "newapi": "sk-real-newapi"})
    with ThreadedMockServer(app=proxy.app()) as server:
        answer = httpx.get(server.url + path, headers={"Authorization": sent})
    seen = {k: v for k, v in answer.json()}
    assert seen["authorization"] == forwarded


def test_self_links_in_answers_lead_back_through_the_proxy(instant_upstream, tmp_path):
    """OpenRouter's polling_url and content URLs name the provider's host: the client gets
    them on the proxy (and follows them through it); the cassette keeps the provider's."""
    proxy = Proxy(instant_upstream.url, budget=1, echo=None, record=tmp_path / "links.jsonl")
    auth = {"Authorization": "Bearer sk-or-v1-links-0123456789"}
    with ThreadedMockServer(app=proxy.app()) as server:
        job = httpx.post(server.url + "/api/v1/videos", headers=auth, json={
            "model": "alibaba/wan-2.6", "prompt": "a lighthouse"}).json()
        assert job["polling_url"] == f"{server.url}/api/v1/videos/{job['id']}"
        done = httpx.get(job["polling_url"], headers=auth).json()
        [content] = done["unsigned_urls"]
        assert content.startswith(server.url + "/api/v1/videos/")
        video = httpx.get(content, headers=auth)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    lines = [json.loads(x) for x in (tmp_path / "links.jsonl").read_text().splitlines()[1:]]
    assert [x["operation"] for x in lines] == ["createVideo", "getVideo", "getVideoContent"]
    assert lines[0]["response"]["body"]["polling_url"].startswith(instant_upstream.url)


FAL_SCRIPT = r"""
import json
import fal_client
handle = fal_client.submit("wan/v2.6/text-to-video", {"prompt": "a fox", "duration": "5"})
result = handle.get()
print(json.dumps([handle.status_url, result["video"]["content_type"]]))
"""


def test_fal_client_completes_through_the_proxy_over_https(instant_upstream, tmp_path):
    """fal-client speaks HTTPS only: `wanmock proxy --tls` serves it, and the status URL it
    follows leads back through the proxy, so the whole job is recorded."""
    if importlib.util.find_spec("fal_client") is None:
        missing("fal-client is not installed: pip install -e '.[test]'")
    args = build_parser().parse_args([
        "proxy", "--target", instant_upstream.url, "--tls", "--tls-dir", str(tmp_path / "ca"),
        "--record", str(tmp_path / "fal.jsonl"), "--budget", "1", "--quiet"])
    proxy, _ = make_proxy(args)
    with ThreadedMockServer(app=proxy.app(), tls=tls_cli.from_local_ca(args)) as server:
        host = server.url.removeprefix("https://")
        env = server.tls.env({k: v for k, v in os.environ.items() if not k.startswith("FAL_")})
        env.update(FAL_QUEUE_RUN_HOST=host, FAL_RUN_HOST=host, FAL_KEY="wm-id:wm-secret")
        done = subprocess.run([sys.executable, "-c", FAL_SCRIPT], env=env, text=True,
                              capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    status_url, content_type = json.loads(done.stdout.strip().splitlines()[-1])
    assert status_url.startswith(server.url) and content_type == "video/mp4"
    lines = [json.loads(x) for x in (tmp_path / "fal.jsonl").read_text().splitlines()[1:]]
    roles = [x["role"] for x in lines]
    assert roles[0] == "submit" and "query" in roles and roles[-1] in ("query", "content")
    assert proxy.submits.summary()["families"]["fal"]["spent"] == 1


@pytest.fixture(scope="module")
def redirecting_fake(tmp_path_factory) -> Iterator[ThreadedMockServer]:
    """A fake whose DashScope answers a trailing slash with a 307 on its own host (the case
    the issue saw: the SDK's aio client lost its key following it cross-origin)."""
    with ThreadedMockServer(families=["dashscope"], timing="instant", seed=2,
                            dashscope_trailing_slash="redirect",
                            video_dir=str(tmp_path_factory.mktemp("manners-videos"))) as live:
        yield live


@pytest.mark.anyio
@pytest.mark.parametrize("slash", ["serve", "redirect"])
async def test_the_aio_sdk_completes_through_the_proxy(redirecting_fake, monkeypatch, slash,
                                                       tmp_path):
    backend = redirecting_fake.backend
    backend.configure(backend.options.merged(dashscope_trailing_slash=slash))
    proxy = Proxy(redirecting_fake.url, budget=1, echo=None, record=tmp_path / "aio.jsonl")
    with ThreadedMockServer(app=proxy.app()) as server:
        monkeypatch.setattr(dashscope, "base_http_api_url", server.url + "/api/v1")
        try:
            submitted = await AioVideoSynthesis.async_call(
                model="wan2.6-t2v", prompt="a paper boat", size="1280*720", api_key=KEY)
            assert submitted.status_code == HTTPStatus.OK, submitted
            done = await AioVideoSynthesis.wait(submitted, api_key=KEY)
        finally:
            await close_shared_aio_session()
    assert done.status_code == HTTPStatus.OK, done
    assert done.output.task_status == "SUCCEEDED"
    polls = [json.loads(line) for line in (tmp_path / "aio.jsonl").read_text().splitlines()[1:]
             if '"getTask"' in line]
    assert polls and all(p["task"] == submitted.output.task_id for p in polls)
    assert polls[0]["request"]["path"].endswith("/")  # the aio client's own form
    assert proxy.spent == 1
