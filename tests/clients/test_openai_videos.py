"""The real OpenAI Python SDK (openai 3.54.0, `client.videos`) against new-api's `/v1/videos`.

new-api relays OpenAI-style video calls to Wan (api-facts §2.1, §2.5, §2.6). Two findings the
fake reproduces, so a team learns them here and not in production:

- `videos.create` sends `multipart/form-data`; new-api's validator reads only JSON (multipart
  parsing is commented out, api-facts §2.2), so the create fails with 400 `invalid_json`. Sending
  the same call with `Content-Type: application/json` works.
- sizes are DashScope's `W*H`, not OpenAI's `WxH` (api-facts §2.8).

openai 3.x talks through `httpx2`, which respx does not patch: the SDK reaches the fake over
loopback (a live server), or in process through `httpx2.ASGITransport(app=wanmock.app)`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import av
import httpx2
import openai
import pytest

from mockserver.app import create_app
from mockserver.server import ThreadedMockServer

pytestmark = [pytest.mark.clients,
              pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedMockServer]:
    with ThreadedMockServer(families=["newapi"], seed=9, timing="fast", mode="polls",
                            queued_polls=1, running_polls=2,
                            video_dir=str(tmp_path_factory.mktemp("openai-videos"))) as live:
        yield live


@pytest.fixture
def client(server: ThreadedMockServer) -> Iterator[object]:
    server.backend.reset()
    with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-openai-sdk-test",
                       max_retries=0) as sdk:
        yield sdk


def test_sdk_multipart_create_is_rejected_as_new_api_does(client, server) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(model="wan2.6-t2v", prompt="a cat")
    assert caught.value.status_code == 400
    assert caught.value.response.json() == {
        "code": "invalid_json",
        # encoding/json's words for a body that starts "--boundary" (jsonwire.go_error)
        "message": "invalid character '-' in numeric literal", "data": None}
    [entry] = server.backend.journal.entries(family="newapi")
    assert entry.request_headers["content-type"].startswith("multipart/form-data")
    assert list(server.backend.tasks()) == []  # nothing was submitted


def test_sdk_json_create_poll_and_download(client, server) -> None:
    video = client.videos.create_and_poll(model="wan2.6-t2v", prompt="a lighthouse",
                                          seconds="5", size="1280*720",
                                          extra_headers=JSON, poll_interval_ms=1)
    assert (video.status, video.progress, video.model) == ("completed", 100, "wan2.6-t2v")
    assert video.id.startswith("task_")
    polls = server.backend.journal.entries(operation="getVideo", task_id=video.id)
    assert len(polls) == 4  # queued, running, running, completed: the SDK's loop iterated
    assert all(p.request_headers.get("x-stainless-poll-helper") == "true" for p in polls)
    content = client.videos.download_content(video.id).read()
    stream = av.open(io.BytesIO(content)).streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    assert all(not e.violations for e in server.backend.journal.entries())


def test_sdk_openai_style_size_is_new_apis_error(client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(model="wan2.6-t2v", prompt="a cat", size="1280x720",
                             extra_headers=JSON)
    body = caught.value.response.json()
    assert body["code"] == "build_request_failed"
    assert body["message"] == "invalid size: 1280x720, example: 1920*1080"


def test_sdk_unknown_video_is_task_not_exist(client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.retrieve("task_doesnotexist")
    assert caught.value.response.json()["code"] == "task_not_exist"


@pytest.mark.anyio
async def test_async_sdk_in_process_through_httpx2s_asgi_transport() -> None:
    """The README's in-process recipe: no server, the app itself behind httpx2's transport."""
    app = create_app(families=["newapi"], seed=9, mode="polls", queued_polls=0, running_polls=1)
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
    async with openai.AsyncOpenAI(base_url="https://gw.example.com/v1", api_key="sk-in-process",
                                  http_client=http, max_retries=0) as sdk:
        video = await sdk.videos.create_and_poll(model="wan2.6-t2v", prompt="a cat",
                                                 extra_headers=JSON, poll_interval_ms=1)
        assert (video.status, video.progress) == ("completed", 100)
        content = (await sdk.videos.download_content(video.id)).read()
    assert content[4:8] == b"ftyp"
    polls = app.state.backend.journal.entries(operation="getVideo", task_id=video.id)
    assert len(polls) == 2  # running, then completed: the SDK polled through the states
