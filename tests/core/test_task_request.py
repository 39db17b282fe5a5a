"""`Task.request`: the body as submitted, kept compactly, each read an equal, fresh object."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.catalogue import JobSpec
from mockserver.core.tasks import Plan, Task, pack_parsed

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


def make(request: Any) -> Task:
    spec = JobSpec(family="dashscope", model="wan2.6-t2v", mode="t2v", width=1280, height=720,
                   duration=5, audio=False)
    return Task(id="t", family="dashscope", operation="createVideoSynthesis", spec=spec,
                submitted_at=0.0, plan=Plan(1.0, 1.0), request=request)


@given(body=st.dictionaries(st.text(), JSON, min_size=1, max_size=4),
       indent=st.sampled_from([None, 2]), separators=st.sampled_from([None, (",", ":")]),
       ascii_only=st.booleans())
def test_a_body_parsed_from_text_reads_back_equal_and_fresh(
        body: dict[str, Any], indent: int | None, separators: Any, ascii_only: bool) -> None:
    raw = json.dumps(body, indent=indent, separators=separators, ensure_ascii=ascii_only).encode()
    parsed = json.loads(raw)
    task = make(pack_parsed(raw, parsed))
    first, second = task.request, task.request
    assert first == parsed == second
    assert first is not second and first is not parsed
    first.clear()  # a reader's change never reaches the task
    assert task.request == parsed


def test_received_text_is_kept_as_is_unless_pretty_printed() -> None:
    raw = b'{"model": "wan2.6-t2v", "input": {"prompt": "a cat"}}'
    assert pack_parsed(raw, json.loads(raw)).data == raw
    pretty = json.dumps(json.loads(raw), indent=2).encode()
    assert pack_parsed(pretty, json.loads(pretty)) == json.loads(raw)  # re-encoded by Task
    assert make(pack_parsed(pretty, json.loads(pretty)))._request.data == (
        b'{"model":"wan2.6-t2v","input":{"prompt":"a cat"}}')


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"{}", b"5"])
def test_what_is_not_a_non_empty_object_is_kept_parsed(raw: bytes) -> None:
    parsed = json.loads(raw)
    assert make(pack_parsed(raw, parsed)).request == parsed


def test_nan_and_infinity_survive() -> None:
    raw = b'{"seed": NaN, "x": Infinity}'
    request = make(pack_parsed(raw, json.loads(raw))).request
    assert math.isnan(request["seed"]) and request["x"] == math.inf
