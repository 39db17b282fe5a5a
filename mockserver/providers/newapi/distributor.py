"""new-api's reading of a submit body before its relay (audit F04, F09). No Starlette here: the
HTTP class (routes.py) calls these with the request's `Exchange`.

The `Distribute` middleware decodes the body by Content-Type, as `common.UnmarshalBodyReusable`
reads it (`NewApiPolicy.decode_submit` over `wire`, so the proxy's recorder reads real traffic
with the same code); the model checks themselves (no model, no channel) are the relay's first step
(relay.py), so `mockserver.checks` judges a body the same way. Sources at the tag commits
(github.com/QuantumNous/new-api; R = v1.0.0-rc.25 f1164142, L = v0.10.0 ee53a7b6):
middleware/distributor.go getModelFromRequest (R :192-251, L :129-140), common/gin.go
UnmarshalBodyReusable and processFormMap (both releases).
"""

from __future__ import annotations

from typing import Any

from mockserver.core.journal import Journal
from mockserver.core.scenarios import RequestInfo
from mockserver.providers.exchange import Exchange
from mockserver.providers.newapi import wire
from mockserver.providers.newapi.policy import NewApiPolicy


def read_submit(policy: NewApiPolicy, ex: Exchange, journal: Journal, *,
                remix: bool = False) -> Any:
    """`NewApiPolicy.decode_submit` over the request's exchange (the form itself goes to
    `ex.form`); a multipart body reads in the journal as its values."""
    body, form = policy.decode_submit(ex.operation, ex.raw or b"", ex.headers, remix=remix)
    if form is not None:
        ex.form = form
        if wire.kind_of(ex.headers.get("content-type", "")) == "multipart":
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
