"""The Vercel AI SDK (`ai` 6.0.333 + `@ai-sdk/alibaba` 1.0.61, Node 20) against a live fake.

`createAlibaba({videoBaseURL})` + `experimental_generateVideo` speak DashScope's video API:
POST .../video-generation/video-synthesis with `X-DashScope-Async: enable` and a `parameters`
object always present, GET /api/v1/tasks/{id} every `pollIntervalMs`, then a download of
`output.video_url` (alibaba-video-model.ts). The flows run unchanged in ONE Node process for the
module (tests/clients/node/ai_sdk_flows.mjs; `npm ci` in tests/clients/node installs the pinned
packages, as .ci/run does): submit, poll, a failed task (a job scenario sent as a header) and
the download.

The download: the SDK's default download refuses loopback and private addresses, names
included (`localhost`, `*.localhost`, and any name that resolves to one; provider-utils
validate-download-url.ts), so a fake on 127.0.0.1 cannot be fetched by it. The way through is
the SDK's documented `download` option of `experimental_generateVideo` (docs/clients.md); the
`guarded` flow pins the refusal so a change of the SDK's guard shows here.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from mockserver.server import ThreadedMockServer
from tests.helpers import missing, require_program

pytestmark = pytest.mark.clients
NODE_DIR = Path(__file__).parent / "node"


def _require_packages() -> None:
    if (NODE_DIR / "node_modules" / "@ai-sdk" / "alibaba").is_dir():
        return
    missing(f"the AI SDK is not installed (cd {NODE_DIR} && npm ci)")


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[dict[str, Any], ThreadedMockServer]]:
    """Every flow's outcome, from one Node run against one fake (tasks advance per poll)."""
    node = require_program("node", "Node 20: apt-get install nodejs npm")
    _require_packages()
    frame = io.BytesIO()
    Image.new("RGB", (720, 1280), (200, 80, 40)).save(frame, "PNG")
    out = tmp_path_factory.mktemp("ai-sdk")
    with ThreadedMockServer(families=["dashscope"], seed=11, timing="fast", mode="polls",
                            queued_polls=1, running_polls=1,
                            video_dir=str(tmp_path_factory.mktemp("ai-sdk-videos"))) as server:
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost",
               "WANMOCK_FRAME": "data:image/png;base64," + base64.b64encode(
                   frame.getvalue()).decode()}
        run = subprocess.run([node, str(NODE_DIR / "ai_sdk_flows.mjs"), server.url, str(out)],
                             capture_output=True, text=True, env=env, timeout=120, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
        yield json.loads(run.stdout), server


def _task_request(server: ThreadedMockServer, task_id: str) -> Any:
    task = next((t for t in server.backend.tasks("dashscope") if t.id == task_id), None)
    assert task is not None, task_id
    return task.request


def _mp4(path: str) -> tuple[int, int, float]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(video=0))
        return frame.width, frame.height, float(stream.duration * stream.time_base)


def test_wan3_text_to_video_submits_polls_and_downloads(flows) -> None:
    results, server = flows
    done = results["wan3_text"]
    assert done["ok"], done
    meta = done["metadata"]
    assert _task_request(server, meta["taskId"]) == {
        "model": "wan3.0-video", "input": {"prompt": "a cat on a skateboard"}, "parameters": {}}
    # Wan 3.0's defaults as the SDK reads them: 1080P (integer SR), 16:9, 5 s, no input video.
    assert meta["usage"] == {"duration": 5, "outputVideoDuration": 5, "resolution": 1080,
                             "inputVideoDuration": 0, "fps": 30, "ratio": "16:9"}
    assert done["mediaType"] == "video/mp4"
    assert _mp4(done["path"])[:2] == (1920, 1080)
    polls = [e for e in server.backend.journal.entries() if e.task_id == meta["taskId"]
             and e.operation == "getTask"]
    assert len(polls) >= 3 and all(e.status == 200 for e in polls)  # queued, running, done


def test_wan3_first_frame_with_the_sdks_settings(flows) -> None:
    results, server = flows
    done = results["wan3_first_frame"]
    assert done["ok"], done
    request = _task_request(server, done["metadata"]["taskId"])
    assert [m["type"] for m in request["input"]["media"]] == ["first_frame"]
    assert request["parameters"] == {"resolution": "720P", "ratio": "9:16", "duration": 4,
                                     "audio": False}
    assert done["metadata"]["usage"]["ratio"] == "9:16"
    width, height, seconds = _mp4(done["path"])
    assert (width, height) == (720, 1280) and seconds == pytest.approx(4, abs=0.2)


def test_legacy_protocol_model_through_the_sdk(flows) -> None:
    results, server = flows
    done = results["wan26_text"]
    assert done["ok"], done
    request = _task_request(server, done["metadata"]["taskId"])
    assert request["parameters"]["size"] == "1280*720"
    assert done["metadata"]["usage"]["size"] == "1280*720"
    assert _mp4(done["path"])[:2] == (1280, 720)


def test_a_failed_task_is_the_sdks_generation_failed_error(flows) -> None:
    results, server = flows
    failed = results["failed"]
    assert failed["ok"] is False
    assert failed["name"] == "ALIBABA_VIDEO_GENERATION_FAILED"
    assert failed["message"].endswith("Input data may contain inappropriate content.")
    submits = [e for e in server.backend.journal.entries()
               if e.operation == "createVideoSynthesis" and e.scenario]
    assert [e.scenario for e in submits] == ["fail; kind=moderation"]  # not retried


def test_the_default_download_refuses_the_loopback_url(flows) -> None:
    results, _ = flows
    guarded = results["guarded"]
    assert guarded == {"ok": False, "name": "AI_DownloadError",
                       "message": "URL with IP address 127.0.0.1 is not allowed", "cause": None}
