"""wanmock's own Schemathesis checks, registered beside the built-in ones.

Each check reads as a claim about a provider and only speaks about operations of a wanmock
contract (`x-wanmock-family`), so registering them never affects other schemas:

- `lifecycle_moves_forward`: a task's state only moves forward along the family's lifecycle and
  its progress never decreases;
- `video_url_iff_succeeded`: the result URL is present exactly when the task succeeded, and it
  downloads as an MP4;
- `error_uses_family_envelope`: every error body is the family's own envelope;
- `rejection_carries_provider_code`: a request the contract rejects at submit is answered with
  the provider's status and code;
- `valid_submission_accepted`: a submission the contract (schema and catalogue) accepts gets 2xx.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import schemathesis
from schemathesis.core.failures import Failure

from mockserver.contracts import Contract, ContractSet, load
from mockserver.contracts.extensions import family_of
from mockserver.errors import Violation
from mockserver.families import RANK as PROVIDER_RANK
from mockserver.families import families
from mockserver.providers.policy import Judging, policy_class

# Neutral order of states; a task may only move to an equal or higher rank. Each family's
# words and where its answers carry them come from its family.py (mockserver.providers).
RANK = PROVIDER_RANK


class WanmockCheckFailure(Failure):
    """A response that breaks a provider's contract as wanmock reads it. Schemathesis keys
    failures by their class's `code`; `failure_class(code)` gives each wanmock code its own
    subclass, so reports name it (`lifecycle_backwards`, `rejection_code`...)."""

    def __init__(self, *, operation: str, title: str, message: str) -> None:
        self.operation = operation
        self.title = title
        self.message = message
        self.case_id = None
        self.severity = None  # type: ignore[assignment]

    @property
    def _unique_key(self) -> str:
        return f"{self.code}:{self.message[:200]}"


@dataclass(slots=True)
class TaskView:
    """What a query response says about a task."""

    task_id: str | None
    state: str | None
    progress: int | None
    video_url: str | None


def read_task(family: str, operation_id: str, body: Any, task_id: str | None) -> TaskView | None:
    """Reduce a query response to (id, neutral state, progress, video URL), or None when it
    carries no status (the family's `FamilySpec` says where each one is)."""
    found = families().get(family)
    if found is None or not isinstance(body, Mapping):
        return None
    state, word = found.status(body, operation_id)
    if word is None:
        return None
    return TaskView(found.task_id(body) or task_id, state, found.progress(body),
                    found.video_url(body))


# -- context shared by the checks ----------------------------------------------------------------

class _State:
    """Per-process check state: contracts, task history, a way to download result URLs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.history: dict[tuple[str, str], tuple[int, int, str]] = {}
        self.downloaded: dict[str, bool] = {}
        self.contracts: ContractSet | None = None
        self.fetch: Callable[[str], tuple[int, bytes, str]] | None = None
        self.judges: dict[str, Any] = {}

    def reset(self, contracts: ContractSet | None = None,
              fetch: Callable[[str], tuple[int, bytes, str]] | None = None) -> None:
        with self.lock:
            self.history.clear()
            self.downloaded.clear()
            self.contracts = contracts
            self.fetch = fetch
            self.judges.clear()


STATE = _State()


def _family(case: Any) -> str | None:
    raw = getattr(case.operation.schema, "raw_schema", None)
    if isinstance(raw, Mapping):
        return family_of(raw)
    return None


def _contracts(family: str) -> ContractSet:
    """The contracts the last run checked against, when they have `family` (a run against a
    plugin family's directory leaves no trace on later judgements of the bundled ones)."""
    contracts = STATE.contracts
    return contracts if contracts is not None and family in contracts.contracts else load()


def _contract(family: str) -> Contract:
    return _contracts(family)[family]


def judge(family: str, operation_id: str, body: Any,
          headers: dict[str, str] | None = None) -> list[Violation]:
    """Every violation the provider reports for this body, as the fake's family judges it (the
    contract plus the family's own gateway steps, e.g. new-api's request building); with
    `headers` (lower-case names), also the rules that read them (DashScope's `oss://` inputs)."""
    with STATE.lock:
        policy = STATE.judges.get(family)
        if policy is None:  # the family's policy (no Backend, no Starlette), default options
            context = Judging(_contracts(family))
            policy = STATE.judges[family] = policy_class(family)(context)
    op = policy.contract.operation(operation_id)
    _, violations = policy.judge(op, body, headers)
    return list(violations)


def _same_method(case: Any, op: Any) -> bool:
    return str(case.method).upper() == op.method


def _operation_id(case: Any) -> str:
    definition = case.operation.definition
    raw = getattr(definition, "raw", definition)
    return str(raw.get("operationId", case.operation.label))


def _json(response: Any) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, TypeError):
        return None


_FAILURE_CLASSES: dict[str, type[WanmockCheckFailure]] = {}


def failure_class(code: str) -> type[WanmockCheckFailure]:
    """The `WanmockCheckFailure` subclass whose `code` is `code` (one per code)."""
    cls = _FAILURE_CLASSES.get(code)
    if cls is None:
        cls = _FAILURE_CLASSES[code] = type(
            f"WanmockCheckFailure_{code}", (WanmockCheckFailure,), {"code": code})
    return cls


def _fail(case: Any, code: str, title: str, message: str) -> None:
    raise failure_class(code)(operation=case.operation.label, title=title, message=message)


def _task_id_param(case: Any) -> str | None:
    """The task a case names, as the request pipeline finds it: the last path parameter,
    else `?task_id=`."""
    params = case.path_parameters
    if isinstance(params, Mapping) and params:
        last = list(params.values())[-1]
        return str(last) if isinstance(last, str) else None
    query = case.query
    if isinstance(query, Mapping) and isinstance(query.get("task_id"), str):
        return str(query["task_id"])
    return None


def _query_view(case: Any, response: Any) -> tuple[str, TaskView] | None:
    """(family, task view) for a 200 answer to a wanmock query operation, else None."""
    family = _family(case)
    if family is None or response.status_code != 200:
        return None
    op_id = _operation_id(case)
    op = _contract(family).operations.get(op_id)
    if op is None or op.role != "query" or not _same_method(case, op):
        return None
    view = read_task(family, op_id, _json(response), _task_id_param(case))
    if view is None or view.state is None:
        return None
    return family, view


@schemathesis.check
def lifecycle_moves_forward(ctx: Any, response: Any, case: Any) -> bool | None:
    """A task's state never moves backwards, and its progress never decreases."""
    found = _query_view(case, response)
    if found is None:
        return None
    family, view = found
    state = view.state
    if view.task_id is None or state is None:
        return None
    key = (family, str(view.task_id))
    rank = RANK[state]
    progress = view.progress if view.progress is not None else -1
    with STATE.lock:
        previous = STATE.history.get(key)
        if previous is None or (rank, progress) >= previous[:2]:
            STATE.history[key] = (rank, max(progress, previous[1] if previous and rank ==
                                            previous[0] else progress), state)
            return True
    was_rank, was_progress, was_state = previous
    if rank < was_rank:
        _fail(case, "lifecycle_backwards", "Task state moved backwards",
              f"task {view.task_id}: {was_state} then {state}")
    if rank == was_rank and progress < was_progress and state == "running":
        _fail(case, "progress_decreased", "Task progress decreased",
              f"task {view.task_id}: progress {was_progress} then {progress}")
    return True


@schemathesis.check
def video_url_iff_succeeded(ctx: Any, response: Any, case: Any) -> bool | None:
    """The result URL is present exactly when the task succeeded, and it downloads as an MP4."""
    found = _query_view(case, response)
    if found is None:
        return None
    family, view = found
    carriers = families()[family].video_url_operations
    if carriers and _operation_id(case) not in carriers:
        return True  # this answer never carries the result URL (the family's result does)
    if view.state == "succeeded" and not view.video_url:
        _fail(case, "video_url_missing", "Succeeded task without a video URL",
              f"task {view.task_id} is succeeded but its response has no video URL")
    if view.state != "succeeded" and view.video_url:
        _fail(case, "video_url_early", "Video URL on an unfinished task",
              f"task {view.task_id} is {view.state} but shows {view.video_url}")
    if view.video_url and STATE.fetch is not None:
        url = str(view.video_url)
        with STATE.lock:
            known = STATE.downloaded.get(url)
        if known is None:
            status, head, ctype = STATE.fetch(url)
            known = status == 200 and head[4:8] == b"ftyp"
            with STATE.lock:
                STATE.downloaded[url] = known
            if not known:
                _fail(case, "video_download", "Video URL does not download",
                      f"GET {url} -> {status} {ctype}, not an MP4")
    return True


def _envelope_keys(template: Any) -> set[str]:
    return set(template) if isinstance(template, Mapping) else set()


@schemathesis.check
def error_uses_family_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error response is a JSON body in one of the family's error envelopes."""
    family = _family(case)
    if family is None or response.status_code < 400:
        return None
    contract = _contract(family)
    op = contract.operations.get(_operation_id(case))
    templates = list(contract.envelopes.values())
    if op is not None and op.envelope:
        templates.append(op.envelope)
    body = _json(response)
    if not isinstance(body, Mapping):
        _fail(case, "error_not_json", "Error body is not a JSON object",
              f"{response.status_code} with body {response.content[:120]!r}")
    shapes = [_envelope_keys(t) for t in templates if _envelope_keys(t)]
    if not any(shape <= set(body) for shape in shapes):
        _fail(case, "wrong_error_envelope", "Error body is not in the family's envelope",
              f"{response.status_code} body keys {sorted(body)}; expected one of "
              f"{[sorted(s) for s in shapes]}")
    return True


def _error_code(contract: Contract, body: Mapping[str, Any]) -> Any:
    """The provider code in an error body, found where the envelope template puts `{code}`."""
    for template in contract.envelopes.values():
        path = _find(template, "{code}")
        if path is not None:
            node: Any = body
            for part in path:
                node = node.get(part) if isinstance(node, Mapping) else None
            if node not in (None, ""):
                return node
    return None


def _find(template: Any, marker: str, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    if template == marker:
        return path
    if isinstance(template, Mapping):
        for key, value in template.items():
            found = _find(value, marker, (*path, key))
            if found is not None:
                return found
    return None


def _accepted_headers(case: Any, family: str) -> bool:
    """Authenticated, and no header or query parameter the contract forbids."""
    headers = {k.lower(): str(v) for k, v in (case.headers or {}).items()}
    auth = headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        return False
    op = _contract(family).operations.get(_operation_id(case))
    if op is None:
        return False
    query = {k: str(v) for k, v in (case.query or {}).items()}
    return not op.parameter_violations(query, headers)


def _body(case: Any) -> Any:
    """The JSON body of a case, or None when it has none or is sent as another media type."""
    body = case.body
    if type(body).__name__ == "NotSet":
        return None
    media = str(getattr(case, "media_type", None) or "application/json")
    headers = {k.lower(): str(v) for k, v in (case.headers or {}).items()}
    if "json" not in media or "json" not in headers.get("content-type", "application/json"):
        return None
    return body


def _judged_submission(case: Any) -> tuple[Contract, list[Violation]] | None:
    """For an authenticated JSON submission with acceptable headers: its family's contract and
    the violations the provider reports at submit (as the fake's family judges them)."""
    family = _family(case)
    if family is None:
        return None
    contract = _contract(family)
    op = contract.operations.get(_operation_id(case))
    if (op is None or op.role != "submit" or not _same_method(case, op)
            or not _accepted_headers(case, family)):
        return None
    if "{" in op.path:  # a submit that names a task (new-api's remix): its answer depends on
        return None     # a task the body cannot say exists
    body = _body(case)
    if body is None or isinstance(body, (bytes, str)):
        return None
    headers = {k.lower(): str(v) for k, v in (case.headers or {}).items()}
    submit = [v for v in judge(family, op.operation_id, body, headers) if v.timing == "submit"]
    return contract, submit


@schemathesis.check
def rejection_carries_provider_code(ctx: Any, response: Any, case: Any) -> bool | None:
    """A submission the contract rejects at submit gets the provider's status and code."""
    if response.status_code in (401, 403, 429) or response.status_code >= 500:
        return None
    judged = _judged_submission(case)
    if judged is None or not judged[1]:
        return None
    contract, submit = judged
    expected = submit[0]
    got = _error_code(contract, _json(response) or {})
    if response.status_code not in {v.status for v in submit}:
        _fail(case, "rejection_status", "Invalid request not rejected as the provider does",
              f"{expected.field}: {expected.rule} -> expected {expected.status} {expected.code}, "
              f"got {response.status_code} {got}")
    if got is not None and not any(str(got) in (v.code, v.wrap) for v in submit):
        _fail(case, "rejection_code", "Rejection carries another code",
              f"{expected.field}: {expected.rule} -> expected code {expected.code}, got {got}")
    return True


@schemathesis.check
def valid_submission_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """A submission the contract's schema and catalogue accept is answered 2xx."""
    if response.status_code in (401, 403, 429) or response.status_code < 300:
        return None
    judged = _judged_submission(case)
    if judged is None or judged[1]:
        return None
    contract = judged[0]
    if response.status_code in contract.extensions.client_5xx:
        return None  # a documented answer to client input (new-api: unknown model, no channel)
    _fail(case, "valid_rejected", "Valid submission rejected",
          f"the contract accepts this body, the server answered {response.status_code}: "
          f"{response.content[:200]!r}")
    return True
