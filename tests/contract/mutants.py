"""Deliberately wrong providers: the fake with one kind of drift each.

Each mutant wraps the real fake in an ASGI middleware that changes what clients see (or, for
`accepts_invalid_size`, switches one catalogue rule off), so a test can prove that the contract
checks catch that kind of drift and that the report names it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mockserver.app import create_app

KEY = "sk-conformance"
Mutation = Callable[[str, int, Any], tuple[int, Any]]


class ResponseMutant:
    """ASGI middleware: run the app, then let `mutate(path, status, json_body)` rewrite it."""

    def __init__(self, app: Any, mutate: Mutation) -> None:
        self.app = app
        self.mutate = mutate
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_wanmock/"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        status = start["status"]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        is_json = any(k.lower() == b"content-type" and b"json" in v for k, v in headers)
        if is_json:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if data is not None:
                status, data = self.mutate(scope["path"], status, data)
                body = json.dumps(data).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _fake(**options: Any) -> Any:
    # Schemathesis sends hundreds of requests a second: with DashScope's documented limits
    # (decision rate-limits) most would be 429s, and a mutation behind them goes unseen.
    options = {"queued_polls": 0, "running_polls": 1, **options}
    return create_app(seed=3, mode="polls", api_keys={KEY}, dashscope_rate_limits="off",
                      **options)


def renamed_field() -> Any:
    """DashScope's `output.task_status` renamed to `output.status`."""
    def mutate(path: str, status: int, data: Any) -> tuple[int, Any]:
        out = data.get("output") if isinstance(data, dict) else None
        if isinstance(out, dict) and "task_status" in out:
            out["status"] = out.pop("task_status")
        return status, data
    return ResponseMutant(_fake(), mutate)


def wrong_status_word() -> Any:
    """DashScope says `SUCCESS` where it should say `SUCCEEDED`."""
    def mutate(path: str, status: int, data: Any) -> tuple[int, Any]:
        out = data.get("output") if isinstance(data, dict) else None
        if isinstance(out, dict) and out.get("task_status") == "SUCCEEDED":
            out["task_status"] = "SUCCESS"
        return status, data
    # Succeeded at the first poll: any poll of a task the run made shows the word, whichever
    # cases the seed draws (with a running poll first, a run may never poll twice).
    return ResponseMutant(_fake(running_polls=0), mutate)


def server_error_on_bad_input() -> Any:
    """Every 400 becomes a 500 with the same body."""
    def mutate(path: str, status: int, data: Any) -> tuple[int, Any]:
        return (500 if status == 400 else status), data
    return ResponseMutant(_fake(), mutate)


def wrong_error_envelope() -> Any:
    """Errors in an OpenAI-like `{"error": {...}}` body instead of DashScope's own."""
    def mutate(path: str, status: int, data: Any) -> tuple[int, Any]:
        if status >= 400 and isinstance(data, dict) and "code" in data:
            return status, {"error": {"message": data.get("message"), "type": "invalid"}}
        return status, data
    return ResponseMutant(_fake(), mutate)


def state_moves_backwards() -> Any:
    """Once a task has been reported SUCCEEDED, later polls say RUNNING again."""
    seen: set[str] = set()

    def mutate(path: str, status: int, data: Any) -> tuple[int, Any]:
        out = data.get("output") if isinstance(data, dict) else None
        if isinstance(out, dict) and path.startswith("/api/v1/tasks/"):
            tid = str(out.get("task_id"))
            if out.get("task_status") == "SUCCEEDED":
                if tid in seen:
                    data = {"request_id": data.get("request_id"),
                            "output": {"task_id": tid, "task_status": "RUNNING",
                                       "submit_time": out.get("submit_time")}}
                seen.add(tid)
        return status, data
    # Succeeded at the first poll: the second, which the mutant turns back, comes sooner in a
    # stateful run (the contract's many submit bodies leave fewer polls per task).
    return ResponseMutant(_fake(running_polls=0), mutate)


def accepts_invalid_size() -> Any:
    """jiekou's Wan 2.1 width/height pairing switched off: 480x480 is accepted."""
    app = _fake()
    provider = app.state.providers["jiekou"].policy
    original = provider.judge

    def judge(op: Any, body: Any, headers: Any = None) -> Any:
        spec, violations = original(op, body, headers)
        kept = [v for v in violations if v.rule != "width_height_pair"]
        if spec is None and violations and not kept:
            spec, _ = provider.contract.catalogue.evaluate("jiekou", op.extract(body)[0])
        return spec, kept

    provider.judge = judge
    return app


# name -> (factory, family to check, words the report must contain)
MUTANTS: dict[str, tuple[Callable[[], Any], str, tuple[str, ...]]] = {
    "renamed_field": (renamed_field, "dashscope", ("getTask", "task_status")),
    "wrong_status_word": (wrong_status_word, "dashscope", ("getTask", "SUCCESS")),
    "accepts_invalid_size": (accepts_invalid_size, "jiekou",
                             ("createWanT2vTask", "width_height_pair")),
    "server_error_on_bad_input": (server_error_on_bad_input, "dashscope",
                                  ("not_a_server_error", "Server error", "(code `ST1")),
    "wrong_error_envelope": (wrong_error_envelope, "dashscope", ("envelope",)),
    "state_moves_backwards": (state_moves_backwards, "dashscope",
                              ("moved backwards", "succeeded then running",
                               "(code `lifecycle_backwards`)")),
}
