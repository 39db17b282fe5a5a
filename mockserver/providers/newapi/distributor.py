"""new-api's reading of a submit body before its relay (audit F04, F09): the `Distribute`
middleware's decoding by Content-Type (`wire`), and the journal's view of a form.

The body is read as `common.UnmarshalBodyReusable` reads it; the model checks themselves (no
model, no channel) are the relay's first step (relay.py), so `mockserver.checks` judges a body
the same way. Sources at the tag commits (github.com/QuantumNous/new-api; R = v1.0.0-rc.25
f1164142, L = v0.10.0 ee53a7b6): middleware/distributor.go getModelFromRequest (R :192-251,
L :129-140), common/gin.go UnmarshalBodyReusable and processFormMap (both releases).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from mockserver.contracts import Operation
from mockserver.core.scenarios import RequestInfo
from mockserver.errors import ProviderError
from mockserver.providers.base import Family, headers_of
from mockserver.providers.exchange import exchange_of
from mockserver.providers.newapi import wire
from mockserver.providers.newapi.policy import NewApiPolicy


class Distributor(NewApiPolicy, Family):
    """The part of the new-api family that runs before its relay (its wording: policy.py)."""

    def read_submit(self, request: Request, op: Operation, raw: bytes, *, remix: bool = False
                    ) -> tuple[Any, wire.Form | None]:
        """The request the relay works on (a JSON value, or a form's values as processFormMap
        hands them on) and the form, if any; the distributor's 400 for a body it cannot read.
        A remix skips the distributor's reading (it selects no channel): there the relay's
        own decoding refuses the body (400 invalid_json, L unmarshal_task_request_failed)."""
        headers = headers_of(request)
        ctype = headers.get("content-type", "")
        kind = wire.kind_of(ctype)
        form: wire.Form | None = None
        try:
            if kind == "json":
                try:
                    body: Any = wire.decode_json(raw)
                except wire.WireError:
                    if not self.release.i18n or remix:
                        raise
                    raise wire.WireError("invalid JSON request body") from None  # gjson
            elif kind == "none":
                body = {}  # UnmarshalBodyReusable skips the body: no model (F09)
            else:
                parsed = wire.read_form(raw, ctype)
                if isinstance(parsed, wire.Form):
                    form = parsed
                    body = wire.task_request(parsed)
                else:  # multipart without a boundary: new-api decodes it as JSON
                    body = parsed
                if not remix:  # both releases read a form's model with json.Unmarshal
                    wire.model_of(body, legacy=True)
        except wire.WireError as exc:
            if remix:
                raise ProviderError(400, self.release.decode_code, str(exc)) from None
            raise self.violation_error(self.distributor_violation(headers, str(exc)),
                                       op) from None
        if form is not None:
            self._journal_form(request, ctype, form)
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
