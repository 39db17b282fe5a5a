"""fal.ai's policy (no Starlette): `Authorization: Key ...`, its `{"detail": ...}` errors (a
string for request errors, pydantic's item list for a model's 422), the runner-time validation
of a model's input and its webhook delivery policy (contracts/fal.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockserver.catalogue import JobSpec
from mockserver.contracts import Operation
from mockserver.errors import ProviderError, Violation
from mockserver.providers.policy import Policy

DOCS = "https://docs.fal.ai/errors/#"
# The request (platform) errors: a flat `{"detail": str, "error_type": str}` body and the
# X-Fal-Error-Type header (Request Error Types doc); every other failure code is a model error
# answered with pydantic's item list (Error Reference).
REQUEST_ERRORS = {
    "request_timeout": 504, "startup_timeout": 504, "generation_timeout": 504,
    "internal_server_error": 500, "internal_error": 500, "request_cancelled": 400,
    "runner_scheduling_failure": 503, "runner_connection_timeout": 503,
    "runner_disconnected": 503, "runner_connection_refused": 503, "queue_full": 429,
    "concurrent_requests_limit": 429, "rate_limited": 429,
}
# X-Fal-Retryable (decision retryable-header): "true" for the Error Reference's transient model
# errors, "false" for every 422 of the detail list; request errors carry X-Fal-Error-Type only.
RETRYABLE = frozenset({"internal_server_error", "generation_timeout", "downstream_service_error",
                       "downstream_service_unavailable"})
NOT_RETRYABLE = {"X-Fal-Retryable": "false"}
# pydantic v2's words for a JSON type it expected (contracts/fal.yaml decision validation-wording).
_TYPES = {"integer": ("int_type", "integer"), "string": ("string_type", "string"),
          "boolean": ("bool_type", "boolean"), "number": ("float_type", "number"),
          "array": ("list_type", "list"), "object": ("dict_type", "dictionary")}
# Operations that need no `Key` (public CDN files, the webhook keys) or take the CDN token.
_ANONYMOUS = frozenset({"getFile", "getWebhookKeys"})
_CDN_TOKEN = frozenset({"uploadFile"})


class FalPolicy(Policy):
    """How fal words and decides what it does without HTTP."""

    name = "fal"
    # fal's webhooks: 15 s per attempt, 10 attempts (contracts/fal.yaml x-wanmock-webhooks).
    webhook_timeout_s = 15.0
    unrouted_codes = {404: "not_found", 405: "method_not_allowed"}
    # fal's apps parse JSON with pydantic: invalid UTF-8 is a json_invalid 422, not replaced.
    invalid_utf8 = "reject"

    # -- authentication ------------------------------------------------------------------------
    def authenticate(self, headers: Mapping[str, str], op: Operation) -> str:
        """`Key <key>` on the queue, run and REST hosts; the CDN token on uploads; nothing on
        public files and the JWKS."""
        if op.operation_id in _ANONYMOUS:
            return ""
        if op.operation_id in _CDN_TOKEN:
            scheme, _, token = headers.get("authorization", "").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise self.flag(self.auth_error("missing"), "security:missing", "Authorization")
            return token.strip()
        return self.read_key(headers)

    def read_key(self, headers: Mapping[str, str]) -> str:
        """`Authorization: Key <key_id>:<key_secret>` or `Key <key>` (decision authorization)."""
        header = headers.get("authorization", "").strip()
        if not header:
            raise self.flag(self.auth_error("missing"), "security:missing", "Authorization")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "key" or not key:
            raise self.flag(self.auth_error("malformed"), "security:malformed", "Authorization")
        if self.context.options["fal_strict_key"] and ":" not in key:
            raise self.flag(self.auth_error("format"), "security:malformed", "Authorization")
        allowed = self.context.options.api_keys
        if allowed and key not in allowed:
            raise self.auth_error("invalid")
        return key

    def auth_error(self, kind: str) -> ProviderError:
        if kind == "invalid":
            return ProviderError(401, "unauthorized", "No user found for Key ID and Secret")
        if kind == "format":
            return ProviderError(401, "unauthorized", "Invalid Key Authorization header format. "
                                 "Expected '<key_id>:<key_secret>'.")
        return ProviderError(401, "unauthorized", "Unauthorized")

    def unrouted_error(self, status: int, method: str, path: str,
                       message: str = "") -> ProviderError:
        """An app the fake does not serve: 404 "Application '<alias>' not found" (the alias
        alone, decision unknown-app); FastAPI's words on the REST and CDN hosts and for 405."""
        if status == 405:
            return ProviderError(405, "method_not_allowed", "Method Not Allowed")
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == "fal.run":
            parts = parts[1:]
        elif parts and parts[0] in ("rest.fal.ai", "fal.media"):
            return ProviderError(404, "not_found", "Not Found")
        alias = parts[1] if len(parts) > 1 else (parts[0] if parts else "")
        return ProviderError(404, "not_found", f"Application '{alias}' not found")

    # -- bodies ----------------------------------------------------------------------------------
    def body_error(self, kind: str, op: Operation) -> ProviderError:
        """FastAPI's answers to a body it cannot read (decision json-decoding)."""
        if kind == "too_large":
            return ProviderError(413, "payload_too_large", "Request body too large")
        if kind == "empty":
            return ProviderError(422, "missing", "Field required",
                                 violation=Violation("", "body:empty", 422, "missing",
                                                     "Field required"))
        return ProviderError(422, "json_invalid", "JSON decode error",
                             violation=Violation("0", "body:not_json", 422, "json_invalid",
                                                 "JSON decode error"))

    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None, *,
              assume: Mapping[str, Any] | None = None) -> tuple[JobSpec | None, list[Violation]]:
        """The contract's judgement; under `fal_validation=runner` (the default) a queue
        submit's model input is checked in the runner: every violation fails the request
        later, except a body that is no JSON object at all (decision validation-at-runner)."""
        spec, violations = super().judge(op, body, headers, assume=assume)
        if (not violations or op.role != "submit"
                or self.context.options["fal_validation"] != "runner"
                or not isinstance(body, Mapping)):
            return spec, violations
        if spec is None:  # a schema violation: the runner starts the endpoint's model anyway
            model = op.spec_map.get("model")
            if isinstance(model, Mapping):
                spec, _ = self.contract.catalogue.evaluate(self.name, {"model": model["const"]})
        late = [_later(v) for v in violations]
        return spec, late

    def violation_error(self, violation: Violation, op: Operation) -> ProviderError:
        return ProviderError(violation.status, violation.code, violation.message,
                             headers=dict(NOT_RETRYABLE) if violation.status == 422 else {},
                             violation=violation)

    # -- error bodies ----------------------------------------------------------------------------
    def error_body(self, err: ProviderError, op: Operation | None = None) -> Any:
        """A model's 422 as pydantic's item list; a request error flat with its error_type;
        anything else `{"detail": <message>}`."""
        if err.status == 422 and err.violation is not None:
            return {"detail": [self.detail_item(err.violation, op)]}
        # An operation's own envelope (cancel's {status}) words its answers, never its errors.
        return super().error_body(err, None)

    def detail_item(self, violation: Violation, op: Operation | None) -> dict[str, Any]:
        """One `{loc, msg, type, url, ctx?, input?}` item of fal's 422 body for a violation."""
        field = violation.field
        loc: list[Any] = ["body"]
        if field:
            loc += [int(p) if p.isdigit() else p for p in field.split(".")]
        kind, msg = violation.code, violation.message
        schema = _field_schema(op, field) if op is not None else {}
        ctx: dict[str, Any] = {}
        if kind == "type_error":
            expected = msg.rsplit(" ", 1)[-1]
            kind, word = _TYPES.get(expected, ("value_error", expected))
            msg = f"Input should be a valid {word}"
        elif kind == "literal_error" and isinstance(schema.get("enum"), list):
            expected = _pydantic_list(schema["enum"])
            msg, ctx = f"Input should be {expected}", {"expected": expected}
        elif kind == "greater_than_equal" and "minimum" in schema:
            ctx = {"ge": schema["minimum"]}
        elif kind == "less_than_equal" and "maximum" in schema:
            ctx = {"le": schema["maximum"]}
        elif kind == "string_too_long" and "maxLength" in schema:
            ctx = {"max_length": schema["maxLength"]}
        elif kind == "too_long" and "maxItems" in schema:
            ctx = {"field_type": "List", "max_length": schema["maxItems"]}
        item: dict[str, Any] = {"loc": loc, "msg": msg, "type": kind, "url": DOCS + kind}
        if ctx:
            item["ctx"] = ctx
        if kind != "missing" and violation.value is not None and violation.rule.startswith(
                "schema:"):
            item["input"] = violation.value
        return item

    def failure_body(self, violation: Violation, op: Operation) -> dict[str, Any]:
        """What a request that fails in the runner keeps for its result: status and body."""
        return {"status": 422, "detail": [self.detail_item(violation, op)]}



def _later(violation: Violation) -> Violation:
    """The violation as the runner reports it: the request fails instead of being refused
    (a body that is no object at all is still refused at submit)."""
    if violation.field == "" and violation.rule == "schema:type":
        return violation
    return Violation(violation.field, violation.rule, violation.status, violation.code,
                     violation.message, "async", violation.value, violation.wrap)


def _pydantic_list(values: list[Any]) -> str:
    """`'a', 'b' or 'c'`: how pydantic lists a Literal's options."""
    quoted = [f"'{v}'" if isinstance(v, str) else str(v) for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _field_schema(op: Operation, field: str) -> Mapping[str, Any]:
    """The request schema of a dotted body field (`video_urls.0`), refs resolved; {} if
    unknown."""
    document = op.document or {}

    def resolve(node: Any) -> Any:
        seen = 0
        while isinstance(node, Mapping) and "$ref" in node and seen < 8:
            node = _pointer(document, str(node["$ref"]))
            seen += 1
        return node

    content = ((op.raw.get("requestBody") or {}).get("content") or {}).get("application/json")
    node = resolve((content or {}).get("schema"))
    for part in field.split(".") if field else ():
        if not isinstance(node, Mapping):
            return {}
        if part.isdigit():
            node = resolve(node.get("items"))
        else:
            node = resolve((node.get("properties") or {}).get(part))
    return node if isinstance(node, Mapping) else {}


def _pointer(document: Mapping[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node
