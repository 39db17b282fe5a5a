"""The compiled (jsonschema_rs) fast path and the inlined schemas never change a verdict.

`Operation.schema_violations` trusts the compiled validator only when it accepts a body; the
compiled validator must therefore be at least as strict as `jsonschema` on every body. These
tests draw valid and broken bodies from `mockserver.strategies`, mutate them with the values
where two engines tend to differ (Unicode whitespace and digits, non-finite and huge numbers,
integral floats, booleans as numbers) and compare both engines. No timing is asserted here.
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver import strategies
from mockserver.contracts import (
    PY_SPACES,
    Cyclic,
    inline,
    leaves,
    load,
    strict_pattern,
)
from mockserver.contracts.judging import model_first
from mockserver.families import bundled_names

FAMILIES = bundled_names()

CONTRACTS = load()
TRICKY = st.sampled_from([
    0, -1, 5, 5.0, 5.5, 2**31, 2**63, 10**30, -(10**30), True, False, None, math.nan, math.inf,
    -math.inf, "", " ", "\x1c", "\x1f", "\u3000", "\ufeff", "\u200b", "\n", "a\n", "5", "٣",
    "1234567890123\n", "१२३४५६७८९०१२३", [], [1], {}, {"a": 1}, "x" * 3000,
])
VALUES = st.one_of(TRICKY, st.text(max_size=8), st.integers(), st.floats(allow_nan=True),
                   st.booleans(), st.none())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    body = copy.deepcopy(body)
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return body


def _agree(family: str, operation_id: str, body: Any) -> None:
    op = CONTRACTS[family].operation(operation_id)
    assert op.fast_validator is not None, f"{family}.{operation_id} has no compiled validator"
    python_valid = not any(True for _ in op.body_validator.iter_errors(body))
    try:
        fast_valid = op.fast_validator.is_valid(body)
    except Exception:  # the fast path then defers to jsonschema
        return
    if fast_valid:
        assert python_valid, f"compiled validator accepts what jsonschema rejects: {body!r}"


def check_never_more_lenient(family: str, data: st.DataObject) -> None:
    valid = data.draw(st.booleans())
    drawn = data.draw(strategies.requests(family, valid=valid))
    operation_id, body = drawn[0], drawn[1]
    _agree(family, operation_id, body)
    path = data.draw(st.sampled_from(_paths(body)))
    mutated = _mutate(body, path, data.draw(VALUES))
    _agree(family, operation_id, mutated)


# 50 bodies and mutations per family in the normal suite, 400 under `-m thorough` (.ci/run).
@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiled_validator_is_never_more_lenient(family: str, data: st.DataObject) -> None:
    check_never_more_lenient(family, data)


@pytest.mark.thorough
@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiled_validator_is_never_more_lenient_many(family: str, data: st.DataObject) -> None:
    check_never_more_lenient(family, data)


def _slow_violations(op: Any, body: Any) -> list[Any]:
    """What `schema_violations` reports with jsonschema alone (no compiled validator)."""
    errors = sorted(op.body_validator.iter_errors(body), key=relevance)
    return model_first([op._violation(err) for err in leaves(errors)])


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_single_error_path_reports_what_jsonschema_would(family: str,
                                                             data: st.DataObject) -> None:
    operation_id, body, _ = data.draw(strategies.requests(family, valid=False))
    path = data.draw(st.sampled_from(_paths(body)))
    for candidate in (body, _mutate(body, path, data.draw(VALUES))):
        op = CONTRACTS[family].operation(operation_id)
        fast = [(v.field, v.rule, v.code, v.message) for v in op.schema_violations(candidate)]
        slow = [(v.field, v.rule, v.code, v.message) for v in _slow_violations(op, candidate)]
        assert fast == slow, candidate


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_valid_bodies_take_the_fast_path(family: str, data: st.DataObject) -> None:
    operation_id, body = data.draw(strategies.requests(family, valid=True))
    op = CONTRACTS[family].operation(operation_id)
    assert op.fast_validator.is_valid(body)
    assert op.schema_violations(body) == []


def test_python_whitespace_set_is_what_re_uses() -> None:
    computed = "".join(chr(c) for c in range(0x110000) if re.match(r"\s", chr(c)))
    assert computed == PY_SPACES


@pytest.mark.parametrize(("pattern", "strict"), [
    (r"\S", f"[^{PY_SPACES}]"),
    (r"^\d{13,14}$", "^[0-9]{13,14}$"),
    (r"^(100|[1-9]?[0-9])%$", r"^(100|[1-9]?[0-9])%$"),
    (r"\w", None), (r"[\d]", None), ("(?i)x", None),
])
def test_strict_patterns(pattern: str, strict: str | None) -> None:
    assert strict_pattern(pattern) == strict


# -- inlined schemas ---------------------------------------------------------------------------
def _by_reference(family: str, pointer: str) -> Draft202012Validator:
    """The validator as the contract spells it: a `$ref` resolved through a registry."""
    document = CONTRACTS[family].document
    base = f"urn:wanmock:contract:{family}"
    registry = Registry().with_resource(
        base, Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{base}#{pointer}"}, registry=registry)


def _errors(validator: Draft202012Validator, body: Any) -> list[tuple[Any, ...]]:
    errors = sorted(validator.iter_errors(body), key=relevance)
    return [(list(e.absolute_path), e.validator, e.message) for e in leaves(errors)]


def _body_pointer(op: Any) -> str:
    path = op.path.replace("~", "~0").replace("/", "~1")
    return f"/paths/{path}/{op.method.lower()}/requestBody/content/application~1json/schema"


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_inlined_body_schemas_report_what_the_references_report(
        family: str, data: st.DataObject) -> None:
    drawn = data.draw(strategies.requests(family, valid=data.draw(st.booleans())))
    op = CONTRACTS[family].operation(drawn[0])
    body = drawn[1]
    path = data.draw(st.sampled_from(_paths(body)))
    body = _mutate(body, path, data.draw(VALUES))
    assert "$ref" not in json.dumps(op.body_validator.schema)  # nothing left to look up
    assert _errors(op.body_validator, body) == _errors(
        _by_reference(family, _body_pointer(op)), body)


def test_inlining_keeps_sibling_keywords_and_refuses_cycles() -> None:
    document = {"components": {"schemas": {
        "Id": {"type": "string", "minLength": 2},
        "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}},
    }}}
    inlined = inline(document, {"$ref": "#/components/schemas/Id", "maxLength": 3})
    assert inlined == {"allOf": [{"type": "string", "minLength": 2}], "maxLength": 3}
    assert Draft202012Validator(inlined).is_valid("ab")
    assert not Draft202012Validator(inlined).is_valid("abcd")
    with pytest.raises(Cyclic):
        inline(document, {"$ref": "#/components/schemas/Node"})
