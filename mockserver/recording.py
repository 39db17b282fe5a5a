"""Judging and recording real traffic: the part of `wanmock proxy` that knows no transport.

`Recorder.operation()` finds the contract operation of a request by its path; `judge_request()`
and `judge_response()` list how the exchange breaks the contract (schema, catalogue rules,
parameters, listed statuses, response schemas, a state moving backwards); `record()` puts the
exchange in the journal (so `/_wanmock/journal` and the dashboard show it), in the cassette
(with the task it belongs to and the seconds since that task's submit), and in the run's
statistics (`Stats`, the proxy's exit report). The pytest plugin's record mode uses it too.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from mockserver.cassette import (
    FORM_ENCODINGS,
    CassetteWriter,
    encode_body,
    encode_form,
    redact_headers,
    redact_query,
)
from mockserver.contracts import ContractSet, Operation
from mockserver.core.journal import Journal, redact_value
from mockserver.core.tasks import ORDER, State
from mockserver.errors import ProviderError
from mockserver.families import bundled_names
from mockserver.recorded import operation_patterns, state_of, task_of_request, task_of_submit

if TYPE_CHECKING:
    from mockserver.providers.policy import FormFields

Echo = Callable[[str], None]


@dataclass
class OpStats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    origins: Counter[str] = field(default_factory=Counter)
    violations: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)


@dataclass
class Stats:
    """What a run saw, per family and operation (the exit report's numbers)."""

    ops: dict[tuple[str, str], OpStats] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def op(self, family: str | None, operation: str | None) -> OpStats:
        return self.ops.setdefault((family or "-", operation or "(unknown)"), OpStats())

    @property
    def violation_count(self) -> int:
        return sum(sum(s.violations.values()) for s in self.ops.values())


class Recorder:
    """Validates and records exchanges for the given families (default: all)."""

    def __init__(self, contracts: ContractSet, *, families: Iterable[str] | None = None,
                 writer: CassetteWriter | None = None, journal: Journal | None = None,
                 echo: Echo | None = None, now: Callable[[], float] = time.time) -> None:
        self.contracts = contracts
        self.families = tuple(families or [f for f in bundled_names() if f in contracts.contracts])
        self._patterns = [p for fam in self.families
                          for p in operation_patterns(contracts[fam].operations.values())]
        self.writer = writer
        self.journal = journal
        self.echo = echo
        self.now = now
        self.stats = Stats()
        self._lock = threading.Lock()
        self._submitted: dict[str, float] = {}  # task id -> monotonic time of its submit
        self._secrets: set[str] = set()  # keys seen on the wire: never journaled
        self._last_state: dict[str, State] = {}
        self._policies: dict[str, Any] = {}

    def secret(self, value: str | None) -> None:
        """A credential seen on the wire: removed from the journal and the cassette."""
        if value and len(value.strip()) >= 6:
            self._secrets.add(value.strip())
            if self.writer is not None:
                self.writer.secret(value)

    def use_writer(self, writer: CassetteWriter | None) -> None:
        """Record into another cassette from now on; every key seen so far stays out of it."""
        self.writer = writer
        if writer is not None:
            for secret in self._secrets:
                writer.secret(secret)

    def _scrub(self, body: bytes | None) -> bytes | None:
        if not body or not self._secrets:
            return body
        for secret in sorted(self._secrets, key=len, reverse=True):
            body = body.replace(secret.encode("utf-8", "replace"), b"[redacted]")
        return body

    def _scrubbed(self, violation: dict[str, Any]) -> dict[str, Any]:
        """A violation without any key seen on the wire (messages may quote the request)."""
        for name in ("message", "value"):
            if isinstance(violation.get(name), str):
                violation[name] = (self._scrub(violation[name].encode()) or b"").decode(
                    "utf-8", "replace")
        return violation

    def operation(self, method: str, path: str) -> Operation | None:
        for verb, regex, op in self._patterns:
            if verb == method and regex.match(path):
                return op
        return None

    # -- judging -----------------------------------------------------------------------------
    def judge_request(self, op: Operation | None, path: str, query: str,
                      headers: Mapping[str, str], raw: bytes) -> list[dict[str, Any]]:
        """How the request breaks its contract (empty: the provider should accept it)."""
        if op is None:
            return [_v("request", "", "unknown_operation", "no contract operation matches "
                       "this method and path")]
        out: list[dict[str, Any]] = []
        auth = headers.get("authorization", "")
        if not auth.strip():
            out.append(_v("request", "Authorization", "security:missing",
                          "no Authorization header"))
        params = dict(parse_qsl(query, keep_blank_values=True))
        for v in op.parameter_violations(params, headers):
            out.append({"side": "request", **v.as_dict()})
        if op.body_validator is None:
            return out
        body, _, unreadable = self.read_body(op, raw, headers)
        if unreadable is not None:
            out.append(unreadable)
            return out
        _, violations = self.policy(op.family).judge(op, body, headers)
        out.extend({"side": "request", **v.as_dict()} for v in violations)
        return out

    def policy(self, family: str) -> Any:
        """The family's policy (its reading and judgement of a body, as the fake's), with
        default options and no Backend."""
        found = self._policies.get(family)
        if found is None:
            from mockserver.providers.policy import Judging, policy_class

            found = self._policies[family] = policy_class(family)(Judging(self.contracts))
        return found

    def read_body(self, op: Operation, raw: bytes, headers: Mapping[str, str]
                  ) -> tuple[Any, FormFields | None, dict[str, Any] | None]:
        """A request body read as the family reads it (JSON, a form, multipart): the value its
        judge takes, a form's fields, or the violation of a body it cannot read."""
        try:
            body, form = self.policy(op.family).read_request_body(op, raw, headers)
        except ProviderError as err:
            found = err.violation
            if found is None:
                return None, None, _v("request", "", "body:unreadable", err.message, err.status)
            return None, None, {"side": "request", **found.as_dict()}
        return body, form, None

    def judge_response(self, op: Operation | None, status: int, content_type: str,
                       body: Any, encoding: str, task: str | None) -> list[dict[str, Any]]:
        """How the answer breaks the contract: an unlisted status, a body the response schema
        rejects, or a task state that moved backwards."""
        if op is None:
            return []
        listed = {str(s) for s in op.raw.get("responses", {})}
        if str(status) not in listed and "default" not in listed:
            return [_v("response", "", "status", f"status {status} is not in the contract "
                       f"({', '.join(sorted(listed))})", status)]
        validator = op.response_validators.get(str(status))
        if validator is None or encoding not in ("json", "text") or "json" not in content_type:
            return []
        if encoding != "json":
            return [_v("response", "", "body:not_json", "the body is not JSON", status)]
        out = []
        for err in validator.iter_errors(body):
            where = ".".join(str(p) for p in err.absolute_path)
            out.append(_v("response", where, f"schema:{err.validator}",
                          f"at {where or '(root)'}: {err.message}", status))
        if task is not None and op.role in ("query", "submit"):
            state, word = state_of(op.family, body)
            with self._lock:
                before = self._last_state.get(task)
                if state is not None:
                    self._last_state[task] = state
            if state is not None and before is not None and ORDER[state] < ORDER[before]:
                out.append(_v("response", "", "lifecycle:backwards",
                              f"task {task} went from {before.value} back to {state.value} "
                              f"({word})", status))
        return out

    # -- recording ---------------------------------------------------------------------------
    def task_for(self, op: Operation | None, path: str, query: str) -> str | None:
        """The task a (non-submit) request is about, if any."""
        if op is None or op.role == "submit":
            return None
        return task_of_request(op, path, dict(parse_qsl(query, keep_blank_values=True)))

    def record(self, *, method: str, path: str, query: str, headers: Iterable[tuple[str, str]],
               raw: bytes | None, status: int, response_headers: Iterable[tuple[str, str]],
               response_raw: bytes | None, op: Operation | None, started: float,
               violations: list[dict[str, Any]], origin: str = "upstream",
               response_size: int | None = None) -> dict[str, Any]:
        """Judge the answer and record the whole exchange; returns the cassette's fields.

        `started` is the monotonic time (the proxy's clock) at which the request was sent;
        `violations` are the request's (from `judge_request`); the response's are added here."""
        headers = list(headers)
        response_headers = list(response_headers)
        for name, value in headers:
            if name.lower() in ("authorization", "x-api-key", "api-key"):
                scheme, _, key = value.partition(" ")
                self.secret(key if scheme.lower() == "bearer" else value)
        req_type = _header(headers, "content-type")
        resp_type = _header(response_headers, "content-type")
        request = encode_body(raw, req_type)
        if op is not None and raw and req_type and "json" not in req_type.lower():
            # A form or multipart body: its fields and file digests, as the family reads it.
            _, form, _ = self.read_body(op, raw, {"content-type": req_type})
            if form is not None:
                request = encode_form(form.kind, form.values, form.files)
        response = encode_body(response_raw, resp_type)
        if response_raw is None and response_size is not None:
            response = {"body": None, "encoding": "omitted", "size": response_size}
        task = self.task_for(op, path, query)
        if op is not None and op.role == "submit":
            task = task_of_submit(op, status, response["body"])
            if task is not None:
                with self._lock:
                    self._submitted.setdefault(task, started)
        since = None
        if task is not None:
            with self._lock:
                submitted = self._submitted.get(task)
            if submitted is not None:
                since = round(max(0.0, started - submitted), 6)
        found = self.judge_response(op, status, resp_type, response["body"],
                                    response["encoding"], task)
        violations = [*violations, *found]
        family = op.family if op else None
        operation = op.operation_id if op else None
        data: dict[str, Any] = {
            "time": self.writer.since_start(started) if self.writer else round(started, 6),
            "family": family, "operation": operation, "role": op.role if op else None,
            "task": task, "since_submit": since, "origin": origin,
            "request": {"method": method, "path": path, "query": redact_query(query),
                        "headers": redact_headers(headers), **request},
            "response": {"status": status, "headers": redact_headers(response_headers),
                         **response},
            "violations": [self._scrubbed(_redacted(v)) for v in violations],
        }
        if self.writer is not None:
            data["seq"] = self.writer.write(**data)
        self._journal(data, headers, raw, response_raw)
        stats = self.stats.op(family, operation)
        with self._lock:
            stats.requests += 1
            stats.statuses[status] += 1
            stats.origins[origin] += 1
            for v in data["violations"]:
                stats.violations[(v.get("side", ""), v.get("rule", ""), v.get("field", ""),
                                  v.get("message", ""))] += 1
        if self.echo is not None:
            for v in data["violations"]:
                line = (f"wanmock proxy: {family or '-'}.{operation or method + ' ' + path} "
                        f"{v.get('side')} violation [{v.get('rule')}] "
                        f"{v.get('field') or ''} {v.get('message', '')} (status {status})")
                self.echo((self._scrub(line.encode()) or b"").decode("utf-8", "replace"))
        return data

    def _journal(self, data: dict[str, Any], headers: list[tuple[str, str]],
                 raw: bytes | None, response_raw: bytes | None) -> None:
        if self.journal is None:
            return
        req = data["request"]
        # The cassette's redaction (key-like fields, URL signatures) plus the keys seen.
        body = _redacted_bytes(req, raw)
        entry = self.journal.record(time=self.now(), method=req["method"], path=req["path"],
                                    query=req["query"], headers=headers, body=self._scrub(body),
                                    family=data["family"], operation=data["operation"])
        entry.task_id = data["task"]
        entry.violations = [dict(v) for v in data["violations"]]
        entry.scenario = f"proxy:{data['origin']}"
        self.journal.complete(entry, data["response"]["status"],
                              self._scrub(_redacted_bytes(data["response"], response_raw)))


def _redacted_bytes(part: Mapping[str, Any], raw: bytes | None) -> bytes | None:
    """A body as the cassette redacted it, as bytes for the journal (binary stays as it was)."""
    if part.get("encoding") in ("json", *FORM_ENCODINGS):
        return json.dumps(part.get("body"), ensure_ascii=False).encode()
    if part.get("encoding") == "text":
        return str(part.get("body")).encode()
    return raw


def _header(headers: Iterable[tuple[str, str]], name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""


def _v(side: str, where: str, rule: str, message: str, status: int = 0) -> dict[str, Any]:
    return {"side": side, "field": where, "rule": rule, "status": status, "code": "",
            "message": message}


def _redacted(violation: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(violation)
    if isinstance(out.get("message"), str):
        out["message"] = redact_value(out["message"])
    value = out.get("value")
    if isinstance(value, str):
        out["value"] = redact_value(value)
    elif value is not None and not isinstance(value, int | float | bool):
        out["value"] = redact_value(json.dumps(value, ensure_ascii=False, default=str))[:200]
    return out
