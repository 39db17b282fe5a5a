"""The request journal: every request and response, secrets redacted, bounded in memory."""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mockserver.core.memo import Memo

SECRET_HEADERS = {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"}
# RFC 6750's b64token: what a bearer credential is made of, so the substitution stops at a
# quote or bracket and redacted JSON stays JSON.
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
_KEYLIKE = re.compile(r"\b(sk[-_][A-Za-z0-9_\-]{6,})\b")

BODY_LIMIT = 64 * 1024  # bytes of each body kept in the journal


def _may_hold_secret(value: str) -> bool:
    r"""A cheap first look (substring tests, no regex): False means neither pattern can match,
    so most values skip the substitutions. `_BEARER` needs `bearer` in some case (no character
    but A/B/E/R case-folds to a/b/e/r); `_KEYLIKE` needs `sk-`/`sk_` at a word boundary (`\b`:
    not after a letter, digit or `_`, as `re` defines word characters)."""
    if "bearer" in value.lower():
        return True
    for marker in ("sk-", "sk_"):
        i = value.find(marker)
        while i != -1:
            if i == 0:
                return True
            before = value[i - 1]
            if not (before.isalnum() or before == "_"):
                return True
            i = value.find(marker, i + 1)
    return False


# Credentials sent by name rather than by shape: a JSON field or a query/form parameter called
# `api_key`, `token`, `secret`... (`?api_key=abc`, `{"api_key": "abc"}`).
_SECRET_WORDS = ("key", "token", "secret", "password")
_NAMES = (r"(?:x-)?api[-_]?key|apikey|access[-_]?token|auth[-_]?token|token|client[-_]?secret|"
          r"secret|password")
_NAMED_FIELD = re.compile(r'(?i)("(?:' + _NAMES + r')"\s*:\s*)"(?:[^"\\]|\\.)*"')
_NAMED_PARAM = re.compile(r"(?i)(^|[?&])((?:" + _NAMES + r"|key)=)[^&#\s\"]*")


# A credential name as `_NAMED_FIELD` and `_NAMED_PARAM` need it: followed by `"` or `=`.
_NAME_THEN = re.compile(r"(?:" + _NAMES + r"|key)(?=[\"=])")


def _names_secret(text: str) -> bool:
    """A cheap first look for `redact_text`: False means neither `_NAMED_FIELD` nor
    `_NAMED_PARAM` can match. Both need a whole credential name right after `"`, `?`, `&` or
    the start of the text, and every name holds one of `_SECRET_WORDS`: so only the nearest
    such delimiter before each occurrence of a word can start one. A result URL's
    `OSSAccessKeyId=` holds `key` inside a longer name and skips both substitutions."""
    low = text.lower()
    for word in _SECRET_WORDS:
        i = low.find(word)
        while i != -1:
            start = max(low.rfind('"', 0, i), low.rfind("?", 0, i), low.rfind("&", 0, i)) + 1
            found = _NAME_THEN.match(low, start)
            if found is not None and found.end() > i:
                return True
            i = low.find(word, i + 1)
    return False


def redact_text(text: str) -> str:
    """`redact_value`, and credentials sent by name: JSON fields and query or form parameters
    named like a key (`api_key`, `token`, `secret`, `password`) keep their name, not their
    value."""
    text = redact_value(text)
    if _names_secret(text):
        text = _NAMED_FIELD.sub(r'\1"[redacted]"', text)
        text = _NAMED_PARAM.sub(r"\1\2[redacted]", text)
    return text


def redact_request(request: Any, raw: bytes | None) -> tuple[Any, bytes | None]:
    """A submitted body as a task keeps it: fields named like a credential redacted (a shared
    store's records hold no key), everything else as sent. `raw` is the body's text, None when
    it was redacted (the value then stands for it)."""
    try:
        text = raw.decode("utf-8") if raw is not None else json.dumps(request,
                                                                       ensure_ascii=False)
    except (UnicodeDecodeError, TypeError, ValueError, RecursionError):
        return request, raw
    if not _names_secret(text) or not _NAMED_FIELD.search(text):
        return request, raw
    try:
        return json.loads(_NAMED_FIELD.sub(r'\1"[redacted]"', text)), None
    except (ValueError, RecursionError):
        return request, raw


def redact_value(value: str) -> str:
    """Hide a credential, keeping its scheme and a hint of its shape (`Bearer sk-…[redacted]`)."""
    if not _may_hold_secret(value):
        return value
    value = _BEARER.sub(lambda m: m.group(1) + "[redacted]", value)
    return _KEYLIKE.sub("[redacted]", value)


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Secret headers masked by name; every other value redacted where it holds a credential.
    One `_may_hold_secret` look over all values joined by newlines decides whether any value
    needs the substitutions: a newline ends a word, so the joined text can match exactly where
    one of the values can."""
    out: dict[str, str] = {}
    plain: list[str] = []
    for name, value in headers:
        low = name.lower()
        if low not in SECRET_HEADERS:
            out[low] = value
            plain.append(low)
        elif value[:7].lower() == "bearer ":
            out[low] = value[:7] + "[redacted]"
        else:
            out[low] = "[redacted]"
    if plain and _may_hold_secret("\n".join([out[k] for k in plain])):
        for low in plain:
            out[low] = redact_value(out[low])
    return out


def _redacted_copy(headers: Iterable[tuple[str, str]],
                   memo: Memo[tuple[tuple[str, str], ...], dict[str, str]]) -> dict[str, str]:
    """`redact_headers(headers)`, remembered in `memo` for header sets seen before (clients
    repeat theirs); each entry gets its own dict."""
    try:
        key = tuple(headers)
        found = memo.get(key)
    except TypeError:  # unhashable pairs: redact without remembering
        return redact_headers(headers)
    if found is None:
        found = memo.put(key, redact_headers(key))
    return dict(found)


@dataclass(slots=True)
class Entry:
    """One exchange. `operation` is the contract operationId, `violations` what the fake found.

    The bodies read as text, redacted and cut at `BODY_LIMIT` (`request_body`,
    `response_body`). The journal keeps the (cut) bytes it was given and turns them into that
    text the first time anything reads them, so the hot path never decodes or scans a body
    nobody looks at; every reader (entries, the control API, the dashboard, a shared store's
    copy) goes through the properties and so sees only the redacted text.
    """

    seq: int
    time: float
    family: str | None
    operation: str | None
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_held: str | bytes | None = field(repr=False)
    status: int = 0
    response_held: str | bytes | None = field(default=None, repr=False)
    task_id: str | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    scenario: str | None = None
    truncated: bool = False

    @property
    def request_body(self) -> str | None:
        """The request body as text, redacted (None: it was not read, e.g. too large)."""
        held = self.request_held
        if type(held) is bytes:
            held = self.request_held = _shown(held)
        return held  # type: ignore[return-value]

    @request_body.setter
    def request_body(self, text: str | None) -> None:
        self.request_held = text

    @property
    def response_body(self) -> str | None:
        """The response body as text, redacted (None: a streamed answer, e.g. a video)."""
        held = self.response_held
        if type(held) is bytes:
            held = self.response_held = _shown(held)
        return held  # type: ignore[return-value]

    @response_body.setter
    def response_body(self, text: str | None) -> None:
        self.response_held = text

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "time": self.time, "family": self.family,
            "operation": self.operation, "method": self.method, "path": self.path,
            "query": self.query, "request": {"headers": self.request_headers,
                                             "body": self.request_body},
            "response": {"status": self.status, "body": self.response_body},
            "task_id": self.task_id, "violations": self.violations,
            "scenario": self.scenario, "truncated": self.truncated,
        }


def _held(body: bytes | None) -> tuple[bytes | str | None, bool]:
    """What an entry keeps of a body until it is read: the bytes, cut at BODY_LIMIT."""
    if body is None:
        return None, False
    if not body:
        return "", False
    if len(body) > BODY_LIMIT:
        return bytes(body[:BODY_LIMIT]), True
    return bytes(body), False


def _shown(held: bytes) -> str:
    """Kept bytes as the journal shows them: text, credentials redacted."""
    text = held.decode("utf-8", errors="replace")
    return redact_text(text)


def _text(body: bytes | None) -> tuple[str | None, bool]:
    held, cut = _held(body)
    return (_shown(held) if type(held) is bytes else held), cut  # type: ignore[return-value]


class Journal:
    """A ring buffer of `Entry`s (`maxlen` newest kept)."""

    keeps = True  # False: `record()` only builds entries (a shared store keeps them)

    def __init__(self, maxlen: int = 1000) -> None:
        self._entries: deque[Entry] = deque(maxlen=maxlen)
        self._seq = 0
        self._lock = threading.Lock()
        self.maxlen = maxlen
        self._redactions: Memo[tuple[tuple[str, str], ...], dict[str, str]] = Memo(1024)

    def record(
        self,
        *,
        time: float,
        method: str,
        path: str,
        query: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
        family: str | None = None,
        operation: str | None = None,
    ) -> Entry:
        held, cut = _held(body)
        with self._lock:
            self._seq += 1
            entry = Entry(self._seq, time, family, operation, method, path,
                          redact_text(query) if query else query,
                          _redacted_copy(headers, self._redactions), held,
                          truncated=cut)
            if self.keeps:
                self._entries.append(entry)
        return entry

    @staticmethod
    def set_request_body(entry: Entry, text: str) -> None:
        """Show the request body as `text` (a readable form of a binary body), redacted and
        bounded like any body."""
        shown, cut = _text(text.encode("utf-8"))
        entry.request_body = shown
        entry.truncated = entry.truncated or cut

    @staticmethod
    def complete(entry: Entry, status: int, body: bytes | None) -> None:
        held, cut = _held(body)
        entry.status = status
        entry.response_held = held
        if cut:
            entry.truncated = True

    def entries(self, **match: Any) -> list[Entry]:
        """Entries whose attributes equal every given value (`family=`, `operation=`...)."""
        with self._lock:
            items = list(self._entries)
        return [e for e in items if all(getattr(e, k) == v for k, v in match.items())]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
