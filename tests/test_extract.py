"""`Operation.extract` (one walk over the body) reads what `x-wanmock-spec` says, path by path.

The reference below is the definition in docs/contract-conventions.md: for each neutral field,
the first of its paths that is present and not null, read with `get_path`. Bodies come from
`mockserver.strategies` (valid and broken) and are then rearranged where a one-pass reader could
go wrong: values moved between alternative paths, nulls, lists where objects were, dicts with
digit keys where lists were.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver import strategies
from mockserver.contracts import MISSING, get_path, load, normalise
from mockserver.families import bundled_names

FAMILIES = bundled_names()

CONTRACTS = load()
SUBMITS = [(family, op) for family in FAMILIES for op in CONTRACTS[family].by_role("submit")]


def reference(spec_map: dict[str, Any], body: Any) -> tuple[dict[str, Any], dict[str, str]]:
    fields: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, where in spec_map.items():
        if isinstance(where, dict) and "const" in where:
            fields[name] = where["const"]
            continue
        for path in where:
            value = get_path(body, path)
            if value is not MISSING and value is not None:
                fields[name], sources[name] = value, path
                break
    normalise(fields, sources)
    return fields, sources


def _place(body: Any, path: str, value: Any) -> Any:
    """`body` with `value` at a dotted path, creating objects on the way (digits as dict keys)."""
    body = copy.deepcopy(body) if isinstance(body, dict) else {}
    node = body
    parts = path.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return body


VALUES = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=5), st.booleans(),
                   st.lists(st.integers(0, 3), max_size=3),
                   st.dictionaries(st.sampled_from(["0", "1", "prompt", "x"]), st.integers(),
                                   max_size=2))


# 20 examples per submit operation in the normal suite, 100 under `-m thorough` (.ci/run runs
# both): the operations of a family share most of their spec maps.
IDS = [f"{f}-{o.operation_id}" for f, o in SUBMITS]
SETTINGS = {"deadline": None, "suppress_health_check": list(HealthCheck)}


@pytest.mark.parametrize(("family", "op"), SUBMITS, ids=IDS)
@settings(max_examples=20, **SETTINGS)
@given(data=st.data())
def test_extract_matches_the_path_by_path_reading(family: str, op: Any,
                                                  data: st.DataObject) -> None:
    check_extract(family, op, data)


@pytest.mark.thorough
@pytest.mark.parametrize(("family", "op"), SUBMITS, ids=IDS)
@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_extract_matches_the_path_by_path_reading_many(family: str, op: Any,
                                                       data: st.DataObject) -> None:
    check_extract(family, op, data)


def check_extract(family: str, op: Any, data: st.DataObject) -> None:
    drawn = data.draw(strategies.requests(family, operation=op.operation_id,
                                          valid=data.draw(st.booleans())))
    body = drawn[1]
    paths = [p for where in op.spec_map.values() if isinstance(where, list) for p in where]
    for _ in range(data.draw(st.integers(0, 4))):
        if paths:
            body = _place(body, data.draw(st.sampled_from(paths)), data.draw(VALUES))
    assert op.extract(body) == reference(op.spec_map, body)


@pytest.mark.parametrize("body", [
    None, [], "x", 5, {"input": None}, {"input": []}, {"images": ["a.png"]},
    {"images": {"0": "b.png"}}, {"images": [None, "c.png"]}, {"prompt": "p", "metadata": {
        "input": {"prompt": None}}}, {"metadata": {"input": {"prompt": "deep"}}, "prompt": "top"},
])
def test_extract_edge_bodies(body: Any) -> None:
    op = CONTRACTS["newapi"].operation("createVideoGeneration")
    assert op.extract(body) == reference(op.spec_map, body)


def test_extract_prefers_the_first_listed_path() -> None:
    op = CONTRACTS["newapi"].operation("createVideoGeneration")
    fields, sources = op.extract({"metadata": {"input": {"prompt": "deep"}}, "prompt": "top"})
    assert (fields["prompt"], sources["prompt"]) == ("deep", "metadata.input.prompt")
    fields, sources = op.extract({"images": ["a.png", "b.png"], "image": "c.png"})
    assert (fields["img_url"], sources["img_url"]) == ("c.png", "image")
    fields, sources = op.extract({"images": ["a.png", "b.png"]})
    assert (fields["img_url"], sources["img_url"]) == ("a.png", "images.0")


@pytest.mark.parametrize(("given", "read"), [
    ("5", 5), (" 7 ", 7), ("-3", -3), ("²", "²"), ("٥", "٥"), ("--5", "--5"), ("5.0", "5.0"),
    ("9" * 19, int("9" * 19)), ("9" * 20, "9" * 20), ("9" * 5000, "9" * 5000),
])
def test_numeric_strings_are_read_as_go_reads_them(given: str, read: Any) -> None:
    # ASCII digits only ("²" is a digit to str.isdigit, and int() raised on it).
    fields: dict[str, Any] = {"duration": given}
    normalise(fields, {})
    assert fields["duration"] == read
