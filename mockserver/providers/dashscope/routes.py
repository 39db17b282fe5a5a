"""DashScope native video synthesis (contracts/dashscope.yaml; help.aliyun.com/zh/model-studio video
API references and dashscope 2.0.2)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from starlette.responses import Response

from mockserver.contracts import Operation
from mockserver.core.scenarios import FaultRequested
from mockserver.core.tasks import State, Task
from mockserver.errors import ProviderError
from mockserver.images import inspect, is_data_uri
from mockserver.media import Assumed
from mockserver.providers.base import Family
from mockserver.providers.dashscope import render
from mockserver.providers.dashscope.policy import DashScopePolicy
from mockserver.providers.exchange import Exchange
from mockserver.providers.hotpath import JSONBytes, json_response

_LIST_TIME = re.compile(r"^\d{14}$")
# The error-code page's InvalidFile texts for wan2.2-s2v-detect's image ([B]).
DETECT_RESOLUTION = ("The image resolution is invalid, please make sure that the largest length "
                     "of image is smaller than 7000, and the smallest length of image is larger "
                     "than 400.")
DETECT_FORMAT = ("Invalid file format，the request file format is one of the following types: "
                 "MP4, AVI, MOV, MP3, WAV, AAC, JPEG, JPG, PNG, BMP, and WEBP.")
STATUS_WORDS = {v: k for k, v in render.STATUS.items()}


class DashScope(Family):
    """`/api/v1/services/aigc/video-generation/video-synthesis` and `/api/v1/tasks`."""

    policy_class = DashScopePolicy
    policy: DashScopePolicy

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        # The rendered tail of each polled task's body, kept by the backend (not the routes).
        self._polls = backend.memo(f"{self.name}.polls", 4096)

    def limit(self, ex: Exchange) -> None:
        """The task APIs' documented rate (20 QPS per account; the fake counts per key), when
        the contract's limits are switched on (decision rate-limits)."""
        limits = self.policy.documented_limits()
        if limits is not None and limits.rate_limit_qps is not None and (
                ex.operation.role in limits.rate_limit_roles):
            if not self.backend.admit(self.name, ex.api_key, qps=limits.rate_limit_qps,
                                      bucket="tasks"):
                raise FaultRequested("rate-limit")

    def model_limits(self, ex: Exchange) -> int | None:
        """Count this submit against its model's documented submit rate (429 beyond it);
        return the model's limit of tasks in progress per key (None: not limited)."""
        limits = self.policy.documented_limits()
        body = ex.body
        model = body.get("model") if isinstance(body, dict) else None
        found = limits.models.get(model) if limits is not None and isinstance(model, str) else None
        if found is None:
            return None
        if found.submit_rps is not None and not self.backend.admit(
                self.name, ex.api_key, qps=found.submit_rps, bucket=f"submit:{model}"):
            raise FaultRequested("rate-limit")
        return found.concurrent

    # -- handlers ----------------------------------------------------------------------------
    async def create_video_synthesis(self, ex: Exchange) -> Response:
        concurrent = self.model_limits(ex)
        spec, late = self.settle(ex, self.input_facts(ex))  # an `inputs` scenario's facts
        ids = self.backend.ids
        request_id = ids.uuid()
        task = self.submit(ex, spec, late, task_id=ids.uuid(), extra={"request_id": request_id},
                           model_concurrency=concurrent)
        return JSONBytes(render.created_json(task.id, request_id))

    async def create_image2_video_synthesis(self, ex: Exchange) -> Response:
        """First-and-last-frame (kf2v) tasks: the same pipeline on the image2video path."""
        return await self.create_video_synthesis(ex)

    async def detect_face(self, ex: Exchange) -> Response:
        """wan2.2-s2v-detect, synchronous: whether a portrait suits wan2.2-s2v. An inline
        image is measured ([400, 7000] px); whether a URL image shows a person is assumed (an
        `inputs; humanoid=false` scenario says it does not)."""
        ex.body = self.read_body(ex)
        self.model_limits(ex)
        op = ex.operation
        violations = op.schema_violations(ex.body)
        if violations:
            raise self.policy.violation_error(violations[0], op)
        image = ex.body["input"]["image_url"]
        if is_data_uri(image):
            found = inspect(image, 20 * 1024 * 1024)
            if found.problem is not None:
                raise ProviderError(400, "InvalidFile.Format", DETECT_FORMAT)
            if not all(400 <= side <= 7000 for side in (found.width, found.height)):
                raise ProviderError(400, "InvalidFile.Resolution", DETECT_RESOLUTION)
        person = Assumed.of(self.input_facts(ex)).humanoid
        return json_response({"output": {"check_pass": person, "humanoid": person},
                              "usage": {"image_count": 1},
                              "request_id": self.backend.ids.uuid()})

    def task_json(self, ex: Exchange, task: Task, *, poll: bool = True) -> dict[str, Any]:
        snap = self.backend.view(task, poll=poll)
        url = None
        if snap.state is State.SUCCEEDED:
            url = self.backend.video_url(self.base_url(ex), task, snap)
        opts = self.backend.options
        return render.task_body(task, snap, url, self.backend.ids.uuid(),
                                wan27_actual_prompt=opts["dashscope_actual_prompt_wan27"],
                                usage_sr=opts["dashscope_usage_sr"])

    async def get_task(self, ex: Exchange) -> Response:
        # Only this family's tasks, and only the caller's: any other id is UNKNOWN.
        task = self.task(ex)
        if task is None:
            return json_response(render.unknown_body(ex.task_id or "", self.backend.ids.uuid()))
        if type(self).task_json is not DashScope.task_json:  # a subclass words tasks its way
            return json_response(self.task_json(ex, task))
        return self.poll_response(ex, task)

    def poll_response(self, ex: Exchange, task: Task) -> Response:
        """`json_response(self.task_json(ex, task))`, byte for byte, for the hottest call of
        all: the body after `request_id` is rendered once per task moment and reused."""
        backend = self.backend
        snap = backend.view(task, poll=True)
        url = None
        if snap.state is State.SUCCEEDED:
            url = backend.video_url(self.base_url(ex), task, snap)
        request_id = backend.ids.uuid()
        failure = task.plan.failure
        key = (id(task), id(task.spec), snap.state, snap.submitted_at, snap.started_at,
               snap.ended_at, url, failure.code if failure else None,
               failure.message if failure else None)
        cached = self._polls.get(task.id)
        if cached is None or cached[0] != key:
            opts = backend.options
            body = render.task_body(task, snap, url, request_id,
                                    wan27_actual_prompt=opts["dashscope_actual_prompt_wan27"],
                                    usage_sr=opts["dashscope_usage_sr"])
            tail = render.poll_tail(body)
            if tail is None:
                return json_response(body)
            cached = self._polls.put(task.id, (key, tail))
        return JSONBytes(render.poll_json(request_id, cached[1]))

    async def cancel_task(self, ex: Exchange) -> Response:
        task = self.task(ex)
        if task is None or not self.backend.cancel(task):
            # Worded as the contract's cancelTask x-wanmock-errors (see its x-wanmock-decisions).
            mapping = ex.operation.error_for("task_id", "cancel")
            raise ProviderError(mapping.status, mapping.code, mapping.message)
        return json_response(render.canceled_body(self.backend.ids.uuid()))

    def task_group(self, task: Task) -> str:
        """The DashScope task (`x-wanmock-task`) of the path a task was submitted to."""
        operation = self.contract.operations.get(task.operation)
        return (operation.task if operation is not None else None) or "video-generation"

    async def list_tasks(self, ex: Exchange) -> Response:
        op = ex.operation
        q = ex.request.query_params
        page_no = _int_param(op, q.get("page_no"), "page_no", 1, 1, 10**6)
        page_size = _int_param(op, q.get("page_size"), "page_size", 10, 1, 100)
        status = q.get("status")
        if status is not None and status not in STATUS_WORDS:
            raise ProviderError.from_violation(
                op.violation_for("status", "enum", status, None, list(STATUS_WORDS)))
        start = _list_time(op, q.get("start_time"), "start_time")
        end = _list_time(op, q.get("end_time"), "end_time")
        model = q.get("model_name")
        key_filter = q.get("api_key_id")
        rows = []
        # The caller's own tasks of this family only; `api_key_id` narrows further.
        for task in sorted(self.backend.tasks(self.name), key=lambda t: t.submitted_at,
                           reverse=True):
            if not self.backend.owns(task, ex.api_key):
                continue
            if key_filter and render.api_key_id(task) != key_filter:
                continue
            snap = self.backend.view(task)
            word = render.STATUS[snap.state]
            if status and word != status:
                continue
            if model and task.spec.model != model:
                continue
            if (start and snap.submitted_at < start) or (end and snap.submitted_at > end):
                continue
            rows.append(render.list_item(task, snap, self.task_group(task)))
        return json_response(render.list_body(self.backend.ids.uuid(), rows, page_no, page_size))


def _int_param(op: Operation, value: str | None, name: str, default: int, low: int,
               high: int) -> int:
    """An integer query parameter; out of type or range, the contract's wording."""
    if value is None or value == "":
        return default
    bounds = {"type": "integer", "minimum": low, "maximum": high}
    try:
        number = int(value)
    except ValueError:
        raise ProviderError.from_violation(
            op.violation_for(name, "type", value, bounds, "integer")) from None
    if not low <= number <= high:
        kind = "minimum" if number < low else "maximum"
        raise ProviderError.from_violation(
            op.violation_for(name, kind, number, bounds, low if number < low else high))
    return number


def _list_time(op: Operation, value: str | None, name: str) -> float | None:
    """`YYYYMMDDhhmmss` (Beijing time) or epoch milliseconds -> epoch seconds."""
    if value is None or value == "":
        return None
    if _LIST_TIME.match(value):
        try:
            when = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=render.BEIJING)
        except ValueError:
            pass
        else:
            return when.timestamp()
    elif len(value) == 13 and value.isascii() and value.isdigit():
        return int(value) / 1000
    # A 14-digit string that is no date (20261399000000): the contract's wording, as a pattern.
    raise ProviderError.from_violation(op.violation_for(name, "pattern", value))
