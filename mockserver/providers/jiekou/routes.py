"""jiekou.ai / Novita /v3/async Wan video API (contracts/jiekou.yaml; api-facts §1).

Every submit endpoint answers `{"task_id": ...}`; `GET /v3/async/task-result?task_id=` renders
the task. Every error is the gateway envelope `{code: <status>, reason, message, metadata: {}}`,
with the reason words the contract gives each status (`x-wanmock-reason`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mockserver import wording
from mockserver.contracts import Operation
from mockserver.core.tasks import Failure, State, Task
from mockserver.errors import ProviderError
from mockserver.providers.base import Family, headers_of, json_response
from mockserver.providers.jiekou import render
from mockserver.providers.jiekou.policy import JiekouPolicy

# Largest seed the fake invents when the client asks for a random one (-1 or none).
_RANDOM_SEED_MAX = 2**31 - 1


def _webhook_settings(body: Any) -> Mapping[str, Any] | None:
    """`extra.webhook` of a (schema-valid) submit body when it names a URL, else None."""
    extra = body.get("extra") if isinstance(body, Mapping) else None
    hook = extra.get("webhook") if isinstance(extra, Mapping) else None
    if not isinstance(hook, Mapping):
        return None
    url = hook.get("url")
    return hook if isinstance(url, str) and url else None


def _echo(hook: Mapping[str, Any]) -> dict[str, Any]:
    """`extra.webhook` as Novita echoes it in the event: the fields it knows (url, test_mode),
    as a server that decodes the request into its own types writes them back."""
    echoed: dict[str, Any] = {"url": hook["url"]}
    test_mode = hook.get("test_mode")
    if isinstance(test_mode, Mapping):
        echoed["test_mode"] = {k: test_mode[k] for k in ("enabled", "return_task_status")
                               if k in test_mode}
    return echoed


class Jiekou(JiekouPolicy, Family):
    """`/v3/async/<endpoint>` submits and `/v3/async/task-result`."""

    def parse_json(self, request: Request, op: Operation, raw: bytes) -> Any:
        """JSON with or without a Content-Type (decision `missing-content-type`); a submit
        without one is the body error under `jiekou_content_type=required`."""
        if (self.backend.options["jiekou_content_type"] == "required" and op.role == "submit"
                and not headers_of(request).get("content-type", "").strip()):
            raise self.flag(self.body_error("content_type", op), "body:content_type")
        return super().parse_json(request, op, raw)

    # -- submit ------------------------------------------------------------------------------
    async def _create(self, request: Request, op: Operation, raw: bytes) -> Response:
        key = self.authenticate(request)
        body = self.parse_json(request, op, raw)
        spec, late = self.settle(op, *self.judge(op, body))
        task_id = self.backend.ids.uuid()
        seed = spec.seed if spec.seed is not None and spec.seed >= 0 else int(
            self.backend.ids.fraction() * _RANDOM_SEED_MAX)
        extra = {"task_type": op.task_type, "seed": seed}
        task = self.submit(request, op, body, spec, late, task_id=task_id, api_key=key,
                           extra=extra, raw=raw)
        hook = _webhook_settings(body)
        if hook is not None:
            self._schedule_webhook(request, task, hook)
        return json_response(render.created_body(task.id))

    # -- webhooks (contracts/jiekou.yaml x-wanmock-webhooks) ---------------------------------
    def _schedule_webhook(self, request: Request, task: Task, hook: Mapping[str, Any]) -> None:
        base, echo = self.base_url(request), _echo(hook)
        self.backend.webhooks.schedule(
            family=self.name, task_id=task.id, url=hook["url"], now=task.submitted_at,
            render=self._webhook_body(task, base, echo), render_args=[base, echo],
            policy=self.webhook_policy())
        test_mode = hook.get("test_mode")
        if isinstance(test_mode, Mapping) and test_mode.get("enabled") is True:
            # Novita: "test your integration without making actual API calls"; the endpoint
            # "will receive a simulated mock event". The task ends at once in the asked status
            # (decision `webhook-test-mode`), so its event is due now and polls agree with it.
            failed = test_mode.get("return_task_status") == "TASK_STATUS_FAILED"
            if failed:
                spec = self._webhook_contract()
                task.plan.failure = Failure("TEST_MODE", spec.test_mode_reason or (
                    "Simulated failure (webhook test mode)."))
            self.backend.force(task, State.FAILED if failed else State.SUCCEEDED)

    def _webhook_body(self, task: Task, base_url: str,
                      hook: dict[str, Any]) -> Callable[[], dict[str, Any] | None]:
        """The event once the task has ended: Novita's envelope around the task-result body."""
        backend = self.backend
        event_type = self._webhook_contract().event_type or render.EVENT_TYPE

        def render_now() -> dict[str, Any] | None:
            snap = backend.view(task)
            if not snap.state.terminal or snap.state is State.EXPIRED:
                return None
            url = ttl = None
            if snap.state is State.SUCCEEDED:
                url = backend.video_url(base_url, task, snap)
                ttl = self.video_url_ttl(task, snap)
            return render.webhook_event(render.task_result(task, snap, url, ttl), hook,
                                        event_type)

        return render_now

    def video_url_ttl(self, task: Task, snap: Any) -> int | str:
        """The TTL constant as a string ("3600"), per Novita's task-result doc; the old
        remaining-seconds integer under `jiekou_url_ttl=countdown` (decision
        `video-url-ttl-type`)."""
        if self.backend.options["jiekou_url_ttl"] == "countdown":
            return self.backend.url_expires_in(task, snap)
        return str(int(self.backend.url_ttl(task)))

    async def create_wan_t2v_task(self, request: Request, op: Operation, raw: bytes) -> Response:
        return await self._create(request, op, raw)

    async def create_wan_i2v_task(self, request: Request, op: Operation, raw: bytes) -> Response:
        return await self._create(request, op, raw)

    async def create_wan22_t2v_task(self, request: Request, op: Operation, raw: bytes) -> Response:
        return await self._create(request, op, raw)

    async def create_wan22_i2v_task(self, request: Request, op: Operation, raw: bytes) -> Response:
        return await self._create(request, op, raw)

    async def create_wan25_t2v_preview_task(
        self, request: Request, op: Operation, raw: bytes
    ) -> Response:
        return await self._create(request, op, raw)

    async def create_wan25_i2v_preview_task(
        self, request: Request, op: Operation, raw: bytes
    ) -> Response:
        return await self._create(request, op, raw)

    async def create_wan26_i2v_task(self, request: Request, op: Operation, raw: bytes) -> Response:
        return await self._create(request, op, raw)

    async def create_wan26_t2v_task(self, request: Request, op: Operation, raw: bytes) -> Response:
        return await self._create(request, op, raw)

    async def create_wan27_t2v_task(self, request: Request, op: Operation, raw: bytes) -> Response:
        return await self._create(request, op, raw)

    # -- query -------------------------------------------------------------------------------
    async def get_task_result(self, request: Request, op: Operation, raw: bytes) -> Response:
        key = self.authenticate(request)
        task_id = request.query_params.get("task_id")
        if task_id is None or task_id == "":
            # Worded by the contract's getTaskResult x-wanmock-errors, like any schema kind.
            kind = "required" if task_id is None else "minLength"
            values = wording.schema_values(kind, "task_id", task_id, {"type": "string",
                                                                     "minLength": 1}, 1)
            mapping = op.error_for("task_id", kind)
            raise ProviderError(mapping.status, mapping.code,
                                wording.fill_template(mapping.message, values))
        task = self.backend.find(self.name, task_id, key)  # the caller's jiekou tasks only
        if task is None:
            raise self.not_found(task_id)
        self.note_task(request, task)
        snap = self.backend.view(task, poll=True)
        if snap.state is State.EXPIRED:
            raise self.not_found(task_id)
        url = ttl = None
        if snap.state is State.SUCCEEDED:
            url = self.backend.video_url(self.base_url(request), task, snap)
            ttl = self.video_url_ttl(task, snap)
        return json_response(render.task_result(task, snap, url, ttl))
