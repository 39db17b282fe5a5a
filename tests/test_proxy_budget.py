"""`wanmock proxy --budget`: the budget cannot leak, for every family.

The upstream is a live fake on 127.0.0.1 that counts what reaches it (its own journal). Every
submit the proxy forwards counts, whatever the contract judge thinks of its body; it is given
back only on a non-2xx answer; beyond the budget the proxy answers in the family's own quota
envelope, and that answer passes the family's contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from mockserver.contracts import load
from mockserver.proxy import Proxy
from mockserver.proxy_budget import Budget
from mockserver.recording import Recorder
from mockserver.server import ThreadedMockServer

KEY = "sk-budget-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
DASHSCOPE_ASYNC = {**AUTH, "X-DashScope-Async": "enable"}
# family -> (submit path, operation, headers, {kind of body: body})
SUBMITS: dict[str, tuple[str, str, dict[str, str], dict[str, Any]]] = {
    "dashscope": (
        "/api/v1/services/aigc/video-generation/video-synthesis", "createVideoSynthesis",
        DASHSCOPE_ASYNC,
        {"valid": {"model": "wan2.6-t2v", "input": {"prompt": "a fox"},
                   "parameters": {"size": "1280*720"}},
         "invalid": {"model": "wan2.6-t2v"},
         # accepted by DashScope, failed later: a billed submit all the same
         "fails later": {"model": "wan2.6-t2v", "input": {"prompt": "a fox"},
                         "parameters": {"size": "832*480"}},
         "not json": b"{not json"}),
    "apiyi": (
        "/wan/api/v1/services/aigc/video-generation/video-synthesis", "createVideoSynthesis",
        DASHSCOPE_ASYNC,
        {"valid": {"model": "wan2.7-t2v", "input": {"prompt": "a kite"}},
         "invalid": {"input": {"prompt": "a kite"}},
         "not json": b"[1,"}),
    "jiekou": (
        "/v3/async/wan-t2v", "createWanT2vTask", AUTH,
        {"valid": {"prompt": "a comet", "width": 1280, "height": 720},
         "invalid": {"width": 1280},
         "not json": b"prompt=a comet"}),
    "newapi": (
        "/v1/video/generations", "createVideoGeneration", AUTH,
        {"valid": {"model": "wan2.6-t2v", "prompt": "a lighthouse", "size": "1280*720"},
         "invalid": {"prompt": "no model"},
         "form": "model=wan2.6-t2v&prompt=a%20form"}),
}
pytestmark = [pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
              pytest.mark.usefixtures("loopback_only")]


@pytest.fixture(scope="module")
def upstream(instant_upstream) -> ThreadedMockServer:
    return instant_upstream  # tests/conftest.py


@pytest.fixture
def counting(upstream) -> ThreadedMockServer:
    upstream.backend.reset()
    return upstream


def submits_seen(upstream: ThreadedMockServer, family: str) -> int:
    """What reached the provider: every submit request in its journal, accepted or not."""
    contract = upstream.backend.contracts[family]
    return sum(1 for e in upstream.backend.journal.entries(family=family)
               if e.operation and contract.operation(e.operation).role == "submit")


@pytest.fixture(scope="module")
def _proxy(upstream) -> Iterator[tuple[Proxy, ThreadedMockServer]]:
    proxy = Proxy(upstream.url, budget=0, echo=None)
    with ThreadedMockServer(app=proxy.app()) as server:
        yield proxy, server


@pytest.fixture
def proxied(_proxy, counting):
    """`proxied(budget, guard=False)`: the module's proxy with a fresh budget."""

    def configure(budget: int | None, *, guard: bool = False) -> tuple[Proxy, Any]:
        proxy, server = _proxy
        proxy.budget, proxy.guard, proxy.submits = budget, guard, Budget(budget)
        proxy.local_tasks.clear()
        return proxy, server

    return configure


def post(url: str, path: str, headers: dict[str, str], body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(url + path, headers={**headers, "Content-Type": "application/json"},
                          content=body)
    if isinstance(body, str):
        return httpx.post(url + path, content=body.encode(), headers={
            **headers, "Content-Type": "application/x-www-form-urlencoded"})
    return httpx.post(url + path, headers=headers, json=body)


def assert_refusal_conforms(family: str, operation: str, answer: httpx.Response) -> None:
    """The local 429 is the family's quota answer, valid under its own contract."""
    contracts = load()
    contract = contracts[family]
    op = contract.operation(operation)
    assert answer.status_code == 429, answer.text
    assert answer.headers["x-wanmock-proxy"] == "budget"
    body = answer.json()
    recorder = Recorder(contracts)
    assert recorder.judge_response(op, 429, answer.headers["content-type"], body, "json",
                                   None) == []
    quota = contract.extensions.faults["rate_limit"]
    shapes = [set(t) for t in contract.envelopes.values() if isinstance(t, dict)]
    assert any(shape <= set(body) for shape in shapes), body
    assert quota.code in (body.get("code"), body.get("reason"), (body.get("error") or {}).get(
        "code")), body
    assert "budget of" in str(body)
    if "request_id" in body:  # DashScope's and apiyi's envelopes carry one: never null
        assert isinstance(body["request_id"], str) and body["request_id"]


@pytest.mark.parametrize("family", sorted(SUBMITS))
def test_budget_zero_lets_no_submit_through_whatever_the_body(counting, proxied, family):
    path, operation, headers, bodies = SUBMITS[family]
    proxy, server = proxied(0)
    for kind, body in bodies.items():
        answer = post(server.url, path, headers, body)
        assert answer.status_code == 429, (kind, answer.text)
        assert_refusal_conforms(family, operation, answer)
    status = httpx.get(server.url + "/_wanmock/proxy").json()["budget"]
    assert submits_seen(counting, family) == 0
    assert status["families"][family] == {"forwarded": 0, "refunded": 0,
                                          "refused": len(bodies), "spent": 0}
    assert (status["spent"], status["refused"]) == (0, len(bodies))


@pytest.mark.parametrize("family", sorted(SUBMITS))
def test_budget_two_forwards_exactly_two(counting, proxied, family):
    path, operation, headers, bodies = SUBMITS[family]
    proxy, server = proxied(2)
    answers = [post(server.url, path, headers, bodies["valid"]) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert submits_seen(counting, family) == 2
    assert (proxy.spent, proxy.refused) == (2, 2)


def test_a_refused_answer_is_refunded_and_a_late_failure_is_not(counting, proxied):
    path, _, headers, bodies = SUBMITS["dashscope"]
    proxy, server = proxied(2)
    rejected = post(server.url, path, headers, bodies["invalid"])  # 400: no job, refunded
    late = post(server.url, path, headers, bodies["fails later"])  # 200: a job, billed
    valid = post(server.url, path, headers, bodies["valid"])
    over = post(server.url, path, headers, bodies["valid"])
    assert [a.status_code for a in (rejected, late, valid, over)] == [400, 200, 200, 429]
    assert submits_seen(counting, "dashscope") == 3
    assert proxy.submits.summary()["families"]["dashscope"] == {
        "forwarded": 3, "refunded": 1, "refused": 1, "spent": 2}


def test_polls_lists_cancels_and_downloads_never_count(counting, proxied):
    path, _, headers, bodies = SUBMITS["dashscope"]
    proxy, server = proxied(1)
    with httpx.Client(base_url=server.url, headers=DASHSCOPE_ASYNC) as c:
        task_id = c.post(path, json=bodies["valid"]).json()["output"]["task_id"]
        for _ in range(5):
            done = c.get(f"/api/v1/tasks/{task_id}").json()
        c.get("/api/v1/tasks")
        c.post(f"/api/v1/tasks/{task_id}/cancel")
        video = httpx.get(done["output"]["video_url"])
    assert video.status_code == 200
    assert (proxy.spent, proxy.refused) == (1, 0)


def test_a_post_no_contract_knows_counts_too(counting, proxied):
    proxy, server = proxied(0)
    answer = httpx.post(server.url + "/api/v1/services/aigc/video-generation/new-thing",
                        headers=DASHSCOPE_ASYNC, json={"model": "wan9"})
    assert answer.status_code == 429
    assert answer.json()["code"] == "Throttling.RateQuota"  # the owning family's envelope
    assert not counting.backend.journal.entries()
    assert proxy.submits.summary()["families"]["-"]["refused"] == 1


def test_guard_keeps_rejected_bodies_local_and_the_budget_holds(counting, proxied):
    path, operation, headers, bodies = SUBMITS["dashscope"]
    proxy, server = proxied(0, guard=True)
    guarded = post(server.url, path, headers, bodies["invalid"])
    refused = post(server.url, path, headers, bodies["valid"])
    assert guarded.status_code == 400 and guarded.headers["x-wanmock-proxy"] == "guard"
    assert_refusal_conforms("dashscope", operation, refused)
    assert submits_seen(counting, "dashscope") == 0


@pytest.mark.parametrize("budget", [0, 2])
def test_openai_sdk_multipart_submits_count(counting, proxied, budget):
    proxy, server = proxied(budget)
    created, refused = [], 0
    with openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        for _ in range(3):
            try:  # the SDK's default: multipart/form-data
                created.append(sdk.videos.create(model="wan2.6-t2v", prompt="a lighthouse",
                                                 seconds="5", size="1280*720"))
            except openai.RateLimitError:
                refused += 1
    assert (len(created), refused) == (budget, 3 - budget)
    assert submits_seen(counting, "newapi") == budget
    assert proxy.submits.summary()["families"]["newapi"]["forwarded"] == budget
