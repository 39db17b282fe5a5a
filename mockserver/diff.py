"""`wanmock diff`: what the fake answers to recorded requests, against what the provider did.

Every recorded request (`origin: upstream`) is sent, in recorded order, to a fake in process
(`create_app` through httpx's ASGITransport) whose manual clock is moved to the request's
recorded `time`; a recorded task's fake twin follows the recorded plan, so both are in the same
state when polled and their bodies can be compared field by field. Compared: status code,
envelope (top-level keys) and field set, JSON types, words (status words, codes: every string
that is not an id, timestamp, URL, message or other value that always differs, which are
compared by type only), error codes, each task's state sequence, and its queue and run times
against the fake's timing profile. `mockserver.diff_report` words the result.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from mockserver.cassette import FORM_ENCODINGS, HOP_BY_HOP, Cassette, Exchange
from mockserver.contracts import ContractSet, load
from mockserver.core import faults
from mockserver.core.tasks import ORDER, State, Task, plan_range
from mockserver.recorded import error_code, state_of, task_of_submit
from mockserver.replay import RecordedLifecycle, ReplayBook

KINDS = ("status", "envelope", "field-missing", "field-extra", "type", "word", "error-code",
         "state-sequence", "timing")
# Keys whose values always differ between two runs: compared by type only.
VOLATILE = re.compile(r"(?i)(^id$|_id$|^request_id$|time$|_at$|_ms$|^created|url$|expires|"
                      r"^message$|^msg$|fail_reason|^eta$|progress|seed|ttl$|^reason$|^logs$)")
_URL = re.compile(r"^https?://")


@dataclass
class Drift:
    """One difference between the recorded answer and the fake's."""

    family: str
    operation: str
    kind: str
    where: str
    recorded: Any
    fake: Any
    line: int | None = None
    task: str | None = None


@dataclass
class DiffResult:
    cassette: str
    timing: str
    drifts: list[Drift] = field(default_factory=list)
    exchanges: int = 0
    tasks: int = 0
    checked: dict[tuple[str, str], int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drifts


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) for every leaf and container; list items share the path `name[]`."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, item
            yield from leaves(item, path)
    elif isinstance(value, list):
        for item in value:
            yield f"{prefix}[]", item
            yield from leaves(item, f"{prefix}[]")


def _volatile(path: str, value: Any) -> bool:
    key = path.rsplit(".", 1)[-1].rstrip("[]")
    return bool(VOLATILE.search(key)) or (isinstance(value, str) and bool(_URL.match(value)))


def compare(ex: Exchange, status: int, fake: Any, fake_encoding: str) -> list[Drift]:
    """The differences between one recorded answer and the fake's."""
    fam, op = ex.family or "-", ex.operation or "-"

    def drift(kind: str, where: str, recorded: Any, got: Any) -> Drift:
        return Drift(fam, op, kind, where, recorded, got, ex.line, ex.task)

    out = []
    if ex.status != status:
        out.append(drift("status", "(status)", ex.status, status))
    if ex.response_encoding != "json" or fake_encoding != "json":
        if ex.response_encoding != fake_encoding and "omitted" not in (ex.response_encoding,
                                                                        fake_encoding):
            out.append(drift("type", "(body)", ex.response_encoding, fake_encoding))
        return out
    recorded = ex.response_body
    if isinstance(recorded, dict) and isinstance(fake, dict) and set(recorded) != set(fake):
        out.append(drift("envelope", "(top level)", sorted(recorded), sorted(fake)))
        if status >= 400 or ex.status >= 400:
            return out  # another envelope: its fields cannot be compared one by one
    error = status >= 400 or ex.status >= 400
    if error:
        if error_code(recorded) != error_code(fake):
            out.append(drift("error-code", "(code)", error_code(recorded), error_code(fake)))
    mine = dict(leaves(recorded))
    theirs = dict(leaves(fake))
    top = isinstance(recorded, dict) and isinstance(fake, dict)
    for path in sorted(set(mine) - set(theirs)):
        if not (top and "." not in path and "[" not in path):  # top level: the envelope
            if _parent_present(path, theirs):
                out.append(drift("field-missing", path, mine[path], None))
    for path in sorted(set(theirs) - set(mine)):
        if not (top and "." not in path and "[" not in path) and _parent_present(path, mine):
            out.append(drift("field-extra", path, None, theirs[path]))
    for path in sorted(set(mine) & set(theirs)):
        a, b = mine[path], theirs[path]
        if _kind(a) != _kind(b):
            out.append(drift("type", path, _kind(a), _kind(b)))
        elif (isinstance(a, str | bool | int | float) and a != b and not _volatile(path, a)
              and not (error and path.endswith("code"))):
            out.append(drift("word", path, a, b))
    return out


def _parent_present(path: str, other: dict[str, Any]) -> bool:
    """Report a field only where its parent exists on the other side (no cascade)."""
    parent = path.rsplit(".", 1)[0] if "." in path else ""
    parent = parent[:-2] if parent.endswith("[]") else parent
    return not parent or parent in other


def _timing(lc: RecordedLifecycle, task: Task, timing: str) -> list[Drift]:
    """Recorded queue and run times (as bracketed by the polls) against the profile."""
    if lc.queue_bounds is None:
        return []
    (q_min, q_max), (r_min, r_max) = plan_range(task.spec, timing)
    fam, op = lc.family or "-", lc.operation or "-"
    out = []

    def outside(lo: float, hi: float, want_lo: float, want_hi: float) -> bool:
        slack = 0.25 + 0.1 * max(want_hi, hi)
        return hi < want_lo - slack or lo > want_hi + slack

    q_lo, q_hi = lc.queue_bounds
    if outside(q_lo, q_hi, q_min, q_max):
        out.append(Drift(fam, op, "timing", "queue_s", f"{q_lo:g}-{q_hi:g} s",
                         f"{q_min:g}-{q_max:g} s ({timing})", lc.submit.line, lc.task))
    if lc.end_bounds is not None and lc.final is State.SUCCEEDED:  # a failure ends early
        e_lo, e_hi = lc.end_bounds
        run_lo, run_hi = max(0.0, e_lo - q_hi), e_hi - q_lo
        if outside(run_lo, run_hi, r_min, r_max):
            out.append(Drift(fam, op, "timing", "run_s", f"{run_lo:g}-{run_hi:g} s",
                             f"{r_min:g}-{r_max:g} s ({timing})", lc.submit.line, lc.task))
    return out


def _sequence(lc: RecordedLifecycle, fake_states: list[State]) -> list[Drift]:
    recorded = lc.states
    words = [o.word for o in lc.observations if o.word is not None]
    backwards = any(ORDER[b] < ORDER[a] for a, b in zip(recorded, recorded[1:], strict=False))
    fake_seq = [s for i, s in enumerate(fake_states) if i == 0 or fake_states[i - 1] is not s]
    if backwards or recorded != fake_seq:
        shown: list[str] = []
        for word in words:
            if not shown or shown[-1] != word:
                shown.append(word)
        return [Drift(lc.family or "-", lc.operation or "-", "state-sequence", "(task)",
                      " -> ".join(shown), " -> ".join(s.value for s in fake_seq),
                      lc.submit.line, lc.task)]
    return []


def _request(ex: Exchange, ids: dict[str, str]) -> tuple[str, str, list[tuple[str, str]], bytes]:
    path, query = ex.path, ex.query
    body: Any = ex.request_body
    for old, new in ids.items():
        path = path.replace(old, new)
        query = query.replace(old, new)
    if ex.request_encoding == "json":
        text = json.dumps(body, ensure_ascii=False)
        for old, new in ids.items():
            text = text.replace(old, new)
        content = text.encode()
    elif ex.request_encoding in FORM_ENCODINGS and isinstance(body, dict):
        return path, query, *_form_request(ex, body)
    elif ex.request_encoding == "text":
        content = str(body).encode()
    else:
        content = b""
    headers = [(k, v) for k, v in ex.request_headers.items()
               if k not in HOP_BY_HOP and k != "accept-encoding"]
    return path, query, headers, content


SCENARIO = "x-wanmock-scenario"


def _fault(contracts: ContractSet, ex: Exchange) -> str | None:
    """The fake's name for a transport fault the provider answered (a 429, a 5xx), matched on
    the family's `x-wanmock-faults` by status and code (worded kinds of the fault registry;
    a 5xx the contract answers to a client's request, new-api's 503 for a model without a
    channel, is no fault):
    the fake never throttles or fails on its own, so it is asked for the same fault and its
    envelope and code are compared."""
    if ex.status < 429 or ex.family is None or ex.response_encoding != "json":
        return None
    worded = contracts[ex.family].extensions.faults
    names = {kind.contract_key: kind.name for kind in faults.KINDS.values()
             if kind.act is None and kind.contract_key in worded}
    code = error_code(ex.response_body)
    for key, name in names.items():  # status and code: a 503 for an unknown model is no fault
        fault = worded[key].for_role(ex.role)
        if fault.status == ex.status and fault.code == code:
            return name
    return None


def _form_request(ex: Exchange, body: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes]:
    """A recorded form sent again: its fields (a repeated key as a list), each file as bytes of
    its recorded size and type (the cassette keeps only their digests), newly encoded."""
    fields = [(str(k), str(item)) for k, v in (body.get("form") or {}).items()
              for item in (v if isinstance(v, list) else [v])]
    headers = [(k, v) for k, v in ex.request_headers.items()
               if k not in HOP_BY_HOP and k not in ("accept-encoding", "content-type")]
    if ex.request_encoding == "form":
        return ([*headers, ("content-type", "application/x-www-form-urlencoded")],
                urlencode(fields).encode())
    boundary = secrets.token_hex(16)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
             .encode() + v.encode() + b"\r\n" for k, v in fields]
    for f in body.get("files") or []:
        if isinstance(f, dict):
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{f.get("name")}"; '
                    f'filename="{f.get("filename")}"\r\nContent-Type: '
                    f'{f.get("content_type") or "application/octet-stream"}\r\n\r\n')
            parts.append(head.encode() + b"\0" * int(f.get("size") or 0) + b"\r\n")
    content = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return [*headers, ("content-type", f"multipart/form-data; boundary={boundary}")], content


async def _run(tape: Cassette, timing: str, contracts: ContractSet) -> DiffResult:
    from mockserver.app import create_app

    result = DiffResult(str(tape.path), timing, problems=[str(p) for p in tape.problems])
    families = tape.families or None
    app = create_app(families, clock="manual", timing=timing, seed=0, mode="time",
                     webhooks="record", contracts=contracts)
    backend = app.state.backend
    book = ReplayBook(tape)  # only for the recorded plans: answers stay the fake's own
    jobs = {job.task: i for i, job in enumerate(book.jobs)}
    start = backend.clock.now()
    ids: dict[str, str] = {}
    seen: dict[str, list[State]] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wanmock.diff") as client:
        for ex in sorted(tape.exchanges, key=lambda e: (e.time, e.seq)):
            if ex.origin != "upstream" or ex.operation is None:
                why = "no contract operation" if ex.operation is None else ex.origin
                result.skipped.append(f"line {ex.line}: {ex.method} {ex.path} ({why})")
                continue
            if ex.request_encoding == "omitted":
                result.skipped.append(f"line {ex.line}: request body not recorded")
                continue
            if ex.role != "submit" and ex.task in jobs and ex.task not in ids:
                result.skipped.append(f"line {ex.line}: the fake did not accept its task's "
                                      "submit")
                continue
            now = backend.clock.now()
            if start + ex.time > now:
                backend.clock.advance(start + ex.time - now)
            path, query, headers, content = _request(ex, ids)
            fault = _fault(contracts, ex)
            if fault is not None and not any(k == SCENARIO for k, _ in headers):
                headers.append((SCENARIO, fault))  # the fake's answer to the same fault
            answer = await client.request(ex.method, path + (f"?{query}" if query else ""),
                                          headers=headers, content=content)
            fake, encoding = _body(answer)
            op = contracts[ex.family or ""].operation(ex.operation)
            if ex.role == "submit" and ex.task is not None:
                fake_id = task_of_submit(op, answer.status_code, fake)
                task = backend.store.find(op.family, fake_id) if fake_id else None
                if task is not None and fake_id is not None:
                    ids[ex.task] = fake_id
                    if ex.task in jobs:
                        book.apply(jobs[ex.task], task)
            state, _ = state_of(ex.family, fake)
            if ex.task is not None and state is not None and ex.role in ("submit", "query"):
                seen.setdefault(ex.task, []).append(state)
            result.exchanges += 1
            key = (ex.family or "-", ex.operation)
            result.checked[key] = result.checked.get(key, 0) + 1
            result.drifts.extend(compare(ex, answer.status_code, fake, encoding))
    for job in book.jobs:
        fake_id = ids.get(job.task)
        task = backend.store.find(job.family or "", fake_id) if fake_id else None
        if task is None:
            continue
        result.tasks += 1
        result.drifts.extend(_sequence(job, seen.get(job.task, [])))
        result.drifts.extend(_timing(job, task, timing))
    return result


def _body(answer: httpx.Response) -> tuple[Any, str]:
    if not answer.content:
        return None, "empty"
    if "json" in answer.headers.get("content-type", ""):
        try:
            return answer.json(), "json"
        except ValueError:
            return answer.text, "text"
    if answer.headers.get("content-type", "").startswith("text/"):
        return answer.text, "text"
    return None, "omitted"


def diff(tape: Cassette, *, timing: str = "realistic",
         contracts: ContractSet | None = None) -> DiffResult:
    """Compare a cassette with the fake (see the module docstring)."""
    return asyncio.run(_run(tape, timing, contracts or load()))
