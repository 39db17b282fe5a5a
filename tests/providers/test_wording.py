"""Rejections in each provider's own words (audit F08), and JSON its parser refuses.

One table per family: a schema violation of each kind (required, type, enum, range, pattern,
too long) over HTTP, with the exact message the family answers. No message is a Python repr or
a validator's sentence, and no message echoes more than `VALUE_LIMIT` characters of a value.
Then NaN, Infinity and -Infinity, which Python's `json` reads and the providers' parsers refuse,
each answered with the family's own invalid-body error (audit, "one more WRONG").
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.contracts import load
from mockserver.core.clock import ManualClock
from mockserver.wording import VALUE_LIMIT, render_list, render_value

pytestmark = pytest.mark.anyio

HEADERS = {"Authorization": "Bearer sk-test", "X-DashScope-Async": "enable"}
DS = "/api/v1/services/aigc/video-generation/video-synthesis"
APIYI = "/wan" + DS
T2V21 = "/v3/async/wan-t2v"
I2V26 = "/v3/async/wan2.6-i2v"
NEWAPI = "/v1/video/generations"
DS_GENERIC = ("Required parameter({}) missing or invalid, please check the request "
              "parameters.")
SIZES = ("832*480, 480*832, 624*624, 1280*720, 720*1280, 960*960, 1088*832, 832*1088, "
         "1920*1080, 1080*1920, 1440*1440, 1632*1248, 1248*1632")
# A repr of a request value: 'five', {'a': ...}, ['720P', ...] (jsonschema and str() write them).
REPR = re.compile(r"'[^']*'|\{'|\['")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def app() -> Any:
    # Words one rejection after another at one moment of a manual clock: DashScope's
    # documented limits (decision rate-limits) would answer 429 long before the last.
    return create_app(clock=ManualClock(), seed=1, dashscope_rate_limits="off")


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://x") as c:
        yield c


def _t2v(**parameters: Any) -> dict[str, Any]:
    return {"model": "wan2.6-t2v", "input": {"prompt": "a cat"}, "parameters": parameters}


def _clean(message: str) -> None:
    """No repr, no validator sentence, no long echo."""
    assert not REPR.search(message), message
    for phrase in ("is not of type", "is not one of", "does not match", "is too long",
                   "is a required property", "is greater than the maximum"):
        assert phrase not in message, message
    assert "x" * (VALUE_LIMIT + 1) not in message, message


DASHSCOPE_CASES = [
    ("required", {"input": {"prompt": "a"}}, "BadRequest.EmptyModel",
     'Required parameter "model" missing from request.'),
    ("required-input", {"model": "wan2.6-t2v"}, "BadRequest.EmptyInput",
     "Required input parameter missing from request."),
    ("type", _t2v(duration="five"), "InvalidParameter", DS_GENERIC.format("parameters.duration")),
    ("type-object", {"model": "wan2.6-t2v", "input": [1, 2]}, "InvalidParameter",
     DS_GENERIC.format("input")),
    ("type-body", [1, 2], "BadRequest.IllegalInput", "The input parameter requires json format."),
    ("enum", _t2v(shot_type="triple"), "InvalidParameter",
     DS_GENERIC.format("parameters.shot_type")),
    ("enum-size", _t2v(size="1280x720"), "InvalidParameter",
     f"The size is not match the allowed sizes: {SIZES}"),
    ("range", _t2v(seed=-1), "InvalidParameter", DS_GENERIC.format("parameters.seed")),
    ("range-duration", _t2v(duration=16), "InvalidParameter",
     DS_GENERIC.format("parameters.duration")),
    ("rule-list", {"model": "wan2.6-i2v", "input": {"prompt": "a", "img_url": "https://x/a.png"},
                   "parameters": {"resolution": "480P"}}, "InvalidParameter",
     "The resolution 480P is not supported by model wan2.6-i2v, allowed: 720P, 1080P"),
    ("rule-limits", {"model": "wan2.6-r2v", "input": {
        "prompt": "a", "reference_urls": [f"https://x/{i}.png" for i in range(6)]}},
     "InvalidParameter",
     "Too many references for model wan2.6-r2v: at most 5 in total, 5 images and 3 videos."),
]


@pytest.mark.parametrize("path", [DS, APIYI], ids=["dashscope", "apiyi"])
@pytest.mark.parametrize(("kind", "body", "code", "message"), DASHSCOPE_CASES,
                         ids=[c[0] for c in DASHSCOPE_CASES])
async def test_F08_dashscope_and_apiyi_word_each_kind(client, path, kind, body, code, message):
    r = await client.post(path, json=body, headers=HEADERS)
    assert r.status_code == 400
    got = r.json()
    assert (got["code"], got["message"]) == (code, message)
    _clean(got["message"])


# A wan2.6 r2v prompt over 1500 characters is truncated by default (decision on over-length
# prompts, audit U14); with dashscope_r2v_prompt_over="reject" each family words the rejection.
@pytest.fixture(scope="module")
def strict_app() -> Any:
    return create_app(clock=ManualClock(), seed=1, dashscope_r2v_prompt_over="reject",
                      dashscope_rate_limits="off")


@pytest.mark.parametrize("path", [DS, APIYI], ids=["dashscope", "apiyi"])
async def test_dashscope_and_apiyi_word_too_long(strict_app, path):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=strict_app),
                                 base_url="http://fake") as client:
        r = await client.post(path, headers=HEADERS, json={
            "model": "wan2.6-r2v",
            "input": {"prompt": "x" * 1501, "reference_urls": ["https://x/a.png"]}})
    assert r.status_code == 400
    got = r.json()
    assert (got["code"], got["message"]) == (
        "InvalidParameter",
        "The length of input.prompt exceeds the limit of model wan2.6-r2v: 1500 characters.")
    _clean(got["message"])


async def test_newapi_relays_dashscope_words_too_long(strict_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=strict_app),
                                 base_url="http://fake") as client:
        r = await client.post(NEWAPI, headers=HEADERS, json={
            "model": "wan2.6-r2v", "prompt": "x" * 1501, "images": ["https://x/a.png"]})
    assert r.status_code == 400
    got = r.json()
    assert got["code"] == "fail_to_fetch_task"  # DashScope's own words, relayed as text
    assert ('"code":"InvalidParameter","message":"The length of input.prompt exceeds the limit '
            'of model wan2.6-r2v: 1500 characters."' in got["message"])
    assert "x" * (VALUE_LIMIT + 1) not in got["message"]


@pytest.mark.parametrize(("params", "field"), [
    ({"start_time": "2026-01-01"}, "start_time"),  # the contract's pattern
    ({"start_time": "20261399000000"}, "start_time"),  # the right shape, no date
    ({"page_size": "500"}, "page_size"), ({"page_no": "x"}, "page_no"),
    ({"status": "DONE"}, "status"),
])
async def test_dashscope_words_query_failures(client, params, field):
    r = await client.get("/api/v1/tasks", params=params, headers=HEADERS)
    assert r.status_code == 400
    assert (r.json()["code"], r.json()["message"]) == ("InvalidParameter",
                                                       DS_GENERIC.format(field))


JIEKOU_CASES = [
    ("required", T2V21, {}, "prompt is required"),
    ("required-nested", I2V26, {"input": {"prompt": "a"}}, "input.img_url is required"),
    ("type", T2V21, {"prompt": "a", "steps": "5"},
     "steps (current value: 5) must be of type integer"),
    ("type-long-value", T2V21, {"prompt": "a", "width": "x" * 500},
     f"width (current value: {'x' * VALUE_LIMIT}...) must be of type integer"),
    ("type-body", T2V21, [1], "invalid request body: the body must be a JSON object"),
    ("enum", T2V21, {"prompt": "a", "width": 5},
     "width (current value: 5) must be one of 480, 720, 832, 1280"),
    ("enum-nested", I2V26, {"input": {"prompt": "a", "img_url": "https://x/a.png"},
                            "parameters": {"duration": 7}},
     "parameters.duration (current value: 7) must be one of 5, 10, 15"),
    ("range", T2V21, {"prompt": "a", "steps": 50},
     "steps (current value: 50) must be between 1 and 40"),
    ("range-float", T2V21, {"prompt": "a", "guidance_scale": 10.5},
     "guidance_scale (current value: 10.5) must be between 0 and 10"),
    ("too-long", T2V21, {"prompt": "x" * 2001},
     "prompt length (current value: 2001) must be between 1 and 2000"),
    ("too-many", T2V21, {"prompt": "a", "loras": [{"path": "a", "scale": 1}] * 4},
     "loras length (current value: 4) must be between 0 and 3"),
]


@pytest.mark.parametrize(("kind", "path", "body", "message"), JIEKOU_CASES,
                         ids=[c[0] for c in JIEKOU_CASES])
async def test_F08_jiekou_words_each_kind(client, kind, path, body, message):
    r = await client.post(path, json=body, headers=HEADERS)
    assert r.status_code == 400
    got = r.json()
    assert (got["code"], got["reason"], got["message"]) == (400, "INVALID_REQUEST_BODY", message)
    _clean(got["message"])


def test_jiekou_words_a_pattern_failure():
    # No jiekou request field has a pattern today; the kind still has the family's wording.
    op = load()["jiekou"].operation("createWanT2vTask")
    violation = op._make_violation("pattern", ["prompt"], "abc", {"pattern": "^x"}, "^x")
    assert violation.message == "prompt (current value: abc) is invalid"


async def test_jiekou_empty_task_id_reads_as_missing(client):
    for params in ({}, {"task_id": ""}):
        r = await client.get("/v3/async/task-result", params=params, headers=HEADERS)
        assert (r.status_code, r.json()["message"]) == (400, "task_id is required")


async def test_jiekou_unknown_task_id_is_echoed_capped(client):
    r = await client.get("/v3/async/task-result", params={"task_id": "x" * 5000},
                         headers=HEADERS)
    assert (r.status_code, r.json()["message"]) == (
        404, "task not found: " + "x" * VALUE_LIMIT + "...")


def _go_type(field: str, go_type: str, given: str = "string") -> str:
    """Go >= 1.24 names the embedded *Alias of TaskSubmitReq.UnmarshalJSON's struct."""
    return (f"json: cannot unmarshal {given} into Go struct field .Alias.{field} "
            f"of type {go_type}")


NEWAPI_CASES = [
    ("required-prompt", {"model": "wan2.6-t2v"}, 400, "invalid_request", "prompt is required"),
    ("pattern", {"model": "wan2.6-t2v", "prompt": "   "}, 400, "invalid_request",
     "prompt is required"),
    ("type", {"model": "wan2.6-t2v", "prompt": "a", "seconds": 5}, 400, "invalid_json",
     _go_type("seconds", "string", "number")),
    ("type-prompt", {"model": "wan2.6-t2v", "prompt": True}, 400, "invalid_json",
     _go_type("prompt", "string", "bool")),
    ("type-element", {"model": "wan2.6-t2v", "prompt": "a", "images": [1]}, 400, "invalid_json",
     _go_type("images", "string", "number")),
    ("type-metadata", {"model": "wan2.6-t2v", "prompt": "a",
                       "metadata": {"parameters": {"duration": "x"}}}, 500,
     "build_request_failed", "convert_to_ali_request_failed: unmarshal metadata failed: json: "
     "cannot unmarshal string into Go struct field AliVideoParameters.parameters.duration of "
     "type int"),
]


@pytest.mark.parametrize(("kind", "body", "status", "code", "message"), NEWAPI_CASES,
                         ids=[c[0] for c in NEWAPI_CASES])
async def test_F08_newapi_words_each_kind_as_go(client, kind, body, status, code, message):
    r = await client.post(NEWAPI, json=body, headers=HEADERS)
    assert r.status_code == status
    got = r.json()
    assert (got["code"], got["message"]) == (code, message)
    _clean(got["message"])


@pytest.mark.parametrize(("kind", "body", "upstream"), [
    ("maximum", {"metadata": {"parameters": {"duration": 99}}},
     DS_GENERIC.format("parameters.duration")),
    ("range", {"metadata": {"parameters": {"seed": -5}}}, DS_GENERIC.format("parameters.seed")),
])
async def test_newapi_relays_dashscope_words(client, kind, body, upstream):
    r = await client.post(NEWAPI, json={"model": "wan2.6-t2v", "prompt": "a", **body},
                          headers=HEADERS)
    assert r.status_code == 400
    got = r.json()
    assert got["code"] == "fail_to_fetch_task"
    assert f'"code":"InvalidParameter","message":"{upstream}"' in got["message"]
    assert "x" * (VALUE_LIMIT + 1) not in got["message"]


def test_F08_values_and_lists_render_as_providers_write_them():
    assert [render_value(v) for v in (5, 5.0, 10.5, True, None, "a b", [1, "x"], {"a": 1})] == [
        "5", "5", "10.5", "true", "null", "a b", '[1, "x"]', '{"a": 1}']
    assert render_value("x" * 100) == "x" * VALUE_LIMIT + "..."
    assert render_value(list(range(100))).endswith("...")
    assert render_list(["720P", "1080P"]) == "720P, 1080P"
    assert render_list(list(range(2, 16))) == "2-15"
    assert render_list([5, 10, 15]) == "5, 10, 15"
    assert render_list([[480, 832], [832, 480]]) == "[480, 832], [832, 480]"
    assert render_list({"max": 5, "images": 5}) == "max: 5, images: 5"
    assert render_list([str(i) for i in range(20)]).endswith(", 15, ...")


SCHEMA_NAMES = {"field", "value", "kind", "expected", "json_type", "go_type", "go_field",
                "go_subfield", "allowed", "min", "max", "limit", "length", "pattern", "detail"}
RULE_NAMES = {"field", "value", "model", "allowed", "json_type", "limit", "max", "images",
              "videos", "detail", "type", "low", "high", "total"}


def test_every_template_uses_only_defined_variables():
    for contract in load():
        for op in contract.operations.values():
            for mapping in op.errors:
                assert set(re.findall(r"\{([a-z_]+)\}", mapping.message)) <= SCHEMA_NAMES, (
                    contract.family, op.operation_id, mapping.message)
                assert "{detail}" not in mapping.message, (contract.family, mapping.message)
            for rule, report in op.rules.items():
                names = set(re.findall(r"\{([a-z_]+)\}", str(report.get("message", ""))))
                assert names <= RULE_NAMES, (contract.family, op.operation_id, rule)


# -- JSON the providers' parsers refuse -------------------------------------------------------
DS_BODY = b'{"model":"wan2.6-t2v","input":{"prompt":"a"},"parameters":{"duration":%s}}'
FAMILY_BODIES = {
    "dashscope": (DS, DS_BODY),
    "apiyi": (APIYI, DS_BODY),
    "jiekou": (T2V21, b'{"prompt":"a","seed":%s}'),
    "newapi": (NEWAPI, b'{"model":"wan2.6-t2v","prompt":"a","duration":%s}'),
}
GO_SAYS = {b"NaN": "invalid character 'N' looking for beginning of value",
           b"Infinity": "invalid character 'I' looking for beginning of value",
           b"-Infinity": "invalid character 'I' in numeric literal"}


def _invalid_body(family: str, token: bytes, got: dict[str, Any]) -> None:
    if family in ("dashscope", "apiyi"):
        assert (got["code"], got["message"]) == ("BadRequest.IllegalInput",
                                                 "The input parameter requires json format.")
    elif family == "jiekou":
        assert (got["reason"], got["message"]) == (
            "INVALID_REQUEST_BODY", "invalid request body: the body is not valid JSON")
    else:  # the distributor's 400; the latest new-api checks the body with gjson
        assert got["error"]["type"] == "new_api_error"
        assert "invalid JSON request body" in got["error"]["message"]


@pytest.mark.parametrize("token", list(GO_SAYS), ids=["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("family", list(FAMILY_BODIES))
async def test_non_finite_tokens_are_not_json(app, client, family, token):
    path, template = FAMILY_BODIES[family]
    body = template % token
    r = await client.post(path, content=body, headers={**HEADERS,
                                                        "Content-Type": "application/json"})
    assert r.status_code == 400
    _invalid_body(family, token, r.json())
    entry = app.state.backend.journal.entries(family=family)[-1]
    assert entry.status == 400 and entry.task_id is None
    assert entry.request_body == body.decode()  # nothing the client sent is lost


@pytest.mark.parametrize("token", list(GO_SAYS), ids=["NaN", "Infinity", "-Infinity"])
async def test_legacy_new_api_says_what_encoding_json_says(token):
    app = create_app(clock=ManualClock(), seed=1, newapi_version="legacy")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://x") as c:
        r = await c.post(NEWAPI, content=FAMILY_BODIES["newapi"][1] % token,
                         headers={**HEADERS, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert GO_SAYS[token] in r.json()["error"]["message"]


async def test_a_number_beyond_float64_is_not_json(client):
    json_headers = {**HEADERS, "Content-Type": "application/json"}
    r = await client.post(DS, content=b'{"model":"wan2.6-t2v","input":{"prompt":"a"},"x":-1e999}',
                          headers=json_headers)
    assert (r.status_code, r.json()["code"]) == (400, "BadRequest.IllegalInput")
    r = await client.post(T2V21, content=b'{"prompt":"a","seed":1e400}', headers=json_headers)
    assert (r.status_code, r.json()["reason"]) == (400, "INVALID_REQUEST_BODY")


async def test_lone_surrogates_become_the_replacement_character(app, client):
    r = await client.post(T2V21, content=b'{"prompt":"a\\ud800b"}', headers=HEADERS)
    assert r.status_code == 200
    task = app.state.backend.store.find("jiekou", r.json()["task_id"])
    assert task.request["prompt"] == "a\ufffdb"  # Go: U+FFFD, never a lone surrogate
    r = await client.get("/v3/async/task-result", params={"task_id": task.id}, headers=HEADERS)
    assert r.status_code == 200


async def test_invalid_utf8_is_replaced_by_go_gateways_and_refused_by_dashscope(app, client):
    r = await client.post(T2V21, content=b'{"prompt":"a\xffb"}', headers=HEADERS)
    assert r.status_code == 200
    task = app.state.backend.store.find("jiekou", r.json()["task_id"])
    assert task.request["prompt"] == "a\ufffdb"
    r = await client.post(DS, content=b'{"model":"wan2.6-t2v","input":{"prompt":"a\xffb"}}',
                          headers=HEADERS)
    assert (r.status_code, r.json()["code"]) == (400, "BadRequest.IllegalInput")
