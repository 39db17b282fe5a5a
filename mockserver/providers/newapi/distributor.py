"""new-api's `Distribute` middleware and the relay's reading of a submit body (audit F04, F09).
No Starlette here: the HTTP class (routes.py) calls these with the request's `Exchange`.

The middleware reads the model before the task relay sees the request: no model, or a body it
cannot read, is its 400 in the OpenAI shape. The body is read by Content-Type as
`common.UnmarshalBodyReusable` reads it (`wire`). Sources: middleware/distributor.go,
middleware/utils.go, i18n/locales/*.yaml, i18n/i18n.go at 4a188dee; the pre-i18n distributor
(4fdd12ac^) for `newapi_version: legacy` (contracts/newapi.yaml x-wanmock-decisions).
"""

from __future__ import annotations

from typing import Any

from mockserver.core.journal import Journal
from mockserver.core.scenarios import RequestInfo
from mockserver.providers.exchange import Exchange
from mockserver.providers.newapi import wire
from mockserver.providers.newapi.policy import NewApiPolicy


def read_submit(policy: NewApiPolicy, ex: Exchange, journal: Journal) -> Any:
    """new-api's `Distribute` middleware, then the relay's decoding of the body
    (`NewApiPolicy.read_submit`, which the proxy's recorder shares): the request the relay
    works on (the form itself goes to `ex.form`). A multipart body reads in the journal as its
    values, each file summarised."""
    body, form = policy.read_submit(ex.operation, ex.raw or b"", ex.headers)
    if form is not None:
        if wire.kind_of(ex.headers.get("content-type", "")) == "multipart":
            journal.set_request_body(ex.entry, wire.journal_text(form))
        ex.form = form
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
