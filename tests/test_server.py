"""ThreadedMockServer: a live fake on loopback, started and stopped from Python."""

from __future__ import annotations

import io
from pathlib import Path

import av
import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.errors import MockServerError
from mockserver.server import ThreadedMockServer

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
HEADERS = {"Authorization": "Bearer sk-test-key-123", "X-DashScope-Async": "enable"}


def test_a_whole_job_over_real_http(tmp_path: Path) -> None:
    clock = ManualClock()
    with ThreadedMockServer(seed=1, clock=clock, video_dir=str(tmp_path)) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.port != 0  # port 0 became the real, free port
        assert server.backend.clock is clock
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as client:
            r = client.post(CREATE, json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"},
                                          "parameters": {"size": "1280*720", "duration": 2}})
            assert r.status_code == 200, r.text
            task_id = r.json()["output"]["task_id"]
            assert r.json()["output"]["task_status"] == "PENDING"

            seen = []
            for _ in range(40):
                body = client.get(f"/api/v1/tasks/{task_id}").json()
                seen.append(body["output"]["task_status"])
                if seen[-1] in ("SUCCEEDED", "FAILED"):
                    break
                clock.advance(0.5)
            assert seen[0] == "PENDING" and "RUNNING" in seen and seen[-1] == "SUCCEEDED", seen

            url = body["output"]["video_url"]
            assert url.startswith(server.url + "/_wanmock/videos/")
            # A signed OSS-style link: fetched without the API key (seed 004).
            video = httpx.get(url, timeout=30)
            assert video.status_code == 200
            assert video.headers["content-type"] == "video/mp4"
            with av.open(io.BytesIO(video.content)) as container:
                stream = container.streams.video[0]
                assert stream.codec_context.name == "h264"
                assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)

            journal = client.get("/_wanmock/journal", params={"family": "dashscope"}).json()
            assert [e["operation"] for e in journal["entries"]][:2] == [
                "createVideoSynthesis", "getTask"]


def test_two_servers_get_different_ports() -> None:
    with ThreadedMockServer(seed=1) as a, ThreadedMockServer(seed=2) as b:
        assert a.port != b.port
        for server in (a, b):
            r = httpx.get(server.url + "/_wanmock/clock", timeout=10)
            assert r.status_code == 200 and r.json()["kind"] == "system"


def test_a_server_serves_a_given_app() -> None:
    app = create_app(["jiekou"], clock=ManualClock(), seed=3)
    with ThreadedMockServer(app) as server:
        assert server.backend is app.state.backend
        r = httpx.get(server.url + "/_wanmock/clock", timeout=10)
        assert r.json()["kind"] == "manual"
        # Only the families of that app are served.
        r = httpx.get(server.url + "/api/v1/tasks/x", headers=HEADERS, timeout=10)
        assert r.status_code == 404


def test_the_context_manager_stops_the_server() -> None:
    with ThreadedMockServer(seed=1) as server:
        url = server.url
        assert httpx.get(url + "/_wanmock/clock", timeout=10).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_wanmock/clock", timeout=5)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_a_non_loopback_host_needs_allow_remote(host: str) -> None:
    with pytest.raises(MockServerError, match="allow_remote"):
        ThreadedMockServer(host=host)
    ThreadedMockServer(host=host, allow_remote=True)  # allowed; not started


def test_url_before_start_is_a_usage_error() -> None:
    server = ThreadedMockServer(seed=1)
    with pytest.raises(MockServerError, match="start"):
        _ = server.url


def test_an_app_and_options_together_are_a_usage_error() -> None:
    with pytest.raises(MockServerError):
        ThreadedMockServer(create_app(["jiekou"]), seed=1)
