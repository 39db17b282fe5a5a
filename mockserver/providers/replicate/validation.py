"""Replicate's words for a body that fails its schema (no Starlette): every problem at once,
as gojsonschema words them (contracts/replicate.yaml decision validation-wording):
`{"title": "Input validation failed", "detail": "- input: prompt is required\\n", "status":
422, "invalid_fields": [{"type": "required", "field": "input", "description": "prompt is
required"}]}`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from mockserver.errors import Violation

TITLE = "Input validation failed"
# JSON Schema keyword -> gojsonschema's error type.
TYPES = {"required": "required", "enum": "enum", "type": "invalid_type", "maximum": "number_lte",
         "minimum": "number_gte", "exclusiveMaximum": "number_lt", "exclusiveMinimum": "number_gt",
         "maxLength": "string_lte", "minLength": "string_gte", "pattern": "pattern",
         "additionalProperties": "additional_property_not_allowed", "format": "format",
         "const": "const", "maxItems": "array_max_items", "minItems": "array_min_items",
         "multipleOf": "multiple_of",
         # a file input that is no URI: the schema's format, named as the catalogue's rule
         "image_url_format": "format", "audio_url_format": "format"}
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")


def _num(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, float) or not value.is_integer() else (
        str(int(value)))


def _given(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list | str):
        return _JSON_TYPES[type(value)]
    return "integer" if isinstance(value, int) or float(value).is_integer() else "number"


def describe(keyword: str, name: str, value: Any, keyword_value: Any) -> str:
    """gojsonschema's description of one problem (`name`: the property, its last path step)."""
    if keyword == "required":
        return f"{name} is required"
    if keyword == "enum":
        return f"{name} must be one of the following: " + ", ".join(
            json.dumps(v, ensure_ascii=False) for v in keyword_value)
    if keyword == "const":
        return f"{name} does not match: {json.dumps(keyword_value, ensure_ascii=False)}"
    if keyword == "type":
        expected = keyword_value if isinstance(keyword_value, list) else [keyword_value]
        return f"Invalid type. Expected: {'/'.join(expected)}, given: {_given(value)}"
    words = {"maximum": "Must be less than or equal to {}",
             "minimum": "Must be greater than or equal to {}",
             "exclusiveMaximum": "Must be less than {}",
             "exclusiveMinimum": "Must be greater than {}",
             "maxLength": "String length must be less than or equal to {}",
             "minLength": "String length must be greater than or equal to {}",
             "maxItems": "Array must have at most {} items",
             "minItems": "Array must have at least {} items",
             "multipleOf": "Must be a multiple of {}"}
    if keyword in words:
        return words[keyword].format(_num(keyword_value))
    if keyword == "additionalProperties":
        return f"Additional property {name} is not allowed"
    if keyword == "format":
        return f"Does not match format '{keyword_value}'"
    if keyword == "pattern":
        return f"Does not match pattern '{keyword_value}'"
    return f"{name} is invalid"


def problem(keyword: str, parts: list[str], value: Any, keyword_value: Any) -> Violation:
    """One problem as a Violation: `field` the dotted path of the value (of the missing or
    extra property for required/additionalProperties), `message` gojsonschema's words."""
    name = parts[-1] if parts else "(root)"
    return Violation(field=".".join(parts), rule=f"schema:{keyword}", status=422, code=TITLE,
                     message=describe(keyword, name, value, keyword_value), value=value)


def _leaves(errors: Iterable[ValidationError]) -> list[ValidationError]:
    out: list[ValidationError] = []
    for err in errors:
        if err.context and err.validator in ("anyOf", "oneOf", "allOf"):
            out.extend(_leaves(err.context))
        elif err.validator not in ("if", "then", "allOf"):
            out.append(err)
    return out


def problems(validator: Draft202012Validator | None, body: Any,
             input_schema: Mapping[str, Any] | None = None,
             more: Iterable[tuple[Draft202012Validator, Any]] = ()) -> list[Violation]:
    """Every schema problem of `body` (and of each (validator, body) in `more`), root problems
    first, `required` before the others (the order of Replicate's recorded answers), each
    once; `format: uri` inputs checked too (jsonschema leaves formats alone)."""
    found: list[tuple[int, int, Violation]] = []
    checks = ([(validator, body)] if validator is not None else []) + list(more)
    for checker, instance in checks:
        for err in _leaves(checker.iter_errors(instance)):
            parts = [str(p) for p in err.absolute_path]
            keyword = str(err.validator)
            if keyword == "required" and isinstance(err.instance, Mapping):
                for missing in err.validator_value:
                    if missing not in err.instance:
                        found.append((len(parts), 0, problem(keyword, [*parts, str(missing)],
                                                             None, err.validator_value)))
                continue
            if keyword == "additionalProperties" and isinstance(err.instance, Mapping):
                known = set((err.schema.get("properties") or {}) if isinstance(
                    err.schema, Mapping) else ())
                for extra in err.instance:
                    if extra not in known:
                        found.append((len(parts), 1, problem(keyword, [*parts, str(extra)],
                                                             err.instance[extra], False)))
                continue
            found.append((len(parts), 2, problem(keyword, parts, err.instance,
                                                 err.validator_value)))
    inputs = body.get("input") if isinstance(body, Mapping) else None
    if input_schema is not None and isinstance(inputs, Mapping):
        for key, spec in (input_schema.get("properties") or {}).items():
            value = inputs.get(key)
            if (isinstance(spec, Mapping) and spec.get("format") == "uri"
                    and isinstance(value, str) and not _SCHEME.match(value)):
                found.append((1, 2, problem("format", ["input", key], value, "uri")))
    found.sort(key=lambda item: (item[0], item[1]))
    out: list[Violation] = []
    seen: set[tuple[str, str]] = set()
    for _, _, v in found:
        if (v.field, v.rule) not in seen:
            seen.add((v.field, v.rule))
            out.append(v)
    return out


def field_of(violation: Violation) -> str:
    """gojsonschema's `field`: the parent of a missing or extra property, else the value's
    path; "" at the root."""
    path = violation.field
    if violation.rule in ("schema:required", "schema:additionalProperties"):
        return path.rpartition(".")[0]
    return path


def body(violations: list[Violation]) -> dict[str, Any]:
    """The 422 body for these problems."""
    lines = []
    fields = []
    for v in violations:
        where = field_of(v)
        lines.append(f"- {where}: {v.message}\n" if where else f"- {v.message}\n")
        fields.append({"type": TYPES.get(v.rule.removeprefix("schema:"), "invalid"),
                       "field": where, "description": v.message})
    return {"title": TITLE, "detail": "".join(lines), "status": 422, "invalid_fields": fields}
