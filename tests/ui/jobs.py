"""One valid submit per family, for the dashboard tests (the same bodies over any client)."""

from __future__ import annotations

from typing import Any

DASHSCOPE_HEADERS = {"Authorization": "Bearer sk-ui-test-key-1", "X-DashScope-Async": "enable"}
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


def dashscope(prompt: str = "a lighthouse at dusk", duration: int = 2) -> dict[str, Any]:
    return {"model": "wan2.6-t2v", "input": {"prompt": prompt},
            "parameters": {"size": "1280*720", "duration": duration}}


# family -> (path, headers, body, where the task id is in the answer)
JOBS: dict[str, tuple[str, dict[str, str], dict[str, Any], tuple[str, ...]]] = {
    "dashscope": (CREATE, DASHSCOPE_HEADERS, dashscope(), ("output", "task_id")),
    "apiyi": ("/wan" + CREATE, DASHSCOPE_HEADERS, dashscope("a harbour"), ("output", "task_id")),
    "jiekou": ("/v3/async/wan-t2v", {"Authorization": "Bearer sk_ui_test_key"},
               {"model_name": "wan2.1-t2v", "prompt": "a cat under the moon", "width": 1280,
                "height": 720, "seed": -1, "steps": 30},
               ("task_id",)),
    "newapi": ("/v1/video/generations", {"Authorization": "Bearer sk-ui-newapi-key"},
               {"model": "wan2.6-t2v", "prompt": "a paper boat",
                "metadata": {"parameters": {"size": "1280*720", "duration": 5}}},
               ("task_id",)),
}


def task_id(family: str, answer: Any) -> str:
    for part in JOBS[family][3]:
        answer = answer[part]
    return str(answer)
