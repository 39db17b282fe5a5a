"""One exchange per request (providers/exchange.py): authentication, the DashScope async-header
check and the body parse each run once, and the exchange is the only wanmock scope key."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import mockserver
import mockserver.providers.pipeline as pipeline
from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.providers.exchange import EXCHANGE
from tests.test_scenarios import DASHSCOPE, FAMILIES, Fam


def _call(app: Any, fam: Fam, **headers: str) -> list[httpx.Response]:
    """Submit one job of `fam`, then poll it once; the answers, in order."""
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post(fam.submit_path, json=fam.body("a lighthouse"),
                             headers={**fam.headers(), **headers})
            out = [r]
            if r.status_code == 200:
                out.append(await c.get(fam.query_path(fam.task_id(r.json())),
                                       headers=fam.headers()))
            return out
    return asyncio.run(run())


def _counting(obj: Any, name: str, calls: list[str]) -> None:
    real = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real(*args, **kwargs)
    setattr(obj, name, counted)  # on the instance: shadows the class's method


@pytest.mark.parametrize("name", list(FAMILIES))
def test_authentication_runs_once_per_request(name: str) -> None:
    app = create_app([name], seed=1, clock=ManualClock())
    provider = app.state.providers[name]
    calls: list[str] = []
    _counting(provider, "read_key", calls)
    submit, poll = _call(app, FAMILIES[name])
    assert submit.status_code == 200 and poll.status_code == 200, (submit.text, poll.text)
    assert calls == ["read_key", "read_key"]  # one per request, two requests


def test_dashscope_async_header_checked_once_per_submit() -> None:
    app = create_app(["dashscope"], seed=1, clock=ManualClock())
    calls: list[str] = []
    _counting(app.state.providers["dashscope"], "check_async_header", calls)
    (submit, _) = _call(app, DASHSCOPE)
    assert submit.status_code == 200
    assert calls == ["check_async_header"]


@pytest.mark.parametrize("model, status", [("wan2.6-nope", 200), ("wan2.6-t2v", 500)])
def test_body_parsed_once_with_scenario_rules(monkeypatch: pytest.MonkeyPatch, model: str,
                                              status: int) -> None:
    app = create_app(["dashscope"], seed=1, clock=ManualClock())
    app.state.backend.scenarios.add(
        "server-error", match={"model": model, "operation": "createVideoSynthesis"})
    calls: list[str] = []
    _counting(pipeline, "decode_json", calls)
    (submit, *_) = _call(app, DASHSCOPE)
    assert submit.status_code == status, submit.text
    # The rule read the model from the body; the handler (on 200) reused that parse.
    assert calls == ["decode_json"]


def test_the_exchange_is_the_only_wanmock_scope_key() -> None:
    app = create_app(seed=1, clock=ManualClock())
    seen: list[set[str]] = []

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            seen.append({k for k in scope if k.startswith("wanmock.")})
    for fam in FAMILIES.values():
        responses = _call(spy, fam, **{"X-Wanmock-Scenario": "fail"})
        assert responses[0].status_code == 200, responses[0].text
    assert seen and all(keys == {EXCHANGE} for keys in seen), seen


def test_no_other_wanmock_scope_key_in_the_source() -> None:
    found = set()
    for path in Path(mockserver.__file__).parent.rglob("*.py"):
        found |= set(re.findall(r"""["'](wanmock\.[A-Za-z_]+)["']""", path.read_text("utf-8")))
    assert found == {EXCHANGE}, found
