"""Scenarios: job-level outcomes and transport faults, chosen per request.

A scenario is a name with parameters, written `fail; kind=moderation; at=0.6`. Job scenarios
shape the task a submission creates (its plan: when it fails and how, how long it queues or runs,
when it expires); transport scenarios shape one HTTP exchange (a 429, a 500, latency, a dropped
connection, a malformed body; their kinds are the registry in `mockserver.core.faults`). Both
are neutral: each family words the outcome in its own codes and envelope
(`x-wanmock-failures`, `x-wanmock-faults` in its contract).

They are chosen by the `X-Wanmock-Scenario` request header, or by rules (`ScenarioBook`) that
match requests by family, operation, model, API key, prompt text or the Nth match, apply a given
number of times or always, optionally at a seeded random rate.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mockserver.contracts.extensions import FailureWords
from mockserver.core import faults
from mockserver.errors import MockServerError

JOB = {
    "succeed": "run normally (also stops random rates from applying)",
    "fail": "fail at a progress point: kind=invalid_parameter|moderation|internal|timeout, "
            "at=0..1, code=, message=",
    "moderation": "content moderation found late (DashScope DataInspectionFailed); at=0..1",
    "internal": "internal error while running; at=0..1",
    "timeout": "runs until the provider's time limit, then fails (DashScope 3 h)",
    "stuck": "never leaves the queue (seconds= to bound it)",
    "slow": "queue and run times multiplied by factor= (default 5)",
    "cancel": "canceled after= seconds in the queue (default 0)",
    "cancel-race": "a cancel is accepted but the task still completes",
    "expire": "task and result URL expire after= seconds after the task ends (default 0)",
    "inputs": "run normally, taking these facts of inputs the fake never fetches: video_s= "
              "and audio_s= (each input video's and audio's seconds, default 5), smart_s= "
              "(what duration -1 picks, default 5), ratio= (what adaptive picks), humanoid= "
              "(wan2.2-s2v-detect finds a person); any job scenario may carry them too",
}
# The parameters each job scenario takes (`shape_plan` reads them); every job scenario also
# takes the facts of an `inputs` scenario (`mockserver.media.Assumed.PARAMS`).
JOB_PARAMS = {
    "succeed": (), "fail": ("kind", "at", "code", "message", "after"),
    "moderation": ("at", "code", "message"), "internal": ("at", "code", "message"),
    "timeout": ("after", "code", "message"), "stuck": ("seconds",), "slow": ("factor",),
    "cancel": ("after",), "cancel-race": (), "expire": ("after",), "inputs": (),
}
MATCH_KEYS = ("family", "operation", "model", "api_key", "prompt", "nth")


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named outcome or fault with its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fault = faults.kind(self.name)
        if self.name not in JOB and fault is None:
            raise MockServerError(
                f"unknown scenario {self.name!r}; job scenarios: {', '.join(JOB)}; "
                f"transport scenarios: {', '.join(faults.KINDS)}")
        if self.name in JOB:
            from mockserver.media import Assumed

            takes: tuple[str, ...] = (*JOB_PARAMS.get(self.name, ()), *Assumed.PARAMS)
        else:
            assert fault is not None
            takes = fault.accepted
        unknown = sorted(set(self.params) - set(takes))
        if unknown:  # a typo would otherwise be ignored without a word
            raise MockServerError(
                f"scenario {self.name} takes no {', '.join(k + '=' for k in unknown)}; "
                f"its parameters: {', '.join(k + '=' for k in takes) or 'none'}")
        at = self.params.get("at")
        if at is not None and not (isinstance(at, int | float) and 0 <= at <= 1):
            raise MockServerError(f"scenario {self.name}: at= must be a number in [0, 1]")
        for key in ("factor", "seconds", "after", "ms", "min_ms", "max_ms", "retry_after"):
            value = self.params.get(key)
            # Finite too: `inf` or `nan` (`1e400` parses to inf) would make a task that never
            # reaches a state, or a plan no store can write.
            if value is not None and (not isinstance(value, int | float) or value < 0
                                      or not math.isfinite(value)):
                raise MockServerError(
                    f"scenario {self.name}: {key}= must be a finite number >= 0")

        if self.name in JOB:
            from mockserver.media import scenario_problem

            problem = scenario_problem(self.params)
            if problem:
                raise MockServerError(f"scenario {self.name}: {problem}")

    @property
    def is_job(self) -> bool:
        return self.name in JOB

    @classmethod
    def parse(cls, text: str) -> Scenario:
        """`fail; kind=moderation; at=0.6` (`,` also separates parameters)."""
        parts = [p.strip() for p in text.replace(",", ";").split(";") if p.strip()]
        if not parts:
            raise MockServerError("empty scenario; e.g. 'fail; kind=moderation; at=0.6'")
        name, params = parts[0], {}
        for part in parts[1:]:
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise MockServerError(f"scenario parameter {part!r} is not key=value")
            params[key.strip()] = _value(value.strip())
        return cls(name, params)

    @classmethod
    def of(cls, value: Any) -> Scenario:
        """From a string, a mapping `{name, params}` or a Scenario."""
        if isinstance(value, Scenario):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping) and "name" in value:
            params = value.get("params") or {}
            if not isinstance(params, Mapping):
                raise MockServerError("scenario params must be a mapping")
            return cls(str(value["name"]), dict(params))
        raise MockServerError(f"not a scenario: {value!r}")

    def label(self) -> str:
        extra = "; ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}; {extra}" if extra else self.name


@dataclass(slots=True)
class RequestInfo:
    """What rules match on."""

    family: str
    operation: str
    role: str
    model: str | None = None
    api_key: str | None = None
    prompt: str | None = None


@dataclass(slots=True)
class Rule:
    """Apply `scenario` to requests matching `match`, `times` times (None: always), at `rate`."""

    id: str
    scenario: Scenario
    match: dict[str, Any] = field(default_factory=dict)
    times: int | None = None
    rate: float | None = None
    matched: int = 0
    applied: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "scenario": self.scenario.label(),
                "name": self.scenario.name, "params": dict(self.scenario.params),
                "match": dict(self.match), "times": self.times, "rate": self.rate,
                "matched": self.matched, "applied": self.applied,
                "remaining": None if self.times is None else self.times - self.applied}

    def fits(self, info: RequestInfo) -> bool:
        m = self.match
        # Job scenarios shape a submit's task; a synchronous call (wan2.2-s2v-detect) reads
        # an `inputs` scenario's facts too.
        if self.scenario.is_job and info.role not in ("submit", "sync"):
            return False
        if m.get("family") not in (None, info.family):
            return False
        if m.get("operation") not in (None, info.operation):
            return False
        if m.get("model") not in (None, info.model):
            return False
        if m.get("api_key") not in (None, info.api_key):
            return False
        prompt = m.get("prompt")
        return not (prompt is not None and (info.prompt is None or str(prompt) not in info.prompt))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ScenarioBook:
    """The rules of one fake, in order; the first rule that applies wins."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._next = 0
        self._rng = random.Random(seed if seed is not None else 0)

    def add(self, scenario: Any, *, match: Mapping[str, Any] | None = None,
            times: int | None = None, rate: float | None = None) -> Rule:
        return self._append(*self.checked(scenario, match, times, rate))

    @staticmethod
    def checked(scenario: Any, match: Any, times: Any,
                rate: Any) -> tuple[Scenario, dict[str, Any], int | None, float | None]:
        """A rule's parts, checked (MockServerError names the first wrong one)."""
        scen = Scenario.of(scenario)
        if match is not None and not isinstance(match, Mapping):
            raise MockServerError(f"match must be a mapping of {MATCH_KEYS}, not {match!r}")
        match = dict(match or {})
        unknown = set(match) - set(MATCH_KEYS)
        if unknown:
            raise MockServerError(f"unknown match key(s) {sorted(unknown)}; use {MATCH_KEYS}")
        for key, value in match.items():
            if key != "nth" and not isinstance(value, str):
                raise MockServerError(f"match {key}= must be a string, not {value!r}")
        nth = match.get("nth")
        # bool is an int in Python; `true` is not a count.
        if nth is not None and (not _is_int(nth) or nth < 1):
            raise MockServerError("match nth= must be an integer >= 1")
        if times is not None and (not _is_int(times) or times < 1):
            raise MockServerError("times must be an integer >= 1 (or omitted for always)")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                                 or not 0 <= rate <= 1):
            raise MockServerError("rate must be a number in [0, 1]")
        return scen, match, times, rate

    def _append(self, scenario: Scenario, match: dict[str, Any], times: int | None,
                rate: float | None) -> Rule:
        """Keep a checked rule (a shared store keeps it in the store instead)."""
        with self._lock:
            self._next += 1
            rule = Rule(f"r{self._next}", scenario, match, times, rate)
            self._rules.append(rule)
        return rule

    def add_many(self, items: Iterable[Mapping[str, Any]]) -> list[Rule]:
        """Add every rule, or none: all are checked before the first is kept."""
        parts = []
        for item in items:
            if not isinstance(item, Mapping):
                raise MockServerError(f"a scenario rule is a mapping, not {item!r}")
            extra = set(item) - {"scenario", "match", "times", "rate"}
            if extra:
                raise MockServerError(f"unknown rule key(s) {sorted(extra)}")
            if "scenario" not in item:
                raise MockServerError("a rule needs `scenario:`")
            parts.append(self.checked(item["scenario"], item.get("match"), item.get("times"),
                                      item.get("rate")))
        return [self._append(*part) for part in parts]

    def load(self, source: str | Path | Iterable[Mapping[str, Any]]) -> list[Rule]:
        """Rules from a YAML file (`rules:` list) or from a list of rule mappings."""
        if isinstance(source, str | Path):
            import yaml

            from mockserver import yamlio

            try:
                data = yamlio.safe_load(Path(source).read_text(encoding="utf-8"))
            except OSError as exc:
                raise MockServerError(f"cannot read scenario file {source}: {exc}") from exc
            except yaml.YAMLError as exc:
                raise MockServerError(f"scenario file {source} is not YAML: {exc}") from exc
            if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
                raise MockServerError(f"scenario file {source} needs a `rules:` list")
            return self.add_many(data["rules"])
        return self.add_many(source)

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self._rng = random.Random(self.seed if self.seed is not None else 0)

    def restart(self) -> None:
        """As a fresh book (a reset of the whole fake): no rules, and ids from `r1` again, as
        each epoch of a shared store numbers its rules."""
        self.reset()
        with self._lock:
            self._next = 0

    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def pick(self, info: RequestInfo, *, job: bool) -> Scenario | None:
        """The scenario for this request among job (or transport) rules, counting matches."""
        with self._lock:
            for rule in self._rules:
                if rule.scenario.is_job != job or not rule.fits(info):
                    continue
                rule.matched += 1
                nth = rule.match.get("nth")
                if nth is not None and rule.matched != nth:
                    continue
                if rule.times is not None and rule.applied >= rule.times:
                    continue
                if rule.rate is not None and self._rng.random() >= rule.rate:
                    continue
                rule.applied += 1
                return rule.scenario
        return None

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._rng.uniform(low, high)


class FaultRequested(Exception):
    """A limit or rule asks the family to answer with a transport fault (`throttle`, ...)."""

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)
        self.scenario = Scenario(name, dict(params or {}))


def shape_plan(task: Any, scenario: Scenario, failures: Mapping[str, FailureWords]) -> None:
    """Apply a job scenario to a new task's plan; `failures` is the family's
    `x-wanmock-failures` table (kind -> code, message, after_s)."""
    from mockserver.core.tasks import Failure

    plan = task.plan
    p = scenario.params
    name = scenario.name
    if name in ("fail", "moderation", "internal", "timeout"):
        kind = str(p.get("kind", "internal" if name == "fail" else name))
        if kind not in ("invalid_parameter", "moderation", "internal", "timeout"):
            raise MockServerError(
                "fail kind= must be invalid_parameter, moderation, internal or timeout")
        words = failures.get(kind) or FailureWords(None, None)
        code = str(p.get("code", "InternalError" if words.code is None else words.code))
        message = str(p.get("message", f"{kind} (wanmock scenario)" if words.message is None
                            else words.message))
        plan.failure = Failure(code, message, kind)
        if kind == "timeout":
            plan.run_s = float(p.get("after", 10800 if words.after_s is None else words.after_s))
            plan.fail_at = 1.0
        else:
            plan.fail_at = float(p.get("at", 0.6 if kind == "moderation" else 0.5))
            if plan.run_s <= 0:  # instant timing: give the failure a moment to happen in
                plan.run_s = 1.0
    elif name == "stuck":
        plan.queue_s = float(p.get("seconds", 10**9))
    elif name == "slow":
        factor = float(p.get("factor", 5))
        plan.queue_s *= factor
        plan.run_s *= factor
    elif name == "cancel":
        task.canceled_at = task.submitted_at + float(p.get("after", 0))
        plan.queue_s = max(plan.queue_s, float(p.get("after", 0)) + 1.0)
    elif name == "cancel-race":
        task.extra["cancel_race"] = True
    elif name == "expire":
        task.extra["expire_after"] = float(p.get("after", 0))
    task.extra["scenario"] = scenario.label()
