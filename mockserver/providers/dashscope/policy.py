"""DashScope's policy (no Starlette): its error wording, retention, JSON parser and the header
rule its judgement reads (`X-DashScope-OssResourceResolve`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mockserver.catalogue import JobSpec, RuleFailure
from mockserver.contracts import Operation
from mockserver.contracts.extensions import Limits
from mockserver.errors import ProviderError, Violation
from mockserver.families import host_match
from mockserver.providers.policy import Context, Policy

if TYPE_CHECKING:
    from mockserver.core.config import Options

# DashScope's bad-URL wording (help.aliyun.com/zh/model-studio/error-code [B]); the exact text for
# this case
# is not documented [C] (contracts/dashscope.yaml decision `oss-resource-resolve`).
OSS_URL_MESSAGE = "url error, please check url！"
# (option, value, catalogue alternative it selects): the other readings where sources disagree.
_ALTERNATIVES = (
    ("dashscope_wan26_r2v_audio", "strict", "audio_strict"),
    ("dashscope_wan27_r2v_video_max", 15, "video_durations_15"),
    ("dashscope_wan27_r2v_videos", 3, "videos_3"),
    ("dashscope_r2v_input_billing", "off", "input_billing_off"),
)


class DashScopePolicy(Policy):
    """How DashScope words and judges (apiyi passes its create through to it)."""

    name = "dashscope"
    # DashScope's parser is not Go's: a body with invalid UTF-8 is not JSON to it (decision
    # json-decoding); apiyi passes the body through to it.
    invalid_utf8 = "reject"

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._regions: dict[str, str | None] = {}  # Host value -> its region (`region`)
        # (options, region switch, documented limits): read once per options object (options
        # are replaced, never changed), not on every request.
        self._read: tuple[Any, str, Limits | None] | None = None

    def _switches(self) -> tuple[str, Limits | None]:
        """The region tables' switch and the documented limits (None: off) under the current
        options."""
        options = self.context.options
        read = self._read
        if read is None or read[0] is not options:
            regions = self.contract.extensions.regions
            switch = "on" if regions.switch is None else str(options[regions.switch])
            limits = self.contract.extensions.limits
            documented = (None if limits.switch is None or options[limits.switch] != "on"
                          else limits)
            read = self._read = (options, switch, documented)
        return read[1], read[2]

    def trailing_slash(self) -> str | None:
        """DashScope answers `/api/v1/tasks/{id}/` as `/api/v1/tasks/{id}` (decision
        trailing-slash); `dashscope_trailing_slash=redirect` gives a 307 instead."""
        return str(self.context.options["dashscope_trailing_slash"])

    @staticmethod
    def judge_arguments(options: Options) -> dict[str, Any]:
        """What DashScope's options change in the catalogue's judgement (families relaying
        DashScope ask for it): `dashscope_r2v_prompt_over=reject` rejects a wan2.6 r2v prompt
        over its limit; the others choose the catalogue entries' `alternatives`
        (contracts/dashscope.yaml decisions)."""
        chosen = {name for option, value, name in _ALTERNATIVES if options[option] == value}
        return {"strict_prompts": options["dashscope_r2v_prompt_over"] == "reject",
                "alternatives": frozenset(chosen)}

    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None, *,
              assume: Mapping[str, Any] | None = None) -> tuple[JobSpec | None, list[Violation]]:
        region = self.region(headers)
        extra = self.contract.extensions.regions.alternatives.get(region or "", ())
        if extra:  # the region's own reading of some models (the global wan2.6-r2v)
            args = self.judge_arguments(self.context.options)
            spec, violations = self.contract.judge(
                op.operation_id, body, rule_timing=self.context.rule_timing(), assume=assume,
                strict_prompts=bool(args["strict_prompts"]),
                alternatives=frozenset(args["alternatives"]) | frozenset(extra))
        else:
            spec, violations = super().judge(op, body, assume=assume)
        if spec is not None and region is not None and not self.contract.extensions.regions.offers(
                region, spec.model):
            # A model the host's region does not sell: that region's "Model not exist."
            return None, [op.rule_violation(
                RuleFailure("model_known", "model", spec.model, None, spec.model), {})]
        if (spec is not None and headers is not None
                and self.context.options["dashscope_oss_resolve"] == "require"
                and headers.get("x-dashscope-ossresourceresolve", "").strip().lower()
                != "enable"):
            field = _oss_input(spec.inputs)
            if field is not None:
                # Only with the header does the service resolve oss:// (temporary) URLs.
                violations = [Violation(f"input.{field}", "oss_resolve", 400,
                                        "InvalidParameter", OSS_URL_MESSAGE), *violations]
        return spec, violations

    def region(self, headers: Mapping[str, str] | None) -> str | None:
        """The Model Studio region of the request's Host (x-wanmock-regions), or None: a host
        outside the table (loopback, a gateway), the SDKs' lenient default host, or the
        tables switched off (dashscope_regions)."""
        regions = self.contract.extensions.regions
        switch = self._switches()[0]
        if headers is None or not regions.hosts or switch == "off":
            return None
        host = headers.get("host", "")
        host = (host.rpartition(":")[0] if ":" in host and not host.endswith("]") else host)
        host = host.lower()
        if host in regions.lenient_hosts and switch != "strict":
            return None
        try:
            return self._regions[host]
        except KeyError:  # the contract's hosts do not change: one match per Host value
            if len(self._regions) >= 256:
                self._regions.clear()
            found = self._regions[host] = host_match(regions.hosts, host)
            return found

    # -- errors ------------------------------------------------------------------------------
    def auth_error(self, kind: str) -> ProviderError:
        if kind == "missing":
            return ProviderError(401, "InvalidApiKey", "No API-key provided.")
        return ProviderError(401, "InvalidApiKey", "Invalid API-key provided.")

    def body_error(self, kind: str, op: Operation) -> ProviderError:
        if kind == "too_large":
            limit = self.context.options.body_limit
            return ProviderError(400, "InvalidParameter",
                                 f"The request body exceeds the limit of {limit} bytes.")
        return ProviderError(400, "BadRequest.IllegalInput",
                             "The input parameter requires json format.")

    def documented_limits(self) -> Limits | None:
        """The contract's `x-wanmock-limits` when its switch option is on (DashScope's
        documented rates and concurrency, decision rate-limits), else None."""
        return self._switches()[1]

    def check_headers(self, headers: Mapping[str, str], op: Operation) -> None:
        """A submit needs `X-DashScope-Async: enable` (video synthesis is async only); a
        synchronous call (wan2.2-s2v-detect) refuses it."""
        wants_async = headers.get("x-dashscope-async", "").strip().lower() == "enable"
        if op.role == "submit" and not wants_async:
            raise self.async_error()
        if op.role == "sync" and wants_async:
            raise ProviderError(403, "AccessDenied",
                                "Current user api does not support asynchronous calls.")

    @staticmethod
    def async_error() -> ProviderError:
        """A submit without `X-DashScope-Async: enable`."""
        return ProviderError(403, "AccessDenied",
                             "current user api does not support synchronous calls.")

    def violation_error(self, violation: Violation, op: Operation) -> ProviderError:
        unknown_model = violation.field == "model" and violation.rule in ("schema:enum",
                                                                          "model_known")
        if unknown_model and self.context.options["dashscope_unknown_model_status"] == 404:
            model = violation.value if isinstance(violation.value, str) else ""
            return ProviderError(
                404, "ModelNotFound",
                f"The model {model} does not exist or you do not have access to it.",
                violation=violation,
            )
        return ProviderError.from_violation(violation)


def _oss_input(inputs: Mapping[str, Any]) -> str | None:
    """The first input field holding an `oss://` URL, or None."""
    for name, value in inputs.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            url = item.get("url") if isinstance(item, Mapping) else item
            if isinstance(url, str) and url[:6].lower() == "oss://":
                return name
    return None
