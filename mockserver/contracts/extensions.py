"""Typed accessors for every `x-wanmock-*` extension of a contract (docs/contract-conventions.md).

The one place that reads an extension out of a contract document: every other module asks
`Contract.extensions` (root keys, read once at load) or the `Operation` (operation keys:
`role`, `errors`, `rules`, `spec_map`, `envelope`, `envelope_kind`, `task_type`). Reading is
lenient: an absent or malformed key reads as "not given" (None, empty), and the consumer
keeps its own default, as it did when it read the dict itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# Operation-level keys (read by `loading._build_operations`).
ROLE = "x-wanmock-role"
SPEC = "x-wanmock-spec"
ERRORS = "x-wanmock-errors"
RULES = "x-wanmock-rules"
ENVELOPE = "x-wanmock-envelope"
ENVELOPE_KIND = "x-wanmock-envelope-kind"
TASK_TYPE = "x-wanmock-task-type"
TASK = "x-wanmock-task"
RELAY = "x-wanmock-relay"
# Root keys.
FAMILY = "x-wanmock-family"
DECISIONS = "x-wanmock-decisions"
RETENTION = "x-wanmock-retention"
FAILURES = "x-wanmock-failures"
FAULTS = "x-wanmock-faults"
LIMITS = "x-wanmock-limits"
WEBHOOKS = "x-wanmock-webhooks"
POLL_GUIDANCE = "x-wanmock-poll-guidance"
CLIENT_5XX = "x-wanmock-client-5xx"
VERSIONS = "x-wanmock-versions"
UNROUTED = "x-wanmock-unrouted"
# On any node a version-dependent contract marks (schema property, example, response header,
# decision): the versions it applies to.
VERSION = "x-wanmock-version"
MOUNTS = "x-wanmock-mounts"
VALIDATION = "x-wanmock-validation"
# On `components.responses.*` (jiekou's gateway reasons).
REASON = "x-wanmock-reason"


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Decision:
    """One `x-wanmock-decisions` entry: where sources disagree and what wanmock does."""

    topic: str
    chosen: str
    source: str
    alternative: str | None = None
    switch: str | None = None
    versions: frozenset[str] | None = None  # `x-wanmock-version`: None = every version

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> Decision:
        return cls(str(raw.get("topic", "")), str(raw.get("chosen", "")),
                   str(raw.get("source", "")), _str(raw.get("alternative")),
                   _str(raw.get("switch")), versions_of(raw))


@dataclass(frozen=True, slots=True)
class RetentionSpec:
    """`x-wanmock-retention`: seconds a task (None: kept) and its result URL live."""

    task_s: float | None
    url_s: float | None
    source: str = ""


@dataclass(frozen=True, slots=True)
class FailureWords:
    """One `x-wanmock-failures` entry: how a task failing after acceptance reads."""

    code: str | None
    message: str | None
    after_s: float | None = None
    state: str | None = None
    text: str | None = None
    source: str = ""

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> FailureWords:
        return cls(_str(raw.get("code")), _str(raw.get("message")), _float(raw.get("after_s")),
                   _str(raw.get("state")), _str(raw.get("text")), str(raw.get("source", "")))


@dataclass(frozen=True, slots=True)
class Fault:
    """One `x-wanmock-faults` entry: the family's answer to an injected transport fault."""

    status: int
    code: str
    message: str
    envelope: str = "default"
    retry_after: bool = False
    source: str = ""
    # Per operation role: the keys that differ there (code, message, envelope...).
    by_role: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> Fault | None:
        """The entry, or None when it lacks its status, code or message."""
        if not {"status", "code", "message"} <= set(raw):
            return None
        return cls(int(raw["status"]), str(raw["code"]), str(raw["message"]),
                   str(raw.get("envelope", "default")), bool(raw.get("retry_after", False)),
                   str(raw.get("source", "")),
                   {str(k): _map(v) for k, v in _map(raw.get("by_role")).items()})

    def for_role(self, role: str | None) -> Fault:
        """This fault as an operation of `role` answers it (its `by_role` entry applied)."""
        over = self.by_role.get(role) if role is not None else None
        if not over:
            return self
        return replace(
            self, status=int(over.get("status", self.status)),
            code=str(over.get("code", self.code)), message=str(over.get("message", self.message)),
            envelope=str(over.get("envelope", self.envelope)),
            retry_after=bool(over.get("retry_after", self.retry_after)), by_role={})


@dataclass(frozen=True, slots=True)
class ModelLimit:
    """One model's documented limits (`x-wanmock-limits.models`): submits per second and tasks
    in progress at once, per API key (None: not limited)."""

    submit_rps: float | None = None
    concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """`x-wanmock-limits`: how the family behaves at its limits.

    `rate_limit_qps` is the documented request rate; `rate_limit_roles` the operation roles it
    covers (empty: every role); `models` each model's submit rate and concurrent tasks;
    `switch` the option that turns these documented limits on and off (None: the family does
    not enforce them; only the core `rate_limit_qps`/`max_concurrent_tasks` options limit)."""

    concurrency_policy: str | None = None
    max_concurrent_tasks_default: int | None = None
    rate_limit_qps: float | None = None
    source: str = ""
    rate_limit_roles: tuple[str, ...] = ()
    models: Mapping[str, ModelLimit] = field(default_factory=dict)
    switch: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """`x-wanmock-webhooks`: how the family delivers callbacks."""

    event_type: str | None = None
    timeout_s: float | None = None
    retries: int | None = None
    intervals: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    test_mode_reason: str | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class PollGuidance:
    """`x-wanmock-poll-guidance`: the fastest polling the provider asks of clients."""

    min_interval_s: float
    source: str


@dataclass(frozen=True, slots=True)
class ReleaseSpec:
    """One release of `x-wanmock-versions`: what the option value names."""

    name: str
    release: str
    commit: str
    date: str
    source_url: str
    source: str


@dataclass(frozen=True, slots=True)
class Versions:
    """`x-wanmock-versions`: the releases a family models, one per value of its option."""

    option: str
    default: str
    releases: Mapping[str, ReleaseSpec]


@dataclass(frozen=True, slots=True)
class ContractExtensions:
    """Every root `x-wanmock-*` key of one contract, typed; absent keys read as None/empty."""

    family: str | None = None
    decisions: tuple[Decision, ...] = ()
    envelopes: Mapping[str, Any] = field(default_factory=dict)
    retention: RetentionSpec | None = None
    failures: Mapping[str, FailureWords] = field(default_factory=dict)
    faults: Mapping[str, Fault] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    webhooks: WebhookSpec | None = None
    poll_guidance: PollGuidance | None = None
    client_5xx: frozenset[int] = frozenset()
    versions: Versions | None = None
    # `x-wanmock-unrouted` `wrong_method`: the status a known path gives another method (405
    # unless the contract says otherwise: new-api's gin answers 404).
    wrong_method_status: int = 405
    # `x-wanmock-mounts`: path prefix -> the other hosts of the family served under it.
    mounts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # `x-wanmock-validation`: `submit` (a bad input is refused at submit) or `runner` (the
    # provider queues any JSON object and fails a bad one later).
    validation: str = "submit"
    # `x-wanmock-reason` of `components.responses.<name>`, by response name.
    reasons: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, document: Mapping[str, Any]) -> ContractExtensions:
        """Read the root extensions of a contract document."""
        return cls(
            family=family_of(document),
            decisions=tuple(Decision.read(d) for d in document.get(DECISIONS) or []
                            if isinstance(d, Mapping)),
            envelopes=_envelopes(document.get(ENVELOPE)),
            retention=_retention(document.get(RETENTION)),
            failures={str(k): FailureWords.read(v)
                      for k, v in _map(document.get(FAILURES)).items() if isinstance(v, Mapping)},
            faults={str(k): f for k, v in _map(document.get(FAULTS)).items()
                    if isinstance(v, Mapping) and (f := Fault.read(v)) is not None},
            limits=_limits(document.get(LIMITS)),
            webhooks=_webhooks(document.get(WEBHOOKS)),
            poll_guidance=_poll_guidance(document.get(POLL_GUIDANCE)),
            client_5xx=frozenset(int(s) for s in document.get(CLIENT_5XX) or []),
            versions=_versions(document.get(VERSIONS)),
            wrong_method_status=int(_map(document.get(UNROUTED)).get("wrong_method") or 405),
            mounts=_mounts(document.get(MOUNTS)),
            validation="runner" if document.get(VALIDATION) == "runner" else "submit",
            reasons={str(name): str(resp[REASON]) for name, resp in
                     _map(_map(document.get("components")).get("responses")).items()
                     if isinstance(resp, Mapping) and resp.get(REASON)},
        )


def family_of(document: Mapping[str, Any]) -> str | None:
    """`x-wanmock-family` of a document (also of a raw schema handed over by schemathesis)."""
    value = document.get(FAMILY)
    return str(value) if value else None


def _envelopes(env: Any) -> dict[str, Any]:
    """`x-wanmock-envelope` by kind: a mapping of kinds (with `default`) or one template."""
    env = env or {}
    if isinstance(env, Mapping) and "default" in env and isinstance(env["default"], Mapping):
        return dict(env)
    return {"default": env}


def _retention(raw: Any) -> RetentionSpec | None:
    if not isinstance(raw, Mapping):
        return None
    return RetentionSpec(_float(raw.get("task_s")), _float(raw.get("url_s")),
                         str(raw.get("source", "")))


def _limits(raw: Any) -> Limits:
    raw = _map(raw)
    most = raw.get("max_concurrent_tasks_default")
    models: dict[str, ModelLimit] = {}
    for group in raw.get("models") or []:  # [{models: [...], submit_rps, concurrent}, ...]
        if not isinstance(group, Mapping):
            continue
        concurrent = group.get("concurrent")
        limit = ModelLimit(_float(group.get("submit_rps")),
                           int(concurrent) if isinstance(concurrent, int) else None)
        for name in group.get("models") or []:
            models[str(name)] = limit
    return Limits(_str(raw.get("concurrency_policy")),
                  int(most) if isinstance(most, int) else None,
                  _float(raw.get("rate_limit_qps")), str(raw.get("source", "")),
                  tuple(str(r) for r in raw.get("rate_limit_roles") or []), models,
                  _str(raw.get("switch")))


def _webhooks(raw: Any) -> WebhookSpec | None:
    if not isinstance(raw, Mapping):
        return None
    retries = raw.get("retries")
    return WebhookSpec(
        _str(raw.get("event_type")), _float(raw.get("timeout_s")),
        int(retries) if isinstance(retries, int) else None,
        {str(k): tuple(float(i) for i in v or []) for k, v in _map(raw.get("intervals")).items()},
        _str(raw.get("test_mode_reason")), str(raw.get("source", "")))


def _mounts(raw: Any) -> dict[str, tuple[str, ...]]:
    """`x-wanmock-mounts`: `{"/prefix": {hosts: [host, ...]}}` -> prefix -> hosts (lower case);
    a prefix must start with `/` and not end with one."""
    out: dict[str, tuple[str, ...]] = {}
    for prefix, entry in _map(raw).items():
        hosts = _map(entry).get("hosts")
        if (isinstance(prefix, str) and prefix.startswith("/") and not prefix.endswith("/")
                and isinstance(hosts, list)):
            out[prefix] = tuple(str(h).lower() for h in hosts if h)
    return out


def _poll_guidance(raw: Any) -> PollGuidance | None:
    if isinstance(raw, Mapping) and _float(raw.get("min_interval_s")) is not None:
        return PollGuidance(float(raw["min_interval_s"]), str(raw.get("source", "contract")))
    return None


def _versions(raw: Any) -> Versions | None:
    raw = _map(raw)
    releases = {str(name): ReleaseSpec(str(name), str(r.get("release", "")),
                                       str(r.get("commit", "")), str(r.get("date", "")),
                                       str(r.get("source_url", "")), str(r.get("source", "")))
                for name, r in _map(raw.get("releases")).items() if isinstance(r, Mapping)}
    if not raw.get("option") or not releases:
        return None
    return Versions(str(raw["option"]), str(raw.get("default", next(iter(releases)))), releases)


def versions_of(node: Any) -> frozenset[str] | None:
    """`x-wanmock-version` of a node: the versions it applies to (a name or a list), or None
    when it applies to every version."""
    raw = _map(node).get(VERSION)
    if raw is None:
        return None
    return frozenset(str(v) for v in (raw if isinstance(raw, list) else [raw]))
