"""Live fakes on 127.0.0.1 for the real third-party clients (dashscope, novita-client).

Three session-scoped servers, each started once and stopped at teardown, with a function-scoped
handle that resets the fake's tasks and journal before every test:

- `instant`: tasks are done the moment they are submitted (a client's `wait` returns after one
  poll, without sleeping);
- `polls`: each query advances a task (0 polls queued, 1 running, then done), so a client's
  wait loop really iterates, at the price of one of its ~1 s sleeps;
- `manual`: a manual clock the test advances (`server.backend.clock.advance(s)`), so a task
  stays PENDING until the test says otherwise; it also accepts only `API_KEY`.

Only the families the clients speak are served.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest

from mockserver.server import ThreadedMockServer

API_KEY = "sk-wanmock-clients-0123456789"
FAMILIES = ("dashscope", "jiekou")


def _start(
    tmp_path_factory: pytest.TempPathFactory, name: str, **options: Any
) -> ThreadedMockServer:
    video_dir = str(tmp_path_factory.mktemp(f"videos-{name}"))
    return ThreadedMockServer(seed=7, families=FAMILIES, video_dir=video_dir, **options).start()


@pytest.fixture(scope="session")
def _instant_server(tmp_path_factory) -> Iterator[ThreadedMockServer]:
    server = _start(tmp_path_factory, "instant", timing="instant")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _polls_server(tmp_path_factory) -> Iterator[ThreadedMockServer]:
    server = _start(tmp_path_factory, "polls", timing="fast", mode="polls",
                    queued_polls=0, running_polls=1)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _manual_server(tmp_path_factory) -> Iterator[ThreadedMockServer]:
    server = _start(tmp_path_factory, "manual", timing="fast", clock="manual",
                    api_keys=[API_KEY])
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _loopback(loopback_only) -> None:
    """Every client's traffic stays on loopback (tests/conftest.py `loopback_only`)."""


@pytest.fixture
def instant(_instant_server) -> ThreadedMockServer:
    _instant_server.backend.reset()
    return _instant_server


@pytest.fixture
def polls(_polls_server) -> ThreadedMockServer:
    _polls_server.backend.reset()
    return _polls_server


@pytest.fixture
def manual(_manual_server) -> ThreadedMockServer:
    _manual_server.backend.reset()
    return _manual_server


def assert_mp4(url: str, width: int, height: int) -> av.container.InputContainer:
    """Download `url` (it must be on the loopback fake) and decode a frame of the expected size."""
    assert url.startswith("http://127.0.0.1:"), url
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text[:200]
    assert response.headers["content-type"].startswith("video/mp4")
    container = av.open(io.BytesIO(response.content))
    stream = container.streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
    frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (width, height)
    return container


@pytest.fixture
def at(monkeypatch):
    """`at(server)` points the dashscope SDK at a live fake (undone after the test)."""
    import dashscope

    def point(server):
        monkeypatch.setattr(dashscope, "base_http_api_url", server.url + "/api/v1")
        return server

    return point
