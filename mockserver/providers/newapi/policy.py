"""new-api's policy (no Starlette): its error shapes, its words in each release and language,
its request ids, and its judgement of a submit (relay.py: its own checks in its order, the Ali
adaptor's request, then DashScope's judgement of that request).

Sources at the tag commits (github.com/QuantumNous/new-api; R = v1.0.0-rc.25 f1164142,
L = v0.10.0 ee53a7b6): middleware/distributor.go (R :33-170, L :30-125), middleware/auth.go
(R :391-425, L :217-240), middleware/utils.go abortWithOpenAiMessage, i18n/i18n.go (R :22,
:130-215), i18n/locales/*.yaml (R), common/utils.go GetTimeString/NewRequestId (R :268-283,
L :270-273); contracts/newapi.yaml records each decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from mockserver.catalogue import JobSpec
from mockserver.contracts import Operation
from mockserver.errors import ProviderError, Violation
from mockserver.providers.dashscope import render as ds_render
from mockserver.providers.newapi import conversion, relay, wire
from mockserver.providers.newapi.relay import PANIC
from mockserver.providers.newapi.releases import Release, release_of
from mockserver.providers.policy import FormFields, Policy, policy_class

# i18n/locales/{en,zh-CN,zh-TW}.yaml (R): token.invalid, distributor.*; L's hard-coded texts
# are the zh-CN ones (L middleware/distributor.go :78, :116, :136; model/token.go :76).
WORDS: dict[str, dict[str, str]] = {
    "token_invalid": {"en": "Invalid token", "zh-CN": "无效的令牌", "zh-TW": "無效的令牌"},
    "model_required": {"en": "Model name not specified, model name cannot be empty",
                       "zh-CN": "未指定模型名称，模型名称不能为空",
                       "zh-TW": "未指定模型名稱，模型名稱不能為空"},
    "invalid_request": {"en": "Invalid request: {}", "zh-CN": "无效的请求，{}",
                        "zh-TW": "無效的請求，{}"},
    "no_channel": {"en": "No available channel for model {model} under group {group} "
                         "(distributor)",
                   "zh-CN": "分组 {group} 下模型 {model} 无可用渠道（distributor）",
                   "zh-TW": "分組 {group} 下模型 {model} 無可用管道（distributor）"},
}
LEGACY_MISSING_TOKEN = "未提供令牌"
LEGACY_INVALID_REQUEST = "Invalid request, 无效的请求, {}"
GROUP = "default"
# gin.CustomRecovery in main.go (R :179-186, L :129-136).
_ENVELOPES = {"distributor": "auth", "no_channel": "auth", "panic": "panic"}


def normalize_lang(tag: str) -> str:
    """i18n.normalizeLang (R i18n/i18n.go :201-215): zh-tw*, zh*, en*, anything else en."""
    tag = tag.strip().lower()
    if tag.startswith("zh-tw"):
        return "zh-TW"
    if tag.startswith("zh"):
        return "zh-CN"
    return "en"


class NewApiPolicy(Policy):
    """new-api's task relay with the Ali (DashScope) adaptor, as one release words and judges."""

    name = "newapi"
    unrouted_codes = {404: "", 405: ""}

    @property
    def release(self) -> Release:
        """The release the options name (`newapi_version`)."""
        return release_of(self.context.options)

    def upstream_policy(self) -> Policy:
        """DashScope's policy over the same context: it judges the request new-api sends."""
        found = self.__dict__.get("_upstream")
        if found is None:
            found = self.__dict__["_upstream"] = policy_class("dashscope")(self.context)
        return found

    def key_form(self) -> Callable[[str], str]:
        """new-api treats `sk-x` and `x` as one key."""
        return conversion.norm_key

    # -- words --------------------------------------------------------------------------------
    def request_id(self) -> str:
        """`X-Oneapi-Request-Id` and the messages' " (request id: …)": R UTC time, nanoseconds
        padded to 9 digits, the build tag and 8 random characters; L the server's local time
        (the official compose file sets Asia/Shanghai), unpadded nanoseconds, 8 characters."""
        now = self.context.now()
        release = self.release
        zone = UTC if release.request_id_utc else ds_render.BEIJING
        stamp = datetime.fromtimestamp(now, zone).strftime("%Y%m%d%H%M%S")
        nanos = int(round((now % 1) * 1e9)) % 1_000_000_000
        nanos_text = f"{nanos:09d}" if release.request_id_utc else str(nanos)
        return f"{stamp}{nanos_text}{release.build_tag}{self.context.ids.token(8)}"

    def lang(self, headers: Mapping[str, str] | None, *, user: bool = True) -> str:
        """i18n.GetLangFromContext (R :130-177): the user's saved language once TokenAuth has
        loaded it (`user`: distributor messages; `newapi_user_language`), then the first
        Accept-Language tag, then English. L has no i18n: Chinese."""
        if not self.release.i18n:
            return "zh-CN"
        saved = self.context.options["newapi_user_language"]
        if user and saved != "none":
            return str(saved)
        accept = (headers or {}).get("accept-language", "")
        first = accept.split(",")[0].split(";")[0]
        return normalize_lang(first) if first.strip() else "en"

    def words(self, key: str, headers: Mapping[str, str] | None, *, user: bool = True,
              **values: str) -> str:
        """The message `key` in the request's language."""
        return WORDS[key][self.lang(headers, user=user)].format(**values)

    # -- errors ------------------------------------------------------------------------------
    def distributor_violation(self, headers: Mapping[str, str] | None,
                              detail: str | None) -> Violation:
        """The `Distribute` middleware's 400 (OpenAI shape): no model (`detail` None), or a body
        it cannot read. R wraps the reason twice (getModelFromRequest, then Distribute); L says
        "Invalid request, 无效的请求, <Go error>"."""
        if detail is None:
            message = self.words("model_required", headers)
        elif not self.release.i18n:
            message = LEGACY_INVALID_REQUEST.format(detail)
        else:
            template = WORDS["invalid_request"][self.lang(headers)]
            message = template.format(template.format(detail))
        return Violation("model" if detail is None else "",
                         "distributor:model" if detail is None else "distributor:body",
                         400, "", message, wrap="distributor")

    def no_channel(self, headers: Mapping[str, str] | None, model: str) -> Violation:
        """No channel serves the model in the group: 503 model_not_found (R distributor.go
        :158, L :116)."""
        return Violation("model", "model_known", 503, "model_not_found",
                         self.words("no_channel", headers, model=model, group=GROUP),
                         value=model, wrap="no_channel")

    def read_key(self, headers: Mapping[str, str]) -> str:
        """TokenAuth: `Bearer ` (R also `bearer `) stripped, then `sk-`; the key is the part
        before the first `-` (a `-<n>` suffix picks a channel, which only admins may)."""
        raw = headers.get("authorization", "")
        release = self.release
        if raw.startswith("Bearer ") or (release.lower_bearer and raw.startswith("bearer ")):
            raw = raw[7:].strip() if release.lower_bearer else raw[7:]
        if not raw:
            raise self.auth_error("missing", headers)
        key = raw.removeprefix("sk-")
        if " " in key or raw.lower() == "bearer":
            raise self.auth_error("invalid", headers)  # no token is spelled so (`bearer x` in L)
        allowed = self.context.options.api_keys
        if allowed:
            wanted = {k.removeprefix("sk-") for k in allowed}
            head, dash, _ = key.partition("-")
            if key not in wanted and head not in wanted:
                raise self.auth_error("invalid", headers)
            if key not in wanted and dash:
                # auth.go R :516-522, L :311-316: a channel selector, refused to non-admins
                raise ProviderError(403, "", "普通用户不支持指定渠道", envelope="auth")
        return raw

    def auth_error(self, kind: str, headers: Mapping[str, str] | None = None) -> ProviderError:
        """401: L says "未提供令牌" for a missing token; R answers every lookup failure with
        token.invalid in the Accept-Language's words (the user is not known yet; R auth.go
        :416-425)."""
        if kind == "missing" and not self.release.missing_token_is_invalid:
            return ProviderError(401, "", LEGACY_MISSING_TOKEN, envelope="auth")
        return ProviderError(401, "", self.words("token_invalid", headers, user=False),
                             envelope="auth")

    def body_error(self, kind: str, op: Operation) -> ProviderError:
        if kind == "too_large" and op.role == "submit":
            # common.GetRequestBody's limit, met first by the distributor (common/gin.go)
            limit_mb = max(1, self.context.options.body_limit >> 20)
            v = self.distributor_violation(
                None, f"request body exceeds {limit_mb} MB: request body too large")
            return ProviderError(400, "", v.message, envelope="auth", violation=v)
        messages = {"empty": "unexpected end of JSON input",
                    "too_large": "http: request body too large"}
        return ProviderError(400, self.release.decode_code, messages.get(
            kind, "invalid character looking for beginning of value"))

    def internal_error(self) -> ProviderError:
        return ProviderError(500, "", PANIC.format("internal error"), envelope="panic")

    @staticmethod
    def task_not_exist(message: str = "task_not_exist") -> ProviderError:
        """A poll of a task the caller does not have (R relay_task.go :381-384)."""
        return ProviderError(400, "task_not_exist", message)

    @staticmethod
    def content_error(status: int, code: str, message: str) -> ProviderError:
        """The video proxy's error (`/v1/videos/{id}/content`): no `code` in its envelope."""
        return ProviderError(status, code, message, envelope="content")

    def violation_error(self, violation: Violation, op: Operation) -> ProviderError:
        envelope = _ENVELOPES.get(violation.wrap or "", "default")
        return ProviderError(violation.status, violation.code, violation.message,
                             envelope=envelope, violation=violation)

    def error_body(self, err: ProviderError, op: Operation | None = None,
                   request_id: str | None = None) -> Any:
        envelope = err.envelope
        if envelope == "default" and op is not None:
            envelope = op.envelope_kind
        body = self.contract.render_error(err.status, err.code, err.message, envelope=envelope,
                                          request_id=request_id or self.request_id())
        if envelope == "content" and err.status >= 500:
            body["error"]["type"] = "server_error"
        return body

    # -- judging ------------------------------------------------------------------------------
    def decode_submit(self, op: Operation, raw: bytes, headers: Mapping[str, str],
                      *, remix: bool = False) -> tuple[Any, wire.Form | None]:
        """The request the relay works on: a JSON value, or a form's values as processFormMap
        hands them on, and the form itself; the distributor's 400 for a body it cannot read. A
        remix skips the distributor's reading (it selects no channel): there the relay's own
        decoding refuses the body (400 invalid_json, v0.10.0 unmarshal_task_request_failed).
        No exchange: the proxy's recorder reads real traffic with it too."""
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
                raise ProviderError(400, self.release.decode_code, str(exc)) from None
            raise self.violation_error(self.distributor_violation(headers, str(exc)),
                                       op) from None
        return body, form

    def read_request_body(self, op: Operation, raw: bytes, headers: Mapping[str, str]
                          ) -> tuple[Any, FormFields | None]:
        """The body as new-api's distributor and relay read it (`decode_submit`,
        as the fake does), a form as its fields and each file by size and digest, an error
        flagged as the client's (the proxy's recorder reads real traffic with it)."""
        try:
            body, form = self.decode_submit(op, raw, headers)
        except ProviderError as err:
            raise self.flag(err, "body:refused") from None
        if form is None:
            return body, None
        files = tuple({"name": part.name, **part.summary()} for part in form.files)
        return body, FormFields(wire.kind_of(headers.get("content-type", "")), form.values,
                                files)

    def form_request(self, values: Mapping[str, Any]) -> Any:
        """TaskSubmitReq from a recorded form's values (processFormMap)."""
        try:
            return wire.task_request(wire.Form(dict(values)))
        except wire.WireError:
            return None

    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None, *,
              assume: Mapping[str, Any] | None = None) -> tuple[JobSpec | None, list[Violation]]:
        """new-api's checks in its order, then DashScope's judgement of the request it sends
        (with the facts a job scenario assumes of its inputs)."""
        found = relay.relay(self, op, body, headers, remix="{" in op.path, assume=assume)
        return found.spec, found.violations
