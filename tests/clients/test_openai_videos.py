"""The real OpenAI Python SDK (openai 3.54.0, `client.videos`) against new-api's `/v1/videos`.

new-api relays OpenAI-style video calls to Wan (router/video-router.go at v1.0.0-rc.25 and
v0.10.0; both releases are served here, `newapi_version`). What the fake reproduces, so a team
learns it here and not in production:

- `videos.create` sends `multipart/form-data`, which both releases read (common/gin.go
  parseMultipartFormData, audit F04): the default call works unchanged. An `input_reference`
  file part is dropped by new-api's Ali relay (the job is text-only); the fake keeps the file in
  the task's request.
- sizes are DashScope's `W*H`, not OpenAI's `WxH` (ali/adaptor.go convertToAliRequest):
  `1280x720` is new-api's 500, which the SDK retries unless `max_retries=0`.
- `videos.list` and `videos.delete` are gin's 404 (`NotFoundError`): new-api has neither.

openai 3.x talks through `httpx2`, which respx does not patch: the SDK reaches the fake over
loopback (a live server), or in process through `httpx2.ASGITransport(app=wanmock.app)`.
"""

from __future__ import annotations

import base64
import io
import json
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


@pytest.fixture(scope="module", params=["latest", "legacy"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ThreadedMockServer]:
    """A live fake of each new-api release (v1.0.0-rc.25, v0.10.0)."""
    with ThreadedMockServer(families=["newapi"], seed=9, timing="fast", mode="polls",
                            queued_polls=1, running_polls=2, newapi_version=request.param,
                            video_dir=str(tmp_path_factory.mktemp("openai-videos"))) as live:
        yield live


def latest(server: ThreadedMockServer) -> bool:
    return bool(server.backend.options["newapi_version"] == "latest")


@pytest.fixture
def client(server: ThreadedMockServer) -> Iterator[object]:
    server.backend.reset()
    with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-openai-sdk-test",
                       max_retries=0) as sdk:
        yield sdk


def test_sdk_default_multipart_create_retrieve_and_download(client, server) -> None:
    created = client.videos.create(model="wan2.6-t2v", prompt="a lighthouse", seconds="8",
                                   size="1280*720")
    assert (created.status, created.progress, created.model) == ("queued", 0, "wan2.6-t2v")
    [entry] = server.backend.journal.entries(operation="createVideo")
    assert entry.request_headers["content-type"].startswith("multipart/form-data; boundary=")
    assert json.loads(entry.request_body)["seconds"] == "8"  # readable in the journal
    task = server.backend.store.get(created.id)
    assert (task.spec.duration, task.spec.size) == (8, "1280*720")
    states = [client.videos.retrieve(created.id).status for _ in range(4)]
    assert states == ["queued", "in_progress", "in_progress", "completed"]  # poll-count pacing
    content = client.videos.download_content(created.id).read()
    stream = av.open(io.BytesIO(content)).streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    assert all(not e.violations for e in server.backend.journal.entries())


def test_sdk_input_reference_file_is_kept_in_the_task(client, server) -> None:
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    created = client.videos.create(model="wan2.6-t2v", prompt="a cat", seconds="4",
                                   size="1280*720",
                                   input_reference=("cat.png", io.BytesIO(image), "image/png"))
    task = server.backend.store.get(created.id)
    [record] = task.request["_wanmock_form"]["files"]
    assert (record["name"], record["filename"], record["size"]) == ("input_reference",
                                                                    "cat.png", len(image))
    assert base64.b64decode(record["data_uri"].split(",", 1)[1]) == image
    assert "img_url" not in task.spec.inputs  # new-api's Ali relay does not read file parts
    [entry] = server.backend.journal.entries(operation="createVideo")
    assert json.loads(entry.request_body)["input_reference"]["filename"] == "cat.png"


def test_sdk_create_without_model_is_the_distributors_400(client, server) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(model="", prompt="a cat")
    error = caught.value.response.json()["error"]
    assert error["type"] == "new_api_error"
    words = ("Model name not specified, model name cannot be empty" if latest(server)
             else "未指定模型名称，模型名称不能为空")  # v1.0.0-rc.25 English by default
    assert error["message"].startswith(f"{words} (request id: ")


def test_sdk_list_and_delete_are_not_found(client) -> None:
    """new-api has no list or delete: gin's 404, which the SDK raises as NotFoundError."""
    with pytest.raises(openai.NotFoundError) as caught:
        client.videos.list()
    assert caught.value.response.json()["error"]["message"] == "Invalid URL (GET /v1/videos)"
    with pytest.raises(openai.NotFoundError):
        client.videos.delete("task_x")


def test_sdk_json_create_poll_and_download(client, server) -> None:
    video = client.videos.create_and_poll(model="wan2.6-t2v", prompt="a lighthouse",
                                          seconds="5", size="1280*720",
                                          extra_headers=JSON, poll_interval_ms=1)
    assert (video.status, video.progress, video.model) == ("completed", 100, "wan2.6-t2v")
    assert video.id.startswith("task_") is latest(server)  # v0.10.0: the DashScope id
    polls = server.backend.journal.entries(operation="getVideo", task_id=video.id)
    assert len(polls) == 4  # queued, running, running, completed: the SDK's loop iterated
    assert all(p.request_headers.get("x-stainless-poll-helper") == "true" for p in polls)
    content = client.videos.download_content(video.id).read()
    stream = av.open(io.BytesIO(content)).streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    assert all(not e.violations for e in server.backend.journal.entries())


def test_sdk_openai_style_size_is_new_apis_error(client, server) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.videos.create(model="wan2.6-t2v", prompt="a cat", size="1280x720")
    body = caught.value.response.json()
    reason = "invalid size: 1280x720, example: 1920*1080"
    if latest(server):
        assert (body["code"], body["message"]) == (
            "build_request_failed", f"convert_to_ali_request_failed: {reason}")
    else:
        assert (body["code"], body["message"]) == ("convert_to_ali_request_failed", reason)


def test_sdk_unknown_video_is_task_not_exist(client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.retrieve("task_doesnotexist")
    assert caught.value.response.json()["code"] == "task_not_exist"


@pytest.mark.anyio
async def test_async_sdk_in_process_through_httpx2s_asgi_transport() -> None:
    """The in-process recipe of docs/clients.md: no server, the app itself behind httpx2's
    transport."""
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
