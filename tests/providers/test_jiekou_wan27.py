"""jiekou's documented Wan 2.7 endpoints (audit N16): reference-to-video and video editing on
/v3/async, polled on task-result like the others; the undocumented ones stay 404."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from tests.helpers import conforms

pytestmark = pytest.mark.anyio

KEY = {"Authorization": "Bearer sk-jiekou"}
VIDEO = "https://example.com/b.mp4"
IMAGE = "https://example.com/a.png"


async def client_for() -> tuple[Any, httpx.AsyncClient]:
    app = create_app(clock=ManualClock(), seed=4)
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="https://api.jiekou.ai")


async def finish(app: Any, client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    app.state.backend.clock.advance(120)
    r = await client.get("/v3/async/task-result", params={"task_id": task_id}, headers=KEY)
    return conforms("jiekou", "getTaskResult", r)  # type: ignore[no-any-return]


async def test_N16_jiekou_wan27_r2v_as_its_page_shows_it() -> None:
    app, client = await client_for()
    body = {"prompt": "character1 walks into the room and greets character2",
            "media": [{"type": "reference_image", "url": IMAGE},
                      {"type": "reference_video", "url": VIDEO,
                       "reference_voice": "https://example.com/voice.mp3"}],
            "size": "1280*720", "duration": 4, "shot_type": "multi", "seed": 42}
    async with client:
        r = await client.post("/v3/async/wan2.7-r2v", json=body, headers=KEY)
        assert r.status_code == 200, r.text
        task_id = conforms("jiekou", "createWan27R2vTask", r)["task_id"]
        done = await finish(app, client, task_id)
        assert done["task"]["status"] == "TASK_STATUS_SUCCEED"
        assert done["task"]["task_type"] == "REF_TO_VIDEO"
        assert done["videos"][0]["video_url"]
        spec = app.state.backend.store.get(task_id).spec
        assert (spec.model, spec.width, spec.height, spec.duration, spec.audio) == (
            "wan2.7-r2v", 1280, 720, 4, True)


async def test_N16_jiekou_wan27_r2v_rejections() -> None:
    app, client = await client_for()
    async with client:
        # Four videos: jiekou takes 3 (DashScope's wan2.7-r2v takes 5).
        r = await client.post("/v3/async/wan2.7-r2v", json={
            "prompt": "a", "media": [{"type": "reference_video", "url": VIDEO}] * 4},
            headers=KEY)
        body = conforms("jiekou", "createWan27R2vTask", r)
        assert (r.status_code, body["reason"]) == (400, "INVALID_REQUEST_BODY")
        assert "3 videos" in body["message"]
        r = await client.post("/v3/async/wan2.7-r2v", json={
            "prompt": "a", "media": [{"type": "reference_image", "url": IMAGE}], "duration": 15},
            headers=KEY)
        assert r.status_code == 400  # 2-10 s on jiekou
        r = await client.post("/v3/async/wan2.7-r2v", json={"prompt": "a"}, headers=KEY)
        assert r.status_code == 400  # media required


async def test_N16_jiekou_wan27_videoedit() -> None:
    app, client = await client_for()
    async with client:
        r = await client.post("/v3/async/wan2.7-videoedit", json={
            "video_url": VIDEO, "prompt": "turn it into clay", "reference_image_url": IMAGE,
            "resolution": "720P", "audio_setting": "origin"}, headers=KEY)
        assert r.status_code == 200, r.text
        task_id = conforms("jiekou", "createWan27VideoeditTask", r)["task_id"]
        done = await finish(app, client, task_id)
        assert done["task"]["status"] == "TASK_STATUS_SUCCEED"
        spec = app.state.backend.store.get(task_id).spec
        assert (spec.duration, spec.height) == (5, 720)  # 0: the input's (assumed) length
        r = await client.post("/v3/async/wan2.7-videoedit", json={"prompt": "x"}, headers=KEY)
        body = conforms("jiekou", "createWan27VideoeditTask", r)
        assert (r.status_code, body["reason"]) == (400, "INVALID_REQUEST_BODY")


@pytest.mark.parametrize("endpoint", ["wan2.7-i2v", "wan2.6-r2v", "wan2.6-r2v-flash",
                                      "wan2.6-i2v-flash", "wan-2.2-i2v-flash"])
async def test_N16_undocumented_jiekou_endpoints_stay_404(endpoint: str) -> None:
    app, client = await client_for()
    async with client:
        r = await client.post(f"/v3/async/{endpoint}", json={"prompt": "a"}, headers=KEY)
    assert r.status_code == 404
    assert r.json()["reason"] == "NOT_FOUND"
