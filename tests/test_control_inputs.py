"""Control inputs are validated as strictly as the provider routes (issue 20, points 3 and 4):
bounded, finite, strictly typed clock moves; nested JSON refused with the toolkit's 400; and
the dashboard renders any journal entry, however hostile."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import LATEST, ManualClock, SystemClock
from mockserver.errors import MockServerError
from tests.helpers import SyncASGITransport

JSON = {"Content-Type": "application/json"}
DS = {"Authorization": "Bearer sk-x", "X-DashScope-Async": "enable", **JSON}
SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"


@pytest.fixture
def fake() -> Any:
    app = create_app(clock=ManualClock(), seed=1, body_limit=2 * 1024 * 1024)
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://127.0.0.1") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


def submit(c: httpx.Client, **extra: Any) -> str:
    r = c.post(SUBMIT, headers=DS, json={"model": "wan2.6-t2v", "input": {"prompt": "a cat",
                                                                         **extra}})
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]  # type: ignore[no-any-return]


def every_page(c: httpx.Client) -> dict[str, int]:
    """Every dashboard page and control listing, with the status each answered."""
    paths = ["/_wanmock/ui", "/_wanmock/ui/journal", "/_wanmock/ui/controls",
             "/_wanmock/ui/contracts", "/_wanmock/journal", "/_wanmock/tasks",
             "/_wanmock/webhooks"]
    for entry in c.get("/_wanmock/journal").json()["entries"]:
        seq = entry["seq"]
        paths += [f"/_wanmock/ui/journal/{seq}", f"/_wanmock/ui/journal/{seq}.json"]
    for task in c.get("/_wanmock/tasks").json()["tasks"]:
        tid = task["id"]
        paths += [f"/_wanmock/ui/tasks/{tid}", f"/_wanmock/ui/tasks/{tid}/request.json",
                  f"/_wanmock/tasks/{tid}"]
    return {path: c.get(path).status_code for path in paths}


@pytest.mark.parametrize("seconds", [1e15, 1e308, 10 ** 400, "5", True, False, -1, None,
                                     [5], {"s": 5}])
def test_bad_clock_moves_are_the_toolkits_400_and_polls_are_unharmed(fake, seconds) -> None:
    task = submit(fake)
    before = fake.get("/_wanmock/clock").json()["now"]
    r = fake.post("/_wanmock/clock/advance", content=f'{{"seconds": {_json(seconds)}}}',
                  headers=JSON)
    assert r.status_code == 400 and r.json()["type"] == "MockServerError", r.text
    assert fake.get("/_wanmock/clock").json()["now"] == before
    poll = fake.get(f"/api/v1/tasks/{task}", headers=DS)
    assert poll.status_code == 200 and poll.json()["output"]["task_status"] in (
        "PENDING", "RUNNING")
    assert set(every_page(fake).values()) == {200}


def _json(value: Any) -> str:
    import json

    return str(value) if isinstance(value, int) and not isinstance(value, bool) else \
        json.dumps(value)


def test_the_clock_goes_as_far_as_every_family_renders_and_no_further(fake) -> None:
    task = submit(fake)
    nv = {"Authorization": "Bearer sk-x", **JSON}
    kept = fake.post("/v3/async/wan-t2v", headers=nv, json={
        "prompt": "a cat", "width": 832, "height": 480}).json()["task_id"]
    now = fake.get("/_wanmock/clock").json()["now"]
    r = fake.post("/_wanmock/clock/advance", json={"seconds": LATEST - now})
    assert r.status_code == 200 and r.json()["now"] == LATEST
    assert fake.post("/_wanmock/clock/advance", json={"seconds": 1}).status_code == 400
    poll = fake.get(f"/api/v1/tasks/{task}", headers=DS)  # 24 h retention: long gone
    assert poll.status_code == 200 and poll.json()["output"]["task_status"] == "UNKNOWN"
    poll = fake.get("/v3/async/task-result", params={"task_id": kept}, headers=nv)
    assert poll.status_code == 200, poll.text
    assert poll.json()["task"]["status"] == "TASK_STATUS_SUCCEED"
    assert set(every_page(fake).values()) == {200}
    assert fake.post("/_wanmock/clock/advance", json={"seconds": 0}).status_code == 200
    assert fake.post("/_wanmock/clock/advance", json={"seconds": 5, "x": 1}).status_code == 400


def test_the_python_clocks_check_the_same_way() -> None:
    for clock in (ManualClock(), SystemClock()):
        for bad in ("5", True, float("nan"), float("inf"), -0.5, 1e308):
            with pytest.raises(MockServerError):
                clock.advance(bad)  # type: ignore[arg-type]
        assert clock.advance(1.5) > 0
    with pytest.raises(MockServerError):
        ManualClock(start=-1)
    with pytest.raises(MockServerError):
        ManualClock().set(LATEST + 1)


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"rules": ' + b"[" * 900 + b"]" * 900 + b"}",
    b'{"scenario": "unavailable", "match": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
])
def test_nested_control_bodies_are_the_toolkits_400_json(fake, body: bytes) -> None:
    for path in ("/_wanmock/scenarios", "/_wanmock/clock/advance", "/_wanmock/reset"):
        r = fake.post(path, content=body, headers=JSON)
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        assert r.json()["type"] == "MockServerError"
    assert fake.get("/_wanmock/scenarios").json()["rules"] == []


@pytest.mark.parametrize("rule", [
    {"scenario": "unavailable", "match": 5},
    {"scenario": "unavailable", "match": "ab"},
    {"scenario": "unavailable", "match": ["family"]},
    {"rules": [{"scenario": "unavailable", "match": None}, {"scenario": "unavailable",
                                                            "match": [1]}]},
    {"scenario": "unavailable", "match": {"family": 5}},
    {"scenario": "unavailable", "match": {"model": ["wan2.6-t2v"]}},
    {"scenario": "unavailable", "match": {"nth": True}},
    {"scenario": "unavailable", "match": {"nth": 1.5}},
    {"scenario": "unavailable", "times": True},
    {"scenario": "unavailable", "rate": True},
    {"scenario": "unavailable", "rate": "0.5"},
    {"scenario": 5},
    {"scenario": "unavailable", "colour": "red"},
])
def test_malformed_scenario_rules_are_the_toolkits_400_and_add_nothing(fake, rule) -> None:
    r = fake.post("/_wanmock/scenarios", json=rule)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert r.json()["type"] == "MockServerError"
    assert fake.get("/_wanmock/scenarios").json()["rules"] == []
    # The fake is unharmed: a submit still succeeds, unthrottled by a half-added rule.
    submit(fake)


@pytest.mark.parametrize("body", [{"state": "failed", "colour": "red"}, {"state": True},
                                  {"state": ["failed"]}, {}])
def test_malformed_forced_states_are_the_toolkits_400(fake, body) -> None:
    tid = submit(fake)
    r = fake.post(f"/_wanmock/tasks/{tid}/state", json=body)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert r.json()["type"] == "MockServerError"
    assert fake.get(f"/_wanmock/tasks/{tid}").json()["state"] != "failed"


@pytest.mark.parametrize("text", ["²", "٥", "9" * 5000, "-1"])
def test_numbers_in_control_and_dashboard_urls_are_read_strictly(fake, text) -> None:
    """A number in a query or a path is ASCII digits (str.isdigit's "²" made int() raise:
    a 500), never more than int() reads."""
    submit(fake)
    r = fake.get("/_wanmock/journal", params={"limit": text})
    assert r.status_code == 400 and r.json()["type"] == "MockServerError"
    assert fake.get(f"/_wanmock/ui/journal/{text}").status_code == 404
    assert fake.get(f"/_wanmock/ui/journal/{text}.json").status_code == 404
    assert fake.get("/_wanmock/ui", params={"page": text, "per_page": text}).status_code == 200
    assert fake.get("/_wanmock/journal", params={"limit": "1"}).json()["count"] == 1


def test_a_control_body_over_the_limit_is_413(fake) -> None:
    big = b'{"scenario": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = fake.post("/_wanmock/scenarios", content=big, headers=JSON)
    assert r.status_code == 413 and r.json()["type"] == "MockServerError"
    assert r.headers["connection"] == "close"


def test_every_dashboard_page_renders_hostile_journal_entries(fake) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    parseable = {"a": [[[[{"b": "c"}]]]]}
    for _ in range(300):  # nested as deep as Python's json still reads
        parseable = {"k": [parseable]}
    task = submit(fake, extra=parseable)  # the provider keeps what it does not know
    hostile = [deep.encode(), b"\xff\xfe\x00binary\x00\x80" * 1000,
               b'{"prompt": "' + b"x" * (1900 * 1024) + b'"}', b"{" * 50_000,
               ('{"input": {"prompt": "\\ud800 \u202e <script>alert(1)</script>"}}').encode()]
    for body in hostile:
        fake.post(SUBMIT, headers=DS, content=body)
        fake.post("/v3/async/wan-t2v", headers={"Authorization": "Bearer sk-x", **JSON},
                  content=body)
        fake.post("/_wanmock/scenarios", headers=JSON, content=body)
        fake.get("/nowhere/" + "x" * 2000, headers={"X-Junk": "\x7f" * 100})
    statuses = every_page(fake)
    assert f"/_wanmock/ui/tasks/{task}" in statuses
    assert {path: s for path, s in statuses.items() if s != 200} == {}
    assert len(statuses) > 20
