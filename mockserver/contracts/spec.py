"""Spec extraction: reduce a request body to neutral job fields by `x-wanmock-spec`.

`get_path` reads one dotted path; `SpecExtraction.extract` (a part of `Operation`) reads every
neutral field in one walk over the body, through a trie of the operation's paths, and reads the
values as the gateways do (`normalise`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mockserver.jsonwire import ascii_int

MISSING = object()


class SpecNode:
    """One step of the `x-wanmock-spec` paths of an operation, as a trie: `keys` the next steps
    by key, `indexes` those that are also list positions (`images.0`), `hits` the (name, rank,
    path) of every path ending here (rank: its place in that name's list of paths)."""

    __slots__ = ("keys", "indexes", "hits")

    def __init__(self) -> None:
        self.keys: dict[str, SpecNode] = {}
        self.indexes: list[tuple[int, SpecNode]] = []
        self.hits: list[tuple[str, int, str]] = []

    def collect(self, value: Any, found: dict[str, tuple[int, Any, str]]) -> None:
        """Every path of the trie present in `value` (not None), lowest rank per name kept;
        each step read exactly as `_walk` reads it."""
        if value is None:
            return
        for name, rank, path in self.hits:
            prev = found.get(name)
            if prev is None or rank < prev[0]:
                found[name] = (rank, value, path)
        keys = self.keys
        if not keys:
            return
        if type(value) is dict or isinstance(value, Mapping):
            if len(value) < len(keys) and type(value) is dict:
                for key, item in value.items():
                    child = keys.get(key)
                    if child is not None:
                        child.collect(item, found)
            else:
                for key, child in keys.items():
                    if key in value:
                        child.collect(value[key], found)
        elif self.indexes and isinstance(value, list):
            for idx, child in self.indexes:
                if idx < len(value):
                    child.collect(value[idx], found)


def _compile_spec_map(spec_map: Mapping[str, Any]) -> tuple[list[tuple[str, Any, bool]], SpecNode]:
    """`x-wanmock-spec` as rows (name, const, has_paths), in order, and one trie of its paths,
    split into the (key, index-or-None) steps `_walk` follows, as `get_path` would."""
    rows: list[tuple[str, Any, bool]] = []
    root = SpecNode()
    for name, where in spec_map.items():
        if isinstance(where, Mapping) and "const" in where:
            rows.append((name, where["const"], False))
            continue
        rows.append((name, None, True))
        for rank, path in enumerate(where):
            node = root
            for part, idx in _split_path(path):
                child = node.keys.get(part)
                if child is None:
                    child = node.keys[part] = SpecNode()
                    if idx is not None:
                        node.indexes.append((idx, child))
                node = child
            node.hits.append((name, rank, path))
    return rows, root


def _walk(body: Any, parts: tuple[tuple[str, int | None], ...]) -> Any:
    """`get_path` on a pre-split path."""
    node = body
    for part, idx in parts:
        if type(node) is dict or isinstance(node, Mapping):
            if part not in node:
                return MISSING
            node = node[part]
        elif idx is not None and isinstance(node, list):
            if idx >= len(node):
                return MISSING
            node = node[idx]
        else:
            return MISSING
    return node


def _split_path(path: str) -> tuple[tuple[str, int | None], ...]:
    """`"images.0"` -> (("images", None), ("0", 0)): the steps `_walk` follows."""
    if path == "":
        return ()
    return tuple((part, int(part) if part.isdigit() else None) for part in path.split("."))


def get_path(body: Any, path: str) -> Any:
    """Read a dotted path (`input.prompt`, `images.0`); `MISSING` if any step is absent."""
    return _walk(body, _split_path(path))



_INT_FIELDS = ("duration", "seed", "width", "height")
_TIER = re.compile(r"^(\d{3,4})[pP]?$", re.ASCII)


def normalise(fields: dict[str, Any], sources: dict[str, str]) -> None:
    """Read values as the gateways do (docs/contract-conventions.md, "Neutral values").

    An integer field given as a numeric string (`"seconds": "5"`) is that integer; a `size`
    without `*` (`"720p"`) is a resolution tier, as new-api reads it (its Ali adaptor's
    convertToAliRequest).
    """
    for name in _INT_FIELDS:
        value = fields.get(name)
        # ASCII digits only, as Go's strconv reads them ("²" and "٥" are digits to
        # str.isdigit, and int() refuses the first), and no more than an int64 holds (int()
        # refuses over 4300 digits; strconv.Atoi over 19 is out of range).
        number = ascii_int(value.strip(), 19, signed=True) if isinstance(value, str) else None
        if number is not None:
            fields[name] = number
    size = fields.get("size")
    if isinstance(size, str) and "*" not in size:
        match = _TIER.match(size.strip())
        if match and "resolution" not in fields:
            fields["resolution"] = match.group(1) + "P"
            sources["resolution"] = sources.get("size", "size")
            del fields["size"]




class SpecExtraction:
    """The `x-wanmock-spec` part of an `Operation` (a mixin: `Operation` holds the data)."""

    __slots__ = ()
    spec_map: dict[str, Any]
    _extract_plan: tuple[list[tuple[str, Any, bool]], SpecNode] | None

    def extract(self, body: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """Reduce a body to neutral fields by `x-wanmock-spec`; also where each value came from."""
        fields: dict[str, Any] = {}
        sources: dict[str, str] = {}
        plan = self._extract_plan
        if plan is None:
            plan = self._extract_plan = _compile_spec_map(self.spec_map)  # type: ignore[misc]
        rows, trie = plan
        found: dict[str, tuple[int, Any, str]] = {}
        trie.collect(body, found)  # one walk over the body for every path
        for name, const, has_paths in rows:
            if not has_paths:
                fields[name] = const
            elif name in found:
                _, fields[name], sources[name] = found[name]
        normalise(fields, sources)
        return fields, sources

    def _wire_path(self, neutral: str) -> str:
        """Where a neutral field would be in the body (its first `x-wanmock-spec` path)."""
        where = self.spec_map.get(neutral)
        if isinstance(where, list) and where:
            return str(where[0])
        return neutral

