"""Nothing a client sends makes the fake answer 5xx or leave its family's error envelope.

A Hypothesis test per contract operation: malformed bodies (random bytes, JSON of any type, deep
nesting, huge strings, wrong types in known fields, mutated valid bodies), random headers and
query strings, at the operation's real path in the in-process app. The only 5xx the contracts
document for client input are new-api's: 503 for a model no channel serves (its distributor) and
500 `build_request_failed` for a request its Ali adaptor cannot convert (relay_task.go, audit F13).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from mockserver.app import create_app
from mockserver.contracts import Contract, Operation, deref, load
from mockserver.core.clock import ManualClock

pytestmark = pytest.mark.contract

CONTRACTS = load()
OPS: list[tuple[str, str]] = [(c.family, op_id) for c in CONTRACTS for op_id in c.operations]
GOOD_KEY = "Bearer sk-wanmock-test-0001"
# fal reads `Authorization: Key <key>` (contracts/fal.yaml decision authorization).
FAMILY_KEYS = {"fal": "Key sk-wanmock:test-0001"}
BASE = "http://testserver"


def examples_of(op: Operation) -> list[Any]:
    """The contract's request examples for an operation (its valid bodies)."""
    document = CONTRACTS[op.family].document
    media = ((op.raw.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    found = [deref(document, e) for e in (media.get("examples") or {}).values()]
    out = [e["value"] for e in found if isinstance(e, Mapping) and "value" in e]
    if "example" in media:
        out.append(media["example"])
    return out


# -- the app, with some tasks in every state --------------------------------------------------
class World:
    app: Starlette | None = None
    known_ids: dict[str, list[str]] = {}  # family -> ids of its tasks ("any": every id)


def _ids_in(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k in ("task_id", "id", "request_id") and isinstance(v, str):
                found.append(v)
            found.extend(_ids_in(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(_ids_in(v))
    return found


async def _seed(app: Starlette) -> dict[str, list[str]]:
    ids: dict[str, set[str]] = {"any": set()}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        for family, op_id in OPS:
            op = CONTRACTS.operation(family, op_id)
            if op.role != "submit":
                continue
            headers = {"Authorization": FAMILY_KEYS.get(family, GOOD_KEY),
                       "X-DashScope-Async": "enable"}
            for body in examples_of(op)[:2]:
                r = await c.request(op.method, op.path, json=body, headers=headers)
                if r.is_success:  # 200, Replicate's 201, OpenRouter's 202
                    found = _ids_in(r.json())
                    ids.setdefault(family, set()).update(found)
                    ids["any"].update(found)
    return {family: sorted(found) for family, found in ids.items()}


def world() -> World:
    if World.app is None:
        app = create_app(clock=ManualClock(), seed=1)
        # A rule that never applies: scenario matching reads every submit's model and
        # prompt (`request_info`) before the body is judged.
        app.state.backend.scenarios.add("unavailable", match={"prompt": "never-in-a-prompt"})
        World.known_ids = asyncio.run(_seed(app))
        missing = {c.family for c in CONTRACTS} - set(World.known_ids)
        assert not missing, f"no example body was accepted for {missing}"
        # Finish the seeded tasks (some succeed, some fail); later submissions stay queued.
        app.state.backend.clock.advance(3600)
        World.app = app
    return World


# -- strategies -------------------------------------------------------------------------------
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(10**30), 10**30)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                               max_size=4),
    max_leaves=15,
)


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "dict":
        return '{"a":' * depth + "1" + "}" * depth
    return '{"model":"wan2.6-t2v","input":' + '{"x":[' * depth + "]}" * depth + "}"


deep_bodies = st.builds(nested, st.integers(1, 5000), st.sampled_from(["list", "dict", "mixed"]))
huge_bodies = st.builds(
    lambda n, k: json.dumps({"model": "wan2.6-t2v", "prompt": "x" * n,
                             "input": {"prompt": "y" * n}}) if k else "z" * n,
    st.sampled_from([70_000, 900_000, 1_100_000, 3_000_000]), st.booleans(),
)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) place in a JSON value."""
    out: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((value, k))
            out.extend(_slots(v))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((value, i))
            out.extend(_slots(v))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: list[Any]) -> Any:
    """A valid body with a few random edits: a field dropped, retyped, wrapped or added."""
    body = copy.deepcopy(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(body)
        if not slots:
            return body
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["drop", "retype", "wrap", "add", "stringify",
                                       "numeric"]))
        if action == "drop":
            del container[key]
        elif action == "retype":
            container[key] = draw(json_values)
        elif action == "wrap":
            container[key] = draw(st.sampled_from([[container[key]], {"value": container[key]}]))
        elif action == "stringify":
            container[key] = json.dumps(container[key])
        elif action == "numeric":  # strings that are numbers to some readers and not others
            container[key] = draw(NUMERIC_TEXT)
        elif isinstance(container, dict):
            container[draw(st.text(max_size=10))] = draw(json_values)
        else:
            container.append(draw(json_values))
    return body


NUMERIC_TEXT = st.sampled_from(["²", "٥", "--5", " 5 ", "1e3", "0x10", "5.0", "-0", "+5",
                                "9" * 30, "½", "５"])


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def weighted(likely: st.SearchStrategy[Any], other: st.SearchStrategy[Any],
             tenths: int) -> st.SearchStrategy[Any]:
    """`likely` about `tenths`/10 of the time: enough well-formed requests to reach deep code."""
    return st.integers(0, 9).flatmap(lambda i: likely if i < tenths else other)


def bodies(op: Operation) -> st.SearchStrategy[bytes]:
    valid = examples_of(op) or [{}]
    malformed = st.one_of(
        st.just(b""),
        st.binary(max_size=200),
        st.text(max_size=100).map(str.encode),
        json_values.map(dumps),
        deep_bodies.map(str.encode),
        huge_bodies.map(str.encode),
    )
    return weighted(st.one_of(mutated(valid).map(dumps), st.sampled_from(valid).map(dumps)),
                    malformed, 5)


printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40).map(
    lambda s: s.encode("latin-1"))
header_values = printable | latin1
authorizations = weighted(st.just(GOOD_KEY), st.one_of(
    st.none(),
    st.sampled_from(["", "Bearer", "Bearer ", "bearer sk-x", "Basic dXNlcjpwYXNz", "sk-abc",
                     "Bearer  sk-a b", "Token sk-abc", "Bearer sk-wanmock-test-0002"]),
    header_values, printable.map(lambda s: "Bearer " + s),
), 7)
content_types = weighted(st.sampled_from([None, "application/json"]), st.one_of(
    st.sampled_from(["application/json; charset=utf-8", "text/plain", "",
                     "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
                     "APPLICATION/JSON", "application/problem+json"]),
    header_values,
), 7)
async_headers = weighted(st.just("enable"), st.one_of(
    st.none(), st.sampled_from(["disable", "ENABLE", " enable ", ""]), header_values), 8)
extra_headers = st.dictionaries(
    st.text(string.ascii_letters + "-", min_size=1, max_size=15).filter(
        lambda s: s.lower() not in ("content-length", "host", "transfer-encoding")),
    header_values, max_size=3,
)

ID_ALPHABET = string.ascii_letters + string.digits + "-_.~:@!$&'()*+,;= %é中"
# ("own", i): a task of the operation's family; ("any", i): any task; ("text", s): anything.
known_refs = st.tuples(st.sampled_from(["own", "own", "any"]), st.integers(0, 10**6))
path_ids = weighted(known_refs, st.text(ID_ALPHABET, min_size=1, max_size=60).filter(
    lambda s: s.strip(".") != "").map(lambda s: ("text", s)), 7)


def queries(op: Operation) -> st.SearchStrategy[list[tuple[str, Any]]]:
    names = [p["name"] for p in op.parameters if p.get("in") == "query"] + ["x", "task_id"]
    values = st.one_of(st.text(max_size=30), st.integers(-(10**20), 10**20).map(str),
                       known_refs, known_refs,
                       st.sampled_from(["", "0", "-1", "1", "100", "101", "SUCCEEDED",
                                        "20260101000000", "1767225600000", "abc"]))
    pairs = st.lists(st.tuples(st.sampled_from(names) | st.text(max_size=10), values),
                     max_size=5)
    if "task_id" in names[:-2]:  # an operation that reads the task id from the query
        own = st.tuples(st.just("task_id"), known_refs)
        return weighted(st.builds(lambda first, rest: [first, *rest], own, pairs), pairs, 6)
    return pairs


def resolve(family: str, value: Any) -> str:
    """A drawn id reference as an id of a task the app knows (or the text as drawn)."""
    if isinstance(value, tuple):
        kind, i = value
        if kind == "text":
            return str(i)
        ids = World.known_ids[family if kind == "own" else "any"]
        return ids[i % len(ids)]
    return str(value)


# -- what a good error looks like -------------------------------------------------------------
def shape(template: Any) -> Any:
    if isinstance(template, Mapping):
        return {k: shape(v) for k, v in template.items()}
    if template == "{status}":
        return int
    if isinstance(template, str):
        return str
    return template  # None, {} ...


def fits(body: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return (isinstance(body, dict) and set(body) == set(expected)
                and all(fits(body[k], v) for k, v in expected.items()))
    if expected is int:
        return isinstance(body, int) and not isinstance(body, bool)
    if expected is str:
        return isinstance(body, str)
    return body == expected


def envelopes(contract: Contract, op: Operation) -> dict[str, Any]:
    """The error shapes an operation may answer with, by envelope name."""
    own = op.raw.get("x-wanmock-envelope")
    if own is not None and contract.family != "fal":
        return {"operation": shape(own)}
    # fal's cancel words its answers in its own {status} and its errors in {detail}
    out = {name: shape(t) for name, t in contract.envelopes.items()}
    if own is not None:
        out["operation"] = shape(own)
    return out


def message_of(body: Mapping[str, Any]) -> Any:
    if "error" in body:
        return body["error"]["message"]
    return body.get("message", body.get("detail"))  # fal and Replicate word it `detail`


def check(family: str, op: Operation, response: httpx.Response) -> None:
    status = response.status_code
    contract = CONTRACTS[family]
    where = f"{family} {op.operation_id}: {status} {response.text[:300]!r}"
    if status < 400:
        streamed = response.headers.get("content-type", "").startswith("text/event-stream")
        if op.role != "content" and not streamed:  # fal's status stream is events, not JSON
            response.json()
        return
    body = response.json()
    if (status == 422 and isinstance(body, dict) and isinstance(body.get("detail"), list)
            and "detail" in contract.envelopes["default"]):
        # fal's model errors: pydantic's item list under `detail` (contracts/fal.yaml)
        assert body["detail"] and all(isinstance(i, dict) and isinstance(i.get("msg"), str)
                                      for i in body["detail"]), where
        return
    if family == "replicate" and status == 422 and "invalid_fields" in body:
        # Replicate's validation problems list each field besides the problem's own keys.
        assert body["invalid_fields"] and all(
            isinstance(i, dict) and isinstance(i.get("description"), str)
            for i in body["invalid_fields"]), where
        body = {k: v for k, v in body.items() if k != "invalid_fields"}
    allowed = envelopes(contract, op)
    matched = [name for name, expected in allowed.items() if fits(body, expected)]
    assert matched, f"{where} is not in any of the envelopes {allowed}"
    message = message_of(body)
    assert isinstance(message, str) and message.strip(), where
    if family == "jiekou":
        assert body["code"] == status, where
    if family == "newapi" and status == 503:
        # The documented 5xx: new-api's distributor has no channel for an unknown model.
        assert op.role == "submit" and matched == ["auth"], where
        assert body["error"]["code"] == "model_not_found", where
        return
    if family == "newapi" and status == 500 and body.get("code") == "build_request_failed":
        # The other documented 5xx: the relay could not build the DashScope request.
        assert op.role == "submit" and matched == ["default"], where
        assert body["message"].startswith("convert_to_ali_request_failed: "), where
        return
    assert status < 500, f"server error: {where}"


# -- the test ---------------------------------------------------------------------------------
async def send(app: Starlette, method: str, url: str, params: list[tuple[str, str]],
               headers: dict[str, Any], content: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        return await c.request(method, url, params=params, headers=headers, content=content)


def _alike(family: str, operation_id: str) -> bool:
    """A submit after a family's first two, where one handler answers many endpoints that
    differ only in their schemas (fal's 32, Replicate's model paths)."""
    submits = [o for o in CONTRACTS[family].by_role("submit")]
    return CONTRACTS.operation(family, operation_id).role == "submit" and operation_id not in {
        o.operation_id for o in submits[:2]}


# The profile's examples (40) per operation, but 10 for the alike submits, which get 40 under
# `-m thorough` (.ci/run runs both).
ALIKE = [(f, o) for f, o in OPS if _alike(f, o)]


@pytest.mark.parametrize(("family", "operation_id"), OPS, ids=[f"{f}.{o}" for f, o in OPS])
def test_no_input_gives_a_server_error_or_a_foreign_envelope(family: str,
                                                              operation_id: str) -> None:
    check_operation(family, operation_id, 10 if (family, operation_id) in ALIKE else None)


@pytest.mark.thorough
@pytest.mark.parametrize(("family", "operation_id"), ALIKE,
                         ids=[f"{f}.{o}" for f, o in ALIKE])
def test_no_input_to_alike_submits_gives_a_server_error_or_a_foreign_envelope(
        family: str, operation_id: str) -> None:
    check_operation(family, operation_id, 40)


def check_operation(family: str, operation_id: str, examples: int | None) -> None:
    op = CONTRACTS.operation(family, operation_id)
    w = world()

    @given(body=bodies(op), auth=authorizations, ctype=content_types, dsasync=async_headers,
           extra=extra_headers, path_id=path_ids, query=queries(op))
    @example(body=b"[" * 100_000, auth=GOOD_KEY, ctype="application/json", dsasync="enable",
             extra={}, path_id=("own", 0), query=[])
    @example(body=b'{"model": "wan2.6-t2v", "input": {"prompt": NaN}, "duration": Infinity}',
             auth=GOOD_KEY, ctype="application/json", dsasync="enable", extra={},
             path_id=("any", 1), query=[])
    def run(body: bytes, auth: Any, ctype: Any, dsasync: Any, extra: dict[str, Any],
            path_id: tuple[str, Any], query: list[tuple[str, Any]]) -> None:
        ident = resolve(family, path_id)
        path = op.path
        for name in ("task_id", "video_id", "request_id", "prediction_id", "file_id"):
            path = path.replace("{" + name + "}", quote(ident, safe=""))
        params = [(k, resolve(family, v)) for k, v in query]
        headers: dict[str, Any] = dict(extra)
        for name, v in (("Authorization", auth), ("Content-Type", ctype),
                        ("X-DashScope-Async", dsasync)):
            if v is not None:
                headers[name] = v
        assert w.app is not None
        response = asyncio.run(send(w.app, op.method, path, params, headers, body))
        check(family, op, response)

    if examples is not None:
        run = settings(max_examples=examples)(run)
    run()


SUBMITS = [(c.family, c.by_role("submit")[0].operation_id) for c in CONTRACTS
           if c.by_role("submit") and examples_of(c.by_role("submit")[0])]


@pytest.mark.parametrize(("family", "operation_id"), SUBMITS,
                         ids=[f"{f}.{o}" for f, o in SUBMITS])
@pytest.mark.parametrize("text", ["²", "--5", "٥", "9" * 5000, "0" * 5000 + "5"],
                         ids=["sup2", "signs", "arabic", "digits5000", "zeros5000"])
def test_numeric_text_in_integer_fields_is_no_server_error(family: str, operation_id: str,
                                                          text: str) -> None:
    """Every integer field of a contract example as text that str.isdigit calls a number
    and int() refuses ("²"), or that a sign check passes ("--5"): scenario matching and
    judging read it as the gateways do (it was a 500 in every family while a rule was set)."""
    op = CONTRACTS.operation(family, operation_id)
    body = copy.deepcopy(examples_of(op)[0])
    for name in ("duration", "seed"):
        for path in op.spec_map.get(name) or []:
            if not isinstance(path, str):
                continue
            *parents, last = path.split(".")
            node = body
            for part in parents:  # the example's objects, made where it has none
                node = node.setdefault(part, {}) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node[last] = text
    headers = {"Authorization": FAMILY_KEYS.get(family, GOOD_KEY), "X-DashScope-Async": "enable",
               "Content-Type": "application/json"}
    response = asyncio.run(send(world().app, op.method, op.path, [], headers, dumps(body)))
    check(family, op, response)


NUMBERISH = ["²", "٥", "9" * 5000, "9" * 5000 + "s", "1e400", "-0", "NaN"]
PARAMETERS = [(c.family, op.operation_id, p["in"], p["name"]) for c in CONTRACTS
              for op in c.operations.values() for p in op.parameters
              if p.get("in") in ("query", "header")]


@pytest.mark.parametrize(("family", "operation_id", "where", "name"), PARAMETERS,
                         ids=[f"{f}.{o}.{w}.{n}" for f, o, w, n in PARAMETERS])
def test_number_like_parameter_values_are_no_server_error(family: str, operation_id: str,
                                                         where: str, name: str) -> None:
    """Every query and header parameter a contract declares, given text a number reader can
    trip on (a digit int() refuses, another script's digit, 5,000 digits, overflow, NaN), in
    an otherwise well-formed request."""
    op = CONTRACTS.operation(family, operation_id)
    app = world().app
    body = dumps(examples_of(op)[0]) if examples_of(op) else b""
    path = op.path
    for param in ("task_id", "video_id", "request_id", "prediction_id", "file_id"):
        path = path.replace("{" + param + "}", World.known_ids[family][0])
    path = re.sub(r"\{[^}]+\}", "x", path)
    for text in NUMBERISH:
        headers: dict[str, Any] = {"Authorization": FAMILY_KEYS.get(family, GOOD_KEY),
                                   "X-DashScope-Async": "enable",
                                   "Content-Type": "application/json"}
        params: list[tuple[str, Any]] = []
        if where == "header":
            headers[name] = text.encode("utf-8")
        else:
            params.append((name, text))
        check(family, op, asyncio.run(send(app, op.method, path, params, headers, body)))


@pytest.mark.parametrize("operation_id", ["createVideoGeneration", "createVideo"])
def test_the_documented_5xx_are_newapi_503_and_500(operation_id: str) -> None:
    """The 5xx the check above lets through really happen, each in its envelope."""
    op = CONTRACTS.operation("newapi", operation_id)
    w = world()
    assert w.app is not None
    body = dumps({"model": "wan9.9-nosuch", "prompt": "a cat"})
    response = asyncio.run(send(w.app, op.method, op.path, [],
                                {"Authorization": GOOD_KEY, "Content-Type": "application/json"},
                                body))
    assert response.status_code == 503, response.text
    check("newapi", op, response)
    # A t2v size without `*` cannot be converted: 500, as new-api answers (audit F13).
    assert w.app.state.backend.options.newapi_build_error_status == 500
    response = asyncio.run(send(w.app, op.method, op.path, [],
                                {"Authorization": GOOD_KEY, "Content-Type": "application/json"},
                                dumps({"model": "wan2.6-t2v", "prompt": "a", "size": "720x"})))
    assert response.status_code == 500, response.text
    assert response.json()["code"] == "build_request_failed"
    check("newapi", op, response)
