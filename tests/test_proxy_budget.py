"""`wanmock proxy --budget`: the budget cannot leak, for every family.

The upstream is a live fake on 127.0.0.1 that counts what reaches it (its own journal); the
families are the registry's, their submits drawn from their contracts (a new family is covered
by these tests as soon as it is registered). Every
submit the proxy forwards counts, whatever the contract judge thinks of its body; it is given
back only on a non-2xx answer; beyond the budget the proxy answers in the family's own quota
envelope, and that answer passes the family's contract.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from typing import Any

import httpx
import openai
import pytest
from hypothesis import Phase, find, settings

from mockserver.contracts import load
from mockserver.errors import ProviderError
from mockserver.families import bundled_names
from mockserver.providers.policy import Judging, policy_class
from mockserver.proxy import Proxy
from mockserver.proxy_budget import Budget
from mockserver.recording import Recorder
from mockserver.server import ThreadedMockServer, create_app
from mockserver.strategies import requests

KEY = "sk-budget-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
DASHSCOPE_ASYNC = {**AUTH, "X-DashScope-Async": "enable"}


@dataclass(frozen=True)
class Submit:
    """One family's submit operation as a client calls it, and bodies of every kind."""

    path: str
    operation: str
    headers: dict[str, str]
    bodies: dict[str, Any]


def _auth(family: str) -> dict[str, str]:
    """The credential header as the family reads it: the header its contract's security scheme
    names, in the first form (`Bearer k`, `Key k`, `Token k`, a bare key) the family's own
    policy accepts."""
    contracts = load()
    schemes = (contracts[family].document.get("components") or {}).get("securitySchemes") or {}
    names = [s["name"] for s in schemes.values()
             if s.get("type") == "apiKey" and s.get("in") == "header"]
    name = names[0] if names else "Authorization"
    policy = policy_class(family)(Judging(contracts))
    for form in (f"Bearer {KEY}", f"Key {KEY}", f"Token {KEY}", KEY):
        try:
            policy.read_key({name.lower(): form})
        except ProviderError:
            continue
        return {name: form}
    raise AssertionError(f"{family}: no credential form its policy reads")


# The first example Hypothesis draws is its simplest: no search, no shrinking needed.
FIRST = settings(max_examples=1, phases=[Phase.generate], database=None, derandomize=True)


@functools.cache
def submit_of(family: str) -> Submit:
    """A submit of `family` drawn from its contract and the catalogue alone, so a family added
    to the registry is covered with nothing written here: the simplest valid body
    (`strategies.requests`), the simplest body breaking one rule, and one that is not JSON;
    the required headers the contract's parameters fix (DashScope's X-DashScope-Async)."""
    contract = load()[family]
    op_id, valid = find(requests(family), lambda _: True, settings=FIRST)
    _, invalid, _ = find(requests(family, operation=op_id, valid=False), lambda _: True,
                         settings=FIRST)
    op = contract.operation(op_id)
    headers = _auth(family)
    for param in op.parameters:
        schema = param.get("schema") or {}
        if param.get("in") == "header" and param.get("required") and schema.get("enum"):
            headers[param["name"]] = schema["enum"][0]
    model = valid.get("model") if isinstance(valid, dict) else None
    path = re.sub(r"\{[^}]+\}", str(model or "x"), op.path)
    bodies: dict[str, Any] = {"valid": valid, "invalid": invalid, "not json": b"{not json"}
    return Submit(path, op_id, headers, bodies | EXTRA_BODIES.get(family, {}))


# Bodies beyond the drawn ones: new-api reads forms too; DashScope accepts a size the
# catalogue says fails later (a billed submit all the same).
EXTRA_BODIES: dict[str, dict[str, Any]] = {
    "newapi": {"form": "model=wan2.6-t2v&prompt=a%20form"},
    "dashscope": {"fails later": {"model": "wan2.6-t2v", "input": {"prompt": "a fox"},
                                  "parameters": {"size": "832*480"}},
                  "no input": {"model": "wan2.6-t2v"}},
}
FAMILIES = sorted(bundled_names())
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


def _shape(value: Any) -> Any:
    """A body's form: its keys all the way down, the words of its codes, types of the rest."""
    if isinstance(value, dict):
        return {k: v if k in ("code", "type", "reason", "status") else _shape(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


@functools.cache
def fakes_own_quota_answer(family: str) -> tuple[int, Any, bool]:
    """What the fake itself answers this submit under the `rate-limit` fault (status, body
    form, whether it says Retry-After): the answer the proxy's refusal must equal."""
    submit = submit_of(family)

    async def ask() -> httpx.Response:
        app = create_app(families=[family], clock="manual", seed=1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
            return await client.post(submit.path, json=submit.bodies["valid"], headers={
                **submit.headers, "X-Wanmock-Scenario": "rate-limit"})

    answer = asyncio.run(ask())
    return answer.status_code, _shape(answer.json()), "retry-after" in answer.headers


def assert_refusal_conforms(family: str, operation: str, answer: httpx.Response) -> None:
    """The local 429 is the family's quota answer as the fake words it, valid under the
    family's own contract, and says why (the budget), with a request id where the envelope
    has one."""
    contracts = load()
    op = contracts[family].operation(operation)
    assert answer.headers["x-wanmock-proxy"] == "budget"
    body = answer.json()
    recorder = Recorder(contracts)
    assert recorder.judge_response(op, answer.status_code, answer.headers["content-type"], body,
                                   "json", None) == []
    assert (answer.status_code, _shape(body), "retry-after" in answer.headers) == \
        fakes_own_quota_answer(family)
    assert answer.status_code == 429
    assert "budget of" in str(body)
    if "request_id" in body:  # DashScope's and apiyi's envelopes carry one: never null
        assert isinstance(body["request_id"], str) and body["request_id"]


@pytest.mark.parametrize("family", FAMILIES)
def test_budget_zero_lets_no_submit_through_whatever_the_body(counting, proxied, family):
    path, operation, headers, bodies = astuple(submit_of(family))
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


@pytest.mark.parametrize("family", FAMILIES)
def test_budget_two_forwards_exactly_two(counting, proxied, family):
    path, operation, headers, bodies = astuple(submit_of(family))
    proxy, server = proxied(2)
    answers = [post(server.url, path, headers, bodies["valid"]) for _ in range(4)]
    assert [a.is_success for a in answers] == [True, True, False, False], answers[0].text
    assert_refusal_conforms(family, operation, answers[-1])
    assert submits_seen(counting, family) == 2
    assert (proxy.spent, proxy.refused) == (2, 2)


def test_a_refused_answer_is_refunded_and_a_late_failure_is_not(counting, proxied):
    path, _, headers, bodies = astuple(submit_of("dashscope"))
    proxy, server = proxied(2)
    rejected = post(server.url, path, headers, bodies["no input"])  # 400: no job, refunded
    late = post(server.url, path, headers, bodies["fails later"])  # 200: a job, billed
    valid = post(server.url, path, headers, bodies["valid"])
    over = post(server.url, path, headers, bodies["valid"])
    assert [a.status_code for a in (rejected, late, valid, over)] == [400, 200, 200, 429]
    assert submits_seen(counting, "dashscope") == 3
    assert proxy.submits.summary()["families"]["dashscope"] == {
        "forwarded": 3, "refunded": 1, "refused": 1, "spent": 2}


def test_polls_lists_cancels_and_downloads_never_count(counting, proxied):
    path, _, headers, bodies = astuple(submit_of("dashscope"))
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


def test_a_synchronous_call_billed_per_call_counts(counting, proxied):
    """DashScope's wan2.2-s2v-detect (role `sync`) is billed per call, like a submit."""
    body = {"model": "wan2.2-s2v-detect", "input": {"image_url": "https://x.test/face.jpg"}}
    path = "/api/v1/services/aigc/image2video/face-detect"
    proxy, server = proxied(1)
    answers = [httpx.post(server.url + path, headers=AUTH, json=body) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429], answers[0].text
    assert len(counting.backend.journal.entries(operation="detectFace")) == 1
    assert proxy.submits.summary()["families"]["dashscope"] == {
        "forwarded": 1, "refunded": 0, "refused": 1, "spent": 1}


def test_fals_run_host_counts_like_a_submit(counting, proxied):
    """fal.run (fal-client `run`, role `sync`) makes a billed request and waits for it: the
    budget counts it; it reaches a fake target under the fake's `/fal.run` mount."""
    path = "/fal.run/fal-ai/wan/v2.2-a14b/text-to-video"
    headers = {"Authorization": f"Key {KEY}"}
    proxy, server = proxied(1)
    answers = [httpx.post(server.url + path, headers=headers, json={"prompt": "a fox"},
                          timeout=30) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429], answers[0].text
    assert ".mp4" in answers[0].json()["video"]["url"]  # the run's answer is its result
    assert answers[1].headers["x-wanmock-proxy"] == "budget"
    assert [e.operation for e in counting.backend.journal.entries(family="fal")] == [
        "runAppVersionTask"]
    assert proxy.submits.summary()["families"]["fal"] == {
        "forwarded": 1, "refunded": 0, "refused": 1, "spent": 1}


def test_a_mounted_host_goes_to_its_own_provider_host_and_as_sent_to_a_fake():
    contracts = load()
    run = contracts["fal"].operation("runAppVersionTask")
    real = Proxy({"fal": "https://queue.fal.run"}, budget=0, echo=None, contracts=contracts)
    assert real.upstream_url("https://queue.fal.run", run, "/fal.run/fal-ai/wan/v2.7/x") == (
        "https://fal.run/fal-ai/wan/v2.7/x")
    queue = contracts["fal"].operation("submitWan27T2v")
    assert real.upstream_url("https://queue.fal.run", queue, "/fal-ai/wan/v2.7/text-to-video"
                             ) == "https://queue.fal.run/fal-ai/wan/v2.7/text-to-video"
    # A fake (or any host not the family's) serves the mount itself: the path goes as sent.
    assert real.upstream_url("http://127.0.0.1:9000", run, "/fal.run/fal-ai/x") == (
        "http://127.0.0.1:9000/fal.run/fal-ai/x")


def test_the_writes_that_never_count_are_these():
    """Every write a contract has is billable (`BILLABLE_ROLES`) but these: cancels and file
    uploads. A new write operation fails here until someone decides whether it costs money
    (fal's run host was once `content`, and the proxy forwarded it past a budget of 0)."""
    from mockserver.proxy_budget import BILLABLE_ROLES

    free = sorted((family, op.operation_id) for family in FAMILIES
                  for op in load()[family].operations.values()
                  if op.method.upper() in ("POST", "PUT", "PATCH")
                  and op.role not in BILLABLE_ROLES)
    assert free == [("dashscope", "cancelTask"), ("fal", "cancelRequest"),
                    ("fal", "createStorageToken"), ("fal", "uploadFile"),
                    ("replicate", "cancelPrediction"), ("replicate", "createFile")]


def test_a_post_no_contract_knows_counts_too(counting, proxied):
    proxy, server = proxied(0)
    answer = httpx.post(server.url + "/api/v1/services/aigc/video-generation/new-thing",
                        headers=DASHSCOPE_ASYNC, json={"model": "wan9"})
    assert answer.status_code == 429
    assert answer.json()["code"] == "Throttling.RateQuota"  # the owning family's envelope
    assert not counting.backend.journal.entries()
    assert proxy.submits.summary()["families"]["-"]["refused"] == 1


def test_guard_keeps_rejected_bodies_local_and_the_budget_holds(counting, proxied):
    path, operation, headers, bodies = astuple(submit_of("dashscope"))
    proxy, server = proxied(0, guard=True)
    guarded = post(server.url, path, headers, bodies["no input"])
    refused = post(server.url, path, headers, bodies["valid"])
    assert guarded.status_code == 400 and guarded.headers["x-wanmock-proxy"] == "guard"
    assert_refusal_conforms("dashscope", operation, refused)
    assert submits_seen(counting, "dashscope") == 0


def test_guard_with_a_budget_forwards_valid_submits_up_to_it(counting, proxied):
    path, operation, headers, bodies = astuple(submit_of("dashscope"))
    proxy, server = proxied(2, guard=True)
    answers = [post(server.url, path, headers, body)
               for body in (bodies["no input"], bodies["valid"], bodies["valid"],
                            bodies["valid"])]
    assert [a.headers.get("x-wanmock-proxy") for a in answers] == [
        "guard", None, None, "budget"]  # the two forwarded are the provider's own answers
    assert [a.status_code for a in answers] == [400, 200, 200, 429]
    assert_refusal_conforms("dashscope", operation, answers[-1])
    assert submits_seen(counting, "dashscope") == 2
    assert proxy.submits.summary()["families"]["dashscope"] == {
        "forwarded": 2, "refunded": 0, "refused": 1, "spent": 2}


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
