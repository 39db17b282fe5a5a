"""JSON Schema helpers of the contract layer: references, inlining, validators, error leaves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry

from mockserver.jsonwire import ascii_int


@lru_cache(maxsize=512)
def _param_validator_cached(key: str, schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def param_validator(family: str, op_id: str, name: str, schema: Any) -> Draft202012Validator:
    return _param_validator_cached(f"{family}:{op_id}:{name}", json.dumps(schema, sort_keys=True))


def coerce(value: str, schema: Any) -> Any:
    """Read a query/header string as the type its schema declares, when it can."""
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    kinds = kind if isinstance(kind, list) else [kind]
    text = value.strip()
    # ASCII digits within an int64 ("²" is a digit to str.isdigit, and int() refuses it).
    number = ascii_int(text, 19, signed=True) if "integer" in kinds else None
    if number is not None:
        return number
    if "number" in kinds:
        try:
            return float(text)
        except ValueError:
            return value
    if "boolean" in kinds and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def deref(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node and str(node["$ref"]).startswith("#/"):
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


class Cyclic(Exception):
    pass


def inline(document: Mapping[str, Any], node: Any, seen: tuple[str, ...] = ()) -> Any:
    """A copy of a schema with every local `$ref` replaced by what it points to (a `$ref` with
    sibling keywords becomes an `allOf` in its place), so a validator built on it never looks a
    reference up; it reports the same errors at the same instance paths. `Cyclic` for a
    recursive schema, which keeps its references."""
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise Cyclic(ref)  # not ours to resolve: keep the registry
            if ref in seen:
                raise Cyclic(ref)
            target = inline(document, deref(document, {"$ref": ref}), (*seen, ref))
            if len(node) == 1:
                return target
            return {("allOf" if k == "$ref" else k): ([target] if k == "$ref" else
                                                       inline(document, v, seen))
                    for k, v in node.items()}
        return {k: inline(document, v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(document, v, seen) for v in node]
    return node


def schema_validator(document: Mapping[str, Any], schema: Any, ref: str,
                      registry: Registry) -> Draft202012Validator:
    """A validator for `schema` (found at `ref`): over the inlined schema when it has no
    cycle, else over the reference and the registry."""
    try:
        return Draft202012Validator(inline(document, schema))
    except Cyclic:
        return Draft202012Validator({"$ref": ref}, registry=registry)


def escape_pointer(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def leaves(errors: list[ValidationError]) -> list[ValidationError]:
    """Replace anyOf/oneOf wrappers by their most relevant sub-error, so messages name a field."""
    out = []
    for err in errors:
        while err.context:
            err = sorted(err.context, key=relevance)[0]
        out.append(err)
    return out


def node_at(document: Mapping[str, Any], location: tuple[Any, ...]) -> Any:
    """The node of a document at a schema location (a compiled-validator `schema_path`)."""
    node: Any = document
    for step in location:
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return None
    return node


