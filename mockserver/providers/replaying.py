"""Replay at the family's door: recorded answers for recorded jobs (`Options.replay`).

The task engine already follows the recorded plan (`Backend.submit` asks the `ReplayBook`);
here each answer about such a task is swapped for the recorded body of the state the task is in
now (`ReplayBook.answer`), a submit the provider refused while recording gets the recorded
refusal, and under `replay_strict` anything the cassette does not know gets the family's 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mockserver.contracts import Operation
from mockserver.core.journal import Entry
from mockserver.core.tasks import State
from mockserver.errors import ProviderError
from mockserver.providers.hotpath import JSONResponse

if TYPE_CHECKING:
    from mockserver.providers.base import Family


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def before(family: Family, request: Request, op: Operation, raw: bytes,
           entry: Entry) -> Response | None:
    """A recorded refusal, or (strict) the family's 404 for what the cassette does not know."""
    book = family.backend.replay
    if op.role == "submit":
        body = _submitted(family, request, op, raw)
        refused = book.rejection(family.name, op.operation_id, body)
        if refused is not None and refused.response_encoding == "json":
            entry.scenario = f"replay of a refusal (cassette line {refused.line})"
            return JSONResponse(refused.response_body, status_code=refused.status)
        if not family.backend.options.replay_strict or book.knows(family.name,
                                                                   op.operation_id, body):
            return None
    elif not family.backend.options.replay_strict:
        return None
    elif op.role in ("query", "cancel", "content") and entry.task_id:
        task = family.backend.store.find(family.name, entry.task_id)
        if task is not None and "replay" in task.extra:
            return None
    code = family.unrouted_codes[404]
    return family.error_response(ProviderError(
        404, code, f"wanmock replay: {request.method} {request.url.path} is not in the "
                   "cassette (--replay-strict)"), op)


def _submitted(family: Family, request: Request, op: Operation, raw: bytes) -> Any:
    """A submit's body as the cassette keeps it: JSON, or a form's fields and file digests
    (read as the family reads it), for matching recorded jobs and refusals."""
    from mockserver.cassette import form_body
    from mockserver.providers.hotpath import headers_of

    headers = headers_of(request)
    ctype = headers.get("content-type", "")
    if not ctype or "json" in ctype.lower():
        return _json(raw)
    try:
        _, form = family.read_request_body(op, raw, headers)
    except ProviderError:
        return None
    return form_body(form.values, form.files) if form is not None else None


def _owned(family: Family, request: Request, task: Any) -> bool:
    """Whether the caller may see the task, as the family scopes tasks (per key)."""
    normalize: Callable[[str], str] | None = family.key_form()  # new-api: `sk-x` is `x`
    from mockserver.providers.exchange import exchange_of

    exchange = exchange_of(request)
    key = exchange.api_key if exchange is not None else None
    return family.backend.owns(task, key, normalize)


def after(family: Family, request: Request, op: Operation, entry: Entry,
          response: Response) -> Response:
    """The recorded body for a replayed task's current state, ids and URLs rewritten."""
    backend = family.backend
    if not entry.task_id or response.status_code >= 400:
        return response  # the fake refused (another key's task, a fault): its answer stands
    task = backend.store.find(family.name, entry.task_id)
    if task is None or "replay" not in task.extra:
        return response
    if op.role != "submit" and not _owned(family, request, task):
        return response  # another key's task: the fake's answer (not found) stands
    snap = backend.lifecycle.view(task, retention=backend.task_retention(task))
    body = getattr(response, "body", b"")
    fake = _json(body) if isinstance(body, bytes) else None
    url = None
    if snap.state is State.SUCCEEDED:
        url = backend.video_url(family.base_url(request), task, snap)
    answer = backend.replay.answer(task, op.operation_id, op.role, snap, fake, url)
    if answer is None:
        return response
    status, recorded = answer
    # Marked in the journal (and so on the dashboard): this answer is the cassette's.
    entry.scenario = f"replay of {task.extra.get('replay_task', '?')}"
    return JSONResponse(recorded, status_code=status)
