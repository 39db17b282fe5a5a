"""Reading providers' answers back: which task a body is about, its state, progress and failure.

The proxy, replay, `wanmock diff` and `wanmock calibrate` all look at recorded bodies in each
family's own words. The status words come from the families' renderers (the same tables the
fake speaks), so the two can never disagree silently. No Starlette here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from mockserver.contracts import Operation, get_path
from mockserver.core.tasks import State

_MISSING = object()
_FAIL_REASON = re.compile(r"code:\s*(?P<code>[^,\s]+)\s*,\s*message:\s*(?P<message>.*)$", re.S)


@lru_cache(maxsize=1)
def status_words() -> dict[str, list[tuple[str, dict[str, State]]]]:
    """Per family: (dotted path of the status word, word -> neutral state), first match wins."""
    from mockserver.providers.apiyi.render import STATUS as APIYI
    from mockserver.providers.dashscope.render import STATUS as DASHSCOPE
    from mockserver.providers.jiekou.render import STATUS as JIEKOU
    from mockserver.providers.newapi.render import STATUS as NEWAPI
    from mockserver.providers.newapi.render import VIDEO_STATUS

    def reverse(table: Mapping[State, str]) -> dict[str, State]:
        out: dict[str, State] = {}
        for state, word in table.items():
            out.setdefault(word, state)  # CANCELED shares FAILED's word in some families
        return out

    newapi = reverse(NEWAPI)
    newapi.update({"NOT_START": State.QUEUED, "SUBMITTED": State.QUEUED})
    videos = {word: newapi[upper] for upper, word in VIDEO_STATUS.items()}
    dashscope = reverse(DASHSCOPE)
    return {
        "dashscope": [("output.task_status", dashscope)],
        "apiyi": [("output.task_status", dashscope), ("status", reverse(APIYI))],
        "jiekou": [("task.status", reverse(JIEKOU))],
        "newapi": [("data.status", newapi), ("status", videos)],
    }


def state_of(family: str | None, body: Any) -> tuple[State | None, str | None]:
    """The neutral state a recorded body reports, and the word it used (None, None when the
    body carries no status; (None, word) for a word the fake does not know)."""
    for path, table in status_words().get(family or "", []):
        word = get_path(body, path)
        if isinstance(word, str):
            return table.get(word), word
    return None, None


def progress_of(body: Any) -> int | None:
    """The progress a body reports (jiekou `progress_percent`, new-api `"30%"`, OpenAI int)."""
    for path in ("task.progress_percent", "data.progress", "progress", "output.progress"):
        value = get_path(body, path)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return int(value)
        if isinstance(value, str) and value.rstrip("%").isdigit():
            return int(value.rstrip("%"))
    return None


def failure_of(body: Any) -> tuple[str, str] | None:
    """The (code, message) of a failed task's body, in whichever family's words."""
    for code_path, message_path in (("output.code", "output.message"),
                                    ("error.code", "error.message")):
        code = get_path(body, code_path)
        if isinstance(code, str | int) and code != "":
            message = get_path(body, message_path)
            return str(code), message if isinstance(message, str) else ""
    reason = get_path(body, "data.fail_reason")
    if isinstance(reason, str) and reason:
        found = _FAIL_REASON.search(reason)
        if found:
            return found["code"], found["message"].strip()
        return "TaskFailed", reason
    reason = get_path(body, "task.reason")
    if isinstance(reason, str) and reason:
        return "TASK_STATUS_FAILED", reason
    return None


def path_params(op: Operation, path: str) -> dict[str, str]:
    """The `{name}` parameters of `path` under the operation's template (empty if no match)."""
    names = re.findall(r"\{([^}]+)\}", op.path)
    if not names:
        return {}
    regex = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(op.path)) + "$"
    found = re.match(regex, path)
    return dict(zip(names, found.groups(), strict=True)) if found else {}


def task_of_request(op: Operation, path: str, query: Mapping[str, str]) -> str | None:
    """The task a query, cancel or content request is about (path parameter or `?task_id=`)."""
    params = path_params(op, path)
    for name in ("task_id", "video_id", "id"):
        if params.get(name):
            return params[name]
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
