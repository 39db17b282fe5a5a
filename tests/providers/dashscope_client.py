"""A DashScope client for the HTTP tests of the newer models: submit, poll to the end, download
and measure the video, each answer checked against the contract."""

from __future__ import annotations

import io
from typing import Any

import av
import httpx

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from tests.helpers import conforms

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
IMAGE2VIDEO = "/api/v1/services/aigc/image2video/video-synthesis"
KEY = "sk-test"
ASYNC = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
AUTH = {"Authorization": f"Bearer {KEY}"}
OPERATIONS = {CREATE: "createVideoSynthesis", IMAGE2VIDEO: "createImage2VideoSynthesis"}


def png_data_uri(width: int, height: int) -> str:
    """An opaque grey PNG of this size as a `data:` URI (an inline input image)."""
    import base64

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def probe(data: bytes) -> dict[str, Any]:
    """An MP4's width, height, duration (s) and number of audio streams."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        return {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "duration": float(container.duration) / av.time_base,  # type: ignore[operator]
            "audio": len(container.streams.audio),
        }


class DashScopeTest:
    """An app on a manual clock (`create_app` options as given) and a client into it."""

    def __init__(self, base_url: str = "https://dashscope.aliyuncs.com", *,
                 prefix: str = "", family: str = "dashscope", **options: Any) -> None:
        options.setdefault("seed", 1)
        self.app = create_app(clock=ManualClock(), **options)
        self.backend = self.app.state.backend
        self.family = family
        self.prefix = prefix
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                        base_url=base_url)

    async def __aenter__(self) -> DashScopeTest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def post(self, body: Any, path: str = CREATE, headers: dict[str, str] | None = None,
                   ) -> httpx.Response:
        r = await self.client.post(self.prefix + path, json=body,
                                   headers=ASYNC if headers is None else headers)
        conforms(self.family, OPERATIONS[path], r)
        return r

    async def create(self, body: Any, path: str = CREATE, **headers: str) -> str:
        r = await self.post(body, path, {**ASYNC, **headers})
        assert r.status_code == 200, r.text
        assert r.json()["output"]["task_status"] == "PENDING"
        return str(r.json()["output"]["task_id"])

    async def query(self, task_id: str) -> dict[str, Any]:
        r = await self.client.get(f"{self.prefix}/api/v1/tasks/{task_id}", headers=AUTH)
        assert r.status_code == 200, r.text
        return conforms(self.family, "getTask", r)  # type: ignore[no-any-return]

    async def run_to_end(self, task_id: str) -> dict[str, Any]:
        """Poll, moving the clock on, until the task ends; the last answer."""
        for _ in range(400):
            body = await self.query(task_id)
            if body["output"]["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
                return body
            self.backend.clock.advance(1.0)
        raise AssertionError("the task never ended")

    async def job(self, body: Any, path: str = CREATE, **headers: str) -> dict[str, Any]:
        return await self.run_to_end(await self.create(body, path, **headers))

    async def ending(self, task_id: str) -> tuple[str, str | None, tuple[str, str] | None]:
        """How the task ends through its family's own query (DashScope's task API, or apiyi's
        `GET /v1/tasks/{id}`): the neutral end state, the video URL, the failure's (code,
        message)."""
        if self.family != "apiyi":
            out = (await self.run_to_end(task_id))["output"]
            failure = (out["code"], out["message"]) if "code" in out else None
            return out["task_status"].lower(), out.get("video_url"), failure
        for _ in range(400):
            r = await self.client.get(f"/v1/tasks/{task_id}", headers=AUTH)
            body = conforms("apiyi", "getTask", r)
            if body["status"] in ("completed", "failed"):
                error = body.get("error")
                return ("succeeded" if body["status"] == "completed" else "failed",
                        body.get("result_url"), error and (error["code"], error["message"]))
            self.backend.clock.advance(1.0)
        raise AssertionError("the task never ended")

    async def video(self, url: str) -> dict[str, Any]:
        r = await self.client.get(url)  # a signed link: no Authorization
        assert r.status_code == 200, r.text
        return probe(r.content)
