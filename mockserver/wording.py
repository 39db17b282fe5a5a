"""How a violation becomes a provider's sentence: the template variables of `x-wanmock-errors`
and `x-wanmock-rules` (docs/contract-conventions.md, "Message templates").

A violation is structured (its kind, the JSON Schema keyword or catalogue rule; the wire path of
the field; the offending value; the schema's bounds, types or options) and each contract words
each kind in its family's own template. Nothing here is a validator's sentence or a Python repr:
values are rendered as JSON (strings as their text, the way Go's `%s` and Java's `+` print them)
and cut at `VALUE_LIMIT` characters, lists as the provider would list them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# The most characters of a request value any message echoes (then "...").
VALUE_LIMIT = 48
# The most items of an allowed list a message names (then ", ...").
LIST_LIMIT = 16
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), allow_nan=True,
                           default=str).encode
_NAME = re.compile(r"\{([a-z_]+)\}")

# JSON Schema types as a sentence says them, and as Go's encoding/json names the Go side.
_TYPE_WORDS = {"integer": "integer", "number": "number", "string": "string",
               "boolean": "boolean", "object": "object", "array": "array", "null": "null"}
_GO_TYPES = {"integer": "int", "number": "float64", "string": "string", "boolean": "bool",
             "object": "map[string]interface {}", "array": "[]interface {}", "null": "interface {}"}


def cut(text: str, limit: int = VALUE_LIMIT) -> str:
    """`text`, or its first `limit` characters and "..." when longer."""
    return text if len(text) <= limit else text[:limit] + "..."


def render_value(value: Any, limit: int = VALUE_LIMIT) -> str:
    """A request value as a message shows it: a string as its text, anything else as compact
    JSON (`true`, `null`, `[1, 2]`, `{"a": 1}`), never a Python repr; cut at `limit`."""
    if isinstance(value, str):
        return cut(value, limit)
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, int | float):
        return cut(_number(value), limit)
    try:
        return cut(_ENCODE(value), limit)
    except (TypeError, ValueError, RecursionError):
        return cut(str(type(value).__name__), limit)


def _number(value: int | float) -> str:
    if type(value) is int:
        try:
            return str(value)
        except ValueError:  # an integer too long to print (Python's int_max_str_digits)
            return "<number>"
    number = float(value)
    if not math.isfinite(number):
        return "Infinity" if number > 0 else "-Infinity" if number < 0 else "NaN"
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))  # Go's %v prints 5.0 as 5
    return repr(number)  # the shortest round-trip form, as json.dumps writes it


def render_list(items: Any, limit: int = LIST_LIMIT) -> str:
    """An allowed list as providers write one: `720P, 1080P`; a run of 3 or more consecutive
    integers as `2-15`; nested lists and objects as compact JSON; at most `limit` items."""
    if isinstance(items, Mapping):
        return ", ".join(f"{k}: {render_value(v)}" for k, v in items.items())
    if not isinstance(items, list | tuple):
        return render_value(items)
    ints = [i for i in items if isinstance(i, int) and not isinstance(i, bool)]
    if len(ints) == len(items) >= 3 and ints == list(range(ints[0], ints[0] + len(ints))):
        return f"{ints[0]}-{ints[-1]}"
    shown = [render_value(i, VALUE_LIMIT) for i in items[:limit]]
    if len(items) > limit:
        shown.append("...")
    return ", ".join(shown)


def json_type(value: Any, expected: Any = None) -> str:
    """The JSON type of a value in Go's words (`UnmarshalTypeError.Value`): `string`, `bool`,
    `array`, `object`, `null`, `number`; `number 1.5` for a number where an integer is due."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        kinds = expected if isinstance(expected, list) else [expected]
        return f"number {_number(value)}" if "integer" in kinds else "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_words(types: Any) -> str:
    kinds = types if isinstance(types, list) else [types]
    return " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds if k is not None)


def _bound(schema: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = schema.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    return None


# Neutral phrases for `{detail}`: wanmock's own words, used only by the fallback entry (a
# contract should word each kind itself).
_DETAILS = {
    "required": "is required",
    "type": "must be {expected}",
    "enum": "must be one of {allowed}",
    "const": "must be {allowed}",
    "minimum": "must be at least {limit}",
    "exclusiveMinimum": "must be greater than {limit}",
    "maximum": "must be at most {limit}",
    "exclusiveMaximum": "must be less than {limit}",
    "minLength": "must be at least {limit} characters long",
    "maxLength": "must be at most {limit} characters long",
    "minItems": "must have at least {limit} items",
    "maxItems": "must have at most {limit} items",
    "pattern": "has an invalid format",
}


def schema_values(keyword: str, field: str, value: Any, schema: Any,
                  keyword_value: Any, *, detail: bool = True) -> dict[str, Any]:
    """The template variables of a JSON Schema violation of `keyword` at `field`.

    `schema` is the schema object holding the failed keyword (its siblings give `{min}` and
    `{max}`), `keyword_value` that keyword's value (the type, the options, the limit);
    `detail=False` skips `{detail}` for a template that does not use it.
    """
    node = schema if isinstance(schema, Mapping) else {}
    go_field = ".".join(p for p in field.split(".") if not p.isdigit())
    values: dict[str, Any] = {"field": field, "kind": keyword,
                              "value": "" if keyword == "required" else render_value(value),
                              "go_field": go_field, "go_subfield": go_field.partition(".")[2]}
    declared = node.get("type")
    if keyword == "type":
        declared = keyword_value
    if declared is not None:
        values["expected"] = _type_words(declared)
        first = declared[0] if isinstance(declared, list) and declared else declared
        values["go_type"] = _GO_TYPES.get(str(first), "interface {}")
    if keyword != "required":
        values["json_type"] = json_type(value, declared)
    if keyword in ("enum", "const"):
        options = keyword_value if keyword == "enum" else [keyword_value]
        values["allowed"] = render_list(list(options) if isinstance(options, list | tuple)
                                        else [options])
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
                   "maxLength", "minItems", "maxItems"):
        values["limit"] = render_value(keyword_value)
        sized = keyword.endswith(("Length", "Items"))
        if sized:
            low = _bound(node, "minLength" if keyword.endswith("Length") else "minItems")
            high = _bound(node, "maxLength" if keyword.endswith("Length") else "maxItems")
            low = 0 if low is None else low
            if isinstance(value, str | list):
                values["length"] = len(value)
        else:
            low = _bound(node, "minimum", "exclusiveMinimum")
            high = _bound(node, "maximum", "exclusiveMaximum")
        if low is not None:
            values["min"] = render_value(low)
        if high is not None:
            values["max"] = render_value(high)
    if keyword == "pattern" and isinstance(keyword_value, str):
        values["pattern"] = cut(keyword_value)
    if detail:
        phrase = fill_template(_DETAILS.get(keyword, "is invalid"), values)
        values["detail"] = f"{field} {phrase}" if field else phrase
    return values


def rule_values(field: str, value: Any, allowed: Any, model: Any) -> dict[str, Any]:
    """The template variables of a catalogue rule failure (`x-wanmock-rules`)."""
    values: dict[str, Any] = {
        "field": field,
        "value": render_value(value),
        "model": render_value(model) if model is not None else "",
        "allowed": render_list(allowed) if allowed is not None else "",
        "json_type": json_type(value),
    }
    if isinstance(allowed, Mapping):  # e.g. reference limits {max, images, videos}
        for key, item in allowed.items():
            if isinstance(key, str) and key.isidentifier() and key not in values:
                values[key] = render_value(item)
    if isinstance(allowed, int | float) and not isinstance(allowed, bool):
        values["limit"] = values["max"] = render_value(allowed)
    values["detail"] = f"{field} {values['value']} is not allowed"
    return values


@lru_cache(maxsize=2048)
def _compiled(template: str) -> tuple[tuple[str, str | None], ...]:
    """A template split once into (literal, name-or-None) pieces."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    for match in _NAME.finditer(template):
        out.append((template[pos:match.start()], match.group(1)))
        pos = match.end()
    out.append((template[pos:], None))
    return tuple(out)


def fill_template(template: str, values: Mapping[str, Any]) -> str:
    """Substitute `{name}` placeholders the values define; any other braces stay as they are."""
    parts = _compiled(template)
    if len(parts) == 1:
        return template
    out = []
    for literal, name in parts:
        out.append(literal)
        if name is not None:
            found = values.get(name, _MISSING)
            out.append("{" + name + "}" if found is _MISSING else str(found))
    return "".join(out)


_MISSING = object()
