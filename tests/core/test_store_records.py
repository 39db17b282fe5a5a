"""The shared stores' records read back equal to what was written (core/store/records.py)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.journal import Entry
from mockserver.core.store.records import decode_entry, dumps_hot, encode_entry

# What a parsed request body or a journal entry can hold: JSON values, any integer (Python's
# json reads integers of any size), any string (lone surrogates included: a latin-1 header
# decodes to anything), finite floats (the fake refuses NaN and Infinity in bodies).
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(JSONISH)
def test_a_hot_record_reads_back_equal(value: Any) -> None:
    assert json.loads(dumps_hot(value)) == value


@given(st.text(), st.text(), st.dictionaries(st.text(), st.text(), max_size=4),
       st.integers())
def test_a_journal_entry_reads_back_equal(path: str, body: str, headers: dict[str, str],
                                          number: int) -> None:
    entry = Entry(7, 1796174539.5153818, "dashscope", "getTask", "GET", path, "a=1", headers,
                  body, 200, body[::-1], "t-1", [{"field": "x", "value": number}], None, False)
    assert decode_entry(7, encode_entry(entry)) == entry
