"""Replay at the family's door: recorded answers for recorded jobs (`Options.replay`).

The task engine already follows the recorded plan (`Backend.submit` asks the `ReplayBook`);
here each answer about such a task is swapped for the recorded body of the state the task is in
now (`ReplayBook.answer`), a submit the provider refused while recording gets the recorded
refusal, and under `replay_strict` anything the cassette does not know gets the family's 404.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from mockserver.core.tasks import State
from mockserver.errors import ProviderError
from mockserver.providers.exchange import Exchange, Served
from mockserver.providers.hotpath import JSONResponse


def _json(raw: bytes | None) -> Any:
    try:
        return json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def before(family: Served, ex: Exchange) -> Response | None:
    """A recorded refusal, or (strict) the family's 404 for what the cassette does not know."""
    backend = family.backend
    book = backend.replay
    if book is None:
        return None
    op = ex.operation
    if op.role == "submit":
        body = _submitted(family, ex)
        refused = book.rejection(family.name, op.operation_id, body)
        if refused is not None and refused.response_encoding == "json":
            ex.entry.scenario = "replay of a recorded refusal"
            return JSONResponse(refused.response_body, status_code=refused.status)
        if not backend.options.replay_strict or book.knows(family.name, op.operation_id, body):
            return None
    elif not backend.options.replay_strict:
        return None
    elif op.role in ("query", "cancel", "content") and ex.entry.task_id:
        task = backend.store.find(family.name, ex.entry.task_id)
        if task is not None and "replay" in task.extra:
            return None
    code = family.policy.unrouted_codes[404]
    return family.error_response(ProviderError(
        404, code, f"wanmock replay: {ex.method} {ex.request.url.path} is not in the "
                   "cassette (--replay-strict)"), op)


def _submitted(family: Served, ex: Exchange) -> Any:
    """A submit's body as the cassette keeps it: JSON, or a form's fields and file digests
    (read as the family reads it), for matching recorded jobs and refusals."""
    ctype = ex.headers.get("content-type", "")
    if not ctype or "json" in ctype.lower():
        return _json(ex.raw)
    try:
        _, form = family.policy.read_request_body(ex.operation, ex.raw or b"", ex.headers)
    except ProviderError:
        return None
    return form.recorded() if form is not None else None


def after(family: Served, ex: Exchange, response: Response) -> Response:
    """The recorded body for a replayed task's current state, ids and URLs rewritten."""
    backend = family.backend
    book = backend.replay
    op = ex.operation
    entry = ex.entry
    if book is None or not entry.task_id or response.status_code >= 400:
        return response  # the fake refused (another key's task, a fault): its answer stands
    task = backend.store.find(family.name, entry.task_id)
    if task is None or "replay" not in task.extra:
        return response
    if op.role != "submit" and not backend.owns(task, ex.api_key, family.policy.key_form()):
        return response  # another key's task: the fake's answer (not found) stands
    snap = backend.lifecycle.view(task, retention=backend.task_retention(task))
    body = getattr(response, "body", b"")
    fake = _json(body) if isinstance(body, bytes) else None
    url = None
    if snap.state is State.SUCCEEDED:
        url = backend.video_url(family.base_url(ex), task, snap)
    answer = book.answer(task, op.operation_id, op.role, snap, fake, url)
    # Marked in the journal (and so on the dashboard): this answer is the cassette's; for a
    # job the recording never saw end, with where it was cut, and the end replay gave it.
    label = f"replay of {task.extra.get('replay_task', '?')}"
    cut = task.extra.get("replay_cut")
    if isinstance(cut, str):
        label += f" ({cut})"
    if answer is None:
        if isinstance(cut, str) and snap.state.terminal:
            entry.scenario = (f"replay end of {task.extra.get('replay_task', '?')}: {cut}; "
                              f"ended {snap.state.value.upper()} where the recording ends")
        else:  # a state the recording has no answer in (polled before its first poll)
            entry.scenario = (f"replay of {task.extra.get('replay_task', '?')}: the fake's "
                              f"answer, none recorded while {snap.state.value.upper()}")
        return response
    status, recorded = answer
    entry.scenario = label
    return JSONResponse(recorded, status_code=status)
