"""Reading providers' answers back: which task a body is about, its state, progress and failure.

The proxy, replay, `wanmock diff` and `wanmock calibrate` all look at recorded bodies in each
family's own words. The status words and where they sit come from each family's family.py
(the same tables its renderers speak), so the two can never disagree silently. No Starlette.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mockserver.contracts import Operation, get_path
from mockserver.core.tasks import State
from mockserver.families import FamilySpec, families

_MISSING = object()


def state_of(family: str | None, body: Any) -> tuple[State | None, str | None]:
    """The neutral state a recorded body reports, and the word it used (None, None when the
    body carries no status; (None, word) for a word the fake does not know)."""
    found = families().get(family or "")
    if found is None:
        return None, None
    state, word = found.status(body)
    return (State(state) if state is not None else None), word


def progress_of(body: Any, family: str | None = None) -> int | None:
    """The progress a body reports (jiekou `progress_percent`, new-api `"30%"`, OpenAI int):
    where `family` (else the first family whose answers carry one) puts it."""
    for spec in _specs(family):
        value = spec.progress(body)
        if value is not None:
            return value
    return None


def failure_of(body: Any, family: str | None = None) -> tuple[str, str] | None:
    """The (code, message) of a failed task's body, in `family`'s (else any family's) words."""
    for spec in _specs(family):
        found = spec.failure(body)
        if found is not None:
            return found
    return None


def _specs(family: str | None) -> list[FamilySpec]:
    known = families()
    return [known[family]] if family in known else list(known.values())


def _regex(template: str, group: bool) -> str:
    """An operation path as a regex; a trailing slash is the same operation (DashScope's aio
    SDK polls `/api/v1/tasks/{id}/`, contracts/dashscope.yaml decision trailing-slash)."""
    param = "([^/]+)" if group else "[^/]+"
    return "^" + re.sub(r"\\\{[^}]+\\\}", param, re.escape(template)) + "/?$"


def operation_patterns(ops: Iterable[Operation]) -> list[tuple[str, re.Pattern[str], Operation]]:
    """(method, path regex, operation) for matching requests, literal paths before templates
    (`/api/v1/tasks` before `/api/v1/tasks/{id}`)."""
    out = [(op.method, re.compile(_regex(op.path, False)), op) for op in ops]
    out.sort(key=lambda item: item[2].path.count("{"))
    return out


def path_params(op: Operation, path: str) -> dict[str, str]:
    """The `{name}` parameters of `path` under the operation's template (empty if no match)."""
    names = re.findall(r"\{([^}]+)\}", op.path)
    if not names:
        return {}
    found = re.match(_regex(op.path, True), path)
    return dict(zip(names, found.groups(), strict=True)) if found else {}


def task_of_request(op: Operation, path: str, query: Mapping[str, str]) -> str | None:
    """The task a query, cancel or content request is about, where the request pipeline finds
    it: the operation's last path parameter (`{task_id}`, `{video_id}`, `{jobId}`),
    else `?task_id=`."""
    params = path_params(op, path)
    if params:
        return list(params.values())[-1] or None
    value = query.get("task_id")
    return value or None


def task_of_submit(op: Operation, status: int, body: Any) -> str | None:
    """The task id a submit's answer gives, where the contract's OpenAPI links say it is
    (`$response.body#/output/task_id`), else the first `task_id`/`id` found."""
    if not 200 <= status < 300 or not isinstance(body, Mapping):
        return None
    response = (op.raw.get("responses") or {}).get(str(status)) or {}
    for link in (response.get("links") or {}).values() if isinstance(response, Mapping) else ():
        for expr in (link.get("parameters") or {}).values():
            if isinstance(expr, str) and expr.startswith("$response.body#/"):
                value = get_path(body, expr[len("$response.body#/"):].replace("/", "."))
                if isinstance(value, str) and value:
                    return value
    for path in ("output.task_id", "task_id", "id", "data.task_id"):
        value = get_path(body, path)
        if isinstance(value, str) and value:
            return value
    return None


def geometry_of(body: Any) -> tuple[int, int] | None:
    """Width and height a result body reports (`usage.size` `W*H`, `size`, `width`/`height`)."""
    for path in ("usage.size", "size", "data.data.usage.size", "output.size"):
        value = get_path(body, path)
        if isinstance(value, str):
            found = re.fullmatch(r"(\d{2,5})\s*[*xX]\s*(\d{2,5})", value)
            if found:
                return int(found[1]), int(found[2])
    width, height = get_path(body, "width"), get_path(body, "height")
    if isinstance(width, int) and isinstance(height, int):
        return width, height
    return None


def error_code(body: Any) -> Any:
    """The provider's error code in any family's envelope."""
    for path in ("error.code", "reason", "code", "output.code"):
        value = get_path(body, path)
        if isinstance(value, str) and value:
            return value
    return None
