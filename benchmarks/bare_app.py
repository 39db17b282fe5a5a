"""The baseline for benchmarks/run.py: a bare Starlette app on the same server stack as wanmock.

It answers the same paths as the DashScope family with bodies of about the same size and does
the minimum a JSON API does (route, read and parse the body, render JSON), nothing more:

    GET  /api/v1/tasks/{task_id}
    POST /api/v1/services/aigc/video-generation/video-synthesis

    python benchmarks/bare_app.py --port 8001     (uvicorn, uvloop, httptools, no access log)
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
TASK_ID = "0b6a4c2e-2d1f-4a59-9c5e-5b1d2f3e4a5b"
REQUEST_ID = "7e1f0c2a-9b8d-4c6e-8f3a-1d2c3b4a5e6f"


async def get_task(request: Request) -> Response:
    return JSONResponse({
        "request_id": REQUEST_ID,
        "output": {
            "task_id": request.path_params["task_id"],
            "task_status": "SUCCEEDED",
            "submit_time": "2026-01-01 08:00:00.000",
            "scheduled_time": "2026-01-01 08:00:01.000",
            "end_time": "2026-01-01 08:00:05.000",
            "orig_prompt": "a cat",
            "video_url": "http://127.0.0.1/_wanmock/videos/x.mp4?Expires=1&Signature=abc",
        },
        "usage": {"duration": 5, "output_video_duration": 5, "SR": 720, "video_count": 1},
    })


async def create(request: Request) -> Response:
    body = await request.json()
    if not isinstance(body, dict) or "model" not in body:
        return JSONResponse({"code": "InvalidParameter", "message": "bad body",
                             "request_id": REQUEST_ID}, status_code=400)
    return JSONResponse({"output": {"task_id": TASK_ID, "task_status": "PENDING"},
                         "request_id": REQUEST_ID})


app = Starlette(routes=[
    Route("/api/v1/tasks/{task_id}", get_task, methods=["GET"]),
    Route(CREATE_PATH, create, methods=["POST"]),
])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools", lifespan="off")


if __name__ == "__main__":
    main()
