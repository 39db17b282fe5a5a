"""OpenRouter's policy (no Starlette): its error envelope `{"error": {"code": <status>,
"message", "metadata"?}}` (https://openrouter.ai/docs/api_reference/errors-and-debugging),
who may call it, and its judgement of a `POST /api/v1/videos` body: the JSON Schema, then
OpenRouter's reading against the model's capability object (request.py), then the catalogue's
rules for the Wan model behind it.

`ProviderError.code` is the SDK's canonical error type (openrouter 1.3.84
components/apierrortype.py: `invalid_request`, `authentication`...), kept in the journal; the
wire carries only the HTTP status as `error.code` (an integer: the SDK's error models declare
`code: int`, components/badrequestresponseerrordata.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mockserver.catalogue import JobSpec
from mockserver.contracts import Operation
from mockserver.core.scenarios import Scenario
from mockserver.core.webhooks import RetryPolicy
from mockserver.errors import ProviderError, Violation
from mockserver.providers.openrouter import request
from mockserver.providers.policy import Policy

MISSING_KEY = "No auth credentials found"
INVALID_KEY = "User not found."
NOT_FOUND = "Resource not found"


@dataclass(slots=True)
class OpenRouterError(ProviderError):
    """A `ProviderError` with the envelope's `metadata` (moderation reasons, what was
    dropped)."""

    metadata: dict[str, Any] | None = None


class OpenRouterPolicy(Policy):
    """How OpenRouter answers."""

    name = "openrouter"
    unrouted_codes = {404: "not_found", 405: "not_found"}

    # -- who may call ----------------------------------------------------------------------------
    def authenticate(self, headers: Mapping[str, str], op: Operation) -> str:
        """The bearer key; the model list answers without one unless `openrouter_models_auth`
        is `required` (decision models-auth)."""
        if (op.role == "list" and not headers.get("authorization", "").strip()
                and self.context.options["openrouter_models_auth"] == "public"):
            return ""
        return self.read_key(headers)

    def auth_error(self, kind: str) -> ProviderError:
        """401 "No auth credentials found" without a usable header, "User not found." for a
        key OpenRouter does not know (decision auth-messages)."""
        message = INVALID_KEY if kind == "invalid" else MISSING_KEY
        return ProviderError(401, "authentication", message)

    def body_error(self, kind: str, op: Operation) -> ProviderError:
        if kind == "too_large":
            return ProviderError(413, "payload_too_large", "Request body too large")
        messages = {
            "empty": "Request body is required",
            "not_json": "Invalid JSON in request body",
            "content_type": "Request body must be JSON (Content-Type: application/json)",
        }
        return ProviderError(400, "invalid_request", messages.get(kind, "Invalid request body"))

    def internal_error(self) -> ProviderError:
        return ProviderError(500, "server", "Internal Server Error")

    def not_found(self) -> ProviderError:
        """An unknown job id, or another key's (decision task-scoping)."""
        return ProviderError(404, "not_found", NOT_FOUND)

    # -- webhooks (contracts/openrouter.yaml x-wanmock-webhooks) ------------------------------
    def webhook_policy(self) -> RetryPolicy:
        """The contract's delivery timeout and the retry intervals of the fake's timing
        profile (`--webhook-timeout` wins)."""
        spec = self.contract.extensions.webhooks
        options = self.context.options
        intervals = (spec.intervals.get(options.timing) or ()) if spec is not None else ()
        timeout = options.webhook_timeout
        if timeout is None:
            timeout = spec.timeout_s if spec is not None and spec.timeout_s else 10.0
        return RetryPolicy(timeout_s=timeout, intervals=tuple(float(i) for i in intervals))

    def fault_error(self, scenario: Scenario, op: Operation | None = None) -> ProviderError:
        """The contract's words; a moderation block (`blocked; reason=violence;
        flagged_input=...`) also carries ERR's moderation metadata."""
        err = super().fault_error(scenario, op)
        if scenario.name != "blocked":
            return err
        params = scenario.params
        flagged = str(params.get("flagged_input", ""))
        if len(flagged) > 100:  # "truncated to 100 characters, the middle elided with ..."
            flagged = flagged[:48] + "..." + flagged[-49:]
        metadata = {"reasons": [str(params.get("reason", "moderation"))],
                    "flagged_input": flagged, "provider_name": "Alibaba",
                    "model_slug": params.get("model_slug")}
        return OpenRouterError(err.status, err.code, err.message, err.envelope, err.headers,
                               metadata=metadata)

    # -- the envelope ----------------------------------------------------------------------------
    def error_body(self, err: ProviderError, op: Operation | None = None) -> Any:
        body = super().error_body(err, op)
        metadata = getattr(err, "metadata", None)
        if metadata and isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"]["metadata"] = metadata
        return body

    # -- judging a submit ------------------------------------------------------------------------
    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None, *,
              assume: Mapping[str, Any] | None = None) -> tuple[JobSpec | None, list[Violation]]:
        """The schema, then OpenRouter's reading of the body for its model (sizes, frames,
        references, passthrough), then the catalogue's rules; the job's mode is the one the
        images choose (i2v with `frame_images`, r2v with image `input_references`)."""
        if op.role != "submit":
            return super().judge(op, body, headers, assume=assume)
        violations = op.schema_violations(body)
        callback = body.get("callback_url") if not violations else None
        if isinstance(callback, str) and not request.callback_ok(callback):
            violations = [op.violation_for("callback_url", "format", callback)]
        if violations:
            return None, violations
        context = self.context
        catalogue = self.contract.catalogue
        fields, sources = op.extract(body)
        model = fields.get("model")
        entry = catalogue.entry(self.name, model) if isinstance(model, str) else None
        options = context.options
        reading = request.read(entry, body, fields, sources,
                               strict_passthrough=options["openrouter_passthrough"] == "strict")
        spec, failures = catalogue.evaluate(self.name, reading.fields, assume=assume)
        if reading.mode == "i2v":  # "Optional for models that support ... image input alone"
            failures = [f for f in failures if f.rule != "prompt_required"]
        timing = context.rule_timing()
        found = [op.rule_violation(f, reading.sources, timing)
                 for f in [*reading.failures, *failures]]
        found += [op.violation_for(path, "additionalProperties", path.rsplit(".", 1)[-1])
                  for path in reading.refused]
        status = options["openrouter_unknown_model_status"]
        if status == 404:  # decision unknown-model: the SDK's NotFoundResponseError
            found = [dataclasses.replace(v, status=404, code="not_found", message=NOT_FOUND)
                     if v.rule == "model_known" else v for v in found]
        found.sort(key=lambda v: v.timing != "submit")
        if spec is not None:
            spec.mode = reading.mode
            if reading.dropped:
                spec.inputs["dropped"] = list(reading.dropped)
        return spec, found
