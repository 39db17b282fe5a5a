"""A family's policy: how it words its errors, who may call it, how it judges a body.

`Policy` holds what a family decides without HTTP (no Starlette): the wording of its
authentication, body, parameter, violation and internal errors and of its transport faults, the
envelope an error body is rendered in, its key and header rules, the codes of an unrouted
request, what its JSON parser does with invalid UTF-8, and the judgement of a request body (the
contract's `judge` plus the family's own steps, e.g. new-api's request conversion) with
`settle`, which acts on it. Each family's policy is a subclass in its folder
(`providers/<f>/policy.py`, named by `FamilySpec.policy`); its HTTP class
(`providers.base.Family`) holds one. How long a family keeps tasks is its contract's
`x-wanmock-retention` (`mockserver.core.retention`).

A policy reads its options, contracts and ids through a context: the fake's `Backend` when it
serves, or `Judging` (contracts and options only) when `mockserver.checks` judges a body.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mockserver.catalogue import JobSpec
from mockserver.contracts import Contract, ContractSet, Operation, render_envelope
from mockserver.core import faults
from mockserver.core.ids import Ids, IdSource
from mockserver.core.scenarios import Scenario
from mockserver.core.webhooks import RetryPolicy
from mockserver.errors import MockServerError, ProviderError, Timing, Violation
from mockserver.families import load_class, spec
from mockserver.jsonwire import InvalidUtf8, NotJSON
from mockserver.jsonwire import decode as decode_json

if TYPE_CHECKING:
    from mockserver.core.config import Options


class Context(Protocol):
    """What a policy reads: the `Backend`, or `Judging` to judge without one."""

    contracts: ContractSet

    @property
    def ids(self) -> IdSource: ...

    @property
    def options(self) -> Options: ...

    def now(self) -> float: ...

    def rule_timing(self) -> Timing | None: ...


@dataclass(frozen=True)
class FormFields:
    """A form or multipart body as a family reads it: `kind` (`form`/`multipart`), its values
    (a repeated key as a list) and each file part by name, file name, type, size and SHA-256."""

    kind: str
    values: Mapping[str, Any]
    files: tuple[Mapping[str, Any], ...] = ()

    def recorded(self) -> dict[str, Any]:
        """The body as a cassette keeps it and replay matches it: its fields and each file by
        name, file name, type, size and SHA-256 (never the bytes)."""
        return form_body(self.values, self.files)


def form_body(values: Mapping[str, Any], files: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A form's fields and file facts as recorded (`FormFields.recorded`; cassettes, replay)."""
    keep = ("name", "filename", "content_type", "size", "sha256")
    return {"form": dict(values), "files": [{k: f.get(k) for k in keep} for f in files]}


class Judging:
    """A policy's context outside a fake: contracts and options, fresh ids, the wall clock.
    `mockserver.checks` judges bodies with it, without building a `Backend`."""

    def __init__(self, contracts: ContractSet, options: Options | None = None) -> None:
        if options is None:
            from mockserver.core.config import Options

            options = Options()
        self.contracts = contracts
        self.options = options
        self.ids = Ids(None)

    @staticmethod
    def now() -> float:
        return time.time()

    def rule_timing(self) -> Timing | None:
        timing = self.options.rule_timing
        return None if timing == "contract" else timing  # type: ignore[return-value]


class Policy:
    """One family's decisions. Subclasses set `name` and word `auth_error` and `body_error`."""

    name: ClassVar[str]
    # The code a request to no operation under the family's paths gets, by status (404/405).
    unrouted_codes: ClassVar[dict[int, str]] = {404: "NotFound", 405: "MethodNotAllowed"}
    # What the provider's JSON parser does with invalid UTF-8 inside strings: Go's
    # encoding/json replaces it with U+FFFD (`replace`); others refuse the body (`reject`).
    invalid_utf8: ClassVar[InvalidUtf8] = "replace"

    def __init__(self, context: Context) -> None:
        self.context = context
        self.contract: Contract = context.contracts[self.name]
        # `judge_arguments` of the options last judged with (options are replaced, not changed)
        self._judged_with: Any = None
        self._judge_args: dict[str, Any] = {}

    def trailing_slash(self) -> str | None:
        """How the family answers its paths with a trailing slash: `serve` (as without it),
        `redirect` (a 307 to the path without it), or None: not routed (the router's 307)."""
        return None

    def key_form(self) -> Callable[[str], str] | None:
        """How the family compares API keys when it scopes tasks to their key (None: as
        sent)."""
        return None

    # -- judging a body ------------------------------------------------------------------------
    @staticmethod
    def judge_arguments(options: Options) -> dict[str, Any]:
        """What the family's options add to `Contract.judge` (keyword arguments; none here).
        A family that relays another's models asks that family for its arguments."""
        return {}

    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None, *,
              assume: Mapping[str, Any] | None = None) -> tuple[JobSpec | None, list[Violation]]:
        """Judge a parsed body as this provider does: the job it would run and every violation,
        the first reported first; with `headers` (lower-case names) also the rules that read
        them (none by default); `assume`: facts of inputs the fake never fetches (an `inputs`
        scenario's, `mockserver.media.Assumed`). No side effects: `mockserver.checks` uses it
        too."""
        context = self.context
        options = context.options
        if options is not self._judged_with:
            self._judge_args, self._judged_with = self.judge_arguments(options), options
        if assume:
            return self.contract.judge(op.operation_id, body, rule_timing=context.rule_timing(),
                                       assume=assume, **self._judge_args)
        return self.contract.judge(op.operation_id, body, rule_timing=context.rule_timing(),
                                   **self._judge_args)

    def read_request_body(self, op: Operation, raw: bytes, headers: Mapping[str, str]
                          ) -> tuple[Any, FormFields | None]:
        """A submit's body as the family reads it: the value `judge` takes and, for a form or
        multipart body, its fields (`FormFields`: what a recording keeps); or the family's
        error for a body it cannot read, flagged with its rule. No Starlette: the proxy's
        recorder reads real traffic with it. This default takes JSON only (headers with
        lower-case names)."""
        ctype = headers.get("content-type", "")
        if not raw.strip():
            raise self.flag(self.body_error("empty", op), "body:empty")
        if ctype and "json" not in ctype.lower():
            raise self.flag(self.body_error("content_type", op), "body:content_type")
        try:
            return decode_json(raw, invalid_utf8=self.invalid_utf8), None
        except NotJSON:
            raise self.flag(self.body_error("not_json", op), "body:not_json") from None

    def form_request(self, values: Mapping[str, Any]) -> Any:
        """The request a recorded form's fields stand for (what `judge` takes); None for a
        family that reads no forms."""
        return None

    def settle(self, op: Operation, spec: JobSpec | None, violations: list[Violation]
               ) -> tuple[JobSpec, Violation | None]:
        """Act on a judgement: raise the first submit-time violation, else return the job and
        the violation (if any) that will fail the task later."""
        for violation in violations:
            if violation.timing == "submit":
                raise self.violation_error(violation, op)
        if spec is None:  # cannot happen on a schema-valid body with a known model; be safe
            raise self.violation_error(violations[0], op)
        late = violations[0] if violations else None
        return spec, late

    # -- authentication and header rules ---------------------------------------------------------
    def authenticate(self, headers: Mapping[str, str], op: Operation) -> str:
        """The caller's API key for a request to `op` (lower-case header names), or the
        family's 401. The pipeline asks once per request, before the handler."""
        return self.read_key(headers)

    def check_headers(self, headers: Mapping[str, str], op: Operation) -> None:
        """The family's own header rules, checked right after authentication (none here)."""

    def read_key(self, headers: Mapping[str, str]) -> str:
        """The API key in the request's headers (lower-case names), or the family's 401:
        `Authorization: Bearer <key>`, one of `Options.api_keys` when those are set."""
        header = headers.get("authorization")
        if not header or not header.strip():
            raise self.flag(self.auth_error("missing"), "security:missing", "Authorization")
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise self.flag(self.auth_error("malformed"), "security:malformed", "Authorization")
        allowed = self.context.options.api_keys
        if allowed and key not in allowed:
            raise self.auth_error("invalid")  # a well-formed request with the wrong key
        return key

    # -- errors, worded by the family ----------------------------------------------------------
    @staticmethod
    def flag(err: ProviderError, rule: str, field: str = "") -> ProviderError:
        """Mark an error as a contract violation by the client (the journal records it)."""
        if err.violation is None:
            err.violation = Violation(field, rule, err.status, err.code, err.message)
        return err

    def auth_error(self, kind: str) -> ProviderError:
        """The family's 401; kind: `missing`, `malformed`, `invalid`."""
        raise NotImplementedError(f"{self.name} words no authentication error")

    def body_error(self, kind: str, op: Operation) -> ProviderError:
        """The family's answer to a body that is `empty`, `not_json`, of the wrong
        `content_type` or `too_large`."""
        raise NotImplementedError(f"{self.name} words no body error")

    # The timeout of one webhook attempt when neither the contract nor --webhook-timeout says.
    webhook_timeout_s: ClassVar[float] = 10.0

    def webhook_policy(self) -> RetryPolicy:
        """How the family delivers a webhook: the contract's `x-wanmock-webhooks` timeout
        (else `webhook_timeout_s`; `--webhook-timeout` wins) and the retry intervals of the
        fake's timing profile."""
        spec = self.contract.extensions.webhooks
        options = self.context.options
        intervals = spec.intervals.get(options.timing) or () if spec is not None else ()
        timeout = options.webhook_timeout
        if timeout is None:
            found = spec.timeout_s if spec is not None else None
            timeout = self.webhook_timeout_s if found is None else found
        return RetryPolicy(timeout_s=timeout, intervals=tuple(float(i) for i in intervals))

    def internal_error(self) -> ProviderError:
        """A bug in the fake, in the family's words."""
        return ProviderError(500, "InternalError",
                             "An internal error has occured, please try again later.")

    def parameter_error(self, violation: Violation, op: Operation) -> ProviderError:
        """A query or header parameter the contract refuses."""
        return ProviderError.from_violation(violation)

    def violation_error(self, violation: Violation, op: Operation) -> ProviderError:
        """A body rule the contract refuses at submit."""
        return ProviderError.from_violation(violation)

    def fault_error(self, scenario: Scenario, op: Operation | None = None) -> ProviderError:
        """A transport fault in the family's words: its contract's `x-wanmock-faults` entry
        for the kind (per role if given), else the kind's own default
        (`mockserver.core.faults`)."""
        kind = faults.kind(scenario.name)
        found = None if kind is None else (
            self.contract.extensions.faults.get(kind.contract_key) or kind.words)
        if kind is None or found is None:  # registration ensures words for a worded kind
            raise MockServerError(f"{scenario.name!r} is no transport fault")
        spec = found.for_role(op.role if op is not None else None)
        headers = {}
        if kind.sends_retry_after(scenario.params, spec.retry_after):
            headers["Retry-After"] = str(int(scenario.params.get("retry_after", 1)))
        return ProviderError(spec.status, spec.code, spec.message, envelope=spec.envelope,
                             headers=headers)

    def error_body(self, err: ProviderError, op: Operation | None = None) -> Any:
        """The JSON body an error is answered with: the operation's own envelope (apiyi's task
        API) or the contract's `x-wanmock-envelope` the error names."""
        own = op.envelope if op is not None else None
        if own is not None and err.envelope == "default":
            return render_envelope(own, {"status": err.status, "code": err.code,
                                         "message": err.message})
        return self.contract.render_error(err.status, err.code, err.message,
                                          envelope=err.envelope,
                                          request_id=self.context.ids.uuid())


_GENERIC: dict[str, type[Policy]] = {}


def generic(name: str) -> type[Policy]:
    """The policy of a family that names none (`FamilySpec.policy` empty): the contract decides
    everything a judgement needs."""
    found = _GENERIC.get(name)
    if found is None:
        found = _GENERIC[name] = type(f"{name.title()}Policy", (Policy,), {"name": name})
    return found


def policy_class(name: str) -> type[Policy]:
    """The policy class of the family `name` (its `FamilySpec.policy`, else `generic`)."""
    path = spec(name).policy
    return load_class(path) if path else generic(name)  # type: ignore[no-any-return]
