"""Transport fault kinds, in one registry: what a fault named in `X-Wanmock-Scenario` (or a
scenario rule, or a limit the fake enforces) does to one HTTP exchange.

Each kind is one `FaultKind` entry, registered as Schemathesis registers its checks
(`register`): its name, its help line, and what it does, as one of four outcomes the request
pipeline carries out whatever the kind (`providers/pipeline.py`):

- `Worded`: the family answers with its own error for the kind: the status, code, message and
  envelope of its contract's `x-wanmock-faults` entry under the kind's `key`, else the kind's
  default `words` (`providers.policy.Policy.fault_error`);
- `Wait`: the answer comes after a delay, then the request goes on as normal;
- `Drop`: the connection is cut mid-answer (after a delay, if any);
- `Reply`: a fixed status and body (a malformed one).

Adding a kind is one `FaultKind` entry (here, or `register()` from a plugin or a test) plus,
when the families word it, its `x-wanmock-faults` entry in each contract. No Starlette here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mockserver.contracts.extensions import Fault
from mockserver.errors import MockServerError

Params = Mapping[str, Any]
Uniform = Callable[[float, float], float]  # a seeded random draw in [low, high]


@dataclass(frozen=True, slots=True)
class Worded:
    """Answer with the family's error for the fault."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Answer after `seconds`, as normal."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Drop:
    """Cut the connection mid-answer, after `seconds`."""

    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer `status` with `body` as it is."""

    status: int
    body: bytes
    media_type: str = "application/json"


Outcome = Worded | Wait | Drop | Reply


@dataclass(frozen=True, slots=True)
class FaultKind:
    """One transport fault.

    Parameters:
        name: its scenario name (`throttle`, `server-error`).
        help: one line for listings (the control API, the dashboard, the docs).
        act: what it does, from the scenario's parameters and a seeded random draw; None: the
            family's words (`Worded`).
        words: the answer when the family's contract has no `x-wanmock-faults` entry for it
            (required when `act` is None).
        key: its `x-wanmock-faults` key (default: the name with `_` for `-`).
        retry_after: when the answer carries `Retry-After` (the `retry_after=` parameter's
            seconds, default 1): `always`, `contract` (when the contract's entry says the
            provider sends one), or `asked` (only when the parameter is given).
        params: the scenario parameters it takes (`ms`, `seconds`); a kind the families word
            also takes `retry_after`. Any other is the toolkit's error, not ignored.
    """

    name: str
    help: str
    act: Callable[[Params, Uniform], Outcome] | None = None
    words: Fault | None = None
    key: str = ""
    retry_after: Literal["always", "contract", "asked"] = "asked"
    params: tuple[str, ...] = ()

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every parameter a scenario of this kind may carry."""
        return (*self.params, "retry_after") if self.act is None else self.params

    @property
    def contract_key(self) -> str:
        return self.key or self.name.replace("-", "_")

    def outcome(self, params: Params, uniform: Uniform) -> Outcome:
        """What this fault does to the exchange."""
        return WORDED if self.act is None else self.act(params, uniform)

    def sends_retry_after(self, params: Params, contract_says: bool) -> bool:
        """Whether the family's answer carries `Retry-After`."""
        if "retry_after" in params or self.retry_after == "always":
            return True
        return self.retry_after == "contract" and contract_says


WORDED = Worded()


def _latency(p: Params, uniform: Uniform) -> Outcome:
    if "ms" in p:
        return Wait(float(p["ms"]) / 1000)
    return Wait(uniform(float(p.get("min_ms", 0)), float(p.get("max_ms", 1000))) / 1000)


KINDS: dict[str, FaultKind] = {}


def register(kind: FaultKind) -> FaultKind:
    """Add a fault kind (`MockServerError` for a name already taken, or for a kind the
    families word that has no default words)."""
    if kind.name in KINDS:
        raise MockServerError(f"fault kind {kind.name!r} is registered already")
    if kind.act is None and kind.words is None:
        raise MockServerError(f"fault kind {kind.name!r} needs words= (what a family whose "
                              "contract does not word it answers) or act=")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Forget a fault kind `register` added."""
    KINDS.pop(name, None)


def kind(name: str) -> FaultKind | None:
    """The fault kind called `name`, or None."""
    return KINDS.get(name)


def descriptions() -> dict[str, str]:
    """Every fault kind's help line, by name (for listings)."""
    return {name: each.help for name, each in KINDS.items()}


for _kind in (
    FaultKind("throttle", "429 with Retry-After (retry_after= seconds), in the family's envelope",
              words=Fault(429, "Throttling", "Requests throttling triggered."),
              retry_after="always"),
    FaultKind("rate-limit", "429 request-rate quota, in the family's envelope",
              words=Fault(429, "Throttling.RateQuota",
                          "Requests rate limit exceeded, please try again later."),
              retry_after="contract"),
    FaultKind("concurrency", "429 too many running tasks, in the family's envelope",
              words=Fault(429, "Throttling", "Too many running tasks."), retry_after="contract"),
    FaultKind("server-error", "500 in the family's envelope",
              words=Fault(500, "InternalError",
                          "An internal error has occured, please try again later.")),
    FaultKind("unavailable", "503 in the family's envelope",
              words=Fault(503, "ServiceUnavailable", "The service is temporarily unavailable.")),
    FaultKind("payment-required", "402 out of credits or quota, in the family's envelope",
              words=Fault(402, "PaymentRequired", "Insufficient balance.")),
    FaultKind("blocked", "403 the request refused by moderation or a guardrail before any job "
              "(reason= the flagged category), in the family's envelope",
              words=Fault(403, "Forbidden", "The request was blocked by content moderation."),
              params=("reason", "flagged_input")),
    FaultKind("request-timeout", "408 the provider timed out handling the request, in the "
              "family's envelope",
              words=Fault(408, "RequestTimeout", "Request timed out.")),
    FaultKind("bad-gateway", "502 the upstream model failed or answered invalidly, in the "
              "family's envelope",
              words=Fault(502, "BadGateway", "Bad gateway.")),
    FaultKind("latency", "answer after ms= (or a seeded random min_ms..max_ms) milliseconds",
              act=_latency, params=("ms", "min_ms", "max_ms")),
    FaultKind("drop", "drop the connection mid-response", act=lambda p, u: Drop()),
    FaultKind("hang", "send nothing for seconds= (default 30, at most 300), then drop",
              act=lambda p, u: Drop(min(float(p.get("seconds", 30)), 300.0)),
              params=("seconds",)),
    FaultKind("malformed", "200 with a truncated, invalid JSON body",
              act=lambda p, u: Reply(200, b'{"request_id": "wanmock", "output": {"task_id": ')),
):
    register(_kind)
