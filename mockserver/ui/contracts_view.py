"""A family's operations and their parameters, read from its loaded contract, for the contracts
page: each operation's method, path, role and summary, its path/query/header parameters, and
its request body's fields (local `$ref`s resolved, `allOf`/`oneOf`/`anyOf` branches merged),
flattened to dotted names a few levels deep."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mockserver.contracts import Contract

MAX_DEPTH = 4


@dataclass(slots=True)
class Field:
    """One parameter or body field."""

    name: str
    where: str  # path, query, header or body
    type: str
    required: bool
    description: str = ""
    enum: list[Any] = field(default_factory=list)
    default: Any = None
    bounds: str = ""


@dataclass(slots=True)
class OperationView:
    operation_id: str
    method: str
    path: str
    role: str
    summary: str
    fields: list[Field]
    statuses: list[str]


def _resolve(document: Mapping[str, Any], node: Any, seen: frozenset[str] = frozenset()) -> Any:
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            return {}
        seen = seen | {ref}
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node = target
    return node


def _type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items")
        inner = _type(items) if isinstance(items, Mapping) else ""
        return f"array of {inner}" if inner else "array"
    if kind is None and "const" in schema:
        return "const"
    return str(kind) if kind else ("object" if "properties" in schema else "any")


def _bounds(schema: Mapping[str, Any]) -> str:
    parts = []
    for key, sign in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "len ≥"),
                      ("maxLength", "len ≤"), ("minItems", "items ≥"), ("maxItems", "items ≤")):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern {schema['pattern']}")
    return ", ".join(parts)


def _merged(document: Mapping[str, Any], schema: Any) -> dict[str, Any]:
    """`schema` with its `allOf`/`oneOf`/`anyOf` branches' properties folded in."""
    schema = _resolve(document, schema)
    if not isinstance(schema, Mapping):
        return {}
    out = dict(schema)
    props = dict(schema.get("properties") or {})
    required = set(schema.get("required") or [])
    for key in ("allOf", "oneOf", "anyOf"):
        for branch in schema.get(key) or []:
            sub = _merged(document, branch)
            props.update({k: v for k, v in (sub.get("properties") or {}).items()
                          if k not in props})
            if key == "allOf":
                required |= set(sub.get("required") or [])
            if "type" not in out and "type" in sub:
                out["type"] = sub["type"]
    out["properties"], out["required"] = props, sorted(required)
    return out


def _body_fields(document: Mapping[str, Any], schema: Any, prefix: str,
                 depth: int, out: list[Field]) -> None:
    merged = _merged(document, schema)
    required = set(merged.get("required") or [])
    for name, sub in (merged.get("properties") or {}).items():
        sub = _merged(document, sub)
        dotted = f"{prefix}{name}"
        out.append(Field(
            dotted, "body", _type(sub), name in required, str(sub.get("description", ""))[:400],
            list(sub.get("enum") or [])[:30], sub.get("default"), _bounds(sub)))
        if depth < MAX_DEPTH and sub.get("properties"):
            _body_fields(document, sub, dotted + ".", depth + 1, out)


def family_operations(contract: Contract) -> list[OperationView]:
    """Every operation of a contract, in the contract's order."""
    document = contract.document
    out = []
    for op in contract.operations.values():
        fields: list[Field] = []
        for raw in op.parameters:
            param = _resolve(document, raw)
            schema = _resolve(document, param.get("schema") or {})
            fields.append(Field(
                str(param.get("name")), str(param.get("in")), _type(schema),
                bool(param.get("required")), str(param.get("description", ""))[:400],
                list(schema.get("enum") or [])[:30], schema.get("default"), _bounds(schema)))
        body = op.raw.get("requestBody")
        body = _resolve(document, body) if body else None
        if isinstance(body, Mapping):
            for media in (body.get("content") or {}).values():
                _body_fields(document, media.get("schema") or {}, "", 0, fields)
                break
        out.append(OperationView(
            op.operation_id, op.method.upper(), op.path, op.role,
            str(op.raw.get("summary", "")), fields, sorted(str(s) for s in
                                                           (op.raw.get("responses") or {}))))
    return out
