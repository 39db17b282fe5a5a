"""One exchange per request (providers/exchange.py): authentication, the DashScope async-header
check and the body parse each run once, the handler reads what the pipeline decided, and
wanmock keeps nothing in the request's scope."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import mockserver
import mockserver.providers.exchange as exchange
from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from tests.test_scenarios import DASHSCOPE, FAMILIES, KEY, Fam


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
    policy = app.state.providers[name].policy
    calls: list[str] = []
    _counting(policy, "read_key", calls)
    submit, poll = _call(app, FAMILIES[name])
    assert submit.status_code == 200 and poll.status_code == 200, (submit.text, poll.text)
    assert calls == ["read_key", "read_key"]  # one per request, two requests


def test_dashscope_async_header_checked_once_per_submit() -> None:
    app = create_app(["dashscope"], seed=1, clock=ManualClock())
    calls: list[str] = []
    _counting(app.state.providers["dashscope"].policy, "async_error", calls)
    _counting(app.state.providers["dashscope"].policy, "check_headers", calls)
    (submit, _) = _call(app, DASHSCOPE)
    assert submit.status_code == 200
    assert calls == ["check_headers", "check_headers"]  # the submit's and the poll's
    (refused, *_) = _call(app, DASHSCOPE, **{"X-DashScope-Async": "disable"})
    assert refused.status_code == 403
    assert calls[2:] == ["check_headers", "async_error"]


@pytest.mark.parametrize("model, status", [("wan2.6-nope", 200), ("wan2.6-t2v", 500)])
def test_body_parsed_once_with_scenario_rules(monkeypatch: pytest.MonkeyPatch, model: str,
                                              status: int) -> None:
    app = create_app(["dashscope"], seed=1, clock=ManualClock())
    app.state.backend.scenarios.add(
        "server-error", match={"model": model, "operation": "createVideoSynthesis"})
    calls: list[str] = []
    _counting(exchange, "decode", calls)
    (submit, *_) = _call(app, DASHSCOPE)
    assert submit.status_code == status, submit.text
    # The rule read the model from the body; the handler (on 200) reused that parse.
    assert calls == ["decode"]


def test_wanmock_keeps_nothing_in_the_scope() -> None:
    """The pipeline hands the exchange to the handler; the request's scope holds no way to it
    (no reference cycle per request for the garbage collector)."""
    app = create_app(seed=1, clock=ManualClock())
    seen: list[set[str]] = []

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            seen.append({k for k in scope if k.startswith("wanmock")})
    for fam in FAMILIES.values():
        responses = _call(spy, fam, **{"X-Wanmock-Scenario": "fail"})
        assert responses[0].status_code == 200, responses[0].text
    assert len(seen) == 2 * len(FAMILIES) and all(keys == set() for keys in seen), seen


def test_no_family_handler_authenticates_again() -> None:
    """The pipeline authenticates once (`ex.api_key`); a handler of any bundled family, new ones
    included, never reads the key itself."""
    root = Path(mockserver.__file__).parent / "providers"
    again = {str(p.relative_to(root)) for p in root.glob("*/routes.py")
             if re.search(r"\.(authenticate|read_key)\(", p.read_text(encoding="utf-8"))}
    assert len(list(root.glob("*/routes.py"))) >= 5 and again == set()


def test_no_wanmock_scope_key_in_the_source() -> None:
    found = set()
    for path in Path(mockserver.__file__).parent.rglob("*.py"):
        found |= set(re.findall(r"""scope\[["'](wanmock[.A-Za-z_]*)["']\]""",
                                path.read_text("utf-8")))
    assert found == set(), found


def test_the_handler_gets_what_the_preflight_decided() -> None:
    """Key, task id and parsed body reach the handler in the exchange; the handler decides
    none of them again."""
    from starlette.applications import Starlette

    from mockserver.core.backend import Backend, Options
    from mockserver.providers.base import family_class
    from mockserver.providers.pipeline import Pipeline

    backend = Backend(Options(families=("dashscope",), seed=1), clock=ManualClock())
    provider = family_class("dashscope")(backend)
    seen: list[Any] = []
    for name in ("create_video_synthesis", "get_task"):
        real = getattr(provider, name)

        async def spy(ex: Any, real: Any = real) -> Any:
            seen.append((ex.operation.operation_id, ex.api_key, ex.task_id, ex.body))
            return await real(ex)
        setattr(provider, name, spy)  # on the instance, before the routes are built
    calls: list[str] = []
    _counting(provider.policy, "read_key", calls)
    app = Starlette(routes=Pipeline(provider).routes())
    submit, poll = _call(app, DASHSCOPE)
    task_id = submit.json()["output"]["task_id"]
    assert poll.json()["output"]["task_id"] == task_id
    body = DASHSCOPE.body("a lighthouse")
    assert seen == [("createVideoSynthesis", KEY, None, body),
                    ("getTask", KEY, task_id, exchange.UNPARSED)]
    assert calls == ["read_key", "read_key"]
    assert [e.task_id for e in backend.journal.entries()] == [task_id, task_id]
