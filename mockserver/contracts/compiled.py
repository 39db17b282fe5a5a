"""The compiled fast path: a jsonschema_rs validator at least as strict as jsonschema.

Every `pattern` of a contract is rewritten so that the Rust regex engine accepts no string Python's
`re` refuses (`strict_pattern`); a body the compiled validator accepts is then valid for jsonschema
too, and only a refused body goes through jsonschema to be worded (`RequestJudging`).
`WANMOCK_NO_FAST_VALIDATION=1` turns the fast path off.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

# Keywords whose single compiled-validator error is confirmed on its own schema node, so the
# whole body need not go through jsonschema (`Operation.schema_violations`). `pattern` is not
# among them: the compiled validator runs the strict rewrite of each pattern.
NODE_KEYWORDS = frozenset({
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "multipleOf", "required",
})
LENGTH_KEYWORDS = frozenset({"minLength", "maxLength", "minItems", "maxItems"})




# Python's `re` calls these whitespace (str.isspace); `\s`/`\S` in a contract pattern mean them.
PY_SPACES = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
             "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_ESCAPES = {"d": "[0-9]", "s": f"[{PY_SPACES}]", "S": f"[^{PY_SPACES}]"}


_HEX2 = re.compile("[0-9A-Fa-f]{2}")


def strict_pattern(pattern: str) -> str | None:
    r"""`pattern` rewritten so that another regex engine matches no string that Python's `re`
    does not: `\d` becomes `[0-9]` (Python's is any Unicode digit), `\s`/`\S` Python's own
    whitespace set. None when the pattern uses anything else whose meaning could differ."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1: i + 2]
            if nxt in _ESCAPES and not in_class:
                out.append(_ESCAPES[nxt])
            elif nxt and (nxt in ".^$*+?()[]{}|\\/-" or nxt == " "):
                out.append(ch + nxt)
            elif nxt == "x" and _HEX2.fullmatch(pattern[i + 2: i + 4]):
                out.append(pattern[i: i + 4])  # `\xHH` means one code point in every engine
                i += 4
                continue
            else:
                return None
            i += 2
            continue
        if ch == "[":
            if in_class:
                return None
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "(" and pattern[i + 1: i + 2] == "?" and pattern[i + 2: i + 3] != ":":
            return None  # flags, lookarounds, named groups: leave them to jsonschema
        out.append(ch)
        i += 1
    return "".join(out)


def _strict_document(node: Any) -> Any:
    """A copy of a contract with every `pattern` made strict (raises ValueError if one can't)."""
    if isinstance(node, Mapping):
        out = {}
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                strict = strict_pattern(value)
                if strict is None:
                    raise ValueError(f"pattern {value!r} has no strict form")
                out[key] = strict
            else:
                out[key] = _strict_document(value)
        return out
    if isinstance(node, list):
        return [_strict_document(v) for v in node]
    return node


def compile_fast_registry(base: str, document: Mapping[str, Any]) -> Any:
    """A jsonschema_rs registry holding the contract, or None (no jsonschema_rs, odd values)."""
    if os.environ.get("WANMOCK_NO_FAST_VALIDATION"):
        return None
    try:
        import jsonschema_rs

        return jsonschema_rs.Registry([(base, _strict_document(document))])
    except Exception:  # ImportError, a pattern without a strict form, YAML values JSON lacks
        return None


def compile_fast_validator(registry: Any, ref: str) -> Any:
    """A jsonschema_rs validator for the schema at `ref` in `registry`, or None."""
    # A URI fragment may not hold `{` or `}` (a path parameter in the JSON pointer of a
    # submit such as new-api's /v1/videos/{video_id}/remix): percent-encode them.
    ref = ref.replace("{", "%7B").replace("}", "%7D")
    try:
        import jsonschema_rs

        return jsonschema_rs.Draft202012Validator(
            {"$ref": ref}, registry=registry, validate_formats=False)
    except Exception:
        return None
