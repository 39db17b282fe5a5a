"""Argument checks of the strategies and the request schema of an operation, walked by path.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from hypothesis.errors import InvalidArgument
from jsonschema import Draft202012Validator
from jsonschema.exceptions import relevance

from mockserver.contracts import Contract, Operation


# -- argument checks ------------------------------------------------------------------------------
def check_type(value: Any, kind: type | tuple[type, ...], name: str) -> None:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidArgument(f"{name}={value!r} must be of type {getattr(kind, '__name__', kind)}")


def check_subset(value: Any, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Collection):
        raise InvalidArgument(f"{name}={value!r} must be a collection of {allowed}")
    chosen = tuple(dict.fromkeys(value))
    if not chosen:
        raise InvalidArgument(f"{name} must not be empty; choose among {allowed}")
    bad = [v for v in chosen if v not in allowed]
    if bad:
        raise InvalidArgument(f"{name}: unknown {bad}; choose among {allowed}")
    return chosen


def _merge(base: Any, extra: Any) -> Any:
    """`extra`'s keywords over `base`'s, object by object (an `allOf` branch's narrowing)."""
    if not isinstance(base, Mapping) or not isinstance(extra, Mapping):
        return extra
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if key in out else value
    return out


# -- the request schema, walked by dotted path ----------------------------------------------------
class Schema:
    """One operation's request-body schema: sub-schemas, required-ness and checks by body path."""

    def __init__(self, contract: Contract, op: Operation, model: str | None = None) -> None:
        self.document = contract.document
        content = ((op.raw.get("requestBody") or {}).get("content") or {})
        root = self._deref((content.get("application/json") or {}).get("schema") or {})
        self._validators: dict[str, Draft202012Validator] = {}
        # Where the body names its model (`model`, or `version` where a version names it): the
        # `allOf` branches test a body with the model there.
        where = op.spec_map.get("model")
        self._model_path = str(where[0]) if isinstance(where, list) and where else "model"
        # The per-model ranges the schema gives in `allOf` `if`/`then`/`else` branches on
        # `model` (Wan 3.0's duration, seed, ratio), merged in for this model.
        self.root = self._for_model(root, model) if model is not None else root
        self._unbranched = root

    def without_model(self) -> Schema:
        """The operation's schema without the branches chosen by model: what the family checks
        before it knows the model (a body naming a model no branch lists)."""
        other = copy.copy(self)
        other.root, other._validators = self._unbranched, {}
        return other

    def _for_model(self, root: Any, model: str) -> Any:
        if not isinstance(root, Mapping) or not ("allOf" in root or "anyOf" in root):
            return root
        # Resolved first: a branch narrows properties a `$ref` would otherwise hide.
        merged: dict[str, Any] = {k: self._deep(v) for k, v in root.items()
                                  if k not in ("allOf", "anyOf")}
        for branch in root.get("allOf") or []:
            for part in self._chosen(branch, model):
                merged = _merge(merged, self._deep(part))
        # `anyOf` with one branch per model (a body that names its model by version): the
        # branches a body of this model meets.
        for branch in root.get("anyOf") or []:
            if Draft202012Validator(self._deep(branch)).is_valid(self._model_body(model)):
                merged = _merge(merged, self._deep(branch))
        return merged

    def _model_body(self, model: str) -> dict[str, Any]:
        """A body holding only the model, where the operation names it."""
        body: dict[str, Any] = {}
        node = body
        *parents, last = self._model_path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = model
        return body

    def _chosen(self, branch: Any, model: str) -> list[Any]:
        """The parts of an `allOf` branch that apply to a body of `model`."""
        branch = self._deref(branch)
        if not isinstance(branch, Mapping):
            return []
        if "if" not in branch:
            return [branch]
        test = Draft202012Validator(self._deep(branch["if"]))
        body = self._model_body(model)
        picked = branch.get("then") if test.is_valid(body) else branch.get("else")
        return self._chosen(picked, model) if picked is not None else []

    def _deref(self, node: Any) -> Any:
        while isinstance(node, Mapping) and str(node.get("$ref", "")).startswith("#/"):
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _deep(self, node: Any, depth: int = 0) -> Any:
        node = self._deref(node)
        if depth > 20:
            return {}
        if isinstance(node, Mapping):
            return {k: self._deep(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self._deep(v, depth + 1) for v in node]
        return node

    def at(self, path: str) -> Mapping[str, Any]:
        """The schema of the value at `path` ({} when the schema does not describe it)."""
        node: Any = self.root
        for part in path.split("."):
            node = self._deref(node)
            if not isinstance(node, Mapping):
                return {}
            if part.isdigit() and "items" in node:
                node = node["items"]
            else:
                node = (node.get("properties") or {}).get(part)
            if node is None:
                return {}
        return self._deref(node) or {}

    def required(self, path: str) -> bool:
        """Whether the schema requires `path` (every step of it) in the body."""
        node: Any = self.root
        for part in path.split("."):
            node = self._deref(node)
            if not isinstance(node, Mapping) or part not in (node.get("required") or []):
                return False
            node = (node.get("properties") or {}).get(part)
        return True

    def rejects(self, path: str, value: Any) -> str | None:
        """The JSON Schema keyword the value at `path` fails first, or None when it passes."""
        validator = self._validators.get(path)
        if validator is None:
            validator = self._validators[path] = Draft202012Validator(self._deep(self.at(path)))
        errors = sorted(validator.iter_errors(value), key=relevance)
        if not errors:
            return None
        err = errors[0]
        while err.context:
            err = sorted(err.context, key=relevance)[0]
        return str(err.validator)

    def label(self, path: str, value: Any, rule: str) -> str:
        """`rule` when the schema lets the value through to the catalogue, else `schema:<kw>`."""
        keyword = self.rejects(path, value)
        return rule if keyword is None else f"schema:{keyword}"

    def bounds(self, path: str, low: int, high: int) -> tuple[int, int]:
        sub = self.at(path)
        return int(sub.get("minimum", low)), int(sub.get("maximum", high))
