"""Tasks, journal entries, webhooks and rules as JSON records for the shared stores."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import orjson

from mockserver.catalogue import JobSpec
from mockserver.core.journal import Entry
from mockserver.core.scenarios import Rule, Scenario
from mockserver.core.tasks import Failure, Packed, Plan, State, Task
from mockserver.core.webhooks import RetryPolicy, Webhook

_SPEC_FIELDS = [f.name for f in fields(JobSpec)]
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(value: Any) -> str:
    return _dumps(value)


def dumps_hot(value: Any) -> str:
    """`dumps` for the records written per request (tasks, journal entries): orjson, else the
    standard encoder for what orjson refuses (integers past 64 bits, lone surrogates). Both
    read back equal with `json.loads` (records are always read with it: orjson would read a
    large integer as a float). orjson would write NaN as null; none reaches these records
    (the fake refuses NaN in a body, and its own numbers are finite)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _dumps(value)


def _failure(data: Any) -> Failure | None:
    return None if data is None else Failure(data[0], data[1], data[2])


def encode_failure(failure: Failure | None) -> str | None:
    return None if failure is None else dumps([failure.code, failure.message, failure.kind])


def decode_failure(text: str | bytes | None) -> Failure | None:
    return None if not text else _failure(json.loads(text))


def encode_task(task: Task) -> str:
    """The write-once part of a task (its mutable fields live beside it in the store)."""
    packed = task._request
    raw = type(packed) is Packed
    plan = task.plan
    return dumps_hot({
        "id": task.id, "family": task.family, "operation": task.operation,
        "spec": [getattr(task.spec, name) for name in _SPEC_FIELDS],
        "at": task.submitted_at,
        "plan": [plan.queue_s, plan.run_s, plan.fail_at,
                 None if plan.failure is None else [plan.failure.code, plan.failure.message,
                                                    plan.failure.kind]],
        "raw": packed.data.decode("utf-8", "surrogatepass") if raw else None,
        "request": None if raw else packed,
        "key": task.api_key, "canceled_at": task.canceled_at, "extra": task.extra,
    })


def decode_task(text: str | bytes) -> Task:
    data = json.loads(text)
    queue_s, run_s, fail_at, failure = data["plan"]
    task = Task(
        id=data["id"], family=data["family"], operation=data["operation"],
        spec=JobSpec(*data["spec"]), submitted_at=data["at"],
        plan=Plan(queue_s, run_s, _failure(failure), fail_at),
        api_key=data["key"], canceled_at=data["canceled_at"], extra=data["extra"],
    )
    if data["raw"] is not None:
        task._request = Packed(data["raw"].encode("utf-8", "surrogatepass"))
    else:
        task.request = data["request"]  # type: ignore[attr-defined]
    return task


def apply_fields(task: Task, row: Any, extra_polls: int = 0) -> Task:
    """Copy a task's mutable fields from a store row (rec, polls, canceled_at, forced,
    forced_at, failure) onto the task object."""
    _, polls, canceled, forced, forced_at, failure = row
    task.polls = int(polls or 0) + extra_polls
    if canceled not in (None, b"", ""):
        task.canceled_at = float(canceled)
    if forced not in (None, b"", ""):
        task.forced = State(forced.decode() if isinstance(forced, bytes) else forced)
        task.forced_at = float(forced_at) if forced_at not in (None, b"", "") else None
    else:
        task.forced = task.forced_at = None
    if failure not in (None, b"", "") and task.plan.failure is None:
        task.plan.failure = decode_failure(failure)
    return task


def encode_entry(entry: Entry) -> str:
    return dumps_hot([entry.time, entry.family, entry.operation, entry.method, entry.path,
                  entry.query, entry.request_headers, entry.request_body, entry.status,
                  entry.response_body, entry.task_id, entry.violations, entry.scenario,
                  entry.truncated])


def decode_entry(seq: int, text: str | bytes) -> Entry:
    (time, family, operation, method, path, query, headers, body, status, response, task_id,
     violations, scenario, truncated) = json.loads(text)
    return Entry(seq, time, family, operation, method, path, query, headers, body, status,
                 response, task_id, violations, scenario, truncated)


HOOK_FIELDS = ("seq", "family", "task_id", "url", "scheduled_at", "due_at", "body", "sent_at",
               "status", "error", "held", "attempts", "next_attempt_at", "done")


def encode_hook(hook: Webhook, **extra: Any) -> str:
    """A webhook with its delivery attempts and retry policy (plain data, see webhooks.py)."""
    data = {name: getattr(hook, name) for name in HOOK_FIELDS}
    data["policy"] = [hook.policy.timeout_s, list(hook.policy.intervals)]
    data.update(extra)
    return dumps(data)


def decode_hook(text: str | bytes) -> tuple[Webhook, dict[str, Any]]:
    data = json.loads(text)
    hook = Webhook(**{name: data[name] for name in HOOK_FIELDS if name in data})
    hook.held = bool(data.get("held"))
    hook.done = bool(data.get("done"))
    hook.attempts = list(data.get("attempts") or [])
    timeout, intervals = data.get("policy") or (10.0, [])
    hook.policy = RetryPolicy(float(timeout), tuple(float(i) for i in intervals))
    return hook, data


def encode_rule(rule: Rule) -> str:
    return dumps({"id": rule.id, "name": rule.scenario.name, "params": dict(rule.scenario.params),
                  "match": rule.match, "times": rule.times, "rate": rule.rate})


def decode_rule(text: str | bytes, matched: Any = 0, applied: Any = 0) -> Rule:
    data = json.loads(text)
    return Rule(data["id"], Scenario(data["name"], data["params"]), data["match"],
                data["times"], data["rate"], int(matched or 0), int(applied or 0))
