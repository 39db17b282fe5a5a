"""new-api's `Distribute` middleware and the relay's reading of a submit body (audit F04, F09).

The middleware reads the model before the task relay sees the request: no model, or a body it
cannot read, is its 400 in the OpenAI shape. The body is read by Content-Type as
`common.UnmarshalBodyReusable` reads it (`wire`). Sources: middleware/distributor.go,
middleware/utils.go, i18n/locales/*.yaml, i18n/i18n.go at 4a188dee; the pre-i18n distributor
(4fdd12ac^) for `newapi_version: legacy` (contracts/newapi.yaml x-wanmock-decisions).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from mockserver.catalogue import RuleFailure
from mockserver.contracts import Operation
from mockserver.core.scenarios import RequestInfo
from mockserver.errors import ProviderError
from mockserver.providers.base import Family, headers_of
from mockserver.providers.exchange import exchange_of
from mockserver.providers.newapi import wire
from mockserver.providers.newapi.policy import NewApiPolicy


class Distributor(NewApiPolicy, Family):
    """The part of the new-api family that runs before its relay (its wording: policy.py)."""

    def read_submit(self, request: Request, op: Operation, raw: bytes
                    ) -> tuple[Any, wire.Form | None]:
        """new-api's `Distribute` middleware, then the relay's decoding of the body: the request
        the relay works on (JSON value, or the form as TaskSubmitReq) and the form, if any.
        Raises the distributor's 400, its 503 for a blank model, or the relay's invalid_json."""
        ctype = headers_of(request).get("content-type", "")
        legacy = self.backend.options["newapi_version"] == "legacy"
        kind = wire.kind_of(ctype)
        form: wire.Form | None = None
        body: Any = None
        try:
            if kind == "json":
                try:
                    body = wire.decode_json(raw)
                except wire.WireError:
                    if legacy:
                        raise
                    raise wire.WireError("invalid JSON request body") from None  # gjson
                model = wire.model_of(body, legacy=legacy)
            elif kind == "none":
                model = ""  # UnmarshalBodyReusable skips the body: no model (F09)
            else:
                parsed = wire.read_form(raw, ctype)
                if isinstance(parsed, wire.Form):
                    form = parsed
                    model = wire.model_of(dict(parsed.values), legacy=True)  # processFormMap
                else:  # multipart without a boundary: new-api decodes it as JSON
                    body = parsed
                    model = wire.model_of(body, legacy=True)
        except wire.WireError as exc:
            raise self.distributor_error(headers_of(request), str(exc)) from None
        if form is not None:
            self._journal_form(request, ctype, form)
        if model == "":
            raise self.distributor_error(headers_of(request), None)
        if not model.strip():  # a channel is looked up for it and none is found
            failure = RuleFailure("model_known", "model", model, None, model)
            raise self.violation_error(op.rule_violation(failure, {"model": "model"}, "submit"),
                                       op)
        if form is not None:
            try:
                body = wire.task_request(form)
            except wire.WireError as exc:  # ValidateMultipartDirect: UnmarshalBodyReusable
                raise ProviderError(400, "invalid_json", str(exc)) from None
        return body, form

    def _journal_form(self, request: Request, ctype: str, form: wire.Form) -> None:
        """A multipart body reads in the journal as its values, each file summarised."""
        exchange = exchange_of(request)
        entry = exchange.entry if exchange is not None else None
        if entry is not None and wire.kind_of(ctype) == "multipart":
            self.backend.journal.set_request_body(entry, wire.journal_text(form))

    def request_info(self, request: Request, op: Operation, raw: bytes | None) -> RequestInfo:
        """Scenario rules match a form or multipart submit on its model and prompt too."""
        info = super().request_info(request, op, raw)
        ctype = headers_of(request).get("content-type", "")
        if not raw or op.role != "submit" or wire.kind_of(ctype) in ("json", "none"):
            return info
        try:
            form = wire.read_form(raw, ctype)
        except wire.WireError:
            return info
        values = form.values if isinstance(form, wire.Form) else form
        if not isinstance(values, dict):
            return info
        model, prompt = values.get("model"), values.get("prompt")
        return RequestInfo(info.family, info.operation, info.role,
                           model if isinstance(model, str) else None, info.api_key,
                           prompt if isinstance(prompt, str) else None)
