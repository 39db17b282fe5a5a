"""Bounded previews of bodies: what a page shows of a request or response, never more than a few
kilobytes, however large the value (a 10 MB prompt costs what its first 4 KB cost).

Previews are plain text; the templates escape them. Credentials are redacted as in the journal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mockserver.core.journal import redact_value
from mockserver.families import families

PAGE_LIMIT = 4096  # characters of one body shown in a page
STRING_LIMIT = 1024  # characters of one string value inside a body


@dataclass(slots=True)
class Preview:
    """The shown text and whether anything was left out."""

    text: str
    cut: bool
    size: int  # characters (or items) in the whole value, for "12,345 characters"


class _Budget(Exception):
    """Raised when the preview is full."""


def preview_value(value: Any, limit: int = PAGE_LIMIT) -> Preview:
    """An indented JSON-like rendering of `value`, at most about `limit` characters: long
    strings are cut to their first `STRING_LIMIT` characters (saying how long they were), and the
    rendering stops once it is full. Work is bounded by the output, not by the value."""
    out: list[str] = []
    used = [0]
    cut = [False]

    def put(text: str) -> None:
        room = limit - used[0]
        if len(text) > room:
            out.append(text[:max(0, room)])
            used[0] = limit
            cut[0] = True
            raise _Budget
        out.append(text)
        used[0] += len(text)

    def scalar(item: Any) -> str:
        if isinstance(item, str):
            if len(item) > STRING_LIMIT:
                cut[0] = True
                shown = json.dumps(redact_value(item[:STRING_LIMIT]), ensure_ascii=False)
                return f"{shown[:-1]}…\" (+{len(item) - STRING_LIMIT:,} characters)"
            return json.dumps(redact_value(item), ensure_ascii=False)
        try:
            return json.dumps(item, ensure_ascii=False)
        except (TypeError, ValueError):
            return repr(item)[:STRING_LIMIT]

    def walk(item: Any, depth: int) -> None:
        pad = "  " * (depth + 1)
        if isinstance(item, dict):
            if not item:
                put("{}")
                return
            put("{\n")
            for i, (key, sub) in enumerate(item.items()):
                put(f"{pad}{scalar(str(key))}: ")
                walk(sub, depth + 1)
                put(",\n" if i < len(item) - 1 else "\n")
            put("  " * depth + "}")
        elif isinstance(item, list | tuple):
            if not item:
                put("[]")
                return
            put("[\n")
            for i, sub in enumerate(item):
                put(pad)
                walk(sub, depth + 1)
                put(",\n" if i < len(item) - 1 else "\n")
            put("  " * depth + "]")
        else:
            put(scalar(item))

    try:
        walk(value, 0)
    except _Budget:
        pass
    except RecursionError:
        cut[0] = True
    size = len(value) if isinstance(value, str | list | dict) else len(out)
    return Preview("".join(out), cut[0], size)


def preview_body(body: str | None, limit: int = PAGE_LIMIT) -> Preview | None:
    """A journal body (text, already redacted): indented when it is JSON and small enough to
    parse cheaply, else its first `limit` characters."""
    if body is None:
        return None
    if len(body) <= 256 * 1024 and body[:1] in "{[":
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):  # too deep to parse is shown as text
            pass
        else:
            shown = preview_value(parsed, limit)
            return Preview(shown.text, shown.cut, len(body))
    cut = len(body) > limit
    return Preview(body[:limit], cut, len(body))


def answered_status(body: str | None, family: str | None = None,
                    operation: str | None = None) -> str | None:
    """The task status a poll's response body carried, in the family's words, where its
    family.py says its answers carry one (any family's place when `family` is not given);
    None when the body has none, e.g. an error envelope."""
    if not body or body[:1] != "{" or len(body) > 256 * 1024:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    known = families()
    for spec in [known[family]] if family in known else known.values():
        _, word = spec.status(doc, operation)
        if word is not None:
            return word
    return None
