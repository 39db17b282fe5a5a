"""jiekou.ai / Novita's policy (no Starlette): the gateway envelope's reason words
(`x-wanmock-reason`), its messages, the bare-key rule and its webhook delivery policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockserver import wording
from mockserver.contracts import Operation
from mockserver.contracts.extensions import WebhookSpec
from mockserver.errors import ProviderError
from mockserver.providers.policy import Policy


class JiekouPolicy(Policy):
    """How the Novita gateway words its errors."""

    name = "jiekou"
    # Novita's delivery policy: 5 s per attempt, five retries (x-wanmock-webhooks).
    webhook_timeout_s = 5.0
    # The gateway's reasons are UPPER_SNAKE (decision unknown-route).
    unrouted_codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}

    def reason_for(self, status: int, default: str) -> str:
        """The contract's `x-wanmock-reason` for a status (components.responses.Error<status>)."""
        return self.contract.extensions.reasons.get(f"Error{status}") or default

    def example_message(self, status: int, default: str) -> str:
        """The message of the contract's example for `Error<status>`, else `default`."""
        response = self._response(status)
        if not response:
            return default
        media = (response.get("content") or {}).get("application/json") or {}
        for example in (media.get("examples") or {}).values():
            value = example.get("value") if isinstance(example, Mapping) else None
            if isinstance(value, Mapping) and isinstance(value.get("message"), str):
                return value["message"]
        return default

    def _response(self, status: int) -> Mapping[str, Any] | None:
        responses = (self.contract.document.get("components") or {}).get("responses") or {}
        found = responses.get(f"Error{status}")
        return found if isinstance(found, Mapping) else None

    def read_key(self, headers: Mapping[str, str]) -> str:
        """Bearer, as the docs say, and a bare key (one word, no scheme) unless
        `jiekou_bare_key=reject` (decision `bare-api-key`: every npm novita-sdk release sends
        the key without a scheme)."""
        header = headers.get("authorization", "").strip()
        options = self.context.options
        if (options["jiekou_bare_key"] == "accept" and header
                and " " not in header and header.lower() != "bearer"):  # `Bearer ` is no key
            allowed = options.api_keys
            if allowed and header not in allowed:
                raise self.auth_error("invalid")
            return header
        return super().read_key(headers)

    def auth_error(self, kind: str) -> ProviderError:
        reason = self.reason_for(401, "INVALID_API_KEY")
        if kind == "invalid":
            return ProviderError(401, reason, "Invalid API key.")
        return ProviderError(
            401, reason,
            self.example_message(
                401, "Invalid API key. Send the header 'Authorization: Bearer <key>'."),
        )

    def body_error(self, kind: str, op: Operation) -> ProviderError:
        reason = self.reason_for(400, "INVALID_REQUEST_BODY")
        messages = {
            "empty": "invalid request body: the body is empty",
            "not_json": "invalid request body: the body is not valid JSON",
            "content_type": "invalid request body: Content-Type must be application/json",
            "too_large": "invalid request body: the body exceeds "
                         f"{self.context.options.body_limit} bytes",
        }
        return ProviderError(400, reason, messages.get(kind, "invalid request body"))

    def not_found(self, task_id: str) -> ProviderError:
        """The task-result 404 for a task the caller has not (or no longer has)."""
        return ProviderError(404, self.reason_for(404, "TASK_NOT_FOUND"),
                             f"task not found: {wording.render_value(task_id)}")  # capped echo

    def internal_error(self) -> ProviderError:
        return ProviderError(500, self.reason_for(500, "INTERNAL_SERVER_ERROR"),
                             "Internal server error.")

    # -- webhooks (contracts/jiekou.yaml x-wanmock-webhooks) ---------------------------------
    def webhook_contract(self) -> WebhookSpec:
        """The contract's `x-wanmock-webhooks` (empty when it has none)."""
        return self.contract.extensions.webhooks or WebhookSpec()

