"""Request judging: the violations of a request as the operation's provider words them.

`RequestJudging` is the judging part of an `Operation` (a mixin: `Operation` holds the data):
JSON Schema violations of the body (compiled fast path first), of the query and header
parameters, and the catalogue rule failures, each reported through the contract's
`x-wanmock-errors` / `x-wanmock-rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance

from mockserver import wording
from mockserver.catalogue import RuleFailure
from mockserver.contracts.compiled import LENGTH_KEYWORDS, NODE_KEYWORDS
from mockserver.contracts.schema import Cyclic, coerce, inline, leaves, node_at, param_validator
from mockserver.contracts.templates import DEFAULT_MAPPING, ErrorMapping
from mockserver.errors import Timing, Violation


class RequestJudging:
    """The judging part of an `Operation`."""

    __slots__ = ()
    family: str
    operation_id: str
    body_validator: Draft202012Validator | None
    fast_validator: Any
    parameters: list[Mapping[str, Any]]
    errors: list[ErrorMapping]
    rules: dict[str, Mapping[str, Any]]
    document: Mapping[str, Any] | None
    _checked_params: list[tuple[Mapping[str, Any], str, str, Any, Any]] | None
    _valid_params: dict[str, set[Any]]
    _node_validators: dict[tuple[Any, ...], Any]
    _seen_errors: dict[tuple[Any, ...], Violation]

    def _wire_path(self, neutral: str) -> str:  # provided by SpecExtraction
        raise NotImplementedError

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
            checked = self._checked_params = [  # type: ignore[misc]
                (param, str(param.get("in")), str(param.get("name")), param.get("schema") or {},
                 param_validator(self.family, self.operation_id, str(param.get("name")),
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
        return model_first([self._violation(err) for err in leaves(errors)])

    def _single_error(self, body: Any) -> Violation | None:
        """The violation, when the compiled validator finds exactly one and jsonschema agrees on
        that schema node: then jsonschema's whole-body answer is that one error (the compiled
        validator is at least as strict), without walking the body in Python. None otherwise."""
        found = self.fast_validator.iter_errors(body)
        first = next(found, None)
        if first is None or next(found, None) is not None:
            return None
        location = tuple(first.schema_path)
        if not location or location[-1] not in NODE_KEYWORDS or self.document is None:
            return None
        keyword = str(location[-1])
        where = tuple(first.instance_path)
        # The body's own value at the error's place: the compiled validator reports NaN and
        # the infinities as null, which jsonschema (and so the slow path) words as they are.
        instance = _value_at(body, where, first.instance)
        # Clients repeat the same mistake: a scalar at the same place gets the same violation.
        key = None
        if instance is None or type(instance) in (str, int, float, bool):
            key = (location, where, type(instance), instance)
            cached = self._seen_errors.get(key)
            if cached is not None:
                return cached
        found = self._confirm(keyword, location, [str(p) for p in where], first, instance)
        if found is not None and key is not None:
            if len(self._seen_errors) >= 1024:
                self._seen_errors.clear()
            self._seen_errors[key] = found
        return found

    def _confirm(self, keyword: str, location: tuple[Any, ...], parts: list[str],
                 first: Any, instance: Any) -> Violation | None:
        """The compiled validator's one error, checked by jsonschema on its own schema node."""
        document = self.document
        if document is None:
            return None
        if keyword == "required":
            missing = getattr(first.kind, "property", None)
            if not isinstance(instance, Mapping) or not isinstance(missing, str) or (
                    missing in instance):
                return None
            node = node_at(document, location[:-1])
            return self._make_violation("required", [*parts, missing], None, node,
                                        node.get("required") if isinstance(node, Mapping) else None)
        if keyword in LENGTH_KEYWORDS:
            # Lengths and item counts mean the same to both engines (characters, items): no
            # second look needed, only the node for the sibling bound.
            limit = getattr(first.kind, "limit", None)
            node = node_at(document, location[:-1])
            if isinstance(limit, int) and isinstance(node, Mapping) and node.get(keyword) == limit:
                return self._make_violation(keyword, parts, instance, node, limit)
            return None
        validator = self._node_validators.get(location)
        if validator is None:
            node = node_at(document, location[:-1])
            if not isinstance(node, Mapping):
                return None
            try:
                validator = Draft202012Validator(inline(document, node))
            except Cyclic:
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
            error = next(iter(validator.iter_errors(coerce(value, schema))), None)
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
        by_field = report.get("by_field")
        if by_field and wire_field in by_field:
            # The same rule worded for the field it fails on (wan2.7-i2v's `input.media`).
            report = {**report, **by_field[wire_field]}
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


def model_first(violations: list[Violation]) -> list[Violation]:
    """The violations, those of the `model` field first (otherwise in their order): a provider
    knows the model before it applies the schema's per-model branches (Wan 3.0's duration -1 is
    no error of an unknown model's body: the unknown model is)."""
    return sorted(violations, key=lambda v: v.field != "model")


def _value_at(body: Any, where: tuple[Any, ...], default: Any) -> Any:
    """The value at an error's instance path in the body (`default` when the path is not
    there)."""
    node = body
    for step in where:
        if isinstance(node, Mapping) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return default
    return node
