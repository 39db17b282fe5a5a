"""Scenarios: job outcomes and transport faults, for every family, and how they are chosen.

Job scenarios shape a task's plan (fail, moderation, timeout, stuck, slow, cancel, expire,
cancel-race); transport scenarios shape one exchange (throttle, rate-limit, server-error,
unavailable, latency, drop, hang, malformed). Each family words them in its own envelope and
codes (`x-wanmock-failures`, `x-wanmock-faults`), and every provider response here is checked
against the contract's schema for its status. Selection: the `X-Wanmock-Scenario` header, rules
through the control API, a YAML file (`create_app(scenarios=)`, `wanmock serve --scenarios`), the
pytest marker and `wanmock.scenario()`. Provider limits (concurrency, request rate) answer with
the same faults. Time moves only on a manual clock; the only waits are the latency and hang
scenarios' few milliseconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mockserver.app import create_app
from mockserver.contracts import load
from mockserver.core.clock import ManualClock
from mockserver.core.faults import descriptions
from mockserver.core.scenarios import JOB, RequestInfo, Scenario, ScenarioBook
from mockserver.errors import MockServerError
from mockserver.handle import DEFAULT_HOSTS, InProcessRoutes
from mockserver.server import ThreadedMockServer
from tests.helpers import SyncASGITransport

TRANSPORT = descriptions()

KEY = "sk-wanmock-scenarios-0123456789"
OTHER_KEY = "sk-wanmock-scenarios-other-9876"
BASE = "http://wanmock.test"
HOSTS = (*DEFAULT_HOSTS, "wanmock.test")
CONTRACTS = load()

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the four families, as a client sees them --------------------------------------------------
@dataclass(frozen=True)
class Fam:
    name: str
    submit_path: str
    submit_op: str
    query_op: str
    query_path: Callable[[str], str]
    body: Callable[[str], dict[str, Any]]
    task_id: Callable[[dict[str, Any]], str]
    status: Callable[[dict[str, Any]], str]
    words: dict[str, str]  # the family's status word -> neutral state
    async_header: bool = False

    def headers(self, key: str = KEY, scenario: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key}"}
        if self.async_header:
            headers["X-DashScope-Async"] = "enable"
        if scenario is not None:
            headers["X-Wanmock-Scenario"] = scenario
        return headers

    def state(self, body: dict[str, Any]) -> str:
        return self.words[self.status(body)]

    @property
    def failures(self) -> dict[str, Any]:
        return CONTRACTS[self.name].document["x-wanmock-failures"]

    @property
    def faults(self) -> dict[str, Any]:
        return CONTRACTS[self.name].document["x-wanmock-faults"]


DASHSCOPE = Fam(
    "dashscope", "/api/v1/services/aigc/video-generation/video-synthesis",
    "createVideoSynthesis", "getTask", lambda t: f"/api/v1/tasks/{t}",
    lambda p: {"model": "wan2.6-t2v", "input": {"prompt": p},
               "parameters": {"size": "1280*720"}},
    lambda b: b["output"]["task_id"], lambda b: b["output"]["task_status"],
    {"PENDING": "queued", "RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed",
     "CANCELED": "canceled", "UNKNOWN": "unknown"},
    async_header=True,
)
NEWAPI = Fam(
    "newapi", "/v1/video/generations", "createVideoGeneration", "getVideoGeneration",
    lambda t: f"/v1/video/generations/{t}",
    lambda p: {"model": "wan2.6-t2v", "prompt": p, "size": "1280*720"},
    lambda b: b["id"], lambda b: b["data"]["status"],
    {"NOT_START": "queued", "SUBMITTED": "queued", "QUEUED": "queued",
     "IN_PROGRESS": "running", "SUCCESS": "succeeded", "FAILURE": "failed"},
)
JIEKOU = Fam(
    "jiekou", "/v3/async/wan-t2v", "createWanT2vTask", "getTaskResult",
    lambda t: f"/v3/async/task-result?task_id={t}",
    lambda p: {"prompt": p},
    lambda b: b["task_id"], lambda b: b["task"]["status"],
    {"TASK_STATUS_QUEUED": "queued", "TASK_STATUS_PROCESSING": "running",
     "TASK_STATUS_SUCCEED": "succeeded", "TASK_STATUS_FAILED": "failed"},
)
APIYI = Fam(
    "apiyi", "/wan/api/v1/services/aigc/video-generation/video-synthesis",
    "createVideoSynthesis", "getTask", lambda t: f"/v1/tasks/{t}",
    lambda p: {"model": "wan2.7-t2v", "input": {"prompt": p}},
    lambda b: b["output"]["task_id"], lambda b: b["status"],
    {"submitted": "queued", "queued": "queued", "in_progress": "running",
     "completed": "succeeded", "failed": "failed"},
    async_header=True,
)
FAMILIES = {f.name: f for f in (DASHSCOPE, NEWAPI, JIEKOU, APIYI)}
ALL = pytest.mark.parametrize("fam", list(FAMILIES.values()), ids=list(FAMILIES))
TERMINAL = {"succeeded", "failed", "canceled", "unknown"}


def conforms(family: str, operation_id: str, response: httpx.Response) -> Any:
    """The JSON body, after checking it against the contract's schema for its status."""
    op = CONTRACTS.operation(family, operation_id)
    status = str(response.status_code)
    assert status in op.raw["responses"], f"{family}.{operation_id} does not document {status}"
    body = response.json()
    validator = op.response_validators.get(status)
    if validator is not None:
        validator.validate(body)
    return body


class Fake:
    """An app on a manual clock and an httpx client into it."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.backend = app.state.backend

    def advance(self, seconds: float) -> None:
        self.backend.clock.advance(seconds)

    async def submit(self, fam: Fam, scenario: str | None = None, *, prompt: str = "a red fox",
                     key: str = KEY) -> httpx.Response:
        return await self.client.post(fam.submit_path, json=fam.body(prompt),
                                      headers=fam.headers(key, scenario))

    async def create(self, fam: Fam, scenario: str | None = None, **kw: Any) -> str:
        r = await self.submit(fam, scenario, **kw)
        assert r.status_code == 200, r.text
        return fam.task_id(conforms(fam.name, fam.submit_op, r))

    async def query_raw(self, fam: Fam, task_id: str, scenario: str | None = None,
                        key: str = KEY) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        if scenario is not None:
            headers["X-Wanmock-Scenario"] = scenario
        return await self.client.get(fam.query_path(task_id), headers=headers)

    async def query(self, fam: Fam, task_id: str, key: str = KEY) -> dict[str, Any]:
        r = await self.query_raw(fam, task_id, key=key)
        assert r.status_code == 200, r.text
        return conforms(fam.name, fam.query_op, r)  # type: ignore[no-any-return]

    async def state(self, fam: Fam, task_id: str) -> str:
        return fam.state(await self.query(fam, task_id))

    async def run_to_end(self, fam: Fam, task_id: str, step: float = 5.0,
                         limit: int = 200) -> dict[str, Any]:
        for _ in range(limit):
            body = await self.query(fam, task_id)
            if fam.state(body) in TERMINAL:
                return body
            self.advance(step)
        raise AssertionError(f"{fam.name} task {task_id} never finished")

    async def info(self, task_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/_wanmock/tasks/{task_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def make_app(**options: Any) -> Starlette:
    options.setdefault("seed", 1)
    options.setdefault("newapi_poll_interval", 0)  # new-api's poll lag has its own tests
    return create_app(clock=ManualClock(), **options)


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield Fake(app, c)


async def fake_with(**options: Any) -> tuple[Fake, httpx.AsyncClient]:
    app = make_app(**options)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    return Fake(app, client), client


# -- how each family shows a failed, canceled, expired or finished task ------------------------
def assert_failed(fam: Fam, body: dict[str, Any], code: str, message: str) -> None:
    if fam is DASHSCOPE:
        out = body["output"]
        assert out["task_status"] == "FAILED"
        assert (out["code"], out["message"]) == (code, message)
        assert "video_url" not in out and "usage" not in body
    elif fam is NEWAPI:
        data = body["data"]
        assert (body["code"], data["status"], data["progress"]) == ("success", "FAILURE", "100%")
        assert data["fail_reason"] == f"task failed, code: {code} , message: {message}"
        upstream = data["data"]["output"]
        assert (upstream["task_status"], upstream["code"], upstream["message"]) == (
            "FAILED", code, message)
    elif fam is JIEKOU:
        task = body["task"]
        assert (task["status"], task["reason"], task["eta"]) == ("TASK_STATUS_FAILED", message, 0)
        assert body["videos"] == []
    else:
        assert (body["status"], body["progress"]) == ("failed", 100)
        assert body["error"] == {"code": code, "message": message}
        assert "result_url" not in body


def assert_canceled(fam: Fam, body: dict[str, Any]) -> None:
    words = fam.failures["canceled"]
    if fam is DASHSCOPE:
        assert body["output"]["task_status"] == "CANCELED"
        assert "code" not in body["output"] and "video_url" not in body["output"]
    elif fam is NEWAPI:  # no canceled state: FAILURE with new-api's plain reason
        data = body["data"]
        assert (data["status"], data["fail_reason"]) == ("FAILURE", words["text"])
        assert data["data"]["output"]["task_status"] == "CANCELED"
    elif fam is JIEKOU:  # no canceled state: FAILED with a reason
        assert body["task"]["status"] == "TASK_STATUS_FAILED"
        assert body["task"]["reason"] == words["message"]
    else:
        assert body["status"] == "failed"
        assert body["error"] == {"code": words["code"], "message": words["message"]}


def video_url(fam: Fam, body: dict[str, Any]) -> str:
    if fam is DASHSCOPE:
        return str(body["output"]["video_url"])
    if fam is NEWAPI:
        return str(body["data"]["result_url"])
    if fam is JIEKOU:
        return str(body["videos"][0]["video_url"])
    return str(body["result_url"])


async def assert_expired(fake: Fake, fam: Fam, task_id: str) -> None:
    r = await fake.query_raw(fam, task_id)
    if fam is DASHSCOPE:
        body = conforms(fam.name, fam.query_op, r)
        assert r.status_code == 200
        assert body["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    elif fam is NEWAPI:  # new-api relays the upstream UNKNOWN as a failure
        body = conforms(fam.name, fam.query_op, r)
        assert r.status_code == 200
        assert (body["data"]["status"], body["data"]["fail_reason"]) == ("FAILURE", "task failed")
        assert body["data"]["data"]["output"]["task_status"] == "UNKNOWN"
    elif fam is JIEKOU:
        assert r.status_code == 404
        assert conforms(fam.name, fam.query_op, r)["reason"] == "TASK_NOT_FOUND"
    else:
        assert r.status_code == 404
        assert conforms(fam.name, fam.query_op, r)["error"]["code"] == "task_not_found"


def fault_words(fam: Fam, key: str, role: str) -> tuple[int, str, str]:
    spec = dict(fam.faults[key])
    spec.update((spec.get("by_role") or {}).get(role, {}))
    return int(spec["status"]), str(spec["code"]), str(spec["message"])


def error_words(body: dict[str, Any]) -> tuple[str, str]:
    """(code, message) from any family's error envelope."""
    if "error" in body:
        return body["error"]["code"], body["error"]["message"]
    if "reason" in body:
        return body["reason"], body["message"]
    return body["code"], body["message"]


def assert_fault(fam: Fam, r: httpx.Response, op: str, key: str, role: str) -> dict[str, Any]:
    status, code, message = fault_words(fam, key, role)
    assert r.status_code == status, r.text
    body = conforms(fam.name, op, r)
    got_code, got_message = error_words(body)
    assert got_code == code
    # new-api's middleware shape appends "(request id: ...)"
    assert got_message == message or got_message.startswith(message + " (request id: ")
    return body


# -- scenario values and rules, without HTTP --------------------------------------------------
def test_parse_names_parameters_and_labels() -> None:
    s = Scenario.parse(" fail; kind=moderation, at=0.6 ; code=X ")
    assert (s.name, dict(s.params), s.is_job) == ("fail", {"kind": "moderation", "at": 0.6,
                                                          "code": "X"}, True)
    assert s.label() == "fail; kind=moderation; at=0.6; code=X"
    assert Scenario.parse("inputs; humanoid=true; video_s=7.5; ratio=9:16").params == {
        "humanoid": True, "video_s": 7.5, "ratio": "9:16"}
    assert Scenario.of({"name": "throttle", "params": {"retry_after": 3}}) == Scenario(
        "throttle", {"retry_after": 3})
    assert Scenario.of(s) is s and not Scenario.of("drop").is_job
    assert set(JOB) == {"succeed", "fail", "moderation", "internal", "timeout", "stuck", "slow",
                        "cancel", "cancel-race", "expire", "inputs"}
    assert set(TRANSPORT) >= {"throttle", "rate-limit", "server-error", "unavailable", "latency",
                              "drop", "hang", "malformed"}


@pytest.mark.parametrize("text", ["", " ; ", "explode", "fail; at=2", "fail; at=soon",
                                  "slow; factor=-1", "latency; ms=x", "fail; at", "fail; =3",
                                  "slow; factor=inf", "stuck; seconds=nan", "slow; factor=1e400",
                                  "cancel; after=-inf", "fail; at=nan",
                                  "slow; facter=2", "latency; on=true", "drop; ms=5",
                                  "succeed; at=0.5", "throttle; ms=5", "stuck; after=3"])
def test_bad_scenario_text_is_a_toolkit_error(text: str) -> None:
    with pytest.raises(MockServerError):
        Scenario.parse(text)


def test_an_unknown_parameter_is_named_with_the_ones_it_takes() -> None:
    with pytest.raises(MockServerError, match=r"scenario slow takes no facter=; its parameters: "
                                               r"factor=, video_s=, audio_s="):
        Scenario.parse("slow; facter=2")
    with pytest.raises(MockServerError, match=r"scenario drop takes no ms=; its parameters: none"):
        Scenario.parse("drop; ms=5")
    # Worded faults take retry_after=; every job scenario, the facts of its inputs.
    assert Scenario.parse("unavailable; retry_after=3").params == {"retry_after": 3}
    assert Scenario.parse("fail; kind=internal; smart_s=12").params["smart_s"] == 12
    from mockserver.core.scenarios import JOB_PARAMS

    assert set(JOB_PARAMS) == set(JOB)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("header", ["stuck; seconds=nan", "slow; factor=inf"])
def test_a_non_finite_scenario_time_is_refused_before_any_task(header: str, store: str,
                                                               tmp_path: Path) -> None:
    """`nan` and `inf` seconds would make a task no poll can answer (a 500 on the memory store,
    a plan a shared store cannot write): the submit is refused as toolkit misuse instead."""
    url = "memory" if store == "memory" else f"sqlite:///{tmp_path}/s.db"
    app = create_app(clock="manual", seed=1, store=url)
    try:
        with httpx.Client(transport=SyncASGITransport(app), base_url="http://fake.test") as c:
            r = c.post("/api/v1/services/aigc/video-generation/video-synthesis",
                       json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"},
                             "parameters": {"size": "1280*720", "duration": 5}},
                       headers={"Authorization": "Bearer sk-x", "X-DashScope-Async": "enable",
                                "X-Wanmock-Scenario": header})
        assert r.status_code == 400
        assert r.json()["type"] == "MockServerError" and "finite" in r.json()["error"]
        assert len(app.state.backend.store) == 0
    finally:
        app.state.backend.state.close()


def test_book_matches_counts_nth_times_and_order() -> None:
    book = ScenarioBook(seed=3)
    submit = RequestInfo("dashscope", "createVideoSynthesis", "submit", "wan2.6-t2v", "k1",
                         "a red fox in the snow")
    query = RequestInfo("dashscope", "getTask", "query", None, "k1", None)
    other = RequestInfo("jiekou", "createWanT2vTask", "submit", "wan2.1-t2v", "k2", "a cat")
    job = book.add("moderation", match={"prompt": "fox"}, times=1)
    second = book.add("throttle", match={"family": "dashscope", "nth": 2})
    always = book.add("server-error", match={"api_key": "k2"})
    assert book.pick(query, job=True) is None  # job rules apply only to submissions
    assert book.pick(submit, job=True) == job.scenario
    assert book.pick(submit, job=True) is None  # times=1 used up
    assert (job.matched, job.applied) == (2, 1)
    assert book.pick(submit, job=False) is None  # dashscope match 1 of nth=2
    assert book.pick(query, job=False) == second.scenario
    assert book.pick(query, job=False) is None
    assert book.pick(other, job=False) == always.scenario
    assert book.pick(other, job=False) == always.scenario
    assert [r["remaining"] for r in (job.as_dict(), second.as_dict(), always.as_dict())] == [
        0, None, None]
    assert book.remove(second.id) and not book.remove(second.id)
    book.reset()
    assert not book and book.rules() == []


@pytest.mark.parametrize("rule", [
    {"scenario": "fail", "match": {"colour": "red"}},
    {"scenario": "fail", "match": {"nth": 0}},
    {"scenario": "fail", "times": 0},
    {"scenario": "fail", "rate": 1.5},
    {"scenario": "fail", "when": "now"},
    {"match": {"family": "dashscope"}},
    {"scenario": "teleport"},
    {"scenario": {"name": "fail", "params": ["at"]}},
])
def test_book_rejects_bad_rules(rule: dict[str, Any]) -> None:
    with pytest.raises(MockServerError):
        ScenarioBook().add_many([rule])


def test_book_rejects_bad_files(tmp_path: Path) -> None:
    book = ScenarioBook()
    with pytest.raises(MockServerError, match="cannot read"):
        book.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed\n", encoding="utf-8")
    with pytest.raises(MockServerError, match="not YAML"):
        book.load(bad)
    bad.write_text("- scenario: fail\n", encoding="utf-8")
    with pytest.raises(MockServerError, match="rules:"):
        book.load(bad)


# -- job outcomes, for every family ------------------------------------------------------------
@ALL
@pytest.mark.parametrize("kind", ["invalid_parameter", "internal"])
async def test_fail_at_a_progress_point(fake: Fake, fam: Fam, kind: str) -> None:
    task_id = await fake.create(fam, f"fail; kind={kind}; at=0.3")
    body = await fake.run_to_end(fam, task_id, step=0.25)
    words = fam.failures[kind]
    assert_failed(fam, body, words["code"], words["message"])
    info = await fake.info(task_id)
    run_s = info["plan"]["run_s"]
    assert info["ended_at"] - info["started_at"] == pytest.approx(0.3 * run_s, abs=1e-3)
    if fam is JIEKOU:
        assert body["task"]["progress_percent"] == 30


@ALL
async def test_fail_with_own_code_and_message(fake: Fake, fam: Fam) -> None:
    task_id = await fake.create(fam, "fail; kind=internal; code=InternalError.Algo; message=boom")
    assert_failed(fam, await fake.run_to_end(fam, task_id), "InternalError.Algo", "boom")


@ALL
async def test_moderation_found_late(fake: Fake, fam: Fam) -> None:
    task_id = await fake.create(fam, "moderation; at=0.6")
    fake.advance(1.0)  # the queue time (fast timing) is over, the failure point is not
    assert await fake.state(fam, task_id) in ("queued", "running")
    body = await fake.run_to_end(fam, task_id, step=0.5)
    words = fam.failures["moderation"]
    assert_failed(fam, body, words["code"], words["message"])
    if fam is DASHSCOPE:
        assert body["output"]["code"] == "DataInspectionFailed"
    elif fam is NEWAPI:
        assert body["data"]["fail_reason"] == (
            "task failed, code: DataInspectionFailed , message: "
            "Input data may contain inappropriate content.")
        r = await fake.client.get(f"/v1/videos/{task_id}", headers=fam.headers())
        video = conforms("newapi", "getVideo", r)
        assert video["status"] == "failed"
        assert video["error"]["code"] == "DataInspectionFailed"
    elif fam is JIEKOU:
        assert body["task"]["reason"] == "The input image failed content moderation."
        assert body["task"]["progress_percent"] == 60
    else:
        assert body["error"]["code"] == "DataInspectionFailed"


@ALL
async def test_timeout_fails_after_the_providers_limit(fake: Fake, fam: Fam) -> None:
    limit = fam.failures["timeout"]["after_s"]
    if fam is not JIEKOU:
        assert limit == 10800  # DashScope's 3 h, relayed by new-api and apiyi
    task_id = await fake.create(fam, "timeout")
    fake.advance(limit - 60)
    assert await fake.state(fam, task_id) == "running"
    fake.advance(120)
    body = await fake.query(fam, task_id)
    words = fam.failures["timeout"]
    assert_failed(fam, body, words["code"], words["message"])
    info = await fake.info(task_id)
    assert info["ended_at"] - info["started_at"] == pytest.approx(limit)


@ALL
async def test_timeout_after_is_a_parameter(fake: Fake, fam: Fam) -> None:
    task_id = await fake.create(fam, "fail; kind=timeout; after=100")
    fake.advance(50)
    assert await fake.state(fam, task_id) == "running"
    fake.advance(60)
    assert await fake.state(fam, task_id) == "failed"


@ALL
async def test_stuck_stays_queued(fake: Fake, fam: Fam) -> None:
    task_id = await fake.create(fam, "stuck")
    fake.advance(80000)  # most of a day (DashScope forgets a task after 24 h)
    assert await fake.state(fam, task_id) == "queued"
    bounded = await fake.create(fam, "stuck; seconds=100")
    fake.advance(99)
    assert await fake.state(fam, bounded) == "queued"
    assert (await fake.run_to_end(fam, bounded)) and await fake.state(fam, bounded) == "succeeded"


@ALL
async def test_slow_multiplies_queue_and_run_times(fam: Fam) -> None:
    normal, c1 = await fake_with()
    slow, c2 = await fake_with()  # same seed: the same planned times before the factor
    async with c1, c2:
        t1 = await normal.create(fam)
        t2 = await slow.create(fam, "slow; factor=4")
        p1, p2 = (await normal.info(t1))["plan"], (await slow.info(t2))["plan"]
        assert p2["queue_s"] == pytest.approx(4 * p1["queue_s"])
        assert p2["run_s"] == pytest.approx(4 * p1["run_s"])
        end = p1["queue_s"] + p1["run_s"]
        normal.advance(end + 0.01)
        slow.advance(end + 0.01)
        assert await normal.state(fam, t1) == "succeeded"
        assert await slow.state(fam, t2) in ("queued", "running")
        slow.advance(3 * end)
        assert await slow.state(fam, t2) == "succeeded"


@ALL
async def test_cancel(fake: Fake, fam: Fam) -> None:
    task_id = await fake.create(fam, "cancel")
    assert_canceled(fam, await fake.query(fam, task_id))
    later = await fake.create(fam, "cancel; after=5")
    fake.advance(3)
    assert await fake.state(fam, later) == "queued"  # held in the queue until it is canceled
    fake.advance(3)
    assert_canceled(fam, await fake.query(fam, later))
    fake.advance(600)
    assert_canceled(fam, await fake.query(fam, later))  # canceled is final


@ALL
async def test_expire_forgets_the_task_and_the_result_url(fake: Fake, fam: Fam) -> None:
    task_id = await fake.create(fam, "expire; after=60")
    done = await fake.run_to_end(fam, task_id)
    assert fam.state(done) == "succeeded"
    url = video_url(fam, done)
    ok = await fake.client.get(url)
    assert ok.status_code == 200 and ok.headers["content-type"] == "video/mp4"
    fake.advance(61)
    await assert_expired(fake, fam, task_id)
    gone = await fake.client.get(url)
    assert gone.status_code == 403
    assert "<Code>AccessDenied</Code>" in gone.text and "expired" in gone.text


async def test_cancel_race_dashscope_cancel_is_accepted_but_the_task_succeeds(fake: Fake) -> None:
    raced = await fake.create(DASHSCOPE, "cancel-race")
    plain = await fake.create(DASHSCOPE)
    for task_id in (raced, plain):
        r = await fake.client.post(f"/api/v1/tasks/{task_id}/cancel",
                                   headers=DASHSCOPE.headers())
        assert r.status_code == 200, r.text
        assert set(conforms("dashscope", "cancelTask", r)) == {"request_id"}
    assert await fake.state(DASHSCOPE, plain) == "canceled"
    body = await fake.run_to_end(DASHSCOPE, raced)
    assert body["output"]["task_status"] == "SUCCEEDED" and body["output"]["video_url"]


async def test_succeed_runs_normally_and_ignores_rules(fake: Fake) -> None:
    fake.backend.scenarios.add("moderation")
    task_id = await fake.create(DASHSCOPE, "succeed")
    assert (await fake.run_to_end(DASHSCOPE, task_id))["output"]["task_status"] == "SUCCEEDED"
    failing = await fake.create(DASHSCOPE)
    assert (await fake.run_to_end(DASHSCOPE, failing))["output"]["code"] == "DataInspectionFailed"


async def test_job_scenario_in_a_query_header_is_ignored(fake: Fake) -> None:
    task_id = await fake.create(JIEKOU)
    r = await fake.query_raw(JIEKOU, task_id, scenario="moderation")
    assert r.status_code == 200
    assert (await fake.run_to_end(JIEKOU, task_id))["task"]["status"] == "TASK_STATUS_SUCCEED"


# -- transport faults, for every family --------------------------------------------------------
FAULTS = {"throttle": "throttle", "rate-limit": "rate_limit", "concurrency": "concurrency",
          "server-error": "server_error", "unavailable": "unavailable"}


@ALL
@pytest.mark.parametrize("name", list(FAULTS))
async def test_error_faults_on_submit(fake: Fake, fam: Fam, name: str) -> None:
    r = await fake.submit(fam, name)
    assert_fault(fam, r, fam.submit_op, FAULTS[name], "submit")
    if name == "throttle" or fam.faults[FAULTS[name]].get("retry_after"):
        assert r.headers["Retry-After"] == "1"  # throttle always; the others as the contract says
    else:
        assert "Retry-After" not in r.headers
    assert list(fake.backend.tasks()) == []  # nothing was created
    (entry,) = fake.backend.journal.entries()
    assert (entry.status, entry.scenario) == (r.status_code, name)


@ALL
@pytest.mark.parametrize("name", ["throttle", "rate-limit", "server-error", "unavailable"])
async def test_error_faults_on_query(fake: Fake, fam: Fam, name: str) -> None:
    task_id = await fake.create(fam)
    r = await fake.query_raw(fam, task_id, scenario=f"{name}; retry_after=7")
    assert_fault(fam, r, fam.query_op, FAULTS[name], "query")
    assert r.headers["Retry-After"] == "7"
    assert await fake.state(fam, task_id) == "queued"  # the task is untouched


@ALL
async def test_latency_delays_a_normal_answer(fake: Fake, fam: Fam) -> None:
    started = time.perf_counter()
    r = await fake.submit(fam, "latency; ms=25")
    assert time.perf_counter() - started >= 0.025
    assert r.status_code == 200
    conforms(fam.name, fam.submit_op, r)


async def test_latency_random_range_is_seeded(fake: Fake) -> None:
    fake.backend.scenarios.add("latency; min_ms=5; max_ms=15", match={"operation": "getTask"})
    task_id = await fake.create(DASHSCOPE)
    started = time.perf_counter()
    r = await fake.query_raw(DASHSCOPE, task_id)
    assert time.perf_counter() - started >= 0.005
    assert r.status_code == 200
    assert fake.backend.journal.entries()[-1].scenario == "latency; min_ms=5; max_ms=15"


@ALL
async def test_malformed_is_200_with_invalid_json(fake: Fake, fam: Fam) -> None:
    task_id = await fake.create(fam)
    for r in (await fake.submit(fam, "malformed"),
              await fake.query_raw(fam, task_id, scenario="malformed")):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)
    assert len(list(fake.backend.tasks())) == 1


@ALL
async def test_drop_in_process_is_a_remote_protocol_error(fam: Fam) -> None:
    app = make_app()
    with InProcessRoutes(app, HOSTS):
        async with httpx.AsyncClient(base_url=BASE) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="dropped"):
                await client.post(fam.submit_path, json=fam.body("x"),
                                  headers=fam.headers(scenario="drop"))
            ok = await client.post(fam.submit_path, json=fam.body("x"), headers=fam.headers())
            assert ok.status_code == 200
    entries = app.state.backend.journal.entries()
    assert [e.scenario for e in entries] == ["drop", None]


@ALL
async def test_hang_is_bounded_then_dropped(fam: Fam) -> None:
    app = make_app()
    with InProcessRoutes(app, HOSTS):
        async with httpx.AsyncClient(base_url=BASE) as client:
            started = time.perf_counter()
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(fam.submit_path, json=fam.body("x"),
                                  headers=fam.headers(scenario="hang; seconds=0.05"))
            assert time.perf_counter() - started >= 0.05


def test_drop_in_process_with_a_sync_client_on_a_real_host() -> None:
    app = make_app()
    with InProcessRoutes(app), httpx.Client(base_url="https://dashscope.aliyuncs.com") as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(DASHSCOPE.submit_path, json=DASHSCOPE.body("x"),
                   headers=DASHSCOPE.headers(scenario="drop"))
        assert c.post(DASHSCOPE.submit_path, json=DASHSCOPE.body("x"),
                      headers=DASHSCOPE.headers()).status_code == 200


RULES_YAML = """\
rules:
  - scenario: moderation
    match: {family: dashscope, prompt: "moderate me"}
  - scenario: drop
    match: {prompt: "drop me"}
  - scenario: {name: throttle, params: {retry_after: 9}}
    match: {operation: getTask}
    times: 1
"""


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("scenarios") / "rules.yaml"
    path.write_text(RULES_YAML, encoding="utf-8")
    server = ThreadedMockServer(seed=3, families=["dashscope"], clock="manual",
                                scenarios=str(path)).start()
    yield server
    server.stop()


def test_live_server_drop_hang_and_file_rules(live_server: Any, monkeypatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    live_server.backend.reset()
    with httpx.Client(base_url=live_server.url, timeout=5) as c:
        with pytest.raises(httpx.TransportError):
            c.post(DASHSCOPE.submit_path, json=DASHSCOPE.body("x"),
                   headers=DASHSCOPE.headers(scenario="drop"))
        started = time.perf_counter()
        with pytest.raises(httpx.TransportError):
            c.post(DASHSCOPE.submit_path, json=DASHSCOPE.body("x"),
                   headers=DASHSCOPE.headers(scenario="hang; seconds=0.05"))
        assert time.perf_counter() - started >= 0.05
        with pytest.raises(httpx.TransportError):  # the file's prompt rule
            c.post(DASHSCOPE.submit_path, json=DASHSCOPE.body("please drop me"),
                   headers=DASHSCOPE.headers())
        r = c.post(DASHSCOPE.submit_path, json=DASHSCOPE.body("moderate me now"),
                   headers=DASHSCOPE.headers())
        assert r.status_code == 200, r.text
        task_id = r.json()["output"]["task_id"]
        first = c.get(f"/api/v1/tasks/{task_id}", headers=DASHSCOPE.headers())
        assert first.status_code == 429 and first.headers["Retry-After"] == "9"
        live_server.backend.clock.advance(60)
        body = conforms("dashscope", "getTask",
                        c.get(f"/api/v1/tasks/{task_id}", headers=DASHSCOPE.headers()))
        assert body["output"]["code"] == "DataInspectionFailed"
    statuses = [e.status for e in live_server.backend.journal.entries()]
    assert statuses[-3:] == [200, 429, 200]


# -- selection: header, control API, files, the CLI --------------------------------------------
@pytest.mark.parametrize("header", ["explode", "fail; at=7", "fail; kind=bogus",
                                    "latency; ms=-1", "fail; kind"])
async def test_bad_scenario_header_is_a_400_toolkit_error(fake: Fake, header: str) -> None:
    r = await fake.submit(DASHSCOPE, header)
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "MockServerError" and body["error"]
    assert list(fake.backend.tasks()) == []


async def test_control_api_rules_match_expire_list_and_delete(fake: Fake) -> None:
    c = fake.client
    r = await c.post("/_wanmock/scenarios", json={
        "scenario": "server-error", "match": {"family": "jiekou", "operation": "getTaskResult"},
        "times": 2})
    assert r.status_code == 201
    (rule,) = r.json()["rules"]
    assert (rule["name"], rule["times"], rule["remaining"]) == ("server-error", 2, 2)
    r = await c.post("/_wanmock/scenarios", json={"rules": [
        {"scenario": "moderation", "match": {"model": "wan2.6-t2v", "family": "newapi"}},
        {"scenario": "fail; kind=internal", "match": {"api_key": OTHER_KEY}},
        {"scenario": "throttle", "match": {"family": "apiyi", "nth": 2}},
    ]})
    assert r.status_code == 201
    moderation, by_key, nth = (x["id"] for x in r.json()["rules"])

    task_id = await fake.create(JIEKOU)
    for _ in range(2):
        assert (await fake.query_raw(JIEKOU, task_id)).status_code == 500
    assert (await fake.query_raw(JIEKOU, task_id)).status_code == 200  # times=2 used up

    fake_task = await fake.create(NEWAPI)  # model matches
    other_key = await fake.create(DASHSCOPE, key=OTHER_KEY)
    mine = await fake.create(DASHSCOPE)
    assert (await fake.submit(APIYI)).status_code == 200  # apiyi match 1
    assert (await fake.submit(APIYI)).status_code == 429  # apiyi match 2
    assert (await fake.submit(APIYI)).status_code == 200  # nth=2 only
    fake.advance(120)
    assert await fake.state(NEWAPI, fake_task) == "failed"
    other = await fake.query(DASHSCOPE, other_key, key=OTHER_KEY)
    assert other["output"]["code"] == "InternalError"
    assert await fake.state(DASHSCOPE, mine) == "succeeded"

    listed = (await c.get("/_wanmock/scenarios")).json()
    assert set(listed["job"]) == set(JOB) and set(listed["transport"]) == set(TRANSPORT)
    rules = {x["id"]: x for x in listed["rules"]}
    assert rules[rule["id"]]["applied"] == 2 and rules[rule["id"]]["remaining"] == 0
    assert rules[moderation]["applied"] == 1
    assert rules[nth]["matched"] >= 3 and rules[nth]["applied"] == 1
    assert (await c.get(f"/_wanmock/scenarios/{by_key}")).json()["applied"] == 1

    assert (await c.delete(f"/_wanmock/scenarios/{by_key}")).json() == {"deleted": by_key}
    assert (await c.get(f"/_wanmock/scenarios/{by_key}")).status_code == 404
    assert (await c.delete(f"/_wanmock/scenarios/{by_key}")).status_code == 404
    assert len((await c.get("/_wanmock/scenarios")).json()["rules"]) == 3
    assert (await c.delete("/_wanmock/scenarios")).json() == {"rules": []}
    assert (await c.get("/_wanmock/scenarios")).json()["rules"] == []


async def test_prompt_rule_matches_text_in_the_prompt(fake: Fake) -> None:
    r = await fake.client.post("/_wanmock/scenarios", json={
        "scenario": "moderation", "match": {"prompt": "forbidden"}})
    assert r.status_code == 201
    for fam in FAMILIES.values():
        bad = await fake.create(fam, prompt="a forbidden dance")
        good = await fake.create(fam, prompt="a permitted dance")
        fake.advance(120)
        words = fam.failures["moderation"]
        assert_failed(fam, await fake.query(fam, bad), words["code"], words["message"])
        assert await fake.state(fam, good) == "succeeded"


@pytest.mark.parametrize("body", [
    {"scenario": "explode"},
    {"scenario": "fail", "match": {"colour": "red"}},
    {"scenario": "fail", "times": 0},
    {"scenario": "fail", "times": "twice"},
    {"scenario": "fail", "rate": 2},
    {"scenario": "fail", "match": {"nth": -1}},
    {"scenario": "fail", "extra": True},
    {"match": {"family": "dashscope"}},
    {"rules": "all of them"},
    {"rules": ["fail"]},
])
async def test_bad_rules_are_400(fake: Fake, body: dict[str, Any]) -> None:
    r = await fake.client.post("/_wanmock/scenarios", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "MockServerError"
    assert (await fake.client.get("/_wanmock/scenarios")).json()["rules"] == []


async def test_control_api_body_must_be_a_json_object(fake: Fake) -> None:
    for content in (b"[1, 2]", b"{nope"):
        r = await fake.client.post("/_wanmock/scenarios", content=content,
                                   headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["type"] == "MockServerError"


def write_rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - scenario: 'fail; kind=moderation; at=0.5'\n"
        "    match: {family: jiekou}\n"
        "  - scenario: unavailable\n"
        "    match: {family: dashscope, operation: getTask}\n"
        "    times: 1\n",
        encoding="utf-8")
    return path


async def check_file_rules(app: Starlette) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        fake = Fake(app, c)
        jiekou = await fake.create(JIEKOU)
        ds = await fake.create(DASHSCOPE)
        fake.advance(120)
        assert (await fake.query(JIEKOU, jiekou))["task"]["reason"] == (
            JIEKOU.failures["moderation"]["message"])
        r = await fake.query_raw(DASHSCOPE, ds)
        assert_fault(DASHSCOPE, r, "getTask", "unavailable", "query")
        assert await fake.state(DASHSCOPE, ds) == "succeeded"


async def test_yaml_file_through_create_app_and_kept_across_reset(tmp_path: Path) -> None:
    app = make_app(scenarios=str(write_rules(tmp_path)))
    assert len(app.state.backend.scenarios.rules()) == 2
    await check_file_rules(app)
    app.state.backend.scenarios.add("drop")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.post("/_wanmock/reset")).status_code == 200
    rules = app.state.backend.scenarios.rules()
    assert [r.scenario.name for r in rules] == ["fail", "unavailable"]  # the file, fresh
    assert all(r.applied == 0 for r in rules)
    await check_file_rules(app)


def test_bad_yaml_file_fails_create_app(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - scenario: teleport\n", encoding="utf-8")
    with pytest.raises(MockServerError, match="teleport"):
        make_app(scenarios=str(path))


async def test_wanmock_serve_scenarios_file(tmp_path: Path, monkeypatch, capsys) -> None:
    import uvicorn

    from mockserver import cli

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn.Server, "run",
                        lambda self, sockets=None: served.update(app=self.config.app))
    path = write_rules(tmp_path)
    args = ["serve", "--port", "0", "--clock", "manual", "--seed", "2",
            "--scenarios", str(path), "--max-concurrent-tasks", "3",
            "--concurrency-policy", "reject", "--rate-limit-qps", "50"]
    parsed = cli.build_parser().parse_args(args)
    assert (parsed.scenarios, parsed.max_concurrent_tasks, parsed.concurrency_policy,
            parsed.rate_limit_qps) == (str(path), 3, "reject", 50.0)
    assert cli.main(args) == 0
    assert "serving on" in capsys.readouterr().out
    app = served["app"]
    opts = app.state.backend.options
    assert (opts.scenarios, opts.max_concurrent_tasks, opts.concurrency_policy,
            opts.rate_limit_qps) == (str(path), 3, "reject", 50.0)
    await check_file_rules(app)


def test_wanmock_serve_with_a_bad_scenarios_file_exits_2(tmp_path: Path, capsys) -> None:
    from mockserver import cli

    assert cli.main(["serve", "--port", "0", "--scenarios", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read scenario file" in capsys.readouterr().err


# -- seeded random rates ----------------------------------------------------------------------
async def failed_positions(seed: int) -> tuple[list[int], list[str]]:
    # 50 submits at one moment: DashScope's per-model rate and queue (decision rate-limits)
    # would refuse or delay most of them.
    fake, client = await fake_with(seed=seed, dashscope_rate_limits="off")
    async with client:
        r = await client.post("/_wanmock/scenarios", json={"scenario": "fail", "rate": 0.3})
        assert r.status_code == 201
        ids = [await fake.create(DASHSCOPE) for _ in range(50)]
        failed = [i for i, t in enumerate(ids) if (await fake.info(t))["plan"]["failure"]]
        (rule,) = (await client.get("/_wanmock/scenarios")).json()["rules"]
        assert (rule["matched"], rule["applied"]) == (50, len(failed))
        fake.advance(120)
        states = [await fake.state(DASHSCOPE, t) for t in ids]
        assert [i for i, s in enumerate(states) if s == "failed"] == failed
        return failed, [ids[i] for i in failed]


async def test_seeded_rate_is_reproducible() -> None:
    first, first_ids = await failed_positions(11)
    again, again_ids = await failed_positions(11)
    other, other_ids = await failed_positions(12)
    assert first == again and first_ids == again_ids
    assert other != first and set(other_ids) != set(first_ids)
    for positions in (first, other):
        assert 5 <= len(positions) <= 25  # Binomial(50, 0.3): mean 15, sd 3.2


# -- provider limits ---------------------------------------------------------------------------
@ALL
async def test_concurrency_queue_delays_the_same_key_only(fam: Fam) -> None:
    ref, c1 = await fake_with()
    fake, c2 = await fake_with(max_concurrent_tasks=1, concurrency_policy="queue")
    async with c1, c2:
        plans = {}
        for name, f in (("ref", ref), ("lim", fake)):
            ids = [await f.create(fam), await f.create(fam), await f.create(fam, key=OTHER_KEY)]
            plans[name] = [(await f.info(t))["plan"] for t in ids]
            plans[name + "_ids"] = ids
        a, b, other = plans["lim"]
        ra, rb, rother = plans["ref"]
        first_end = a["queue_s"] + a["run_s"]
        assert a == ra and other == rother  # the first task and another key: not delayed
        assert b["queue_s"] == pytest.approx(rb["queue_s"] + first_end)  # waits for a slot
        ta, tb, _ = plans["lim_ids"]
        fake.advance(first_end + 0.01)
        assert await fake.state(fam, ta) == "succeeded"
        assert await fake.state(fam, tb) == "queued"
        fake.advance(b["queue_s"] + b["run_s"])
        assert await fake.state(fam, tb) == "succeeded"


@ALL
async def test_concurrency_reject_answers_the_familys_429(fam: Fam) -> None:
    fake, client = await fake_with(max_concurrent_tasks=1, concurrency_policy="reject")
    async with client:
        first = await fake.create(fam)
        r = await fake.submit(fam)
        assert_fault(fam, r, fam.submit_op, "concurrency", "submit")
        assert fake.backend.journal.entries()[-1].scenario == "concurrency"
        assert await fake.create(fam, key=OTHER_KEY)  # another key has its own slot
        await fake.run_to_end(fam, first)
        assert await fake.create(fam)  # the slot is free again
        assert len(list(fake.backend.tasks())) == 3


async def test_concurrency_policy_contract_default_per_family() -> None:
    fake, client = await fake_with(max_concurrent_tasks=1)
    async with client:
        for fam in FAMILIES.values():
            policy = CONTRACTS[fam.name].document["x-wanmock-limits"]["concurrency_policy"]
            assert fake.backend.concurrency_policy(fam.name) == policy
            await fake.create(fam)
            r = await fake.submit(fam)
            assert r.status_code == (429 if policy == "reject" else 200), (fam.name, r.text)
        # new-api has no concurrency gate in either release: tasks wait upstream
        assert fake.backend.concurrency_policy("newapi") == "queue"
        assert fake.backend.concurrency_policy("dashscope") == "queue"


@ALL
async def test_rate_limit_qps(fam: Fam) -> None:
    fake, client = await fake_with(rate_limit_qps=2)
    async with client:
        assert (await fake.submit(fam)).status_code == 200
        assert (await fake.submit(fam)).status_code == 200
        r = await fake.submit(fam)
        assert_fault(fam, r, fam.submit_op, "rate_limit", "submit")
        assert fake.backend.journal.entries()[-1].scenario == "rate-limit"
        assert (await fake.submit(fam, key=OTHER_KEY)).status_code == 200  # per key
        fake.advance(0.5)
        assert (await fake.submit(fam)).status_code == 429  # same clock second
        fake.advance(0.5)
        assert (await fake.submit(fam)).status_code == 200
        assert len(list(fake.backend.tasks())) == 4


async def test_rate_limit_counts_queries_too() -> None:
    fake, client = await fake_with(rate_limit_qps=2)
    async with client:
        task_id = await fake.create(APIYI)
        assert (await fake.query_raw(APIYI, task_id)).status_code == 200
        r = await fake.query_raw(APIYI, task_id)
        assert_fault(APIYI, r, "getTask", "rate_limit", "query")


# -- the journal --------------------------------------------------------------------------------
async def test_journal_records_the_scenario_of_each_exchange(fake: Fake) -> None:
    fake.backend.scenarios.add("throttle", match={"operation": "getTaskResult"}, times=1)
    task_id = await fake.create(JIEKOU, "fail; kind=moderation; at=0.6")
    assert (await fake.query_raw(JIEKOU, task_id)).status_code == 429
    assert (await fake.query_raw(JIEKOU, task_id)).status_code == 200
    assert (await fake.submit(JIEKOU, "slow")).status_code == 200
    assert (await fake.submit(JIEKOU, "explode")).status_code == 400
    entries = fake.backend.journal.entries(family="jiekou")
    assert [(e.operation, e.status, e.scenario) for e in entries] == [
        ("createWanT2vTask", 200, "fail; kind=moderation; at=0.6"),
        ("getTaskResult", 429, "throttle"),
        ("getTaskResult", 200, None),
        ("createWanT2vTask", 200, "slow"),
        ("createWanT2vTask", 400, None),
    ]
    assert entries[0].task_id == task_id
    assert (await fake.info(task_id))["scenario"] == "fail; kind=moderation; at=0.6"
    r = await fake.client.get("/_wanmock/journal", params={"family": "jiekou"})
    assert [e["scenario"] for e in r.json()["entries"]] == [e.scenario for e in entries]


# -- the pytest plugin: marker and fixture method ----------------------------------------------
def test_marker_scenarios_and_fixture_method(pytester, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - scenario: unavailable\n    match: {operation: getTask}\n"
                     "    times: 1\n", encoding="utf-8")
    pytester.makepyfile(
        f"""
        import httpx, pytest

        H = {{"Authorization": "Bearer sk-test", "X-DashScope-Async": "enable"}}
        BODY = {{"model": "wan2.6-t2v", "input": {{"prompt": "a cat"}},
                "parameters": {{"size": "1280*720"}}}}
        DS = "https://dashscope.aliyuncs.com/api/v1"
        CREATE = "/services/aigc/video-generation/video-synthesis"

        def wait(c, tid):
            for _ in range(20):
                out = c.get(f"/tasks/{{tid}}").json()["output"]
                if out["task_status"] in ("SUCCEEDED", "FAILED"):
                    return out
            raise AssertionError("never finished")

        @pytest.mark.wanmock(scenarios=[{{"scenario": "moderation",
                                          "match": {{"family": "dashscope"}}}}])
        def test_marker_rules(wanmock):
            with httpx.Client(base_url=DS, headers=H) as c:
                out = wait(c, c.post(CREATE, json=BODY).json()["output"]["task_id"])
            assert out["task_status"] == "FAILED" and out["code"] == "DataInspectionFailed"
            assert [r["applied"] for r in wanmock.scenarios()] == [1]

        @pytest.mark.wanmock(scenarios={str(rules)!r})
        def test_marker_file(wanmock):
            with httpx.Client(base_url=DS, headers=H) as c:
                tid = c.post(CREATE, json=BODY).json()["output"]["task_id"]
                assert c.get(f"/tasks/{{tid}}").status_code == 503
                assert wait(c, tid)["task_status"] == "SUCCEEDED"

        def test_fixture_method(wanmock):
            rid = wanmock.scenario("throttle", match={{"operation": "createVideoSynthesis"}},
                                   times=1, retry_after=7)
            assert rid.startswith("r")
            with httpx.Client(base_url=DS, headers=H) as c:
                first = c.post(CREATE, json=BODY)
                second = c.post(CREATE, json=BODY)
            assert first.status_code == 429 and first.headers["Retry-After"] == "7"
            assert first.json()["code"] == "Throttling"
            assert second.status_code == 200
            assert [e.scenario for e in wanmock.requests()] == ["throttle; retry_after=7", None]

        def test_fixture_method_job(wanmock):
            wanmock.scenario("fail; kind=moderation", at=0.5, match={{"family": "jiekou"}})
            with httpx.Client(base_url="https://api.novita.ai",
                              headers={{"Authorization": "Bearer sk_x"}}) as c:
                tid = c.post("/v3/async/wan-t2v", json={{"prompt": "a dog"}}).json()["task_id"]
                for _ in range(20):
                    task = c.get("/v3/async/task-result", params={{"task_id": tid}}).json()["task"]
                    if task["status"] == "TASK_STATUS_FAILED":
                        break
            assert task["reason"] == "The input image failed content moderation."
            wanmock.clear_scenarios()
            assert wanmock.scenarios() == []

        def test_rules_do_not_leak_between_tests(wanmock):
            assert wanmock.scenarios() == []

        @pytest.mark.wanmock(scenarios=[{{"scenario": "teleport"}}])
        def test_bad_marker_rules(wanmock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(["*teleport*"])


async def test_concurrency_wait_is_not_multiplied_by_slow() -> None:
    """`slow` multiplies the task's own times; the wait for a free slot is the other task's."""
    ref, c1 = await fake_with()
    fake, c2 = await fake_with(max_concurrent_tasks=1, concurrency_policy="queue")
    async with c1, c2:
        plans = []
        for f in (ref, fake):
            ids = [await f.create(DASHSCOPE), await f.create(DASHSCOPE, "slow; factor=3")]
            plans.append([(await f.info(t))["plan"] for t in ids])
        (ra, rb), (a, b) = plans
        assert a == ra
        wait = a["queue_s"] + a["run_s"]  # the slot frees when the first task ends
        assert b["queue_s"] == pytest.approx(rb["queue_s"] + wait)  # slow's own queue + the wait
        assert b["run_s"] == pytest.approx(rb["run_s"])


async def test_faulted_polls_still_count_as_polls_of_their_task() -> None:
    from mockserver.handle import WanMock

    app = create_app(families=["dashscope"], clock=ManualClock(), seed=4)
    handle = WanMock(app.state.backend)
    handle.scenario("unavailable", match={"operation": "getTask"}, times=1)
    headers = {"Authorization": "Bearer k", "X-DashScope-Async": "enable"}
    transport = httpx.ASGITransport(app=app)
    base = "https://dashscope.aliyuncs.com"
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        r = await c.post("/api/v1/services/aigc/video-generation/video-synthesis", headers=headers,
                         json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"}})
        tid = r.json()["output"]["task_id"]
        first = await c.get(f"/api/v1/tasks/{tid}", headers=headers)
        second = await c.get(f"/api/v1/tasks/{tid}", headers=headers)
    assert (first.status_code, second.status_code) == (503, 200)
    polls = handle.polls(tid)
    assert [(e.status, e.scenario) for e in polls] == [(503, "unavailable"), (200, None)]
    # the manual clock did not move between the two polls: the interval check sees both
    with pytest.raises(AssertionError, match="0.000 s apart"):
        handle.assert_poll_interval(1.0, tid)
