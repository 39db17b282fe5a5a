"""new-api's policy (no Starlette): its three error shapes, its i18n wording, the relayed
DashScope errors, and its judgement of a task request (its own checks in its order, the Ali
adaptor's conversion, then DashScope's rules on the converted request).

Sources: middleware/distributor.go, i18n/locales/*.yaml, i18n/i18n.go, relay/relay_task.go at
4a188dee; the pre-i18n distributor (4fdd12ac^) for `newapi_version: legacy`
(contracts/newapi.yaml x-wanmock-decisions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from mockserver.catalogue import JobSpec, RuleFailure
from mockserver.contracts import Operation
from mockserver.errors import ProviderError, Violation
from mockserver.providers.dashscope import render as ds_render
from mockserver.providers.newapi import conversion, render
from mockserver.providers.newapi.conversion import BUILD_FAILED, LEGACY_BUILD_FAILED
from mockserver.providers.policy import Policy, policy_class

# middleware/distributor.go and i18n/locales/*.yaml (`distributor.invalid_request`,
# `distributor.model_name_required`); legacy = the hard-coded strings before i18n (4fdd12ac).
INVALID_REQUEST = {"zh-CN": "无效的请求，{}", "zh-TW": "無效的請求，{}",
                   "en": "Invalid request: {}"}
MODEL_REQUIRED = {"zh-CN": "未指定模型名称，模型名称不能为空",
                  "zh-TW": "未指定模型名稱，模型名稱不能為空",
                  "en": "Model name not specified, model name cannot be empty"}


class NewApiPolicy(Policy):
    """new-api's task relay with the Ali (DashScope) adaptor, as it words and judges."""

    name = "newapi"
    # new-api's task errors are snake_case (decision unknown-route).
    unrouted_codes = {404: "not_found", 405: "method_not_allowed"}

    def key_form(self) -> Callable[[str], str]:
        """new-api treats `sk-x` and `x` as one key."""
        return conversion.norm_key

    # -- words --------------------------------------------------------------------------------
    def request_id(self) -> str:
        """new-api's request id: local time, nanoseconds and 8 random characters."""
        now = self.context.now()
        stamp = datetime.fromtimestamp(now, ds_render.BEIJING).strftime("%Y%m%d%H%M%S")
        return f"{stamp}{int((now % 1) * 1e9)}{self.context.ids.token(8)}"

    def words(self, chinese: str, english: str,
              headers: Mapping[str, str] | None = None) -> str:
        """The message in new-api's i18n language (`lang`)."""
        return english if self.lang(headers) == "en" else chinese

    def lang(self, headers: Mapping[str, str] | None) -> str:
        """new-api's i18n language (i18n.GetLangFromContext): the `Accept-Language` header in
        latest versions, else the user's setting, which `newapi_english_messages` stands for."""
        opts = self.context.options
        if headers is not None and opts["newapi_version"] == "latest":
            accept = headers.get("accept-language", "")
            first = accept.split(",")[0].split(";")[0].strip().lower()
            if first.startswith("zh-tw"):
                return "zh-TW"
            if first.startswith("zh"):
                return "zh-CN"
            if first.startswith("en"):
                return "en"
        return "en" if opts["newapi_english_messages"] else "zh-CN"

    # -- errors ------------------------------------------------------------------------------
    def distributor_error(self, headers: Mapping[str, str] | None,
                          detail: str | None) -> ProviderError:
        """The `Distribute` middleware's 400 (OpenAI shape): no model (`detail` None), or a body
        it cannot read. Latest versions wrap the reason twice (getModelFromRequest, then
        Distribute), in the i18n language; legacy ones say "Invalid request, 无效的请求, …"."""
        legacy = self.context.options["newapi_version"] == "legacy"
        if detail is None:
            message = MODEL_REQUIRED["zh-CN" if legacy else self.lang(headers)]
        elif legacy:
            message = f"Invalid request, 无效的请求, {detail}"
        else:
            template = INVALID_REQUEST[self.lang(headers)]
            message = template.format(template.format(detail))
        return ProviderError(400, "", message, envelope="auth", violation=Violation(
            "model" if detail is None else "", "distributor:model" if detail is None
            else "distributor:body", 400, "", message))

    def read_key(self, headers: Mapping[str, str]) -> str:
        """new-api's TokenAuth: `Bearer sk-…`, also without `Bearer ` and without `sk-`."""
        key = headers.get("authorization", "").strip()
        if key[:7].lower() == "bearer ":
            key = key[7:].strip()
        elif key.lower() == "bearer":
            key = ""
        if not key:
            raise self.auth_error("missing")
        allowed = self.context.options.api_keys
        if allowed and not {key, f"sk-{key}", key.removeprefix("sk-")} & allowed:
            raise self.auth_error("invalid")
        return key

    def auth_error(self, kind: str) -> ProviderError:
        if kind == "missing":
            return ProviderError(401, "", self.words("未提供令牌", "No token provided"),
                                 envelope="auth")
        return ProviderError(401, "", self.words("无效的令牌", "Invalid token"), envelope="auth")

    def body_error(self, kind: str, op: Operation) -> ProviderError:
        if kind == "too_large" and op.role == "submit":
            # common.GetRequestBody's limit, met first by the distributor (common/gin.go)
            limit_mb = max(1, self.context.options.body_limit >> 20)
            return self.distributor_error(
                None,  # the request is not at hand here: the option decides the language
                f"request body exceeds {limit_mb} MB: request body too large")
        messages = {
            "empty": "unexpected end of JSON input",
            "too_large": "http: request body too large",
        }
        return ProviderError(400, "invalid_json",
                             messages.get(kind, "invalid character looking for beginning of value"))

    def internal_error(self) -> ProviderError:
        return ProviderError(500, "internal_error", "internal error")

    @staticmethod
    def task_not_exist() -> ProviderError:
        """A poll of a task the caller has not (api-facts §2.4)."""
        return ProviderError(400, "task_not_exist", "task_not_exist")

    @staticmethod
    def content_error(status: int, code: str, message: str) -> ProviderError:
        """The video proxy's error (`/v1/videos/{id}/content`): no `code` in its envelope."""
        return ProviderError(status, code, message, envelope="content")

    def build_error(self, message: str, field: str, value: Any = None) -> Violation:
        """A request-conversion error: 500 `build_request_failed` "convert_to_ali_request_failed:
        <reason>" (latest relay_task.go), legacy 500 `convert_to_ali_request_failed` "<reason>";
        `newapi_build_error_status=400` makes it a 400."""
        options = self.context.options
        status = options["newapi_build_error_status"]
        if options["newapi_version"] == "legacy":
            return Violation(field=field, rule="build_request", status=status,
                             code=LEGACY_BUILD_FAILED, message=message, value=value)
        return Violation(field=field, rule="build_request", status=status, code=BUILD_FAILED,
                         message=f"{LEGACY_BUILD_FAILED}: {message}", value=value)

    def violation_error(self, violation: Violation, op: Operation) -> ProviderError:
        report = op.rules.get(violation.rule) or {}
        if violation.code in (BUILD_FAILED, LEGACY_BUILD_FAILED):
            return ProviderError(violation.status, violation.code, violation.message,
                                 violation=violation)
        if violation.wrap == "distributor":
            return self.distributor_error(None, None)
        if violation.wrap == "distributor_body":
            return self.distributor_error(None, violation.message)
        if violation.rule == "model_known" or violation.wrap == "no_channel":
            model = violation.value if isinstance(violation.value, str) else ""
            message = self.words(violation.message,
                                 f"No available channel for model {model} under group default")
            return ProviderError(violation.status, violation.code, message,
                                 envelope=str(report.get("envelope", "auth")), violation=violation)
        if violation.wrap == "fail_to_fetch_task" or violation.code[:1].isupper():
            # DashScope answered 4xx; new-api relays its body as text (api-facts §2.9).
            text = render.upstream_error_message(violation.code, violation.message,
                                                 self.context.ids.uuid())
            return ProviderError(violation.status, "fail_to_fetch_task", text,
                                 violation=violation)
        return ProviderError.from_violation(violation)

    def error_body(self, err: ProviderError, op: Operation | None = None) -> Any:
        envelope = err.envelope
        if envelope == "default" and op is not None:
            envelope = op.envelope_kind
        body = self.contract.render_error(err.status, err.code, err.message, envelope=envelope,
                                          request_id=self.request_id())
        if envelope == "content" and err.status >= 500:
            body["error"]["type"] = "server_error"
        return body

    # -- judging ------------------------------------------------------------------------------
    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None
              ) -> tuple[JobSpec | None, list[Violation]]:
        """new-api's checks in its order, then DashScope's rules on the converted request."""
        context = self.context
        opts = context.options
        catalogue = self.contract.catalogue
        problems = op.schema_violations(body)
        if opts["newapi_drop_shot_type"]:
            problems = [v for v in problems if not v.field.endswith("shot_type")]
        if not isinstance(body, Mapping):
            if problems:
                return None, problems
            err = self.body_error("not_json", op)
            return None, [Violation("", "body:not_json", err.status, err.code, err.message)]
        model = body.get("model")
        entry = catalogue.entry(self.name, model) if isinstance(model, str) else None
        kf2v = conversion.kf2v_entry(catalogue, model) if entry is None else None
        if isinstance(model, str) and model.strip() and entry is None and kf2v is None:
            failure = RuleFailure("model_known", "model", model, None, model)
            problems.append(op.rule_violation(failure, {"model": "model"}, "submit"))
        if kf2v is not None and opts["newapi_kf2v_route"] == "video-generation":
            problems.append(conversion.kf2v_upstream_refusal(context.contracts, str(model)))
        entry = entry or kf2v
        if entry is not None:
            problems.extend(conversion.conversion_errors(entry, body, self.build_error))
        if problems:
            problems.sort(key=conversion.precedence)
            return None, problems
        assert entry is not None  # a schema-valid body has a string model
        fields, sources = op.extract(body)
        conversion.convert(entry, body, fields, sources,
                           drop_shot_type=bool(opts["newapi_drop_shot_type"]))
        # The relayed job meets DashScope's rules with DashScope's options (its family says).
        upstream = policy_class("dashscope").judge_arguments(opts)
        if kf2v is not None:
            conversion.kf2v_frames(body, fields, sources)
            spec, failures = catalogue.evaluate("dashscope", fields, task="image2video",
                                                **upstream)
        else:
            spec, failures = catalogue.evaluate(self.name, fields, **upstream)
        timing = context.rule_timing()
        violations = [op.rule_violation(f, sources, timing) for f in failures]
        violations.sort(key=lambda v: v.timing != "submit")
        return spec, violations
