"""A submit as one new-api release meets it (no Starlette): the distributor's model checks, the
relay's decoding and checks in the release's order, the Ali adaptor's request, and DashScope's
judgement of that request, relayed.

Order (github.com/QuantumNous/new-api at the tags; R = v1.0.0-rc.25 f1164142, L = v0.10.0
ee53a7b6):
- R: Distribute (middleware/distributor.go); ValidateMultipartDirect (relay/common/
  relay_utils.go :199-245: invalid_json, prompt, invalid_seconds); BuildRequestBody's
  conversion, 500 build_request_failed (relay/relay_task.go :214-217); DashScope's answer
  (a non-200 is `fail_to_fetch_task` with its body as the message, :222-227).
- L: Distribute; the Ali adaptor's ValidateRequestAndSetAction (relay/channel/task/ali/
  adaptor.go :123-136): unmarshal_task_request_failed, then the conversion (500
  convert_to_ali_request_failed), then ValidateMultipartDirect (prompt); DashScope's answer.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mockserver.catalogue import JobSpec
from mockserver.contracts import Operation
from mockserver.errors import Violation
from mockserver.providers.newapi import conversion, gojson, taskreq, wire
from mockserver.providers.newapi.taskreq import MAX_SECONDS, TaskRequest

if TYPE_CHECKING:
    from mockserver.contracts import Contract
    from mockserver.providers.newapi.releases import Release
    from mockserver.providers.policy import Context, Policy


class Relaying(Protocol):
    """What the relay asks of new-api's policy (`policy.NewApiPolicy`, which calls it)."""

    context: Context
    contract: Contract

    @property
    def release(self) -> Release: ...

    def upstream_policy(self) -> Policy: ...

    def distributor_violation(self, headers: Mapping[str, str] | None,
                              detail: str | None) -> Violation: ...

    def no_channel(self, headers: Mapping[str, str] | None, model: str) -> Violation: ...

# gin's recovery text for a panic (main.go CustomRecovery).
PANIC = ("Panic detected, error: {}. Please submit a issue here: "
         "https://github.com/Calcium-Ion/new-api")
# What new-api's Ali adaptor sends with every submit (ali/adaptor.go R/L :142-148).
UPSTREAM_HEADERS = {"content-type": "application/json", "x-dashscope-async": "enable"}
# The relayed operation when the contract names none (`x-wanmock-relay`), and the one a fork's
# kf2v route posts to (`newapi_kf2v_route: image2video`).
DASHSCOPE_SUBMIT = "createVideoSynthesis"
DASHSCOPE_KF2V = "createImage2VideoSynthesis"


@dataclass(slots=True)
class Relayed:
    """What new-api made of a submit: the job, every violation (the first reported first), the
    decoded request and the DashScope request it sends (None where it never got that far)."""

    spec: JobSpec | None
    violations: list[Violation] = field(default_factory=list)
    request: TaskRequest | None = None
    upstream: dict[str, Any] | None = None


def relay(policy: Relaying, op: Operation, body: Any,
          headers: Mapping[str, str] | None, *, remix: bool = False,
          assume: Mapping[str, Any] | None = None) -> Relayed:
    """Judge a submit body (JSON value, or a form read as TaskSubmitReq) as the release does.
    A remix skips the distributor (its channel is the origin task's) and the relay asks for
    the model itself (400 missing_model)."""
    release = policy.release
    if not remix:
        try:  # the distributor's reading of `model` (and `group`)
            model = wire.model_of(body, legacy=not release.i18n)
        except wire.WireError as exc:
            return Relayed(None, [policy.distributor_violation(headers, str(exc))])
        if model == "":
            return Relayed(None, [policy.distributor_violation(headers, None)])
        if not _has_channel(policy, model):
            return Relayed(None, [policy.no_channel(headers, model)])
    try:
        req = taskreq.decode(body if body is not None else {}, release)
    except gojson.GoTypeError as err:
        return Relayed(None, [Violation(err.field.removeprefix("Alias."), "schema:type", 400,
                                        release.decode_code, str(err))])
    own = _validation(req, release)
    if remix and not req.model.strip():
        own = [Violation("model", "missing_model", 400, "missing_model",
                         "model field is required")]
    upstream: dict[str, Any] | None = None
    problem: Violation | None = None
    try:
        upstream = conversion.ali_request(req, release)
    except conversion.ConversionError as exc:
        status = policy.context.options["newapi_build_error_status"]
        problem = Violation(exc.field, exc.rule, status, release.build_code,
                            release.build_prefix + str(exc))
    except conversion.Panic as exc:
        problem = Violation("metadata.parameters", "panic", 500, "",
                            policy_panic(str(exc)), wrap="panic")
    first = ([problem] if problem else []) + own if release.convert_first else \
        own + ([problem] if problem else [])
    if first:
        return Relayed(None, first, req)
    assert upstream is not None
    spec, violations = _upstream_judgement(policy, op, upstream, assume)
    return Relayed(spec, violations, req, upstream)


def policy_panic(error: str) -> str:
    """gin's recovery text for a panic (main.go CustomRecovery)."""
    return PANIC.format(error)


def _has_channel(policy: Relaying, model: str) -> bool:
    """Whether a channel serves the model: the fake's gateway has one Ali channel listing every
    model DashScope knows (and those the catalogue sells through new-api); a whitespace name,
    or any other, finds none (503)."""
    catalogue = policy.contract.catalogue
    return catalogue.entry("newapi", model) is not None or catalogue.entry(
        "dashscope", model) is not None


def _validation(req: TaskRequest, release: Any) -> list[Violation]:
    """ValidateMultipartDirect's own refusals after decoding (the prompt; R: the duration
    bounds). `missing_model` cannot follow the distributor here."""
    if not req.prompt.strip():
        # named as the contract's schema words it (required, non-blank), as strategies expect
        rule = "schema:pattern" if "prompt" in req.present else "schema:required"
        return [Violation("prompt", rule, 400, "invalid_request", "prompt is required")]
    if release.seconds_bounds:
        seconds = req.seconds_for_bounds()
        if seconds < 0 or seconds > MAX_SECONDS:
            return [Violation("duration" if req.duration else "seconds", "invalid_seconds", 400,
                              "invalid_seconds",
                              f"seconds must be between 1 and {MAX_SECONDS}", value=seconds)]
    return []


def _upstream_judgement(policy: Relaying, op: Operation, upstream: dict[str, Any],
                        assume: Mapping[str, Any] | None = None
                        ) -> tuple[JobSpec | None, list[Violation]]:
    """DashScope's judgement of the request new-api sends (its rules, its words, its timing),
    relayed: a refusal at submit is new-api's `fail_to_fetch_task` with DashScope's status and
    its JSON body as the message; a later failure stays DashScope's code and message."""
    ds = policy.upstream_policy()
    kf2v_route = policy.context.options["newapi_kf2v_route"] == "image2video"
    relayed = op.relay or ("dashscope", DASHSCOPE_SUBMIT)
    op_id = DASHSCOPE_KF2V if kf2v_route and conversion.kf2v(str(upstream["model"])) \
        else relayed[1]
    ds_op = ds.contract.operation(op_id)
    spec, found = ds.judge(ds_op, upstream, UPSTREAM_HEADERS, assume=assume)
    out = []
    for violation in found:
        if violation.timing != "submit":
            out.append(violation)
            continue
        err = ds.violation_error(violation, ds_op)
        text = json.dumps(ds.error_body(err, ds_op), ensure_ascii=False, separators=(",", ":"))
        out.append(dataclasses.replace(violation, status=err.status, code="fail_to_fetch_task",
                                       message=text, wrap="fail_to_fetch_task"))
    if spec is not None:
        spec = dataclasses.replace(spec, family="newapi")
    return spec, out
