"""jiekou.ai / Novita /v3/async Wan video API (contracts/jiekou.yaml; novita.ai/docs/api-reference
(the Novita model pages) and novita-client 0.7.1 novita.py).

Every submit endpoint answers `{"task_id": ...}`; `GET /v3/async/task-result?task_id=` renders
the task. Every error is the gateway envelope `{code: <status>, reason, message, metadata: {}}`,
with the reason words the contract gives each status (`x-wanmock-reason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from mockserver import wording
from mockserver.core.tasks import Failure, State, Task
from mockserver.errors import ProviderError
from mockserver.providers.base import Family
from mockserver.providers.exchange import Exchange
from mockserver.providers.hotpath import json_response
from mockserver.providers.jiekou import render
from mockserver.providers.jiekou.policy import JiekouPolicy

# Largest seed the fake invents when the client asks for a random one (-1 or none).
RANDOM_SEED_MAX = 2**31 - 1


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


class Jiekou(Family):
    """`/v3/async/<endpoint>` submits and `/v3/async/task-result`."""

    policy_class = JiekouPolicy
    policy: JiekouPolicy

    def read_body(self, ex: Exchange) -> Any:
        """JSON with or without a Content-Type (decision `missing-content-type`); a submit
        without one is the body error under `jiekou_content_type=required`."""
        if (self.backend.options["jiekou_content_type"] == "required"
                and not ex.headers.get("content-type", "").strip()):
            policy = self.policy
            raise policy.flag(policy.body_error("content_type", ex.operation),
                              "body:content_type")
        return super().read_body(ex)

    # -- submit ------------------------------------------------------------------------------
    async def create(self, ex: Exchange) -> Response:
        """Every `/v3/async/<endpoint>` submit: `{"task_id": ...}`."""
        spec, late = self.settle(ex)
        ids = self.backend.ids
        task_id = ids.uuid()
        seed = spec.seed if spec.seed is not None and spec.seed >= 0 else int(
            ids.fraction() * RANDOM_SEED_MAX)
        extra = {"task_type": ex.operation.task_type, "seed": seed}
        task = self.submit(ex, spec, late, task_id=task_id, extra=extra)
        hook = _webhook_settings(ex.body)
        if hook is not None:
            self.owe_webhook(ex, task, hook)
        return json_response(render.created_body(task.id))

    create_wan_t2v_task = create_wan_i2v_task = create_wan22_t2v_task = create
    create_wan22_i2v_task = create_wan25_t2v_preview_task = create
    create_wan25_i2v_preview_task = create_wan26_i2v_task = create_wan26_t2v_task = create
    create_wan27_t2v_task = create_wan27_r2v_task = create_wan27_videoedit_task = create

    # -- webhooks (contracts/jiekou.yaml x-wanmock-webhooks) ---------------------------------
    def owe_webhook(self, ex: Exchange, task: Task, hook: Mapping[str, Any]) -> None:
        """Owe the task's event to `extra.webhook.url` (sent once the task ends)."""
        policy = self.policy
        self.schedule_webhook(task, hook["url"], args=(self.base_url(ex), _echo(hook)),
                              policy=policy.webhook_policy())
        test_mode = hook.get("test_mode")
        if isinstance(test_mode, Mapping) and test_mode.get("enabled") is True:
            # Novita: "test your integration without making actual API calls"; the endpoint
            # "will receive a simulated mock event". The task ends at once in the asked status
            # (decision `webhook-test-mode`), so its event is due now and polls agree with it.
            failed = test_mode.get("return_task_status") == "TASK_STATUS_FAILED"
            if failed:
                words = policy.webhook_contract()
                task.plan.failure = Failure("TEST_MODE", words.test_mode_reason or (
                    "Simulated failure (webhook test mode)."))
            self.backend.force(task, State.FAILED if failed else State.SUCCEEDED)

    def webhook_body(self, task: Task, *args: Any) -> dict[str, Any] | None:
        """The event once the task has ended (`args`: the base URL and the echoed
        `extra.webhook`): Novita's envelope around the task-result body."""
        base_url, hook = args
        backend = self.backend
        snap = backend.view(task)
        if not snap.state.terminal or snap.state is State.EXPIRED:
            return None
        url = ttl = None
        if snap.state is State.SUCCEEDED:
            url = backend.video_url(base_url, task, snap)
            ttl = self.video_url_ttl(task, snap)
        event_type = self.policy.webhook_contract().event_type or render.EVENT_TYPE
        return render.webhook_event(render.task_result(task, snap, url, ttl), hook, event_type)

    def video_url_ttl(self, task: Task, snap: Any) -> int | str:
        """The TTL constant as a string ("3600"), per Novita's task-result doc; the old
        remaining-seconds integer under `jiekou_url_ttl=countdown` (decision
        `video-url-ttl-type`)."""
        if self.backend.options["jiekou_url_ttl"] == "countdown":
            return self.backend.url_expires_in(task, snap)
        return str(int(self.backend.url_ttl(task)))

    # -- query -------------------------------------------------------------------------------
    async def get_task_result(self, ex: Exchange) -> Response:
        task_id = ex.task_id
        if task_id is None or task_id == "":
            # Worded by the contract's getTaskResult x-wanmock-errors, like any schema kind.
            kind = "required" if task_id is None else "minLength"
            values = wording.schema_values(kind, "task_id", task_id, {"type": "string",
                                                                     "minLength": 1}, 1)
            mapping = ex.operation.error_for("task_id", kind)
            raise ProviderError(mapping.status, mapping.code,
                                wording.fill_template(mapping.message, values))
        task = self.task(ex)  # the caller's jiekou tasks only
        if task is None:
            raise self.policy.not_found(task_id)
        snap = self.backend.view(task, poll=True)
        if snap.state is State.EXPIRED:
            raise self.policy.not_found(task_id)
        url = ttl = None
        if snap.state is State.SUCCEEDED:
            url = self.backend.video_url(self.base_url(ex), task, snap)
            ttl = self.video_url_ttl(task, snap)
        return json_response(render.task_result(task, snap, url, ttl))
