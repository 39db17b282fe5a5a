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

from mockserver.catalogue import RuleFailure
from mockserver.core.journal import Journal
from mockserver.core.scenarios import RequestInfo
from mockserver.errors import ProviderError
from mockserver.providers.exchange import Exchange
from mockserver.providers.newapi import wire
from mockserver.providers.newapi.policy import NewApiPolicy


def read_submit(policy: NewApiPolicy, ex: Exchange, journal: Journal) -> Any:
    """new-api's `Distribute` middleware, then the relay's decoding of the body: the request
    the relay works on (a JSON value, or the form as TaskSubmitReq; the form itself goes to
    `ex.form`). Raises the distributor's 400, its 503 for a blank model, or the relay's
    invalid_json. A multipart body reads in the journal as its values, each file summarised."""
    op = ex.operation
    raw = ex.raw or b""
    ctype = ex.headers.get("content-type", "")
    legacy = policy.context.options["newapi_version"] == "legacy"
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
        raise policy.distributor_error(ex.headers, str(exc)) from None
    if form is not None and kind == "multipart":
        journal.set_request_body(ex.entry, wire.journal_text(form))
    if model == "":
        raise policy.distributor_error(ex.headers, None)
    if not model.strip():  # a channel is looked up for it and none is found
        failure = RuleFailure("model_known", "model", model, None, model)
        raise policy.violation_error(op.rule_violation(failure, {"model": "model"}, "submit"),
                                     op)
    if form is not None:
        ex.form = form
        try:
            body = wire.task_request(form)
        except wire.WireError as exc:  # ValidateMultipartDirect: UnmarshalBodyReusable
            raise ProviderError(400, "invalid_json", str(exc)) from None
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
