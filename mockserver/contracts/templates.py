"""Error templates: `x-wanmock-errors` entries and the `x-wanmock-envelope` of a family.

`fill` substitutes `{field}`-style placeholders; `render_envelope` instantiates an envelope
template; `ErrorMapping` is one entry of an operation's `x-wanmock-errors`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_PLACEHOLDER = re.compile(r"\{(field|detail|value|model|allowed|status|code|message|request_id)\}")
_UNSET = object()


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Substitute `{field}`-style placeholders, leaving any other braces alone."""

    def sub(match: re.Match[str]) -> str:
        value = values.get(match.group(1), _UNSET)
        return match.group(0) if value is _UNSET else str(value)

    return _PLACEHOLDER.sub(sub, template)


def render_envelope(template: Any, values: Mapping[str, Any]) -> Any:
    """Instantiate an `x-wanmock-envelope` template; `"{status}"` alone stays an integer."""
    if isinstance(template, str):
        if template == "{status}":
            return values.get("status")
        if template == "{request_id}" and values.get("request_id") is None:
            return None
        return fill(template, values)
    if isinstance(template, Mapping):
        return {k: render_envelope(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render_envelope(v, values) for v in template]
    return template

@dataclass(frozen=True, slots=True)
class ErrorMapping:
    """One entry of `x-wanmock-errors`: `keyword` is one kind or a tuple of kinds."""

    status: int
    code: str
    message: str
    field: str | None = None
    keyword: str | tuple[str, ...] | None = None
    wrap: str | None = None

    def matches(self, field_path: str, keyword: str) -> bool:
        kinds = self.keyword
        where = self.field
        return (where is None or where == field_path or (
            where[-2:] == ".*" and field_path.startswith(where[:-1]))) and (
            kinds is None or kinds == keyword or (type(kinds) is tuple and keyword in kinds)
        )


# The fallback when no entry of a contract matches (a contract should always end with one).
DEFAULT_MAPPING = ErrorMapping(400, "InvalidParameter", "{detail}")
