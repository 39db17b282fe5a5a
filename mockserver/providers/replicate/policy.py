"""Replicate's policy (no Starlette): who may call, how each error reads (RFC 7807 problem
details, contracts/replicate.yaml decision errors), how a body is judged (the version or the
path names the model, whose input schema the body must meet; every schema problem at once, in
gojsonschema's words)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator

from mockserver.catalogue import JobSpec
from mockserver.contracts import Operation
from mockserver.core.scenarios import Scenario
from mockserver.errors import ProviderError, Violation
from mockserver.providers.policy import Policy
from mockserver.providers.replicate import validation
from mockserver.providers.replicate.models import Model, Models

NOT_FOUND = "The requested resource could not be found."
UNAUTHENTICATED = "Unauthenticated"
THROTTLED = "Request was throttled. Your rate limit resets in ~{seconds}s."
# The catalogue rule a file input's `format: uri` problem is, by the neutral field it feeds.
_FORMAT_RULES = {"img_url": "image_url_format", "last_frame_url": "image_url_format",
                 "audio_url": "audio_url_format"}


@dataclass(slots=True)
class ProblemError(ProviderError):
    """An error whose whole problem body is known (a 422 with `invalid_fields`)."""

    problem: dict[str, Any] = field(default_factory=dict)


def problem_error(violations: list[Violation]) -> ProblemError:
    """422 Input validation failed, every problem listed (decision validation-wording)."""
    found = validation.body(violations)
    return ProblemError(422, validation.TITLE, found["detail"], violation=violations[0],
                        problem=found)


class ReplicatePolicy(Policy):
    """Replicate's wording and its judgement of a prediction request."""

    name = "replicate"
    unrouted_codes = {404: "Not found", 405: "Method not allowed"}

    @cached_property
    def models(self) -> Models:
        """The wan-video models of the contract (names, versions, input schemas)."""
        return Models(self.contract)

    # -- who is calling ----------------------------------------------------------------------
    def read_key(self, headers: Mapping[str, str]) -> str:
        """`Authorization: Bearer <token>`, or the older `Token <token>` the OAS's files
        examples still show (decision auth)."""
        header = (headers.get("authorization") or "").strip()
        scheme, _, key = header.partition(" ")
        if scheme.lower() == "token" and key.strip():
            allowed = self.context.options.api_keys
            if allowed and key.strip() not in allowed:
                raise self.auth_error("invalid")
            return key.strip()
        return super().read_key(headers)

    def auth_error(self, kind: str) -> ProviderError:
        if kind == "missing":  # replicate/replicate-python#47 (mattt quoting the API)
            return ProviderError(401, UNAUTHENTICATED,
                                 "You did not pass an authentication token")
        # tests/cassettes/run__invalid-token.yaml
        return ProviderError(401, UNAUTHENTICATED, "You did not pass a valid authentication token")

    def result_auth(self) -> str:
        """replicate's FileOutput.read sends the API token with every download
        (replicate/helpers.py:135-142), and Replicate asks for it (decision delivery-auth)."""
        return "accept"

    # -- errors --------------------------------------------------------------------------------
    def body_error(self, kind: str, op: Operation) -> ProviderError:
        if kind == "too_large":
            if op.operation_id == "createFile":  # OAS files.create 413 example
                return ProviderError(413, "Content Too Large",
                                     "Files must be less than 100MB in size", envelope="detail")
            return ProviderError(413, "Content Too Large", "Request body too large",
                                 envelope="detail")
        messages = {"empty": "The request body is empty",
                    "not_json": "The request body is not valid JSON",
                    "content_type": "The request body must be JSON"}
        return ProviderError(400, "Bad request", messages.get(kind, "Invalid request body"))

    def not_found(self) -> ProviderError:
        """404 for a model, prediction, deployment or version the caller cannot see."""
        return ProviderError(404, "Not found", NOT_FOUND, envelope="detail")

    def internal_error(self) -> ProviderError:
        return ProviderError(500, "Internal server error", "An unexpected error occurred.")

    def parameter_error(self, violation: Violation, op: Operation) -> ProviderError:
        """A header or query parameter the contract refuses (Prefer's pattern...), worded as
        any schema problem."""
        keyword = violation.rule.removeprefix("schema:")
        found = validation.problem(keyword, [violation.field], violation.value,
                                   _keyword_value(op, violation.field, keyword))
        return problem_error([found])

    def violation_error(self, violation: Violation, op: Operation) -> ProviderError:
        if violation.rule == "model_known":  # the version names no model the caller may run
            return ProviderError(422, violation.code, violation.message, violation=violation)
        if violation.rule.startswith("schema:"):
            return problem_error([violation])
        # A catalogue rule reported at submit (rule_timing=submit): a problem of its field.
        return problem_error([Violation(violation.field, violation.rule, 422, validation.TITLE,
                                        violation.message, value=violation.value)])

    def error_body(self, err: ProviderError, op: Operation | None = None) -> Any:
        if isinstance(err, ProblemError):
            return err.problem
        return super().error_body(err, op)

    def fault_error(self, scenario: Scenario, op: Operation | None = None) -> ProviderError:
        """A transport fault in Replicate's words; a 429 says when its window resets, in the
        same seconds as its Retry-After (decision rate-limits)."""
        err = super().fault_error(scenario, op)
        if err.status == 429:
            seconds = err.headers.get("Retry-After") or "1"
            err.message = THROTTLED.format(seconds=seconds)
        return err

    # -- judging -------------------------------------------------------------------------------
    def model_of(self, op: Operation, body: Any) -> Model | None:
        """The model a request runs: its operation's (`/v1/models/<o>/<n>/predictions`) or, on
        the version path, the one its `version` names."""
        if op.operation_id == "createPrediction":
            return self.models.resolve(body.get("version") if isinstance(body, Mapping) else None)
        fixed = op.spec_map.get("model")
        if isinstance(fixed, Mapping):
            return self.models.get(str(fixed.get("const")))
        return None

    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None, *,
              assume: Mapping[str, Any] | None = None) -> tuple[JobSpec | None, list[Violation]]:
        """The body's problems in Replicate's words (all at once), the version's model, then the
        catalogue's rules. A deployment's request is judged by its model's operation (the
        routes know the deployment); alone, only its wrapper is checked."""
        model = self.model_of(op, body)
        if model is None:
            problems = self.problems(op, None, body)
            if problems or op.operation_id != "createPrediction":
                return None, problems
            report = op.rules.get("model_known") or {}
            return None, [Violation("version", "model_known", int(report.get("status", 422)),
                                    str(report.get("code", "Invalid version or not permitted")),
                                    str(report.get("message", "")),
                                    value=body.get("version") if isinstance(body, Mapping)
                                    else None)]
        judged = dict(body, version=model.name) if op.operation_id == "createPrediction" else body
        spec, violations = super().judge(op, judged, headers, assume=assume)
        problems = validation.problems(None, body, model.input_schema)
        if problems or any(v.rule.startswith("schema:") for v in violations):
            return None, self._named(op, self.problems(op, model, body))
        if spec is not None:
            seconds = model.duration_of(body.get("input") if isinstance(body, Mapping) else None)
            if seconds is not None:  # frames / fps (decision frames-duration)
                spec.duration = seconds
        return spec, violations

    def problems(self, op: Operation, model: Model | None, body: Any) -> list[Violation]:
        """The body's schema problems: on the version path its wrapper's (the schema without
        its per-model branches) and its input's as the model's own operation checks them."""
        schema = model.input_schema if model is not None else None
        if op.operation_id != "createPrediction":
            return validation.problems(op.body_validator, body, schema)
        more = []
        if model is not None and isinstance(body, Mapping) and model.operation.body_validator:
            more.append((model.operation.body_validator,
                         {k: v for k, v in body.items() if k != "version"}))
        return validation.problems(self._wrapper(op), body, schema, more)

    def _wrapper(self, op: Operation) -> Draft202012Validator:
        """The version path's schema without its `anyOf` of models (made once)."""
        found = self._wrappers.get(op.operation_id)
        if found is None:
            content = (op.raw.get("requestBody") or {}).get("content") or {}
            schema = (content.get("application/json") or {}).get("schema") or {}
            found = self._wrappers[op.operation_id] = Draft202012Validator(
                {k: v for k, v in schema.items() if k != "anyOf"})
        return found

    @cached_property
    def _wrappers(self) -> dict[str, Draft202012Validator]:
        return {}

    @staticmethod
    def _named(op: Operation, problems: list[Violation]) -> list[Violation]:
        """A file input that is no URI breaks the schema's `format: uri` (worded so); it is the
        catalogue's image or audio URL rule, named so (decision validation-wording)."""
        out = []
        for found in problems:
            if found.rule == "schema:format":
                neutral = next((name for name, paths in op.spec_map.items()
                                if isinstance(paths, list) and found.field in paths), None)
                rule = _FORMAT_RULES.get(neutral or "")
                if rule is not None:
                    found = replace(found, rule=rule)
            out.append(found)
        return out

    def settle(self, op: Operation, spec: JobSpec | None, violations: list[Violation]
               ) -> tuple[JobSpec, Violation | None]:
        """Every schema problem in one 422; another submit-time violation on its own."""
        now = [v for v in violations if v.timing == "submit"]
        schema = [v for v in now if v.code == validation.TITLE]
        if schema:
            raise problem_error(schema)
        if now:
            raise self.violation_error(now[0], op)
        if spec is None:
            raise self.internal_error()
        return spec, (violations[0] if violations else None)


def _keyword_value(op: Operation, name: str, keyword: str) -> Any:
    """The schema value of `keyword` for the parameter `name` (its pattern, its enum)."""
    for param in op.parameters:
        if str(param.get("name", "")).lower() == name.lower():
            return (param.get("schema") or {}).get(keyword)
    return None
