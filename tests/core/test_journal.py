"""The request journal: bounded, secrets redacted, large bodies cut, entries filtered."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.journal import BODY_LIMIT, Journal, redact_headers, redact_value

KEY = "sk-4f9c2a7d1e8b6a3c5d0e"


def record(journal: Journal, **kwargs):  # type: ignore[no-untyped-def]
    values = {"time": 1.0, "method": "POST", "path": "/x", "query": "", "headers": [],
              "body": None}
    values.update(kwargs)
    return journal.record(**values)


def test_the_journal_keeps_only_the_newest_maxlen_entries() -> None:
    journal = Journal(maxlen=3)
    for i in range(5):
        record(journal, path=f"/p{i}")
    assert len(journal) == 3
    entries = journal.entries()
    assert [e.path for e in entries] == ["/p2", "/p3", "/p4"]
    assert [e.seq for e in entries] == [3, 4, 5]  # sequence numbers keep counting
    journal.clear()
    assert len(journal) == 0 and journal.entries() == []
    assert record(journal).seq == 6


def test_authorization_keeps_its_scheme_only() -> None:
    journal = Journal()
    entry = record(journal, headers=[("Authorization", f"Bearer {KEY}"),
                                     ("Content-Type", "application/json")])
    assert entry.request_headers == {"authorization": "Bearer [redacted]",
                                     "content-type": "application/json"}
    assert KEY not in json.dumps(entry.as_dict())


def test_repeated_header_sets_are_redacted_every_time_and_never_shared() -> None:
    journal = Journal()
    headers = [("Authorization", f"Bearer {KEY}"), ("X-Note", f"k {KEY}"), ("Accept", "*/*")]
    first, second = record(journal, headers=headers), record(journal, headers=list(headers))
    for entry in (first, second):
        assert entry.request_headers == {"authorization": "Bearer [redacted]",
                                         "x-note": "k [redacted]", "accept": "*/*"}
    first.request_headers["accept"] = "changed"  # one entry's dict is its own
    assert second.request_headers["accept"] == "*/*"
    assert record(journal, headers=headers).request_headers["accept"] == "*/*"
    other = record(journal, headers=[("Authorization", "Bearer sk-another-key-000000")])
    assert other.request_headers == {"authorization": "Bearer [redacted]"}
    unhashable = record(journal, headers=[["X-Note", f"k {KEY}"]])  # pairs as lists
    assert unhashable.request_headers == {"x-note": "k [redacted]"}


@pytest.mark.parametrize("name", ["X-API-Key", "api-key", "Proxy-Authorization", "Cookie",
                                  "authorization"])
def test_other_secret_headers_are_redacted(name: str) -> None:
    headers = redact_headers([(name, "opensesame-123456")])
    assert headers == {name.lower(): "[redacted]"}


def test_keys_in_ordinary_headers_and_bodies_are_redacted() -> None:
    journal = Journal()
    body = json.dumps({"model": "wan2.6-t2v", "api_key": KEY, "note": f"key={KEY}!"}).encode()
    entry = record(journal, headers=[("X-Debug", f"bearer {KEY}"), ("X-Other", f"k {KEY}")],
                   body=body)
    assert KEY not in json.dumps(entry.as_dict())
    assert entry.request_headers["x-debug"] == "bearer [redacted]"
    assert entry.request_headers["x-other"] == "k [redacted]"
    parsed = json.loads(entry.request_body or "")
    assert parsed["api_key"] == "[redacted]"
    assert parsed["note"] == "key=[redacted]!"
    assert parsed["model"] == "wan2.6-t2v"  # the rest is untouched
    Journal.complete(entry, 200, json.dumps({"echo": KEY}).encode())
    assert entry.status == 200
    assert KEY not in (entry.response_body or "")


@given(token=st.text(alphabet=string.ascii_letters + string.digits + "-._~+/", min_size=8,
                   max_size=40), before=st.text(max_size=10), after=st.text(max_size=10))
def test_redacted_json_stays_json(token: str, before: str, after: str) -> None:
    body = json.dumps({"message": f"{before}Bearer {token}{after}", "hint": "Bearer <key>'.",
                       "list": [f"bearer {token}"]})
    redacted = json.loads(redact_value(body))  # still JSON
    assert redacted["hint"] == "Bearer <key>'."  # not a credential: left alone
    assert redacted["list"] == ["bearer [redacted]"]
    assert token not in json.dumps(redacted) or token in before + after


def test_short_words_that_look_like_keys_are_left_alone() -> None:
    assert redact_value("sk-abc and task-123") == "sk-abc and task-123"
    assert redact_value("risk-management-plan") == "risk-management-plan"


def test_bodies_over_64_kib_are_cut_and_flagged() -> None:
    assert BODY_LIMIT == 64 * 1024
    journal = Journal()
    exact = record(journal, body=b"a" * BODY_LIMIT)
    assert not exact.truncated and len(exact.request_body or "") == BODY_LIMIT
    big = record(journal, body=b"b" * (BODY_LIMIT + 1))
    assert big.truncated and len(big.request_body or "") == BODY_LIMIT
    small = record(journal, body=b"{}")
    assert not small.truncated
    Journal.complete(small, 200, b"c" * (BODY_LIMIT + 10))
    assert small.truncated and len(small.response_body or "") == BODY_LIMIT
    assert small.as_dict()["truncated"] is True


def test_undecodable_bodies_are_kept_as_text() -> None:
    entry = record(Journal(), body=b"\xff\xfe{" + KEY.encode())
    assert isinstance(entry.request_body, str)
    assert KEY not in (entry.request_body or "")


def test_entries_filter_by_family_and_operation() -> None:
    journal = Journal()
    record(journal, family="dashscope", operation="createVideoSynthesis", path="/a")
    record(journal, family="dashscope", operation="getTask", path="/b")
    record(journal, family="jiekou", operation="getTaskResult", path="/c")
    record(journal, family=None, operation=None, path="/d")
    assert [e.path for e in journal.entries(family="dashscope")] == ["/a", "/b"]
    assert [e.path for e in journal.entries(operation="getTask")] == ["/b"]
    assert [e.path for e in journal.entries(family="dashscope", operation="getTask")] == ["/b"]
    assert journal.entries(family="jiekou", operation="getTask") == []
    assert [e.path for e in journal.entries()] == ["/a", "/b", "/c", "/d"]
    entry = journal.entries(family="jiekou")[0]
    entry.task_id = "t-1"
    assert journal.entries(task_id="t-1") == [entry]


def test_as_dict_shape() -> None:
    entry = record(Journal(), family="newapi", operation="getVideo", method="GET", path="/v1/x",
                   query="a=1", headers=[("Accept", "*/*")], body=b"")
    data = entry.as_dict()
    assert data["request"] == {"headers": {"accept": "*/*"}, "body": ""}
    assert data["response"] == {"status": 0, "body": None}
    assert (data["family"], data["operation"], data["query"]) == ("newapi", "getVideo", "a=1")
    json.dumps(data)  # JSON-friendly


def test_bodies_kept_as_bytes_read_only_redacted() -> None:
    """The journal keeps a body's bytes until it is read; every way of reading it (the
    attributes, as_dict, repr, a shared store's copy) sees the redacted text only."""
    from mockserver.core.store.records import encode_entry

    journal = Journal()
    entry = record(journal, body=json.dumps({"prompt": f"use {KEY}"}).encode())
    Journal.complete(entry, 200, json.dumps({"echo": f"Bearer {KEY}"}).encode())
    assert KEY not in repr(entry)
    assert KEY not in encode_entry(entry)
    assert KEY not in json.dumps(entry.as_dict())
    assert entry.request_body == json.dumps({"prompt": "use [redacted]"})
    assert entry.response_body == json.dumps({"echo": "Bearer [redacted]"})
    assert entry.response_body is entry.response_body  # decoded once, then kept as text
    entry.response_body = "set by hand"
    assert entry.response_body == "set by hand"
    empty = record(journal, body=b"")
    Journal.complete(empty, 204, None)
    assert (empty.request_body, empty.response_body) == ("", None)


def _redact_by_regex_alone(text: str) -> str:
    from mockserver.core import journal

    text = redact_value(text)
    text = journal._NAMED_FIELD.sub(r'\1"[redacted]"', text)
    return journal._NAMED_PARAM.sub(r"\1\2[redacted]", text)


_NOISE = st.lists(st.sampled_from(['"', "?", "&", "=", ":", " ", "x", "-", "_", "Key", "monkey",
                                    "OSSAccessKeyId", "1", "{", "}", ","]), max_size=8).map("".join)
_NAMED = st.sampled_from(["api_key", "X-Api-Key", "apikey", "Access-Token", "auth_token", "token",
                          "client_secret", "Secret", "PASSWORD", "key", "keyid", "monkey"])


@given(before=_NOISE, name=_NAMED, form=st.sampled_from(['"{}": "v"', '"{}":"v"', "?{}=v", "&{}=v",
                                                        "{}=v", "{}", '"{}"']), after=_NOISE)
def test_the_first_look_never_skips_a_named_credential(before: str, name: str, form: str,
                                                        after: str) -> None:
    """`redact_text` skips its substitutions when the first look finds no credential name in
    place (a signed URL's `OSSAccessKeyId=` in every poll answer): it redacts exactly what
    the substitutions alone would."""
    from mockserver.core.journal import redact_text

    text = before + form.format(name) + after
    assert redact_text(text) == _redact_by_regex_alone(text)
