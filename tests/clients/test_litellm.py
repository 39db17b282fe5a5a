"""LiteLLM's DashScope video backend (litellm 1.110.2) driven unchanged against a live fake.

`litellm.video_generation(model="dashscope/...")`, `video_status` and `video_content`
(litellm/llms/dashscope/videos/transformation.py): the base is `api_base`, else
DASHSCOPE_API_BASE_VIDEO, else DASHSCOPE_API_BASE; for a host that is not DashScope's it is
kept verbatim (a prefix such as a reseller's mount works, `.../api/v1` doubles the path). Every
call, the GETs included, sends `X-DashScope-Async: enable`; the content call fetches
`output.video_url` with a plain GET (no guard: a loopback URL is fine).

LITELLM_LOCAL_MODEL_COST_MAP=True keeps LiteLLM's import off the network (it would fetch its
cost map otherwise); it is imported by the module fixture only, so collection stays cheap.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import av
import pytest

from mockserver.server import ThreadedMockServer

pytestmark = [pytest.mark.clients,
              # litellm's import builds pydantic models with ReadOnly TypedDict items
              pytest.mark.filterwarnings("ignore:Item.*ReadOnly:UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]
KEY = "sk-wanmock-litellm-0123456789"


@pytest.fixture(scope="module")
def litellm() -> Any:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm  # the `clients` extra (pip install -e ".[test]")

    return litellm


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedMockServer]:
    # Reseller paths in the same server: LiteLLM with a prefixed api_base (--mount).
    with ThreadedMockServer(families=["dashscope"], seed=5, timing="fast", mode="polls",
                            queued_polls=1, running_polls=1, mounts=["dashscope=/proxy/wan"],
                            video_dir=str(tmp_path_factory.mktemp("litellm"))) as live:
        yield live


@pytest.fixture
def fake(server: ThreadedMockServer, monkeypatch: pytest.MonkeyPatch) -> ThreadedMockServer:
    server.backend.reset()
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("DASHSCOPE_API_BASE", "DASHSCOPE_API_BASE_VIDEO"):
        monkeypatch.delenv(name, raising=False)
    return server


def _statuses(litellm: Any, video_id: str, **base: str) -> list[str]:
    seen = []
    for _ in range(6):
        seen.append(litellm.video_status(video_id=video_id, **base).status)
        if seen[-1] in ("completed", "failed"):
            break
    return seen


def _frames(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def test_litellm_wan26_generates_polls_and_downloads(litellm, fake) -> None:
    base = {"api_base": fake.url}
    video = litellm.video_generation(model="dashscope/wan2.6-t2v", prompt="a cat", **base)
    assert video.status == "queued"
    assert _statuses(litellm, video.id, **base) == ["queued", "in_progress", "completed"]
    data = litellm.video_content(video_id=video.id, **base)
    assert _frames(data) == (1920, 1080)  # wan2.6-t2v's default size
    polls = [e for e in fake.backend.journal.entries() if e.operation == "getTask"]
    # LiteLLM sends the async header on its GETs too: DashScope ignores it there.
    assert polls and all(e.request_headers.get("x-dashscope-async") == "enable" for e in polls)
    assert all(e.status == 200 for e in fake.backend.journal.entries())


def test_litellm_wan3_first_frame_from_the_environment_base(litellm, fake, monkeypatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_BASE_VIDEO", fake.url)
    video = litellm.video_generation(
        model="dashscope/wan3.0-video", prompt="the cat jumps", seconds="4",
        input_reference="https://example.com/cat.png",
        parameters={"ratio": "9:16", "resolution": "720P"}, extra_body={"audio": False})
    task = next(iter(fake.backend.tasks("dashscope")))
    assert task.request == {
        "model": "wan3.0-video",
        "input": {"prompt": "the cat jumps",
                  "media": [{"type": "first_frame", "url": "https://example.com/cat.png"}]},
        "parameters": {"duration": 4, "ratio": "9:16", "resolution": "720P", "audio": False}}
    assert _statuses(litellm, video.id)[-1] == "completed"
    done = litellm.video_status(video_id=video.id)
    assert (done.seconds, done.size) == ("4.0", "720x1280")  # rebuilt from usage SR + ratio
    assert _frames(litellm.video_content(video_id=video.id)) == (720, 1280)


def test_litellm_sees_a_failed_task_as_failed(litellm, fake) -> None:
    fake.backend.scenarios.add("fail; kind=moderation", match={"prompt": "forbidden"})
    base = {"api_base": fake.url}
    video = litellm.video_generation(model="dashscope/wan2.6-t2v", prompt="forbidden", **base)
    assert _statuses(litellm, video.id, **base)[-1] == "failed"
    with pytest.raises(litellm.BadRequestError, match="inappropriate content"):
        litellm.video_content(video_id=video.id, **base)


def test_litellm_through_a_mounted_reseller_prefix(litellm, fake) -> None:
    base = {"api_base": fake.url + "/proxy/wan"}
    video = litellm.video_generation(model="dashscope/wan2.6-t2v", prompt="a dog", **base)
    assert _statuses(litellm, video.id, **base)[-1] == "completed"
    assert _frames(litellm.video_content(video_id=video.id, **base)) == (1920, 1080)
    paths = {e.path for e in fake.backend.journal.entries()}
    assert "/proxy/wan/api/v1/services/aigc/video-generation/video-synthesis" in paths
