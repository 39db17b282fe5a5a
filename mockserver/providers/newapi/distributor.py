"""new-api's reading of a submit body before its relay. No Starlette here: the
HTTP class (routes.py) calls these with the request's `Exchange`.

The `Distribute` middleware decodes the body by Content-Type, as `common.UnmarshalBodyReusable`
reads it (`wire`); the model checks themselves (no model, no channel) are the relay's first step
(relay.py), so `mockserver.checks` judges a body the same way. Sources at the tag commits
(github.com/QuantumNous/new-api; R = v1.0.0-rc.25 f1164142, L = v0.10.0 ee53a7b6):
middleware/distributor.go getModelFromRequest (R :192-251, L :129-140), common/gin.go
UnmarshalBodyReusable and processFormMap (both releases).
"""

from __future__ import annotations

from typing import Any

from mockserver.core.journal import Journal
from mockserver.core.scenarios import RequestInfo
from mockserver.errors import ProviderError
from mockserver.providers.exchange import Exchange
from mockserver.providers.newapi import wire
from mockserver.providers.newapi.policy import NewApiPolicy


def read_submit(policy: NewApiPolicy, ex: Exchange, journal: Journal, *,
                remix: bool = False) -> Any:
    """The request the relay works on: a JSON value, or a form's values as processFormMap
    hands them on (the form itself goes to `ex.form`); the distributor's 400 for a body it
    cannot read. A remix skips the distributor's reading (it selects no channel): there the
    relay's own decoding refuses the body (400 invalid_json, v0.10.0
    unmarshal_task_request_failed). A multipart body reads in the journal as its values."""
    raw = ex.raw or b""
    ctype = ex.headers.get("content-type", "")
    kind = wire.kind_of(ctype)
    form: wire.Form | None = None
    try:
        if kind == "json":
            try:
                body: Any = wire.decode_json(raw)
            except wire.WireError:
                if not policy.release.i18n or remix:
                    raise
                raise wire.WireError("invalid JSON request body") from None  # gjson
        elif kind == "none":
            body = {}  # UnmarshalBodyReusable skips the body: no model
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
            raise ProviderError(400, policy.release.decode_code, str(exc)) from None
        raise policy.violation_error(policy.distributor_violation(ex.headers, str(exc)),
                                     ex.operation) from None
    if form is not None:
        ex.form = form
        if kind == "multipart":
            journal.set_request_body(ex.entry, wire.journal_text(form))
    return body


def request_info(info: RequestInfo, ex: Exchange) -> RequestInfo:
    """Scenario rules match a form or multipart submit on its model and prompt too (`info`
    is what they match on for a JSON body)."""
    raw = ex.raw
    ctype = ex.headers.get("content-type", "")
    if not raw or ex.operation.role != "submit" or wire.kind_of(ctype) in ("json", "none"):
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
