"""The contract layer: load the OpenAPI contracts and the catalogue, and judge requests.

No HTTP here. `load()` reads `contracts/<family>.yaml` and `contracts/catalogue.yaml` once per
directory, validates each document with openapi-spec-validator, indexes operations by
`operationId` and compiles their JSON Schema validators once. `Contract.check_request()` returns
the structured `Violation`s a provider would raise for a request body: JSON Schema first (reported
through the operation's `x-wanmock-errors`), then the catalogue rules (reported through its
`x-wanmock-rules`). See docs/contract-conventions.md for the extensions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver import wording
from mockserver.catalogue import Catalogue, JobSpec, RuleFailure
from mockserver.errors import ContractError, Timing, Violation

FAMILIES = ("dashscope", "newapi", "jiekou", "apiyi")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_PLACEHOLDER = re.compile(r"\{(field|detail|value|model|allowed|status|code|message|request_id)\}")
_MISSING = object()


def contracts_dir() -> Path:
    """Where the contracts live: $WANMOCK_CONTRACTS, the installed copy, or the source tree."""
    env = os.environ.get("WANMOCK_CONTRACTS")
    if env:
        return Path(env)
    installed = Path(__file__).parent / "_contracts"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "contracts"


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Substitute `{field}`-style placeholders, leaving any other braces alone."""

    def sub(match: re.Match[str]) -> str:
        value = values.get(match.group(1), _MISSING)
        return match.group(0) if value is _MISSING else str(value)

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


class _SpecNode:
    """One step of the `x-wanmock-spec` paths of an operation, as a trie: `keys` the next steps
    by key, `indexes` those that are also list positions (`images.0`), `hits` the (name, rank,
    path) of every path ending here (rank: its place in that name's list of paths)."""

    __slots__ = ("keys", "indexes", "hits")

    def __init__(self) -> None:
        self.keys: dict[str, _SpecNode] = {}
        self.indexes: list[tuple[int, _SpecNode]] = []
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


def _compile_spec_map(spec_map: Mapping[str, Any]) -> tuple[list[tuple[str, Any, bool]], _SpecNode]:
    """`x-wanmock-spec` as rows (name, const, has_paths), in order, and one trie of its paths,
    split into the (key, index-or-None) steps `_walk` follows, as `get_path` would."""
    rows: list[tuple[str, Any, bool]] = []
    root = _SpecNode()
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
                    child = node.keys[part] = _SpecNode()
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
                return _MISSING
            node = node[part]
        elif idx is not None and isinstance(node, list):
            if idx >= len(node):
                return _MISSING
            node = node[idx]
        else:
            return _MISSING
    return node


def _split_path(path: str) -> tuple[tuple[str, int | None], ...]:
    """`"images.0"` -> (("images", None), ("0", 0)): the steps `_walk` follows."""
    if path == "":
        return ()
    return tuple((part, int(part) if part.isdigit() else None) for part in path.split("."))


def get_path(body: Any, path: str) -> Any:
    """Read a dotted path (`input.prompt`, `images.0`); `_MISSING` if any step is absent."""
    return _walk(body, _split_path(path))


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
# Keywords whose single compiled-validator error is confirmed on its own schema node, so the
# whole body need not go through jsonschema (`Operation.schema_violations`). `pattern` is not
# among them: the compiled validator runs the strict rewrite of each pattern.
_NODE_KEYWORDS = frozenset({
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "multipleOf", "required",
})
_LENGTH_KEYWORDS = frozenset({"minLength", "maxLength", "minItems", "maxItems"})


@dataclass(slots=True)
class Operation:
    """One operation of a contract, with its compiled validators."""

    family: str
    operation_id: str
    method: str
    path: str
    role: str
    raw: Mapping[str, Any]
    body_validator: Draft202012Validator | None
    parameters: list[Mapping[str, Any]]
    errors: list[ErrorMapping]
    rules: dict[str, Mapping[str, Any]]
    spec_map: dict[str, Any]
    response_validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    # A compiled (jsonschema_rs) validator at least as strict as `body_validator`: when it
    # accepts a body, so would `body_validator`; otherwise `body_validator` decides and words
    # the errors. None when jsonschema_rs is missing or cannot take the schema.
    fast_validator: Any = None
    # (parameter, where, name, schema, validator) for the query and header parameters.
    _checked_params: list[tuple[Mapping[str, Any], str, str, Any, Any]] | None = None
    # `spec_map` compiled once: its rows in order and the trie of its paths.
    _extract_plan: tuple[list[tuple[str, Any, bool]], _SpecNode] | None = None
    # Per header/query parameter: values already found valid (most clients send the same ones).
    _valid_params: dict[str, set[Any]] = field(default_factory=dict)
    # The contract document (to find the schema node of a compiled-validator error) and a
    # jsonschema validator per such node, built on first use.
    document: Mapping[str, Any] | None = None
    _node_validators: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    # Violations already worded for a scalar at a place (see `_single_error`).
    _seen_errors: dict[tuple[Any, ...], Violation] = field(default_factory=dict)

    @property
    def checks_parameters(self) -> bool:
        """Whether the operation declares query or header parameters to check."""
        return bool(self._params())

    @property
    def checks_query(self) -> bool:
        """Whether the operation declares query parameters to check."""
        return any(where == "query" for _, where, _, _, _ in self._params())

    def _params(self) -> list[tuple[Mapping[str, Any], str, str, Any, Any]]:
        checked = self._checked_params
        if checked is None:
            checked = self._checked_params = [
                (param, str(param.get("in")), str(param.get("name")), param.get("schema") or {},
                 _param_validator(self.family, self.operation_id, str(param.get("name")),
                                  param.get("schema") or {}))
                for param in self.parameters if param.get("in") in ("query", "header")
            ]
        return checked

    # -- request judgement -------------------------------------------------------------------
    def schema_violations(self, body: Any) -> list[Violation]:
        """JSON Schema violations of the body, most relevant first, as this provider words them."""
        if self.body_validator is None:
            return []
        fast = self.fast_validator
        if fast is not None:
            try:
                if fast.is_valid(body):
                    return []
                single = self._single_error(body)
            except Exception:  # a value it cannot take (lone surrogates...): ask jsonschema
                single = None
            if single is not None:
                return [single]
        errors = sorted(self.body_validator.iter_errors(body), key=relevance)
        return [self._violation(err) for err in _leaves(errors)]

    def _single_error(self, body: Any) -> Violation | None:
        """The violation, when the compiled validator finds exactly one and jsonschema agrees on
        that schema node: then jsonschema's whole-body answer is that one error (the compiled
        validator is at least as strict), without walking the body in Python. None otherwise."""
        found = self.fast_validator.iter_errors(body)
        first = next(found, None)
        if first is None or next(found, None) is not None:
            return None
        location = tuple(first.schema_path)
        if not location or location[-1] not in _NODE_KEYWORDS or self.document is None:
            return None
        keyword = str(location[-1])
        where = tuple(first.instance_path)
        instance = first.instance
        # Clients repeat the same mistake: a scalar at the same place gets the same violation.
        key = None
        if instance is None or type(instance) in (str, int, float, bool):
            key = (location, where, type(instance), instance)
            cached = self._seen_errors.get(key)
            if cached is not None:
                return cached
        found = self._confirm(keyword, location, [str(p) for p in where], first)
        if found is not None and key is not None:
            if len(self._seen_errors) >= 1024:
                self._seen_errors.clear()
            self._seen_errors[key] = found
        return found

    def _confirm(self, keyword: str, location: tuple[Any, ...], parts: list[str],
                 first: Any) -> Violation | None:
        """The compiled validator's one error, checked by jsonschema on its own schema node."""
        instance = first.instance
        document = self.document
        if document is None:
            return None
        if keyword == "required":
            missing = getattr(first.kind, "property", None)
            if not isinstance(instance, Mapping) or not isinstance(missing, str) or (
                    missing in instance):
                return None
            node = _at(document, location[:-1])
            return self._make_violation("required", [*parts, missing], None, node,
                                        node.get("required") if isinstance(node, Mapping) else None)
        if keyword in _LENGTH_KEYWORDS:
            # Lengths and item counts mean the same to both engines (characters, items): no
            # second look needed, only the node for the sibling bound.
            limit = getattr(first.kind, "limit", None)
            node = _at(document, location[:-1])
            if isinstance(limit, int) and isinstance(node, Mapping) and node.get(keyword) == limit:
                return self._make_violation(keyword, parts, instance, node, limit)
            return None
        validator = self._node_validators.get(location)
        if validator is None:
            node = _at(document, location[:-1])
            if not isinstance(node, Mapping):
                return None
            try:
                validator = Draft202012Validator(_inline(document, node))
            except _Cyclic:
                return None
            if len(self._node_validators) < 512:
                self._node_validators[location] = validator
        for err in validator.iter_errors(instance):
            if err.validator == keyword and not err.path:
                return self._make_violation(keyword, parts, instance, err.schema,
                                            err.validator_value)
        return None

    def _violation(self, err: ValidationError) -> Violation:
        keyword = str(err.validator)
        parts = [str(p) for p in err.absolute_path]
        value: Any = err.instance
        if keyword == "required" and isinstance(err.instance, Mapping):
            missing = [p for p in err.validator_value if p not in err.instance]
            if missing:
                parts.append(str(missing[0]))
                value = None
        return self._make_violation(keyword, parts, value, err.schema, err.validator_value)

    def _make_violation(self, keyword: str, parts: list[str], value: Any, schema: Any,
                        keyword_value: Any) -> Violation:
        field_path = ".".join(parts)
        mapping = self.error_for(field_path, keyword)
        values = wording.schema_values(keyword, field_path, value, schema, keyword_value,
                                       detail="{detail}" in mapping.message)
        return Violation(
            field=field_path,
            rule=f"schema:{keyword}",
            status=mapping.status,
            code=mapping.code,
            message=wording.fill_template(mapping.message, values),
            timing="submit",
            value=value,
            wrap=mapping.wrap,
        )

    def parameter_violations(
        self, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> list[Violation]:
        """Violations of the declared query and header parameters (required, type, enum...)."""
        out: list[Violation] = []
        for param, where, name, schema, validator in self._params():
            source = query if where == "query" else headers
            value = source.get(name if where == "query" else name.lower())
            if value is None:
                if param.get("required"):
                    out.append(self._param_violation(name, "required", None, schema, [name]))
                continue
            known = self._valid_params.get(name)
            if known is not None and value in known:
                continue
            error = next(iter(validator.iter_errors(_coerce(value, schema))), None)
            if error is not None:
                out.append(self._param_violation(name, str(error.validator), error.instance,
                                                 error.schema, error.validator_value))
            elif len(value) <= 128:
                known = self._valid_params.setdefault(name, set())
                if len(known) >= 256:
                    known.clear()
                known.add(value)
        return out

    def violation_for(self, field_path: str, keyword: str, value: Any = None,
                      schema: Any = None, keyword_value: Any = None) -> Violation:
        """A violation of `keyword` at `field_path` worded by this operation's
        `x-wanmock-errors`, for the checks a handler makes itself."""
        return self._param_violation(field_path, keyword, value, schema or {}, keyword_value)

    def _param_violation(self, name: str, keyword: str, value: Any, schema: Any,
                         keyword_value: Any) -> Violation:
        mapping = self.error_for(name, keyword)
        values = wording.schema_values(keyword, name, value, schema, keyword_value)
        return Violation(
            field=name, rule=f"schema:{keyword}", status=mapping.status, code=mapping.code,
            message=wording.fill_template(mapping.message, values), value=value,
        )

    def error_for(self, field_path: str, keyword: str) -> ErrorMapping:
        for mapping in self.errors:
            if mapping.matches(field_path, keyword):
                return mapping
        return DEFAULT_MAPPING

    def extract(self, body: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """Reduce a body to neutral fields by `x-wanmock-spec`; also where each value came from."""
        fields: dict[str, Any] = {}
        sources: dict[str, str] = {}
        plan = self._extract_plan
        if plan is None:
            plan = self._extract_plan = _compile_spec_map(self.spec_map)
        rows, trie = plan
        found: dict[str, tuple[int, Any, str]] = {}
        trie.collect(body, found)  # one walk over the body for every path
        for name, const, has_paths in rows:
            if not has_paths:
                fields[name] = const
            elif name in found:
                _, fields[name], sources[name] = found[name]
        _normalise(fields, sources)
        return fields, sources

    def _wire_path(self, neutral: str) -> str:
        """Where a neutral field would be in the body (its first `x-wanmock-spec` path)."""
        where = self.spec_map.get(neutral)
        if isinstance(where, list) and where:
            return str(where[0])
        return neutral

    def rule_violation(
        self,
        failure: RuleFailure,
        sources: Mapping[str, str],
        timing: Timing | None = None,
    ) -> Violation:
        """Report a catalogue rule failure the way this operation's contract says."""
        report = self.rules.get(failure.rule)
        wire_field = sources.get(failure.field) or self._wire_path(failure.field)
        if report is None:
            # A contract that forgot a rule still answers with its default error (and the test
            # suite flags the omission); the fake never crashes on it.
            mapping = self.error_for(wire_field, failure.rule)
            report = {"timing": "submit", "status": mapping.status, "code": mapping.code,
                      "message": mapping.message}
        values = wording.rule_values(wire_field, failure.value, failure.allowed, failure.model)
        return Violation(
            field=wire_field,
            rule=failure.rule,
            status=int(report.get("status", 400)),
            code=str(report.get("code", "InvalidParameter")),
            message=wording.fill_template(str(report.get("message", "{detail}")), values),
            timing=timing or report.get("timing", "submit"),
            value=failure.value,
            wrap=report.get("wrap"),
        )


@dataclass(slots=True)
class Contract:
    """One family's OpenAPI document, indexed."""

    family: str
    path: Path
    document: Mapping[str, Any]
    operations: dict[str, Operation]
    catalogue: Catalogue

    @property
    def envelopes(self) -> dict[str, Any]:
        env = self.document.get("x-wanmock-envelope") or {}
        if isinstance(env, Mapping) and "default" in env and isinstance(env["default"], Mapping):
            return dict(env)
        return {"default": env}

    @property
    def decisions(self) -> list[Mapping[str, Any]]:
        return list(self.document.get("x-wanmock-decisions") or [])

    def operation(self, operation_id: str) -> Operation:
        try:
            return self.operations[operation_id]
        except KeyError:
            raise ContractError(
                f"{self.family} has no operation {operation_id!r}; "
                f"it has {sorted(self.operations)}"
            ) from None

    def by_role(self, role: str) -> list[Operation]:
        return [op for op in self.operations.values() if op.role == role]

    def render_error(
        self, status: int, code: str, message: str, *, envelope: str = "default",
        request_id: str | None = None,
    ) -> Any:
        envelopes = self.envelopes
        template = envelopes.get(envelope) or envelopes["default"]
        return render_envelope(
            template,
            {"status": status, "code": code, "message": message, "request_id": request_id},
        )

    def check_request(
        self,
        operation_id: str,
        body: Any,
        *,
        rule_timing: Timing | None = None,
    ) -> tuple[JobSpec | None, list[Violation]]:
        """Judge a request body: the job it would run, and every violation, first reported first.

        Schema violations come first (the provider parses before it checks models); catalogue
        rules are evaluated only on a schema-valid body. `rule_timing` overrides the contract's
        submit/async choice for every catalogue rule.
        """
        op = self.operation(operation_id)
        violations = op.schema_violations(body)
        if violations or op.role != "submit":
            return None, violations
        fields, sources = op.extract(body)
        spec, failures = self.catalogue.evaluate(self.family, fields)
        violations = [op.rule_violation(f, sources, rule_timing) for f in failures]
        # Submit-time rejections are reported before anything that would only fail later.
        violations.sort(key=lambda v: v.timing != "submit")
        return spec, violations


@dataclass(slots=True)
class ContractSet:
    """Every family's contract and the shared catalogue."""

    directory: Path
    contracts: dict[str, Contract]
    catalogue: Catalogue

    def __getitem__(self, family: str) -> Contract:
        try:
            return self.contracts[family]
        except KeyError:
            raise ContractError(
                f"unknown family {family!r}; known: {sorted(self.contracts)}"
            ) from None

    def __iter__(self) -> Iterator[Contract]:
        return iter(self.contracts.values())

    def operation(self, family: str, operation_id: str) -> Operation:
        return self[family].operation(operation_id)


def validate_document(document: Mapping[str, Any], path: Path | str = "<contract>") -> None:
    """Raise `ContractError` unless the document is valid OpenAPI (openapi-spec-validator)."""
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    try:
        validate(document)  # type: ignore[arg-type]
    except OpenAPIValidationError as exc:
        raise ContractError(f"{path}: not valid OpenAPI: {exc}") from exc


def _build_operations(
    family: str, document: Mapping[str, Any], registry: Registry, base: str
) -> dict[str, Operation]:
    ops: dict[str, Operation] = {}
    fast_registry = _fast_registry(base, document)
    for path, item in (document.get("paths") or {}).items():
        shared_params = item.get("parameters") or []
        for method in HTTP_METHODS:
            raw = item.get(method)
            if raw is None:
                continue
            op_id = raw.get("operationId")
            if not op_id:
                raise ContractError(f"{family}: {method.upper()} {path} has no operationId")
            if op_id in ops:
                raise ContractError(f"{family}: duplicate operationId {op_id!r}")
            pointer = "/paths/" + _escape(path) + "/" + method
            body_validator = None
            content = ((raw.get("requestBody") or {}).get("content") or {})
            if "application/json" in content and "schema" in content["application/json"]:
                ref = f"{base}#{pointer}/requestBody/content/application~1json/schema"
                body_validator = _schema_validator(
                    document, content["application/json"]["schema"], ref, registry)
            responses: dict[str, Draft202012Validator] = {}
            for status, resp in (raw.get("responses") or {}).items():
                resp = _deref(document, resp)
                media = ((resp.get("content") or {}).get("application/json") or {})
                if "schema" in media:
                    ref = (
                        f"{base}#{pointer}/responses/{_escape(str(status))}"
                        if "$ref" not in raw["responses"][status]
                        else f"{base}{raw['responses'][status]['$ref']}"
                    )
                    responses[str(status)] = _schema_validator(
                        document, media["schema"], f"{ref}/content/application~1json/schema",
                        registry)
            fast_validator = None
            if body_validator is not None and fast_registry is not None:
                fast_validator = _fast_validator(
                    fast_registry, f"{base}#{pointer}/requestBody/content/application~1json/schema")
            errors = [
                ErrorMapping(
                    status=int(e["status"]),
                    code=str(e["code"]),
                    message=str(e.get("message", "{detail}")),
                    field=e.get("field"),
                    keyword=(tuple(e["keyword"]) if isinstance(e.get("keyword"), list)
                             else e.get("keyword")),
                    wrap=e.get("wrap"),
                )
                for e in raw.get("x-wanmock-errors") or []
            ]
            ops[op_id] = Operation(
                family=family,
                operation_id=op_id,
                method=method.upper(),
                path=path,
                role=str(raw.get("x-wanmock-role", "")),
                raw=raw,
                body_validator=body_validator,
                parameters=[_deref(document, p)
                            for p in [*shared_params, *(raw.get("parameters") or [])]],
                errors=errors,
                rules=dict(raw.get("x-wanmock-rules") or {}),
                spec_map=dict(raw.get("x-wanmock-spec") or {}),
                response_validators=responses,
                fast_validator=fast_validator,
                document=document,
            )
    return ops


# -- the compiled fast path ------------------------------------------------------------------
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


def _fast_registry(base: str, document: Mapping[str, Any]) -> Any:
    """A jsonschema_rs registry holding the contract, or None (no jsonschema_rs, odd values)."""
    if os.environ.get("WANMOCK_NO_FAST_VALIDATION"):
        return None
    try:
        import jsonschema_rs

        return jsonschema_rs.Registry([(base, _strict_document(document))])
    except Exception:  # ImportError, a pattern without a strict form, YAML values JSON lacks
        return None


def _fast_validator(registry: Any, ref: str) -> Any:
    try:
        import jsonschema_rs

        return jsonschema_rs.Draft202012Validator(
            {"$ref": ref}, registry=registry, validate_formats=False)
    except Exception:
        return None


@lru_cache(maxsize=512)
def _param_validator_cached(key: str, schema_json: str) -> Draft202012Validator:
    import json

    return Draft202012Validator(json.loads(schema_json))


def _param_validator(family: str, op_id: str, name: str, schema: Any) -> Draft202012Validator:
    import json

    return _param_validator_cached(f"{family}:{op_id}:{name}", json.dumps(schema, sort_keys=True))


def _coerce(value: str, schema: Any) -> Any:
    """Read a query/header string as the type its schema declares, when it can."""
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    kinds = kind if isinstance(kind, list) else [kind]
    text = value.strip()
    if "integer" in kinds and text.lstrip("-").isdigit():
        return int(text)
    if "number" in kinds:
        try:
            return float(text)
        except ValueError:
            return value
    if "boolean" in kinds and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


_INT_FIELDS = ("duration", "seed", "width", "height")
_TIER = re.compile(r"^(\d{3,4})[pP]?$")


def _normalise(fields: dict[str, Any], sources: dict[str, str]) -> None:
    """Read values as the gateways do (docs/contract-conventions.md, "Neutral values").

    An integer field given as a numeric string (`"seconds": "5"`) is that integer; a `size`
    without `*` (`"720p"`) is a resolution tier, as new-api reads it (api-facts §2.8).
    """
    for name in _INT_FIELDS:
        value = fields.get(name)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            fields[name] = int(value)
    size = fields.get("size")
    if isinstance(size, str) and "*" not in size:
        match = _TIER.match(size.strip())
        if match and "resolution" not in fields:
            fields["resolution"] = match.group(1) + "P"
            sources["resolution"] = sources.get("size", "size")
            del fields["size"]


def _deref(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node and str(node["$ref"]).startswith("#/"):
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


class _Cyclic(Exception):
    pass


def _inline(document: Mapping[str, Any], node: Any, seen: tuple[str, ...] = ()) -> Any:
    """A copy of a schema with every local `$ref` replaced by what it points to (a `$ref` with
    sibling keywords becomes an `allOf` in its place), so a validator built on it never looks a
    reference up; it reports the same errors at the same instance paths. `_Cyclic` for a
    recursive schema, which keeps its references."""
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise _Cyclic(ref)  # not ours to resolve: keep the registry
            if ref in seen:
                raise _Cyclic(ref)
            target = _inline(document, _deref(document, {"$ref": ref}), (*seen, ref))
            if len(node) == 1:
                return target
            return {("allOf" if k == "$ref" else k): ([target] if k == "$ref" else
                                                       _inline(document, v, seen))
                    for k, v in node.items()}
        return {k: _inline(document, v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(document, v, seen) for v in node]
    return node


def _schema_validator(document: Mapping[str, Any], schema: Any, ref: str,
                      registry: Registry) -> Draft202012Validator:
    """A validator for `schema` (found at `ref`): over the inlined schema when it has no
    cycle, else over the reference and the registry."""
    try:
        return Draft202012Validator(_inline(document, schema))
    except _Cyclic:
        return Draft202012Validator({"$ref": ref}, registry=registry)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _leaves(errors: list[ValidationError]) -> list[ValidationError]:
    """Replace anyOf/oneOf wrappers by their most relevant sub-error, so messages name a field."""
    out = []
    for err in errors:
        while err.context:
            err = sorted(err.context, key=relevance)[0]
        out.append(err)
    return out


def _at(document: Mapping[str, Any], location: tuple[Any, ...]) -> Any:
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


def load_contract(path: Path, catalogue: Catalogue, *, validate: bool = True) -> Contract:
    with open(path, encoding="utf-8") as fh:
        document = yaml.safe_load(fh)
    family = path.stem
    if not isinstance(document, Mapping):
        raise ContractError(f"{path}: not a YAML mapping")
    if validate:
        validate_document(document, path)
    declared = document.get("x-wanmock-family")
    if declared is not None and declared != family:
        raise ContractError(f"{path}: x-wanmock-family {declared!r} differs from file name")
    base = f"urn:wanmock:contract:{family}"
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(base, resource)
    operations = _build_operations(family, document, registry, base)
    return Contract(family, path, document, operations, catalogue)


@lru_cache(maxsize=8)
def _load_cached(directory: Path, validate: bool) -> ContractSet:
    catalogue = Catalogue.load(directory / "catalogue.yaml")
    contracts = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.stem == "catalogue":
            continue
        contracts[path.stem] = load_contract(path, catalogue, validate=validate)
    if not contracts:
        raise ContractError(f"no contracts in {directory}")
    return ContractSet(directory, contracts, catalogue)


def load(directory: Path | str | None = None, *, validate: bool = True) -> ContractSet:
    """Load (once per directory) every contract and the catalogue."""
    return _load_cached(Path(directory or contracts_dir()).resolve(), validate)
