"""OpenRouter's video API over HTTP (contracts/openrouter.yaml).

`POST /api/v1/videos` answers 202 `{id, polling_url, status: "pending"}`; `GET
/api/v1/videos/{jobId}` the job; `GET /api/v1/videos/{jobId}/content?index=` the MP4 (409
before it exists, 410 once gone); `GET /api/v1/videos/models` the Wan models' capability
objects. A `callback_url` is owed the job's `video.generation.<status>` event once it ends,
with `X-OpenRouter-Idempotency-Key` and, when a signing secret is set, `X-OpenRouter-Signature`
(signing.py), signed per attempt over the exact bytes sent (`Backend.webhook_signers`).
There is no cancel endpoint: `cancelled` and `expired` come from the job scenarios `cancel`
and `expire` (and `timeout`).
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from starlette.responses import Response

from mockserver.core.tasks import Snapshot, State, Task
from mockserver.core.webhooks import Webhook
from mockserver.errors import ProviderError
from mockserver.providers.base import Family
from mockserver.providers.exchange import Exchange
from mockserver.providers.hotpath import JSONResponse
from mockserver.providers.openrouter import render, signing
from mockserver.providers.openrouter.family import STATUS
from mockserver.providers.openrouter.policy import OpenRouterPolicy

VIDEOS = "api/v1/videos/"  # under the public base (which ends in "/")


class OpenRouter(Family):
    """OpenRouter's `/api/v1/videos` API, serving the Wan models (alibaba/wan-*)."""

    policy_class = OpenRouterPolicy
    policy: OpenRouterPolicy

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        backend.webhook_signers[self.name] = self.sign_webhook

    # -- submit ----------------------------------------------------------------------------------
    async def create_video(self, ex: Exchange) -> Response:
        """202 with the job's id (`gen-vid-<unix seconds>-<20 alphanumerics>`, openrouter
        1.3.84 videogenerationresponse.py), its polling URL and `pending`."""
        spec, late = self.settle(ex)
        backend = self.backend
        ids = backend.ids
        now = int(backend.now())
        extra: dict[str, Any] = {"generation_id": f"gen-{now}-{ids.token(20)}"}
        dropped = spec.inputs.pop("dropped", None)
        if dropped:
            extra["dropped"] = dropped  # what OpenRouter ignored, for whoever reads the task
        task = self.submit(ex, spec, late, task_id=f"gen-vid-{now}-{ids.token(20)}",
                           extra=extra)
        base = self.base_url(ex)
        callback = ex.body.get("callback_url")
        if isinstance(callback, str) and callback:
            self.schedule_webhook(task, callback, args=(base,),
                                  policy=self.policy.webhook_policy())
        return JSONResponse({"id": task.id, "polling_url": self.polling_url(base, task.id),
                             "status": STATUS["queued"]}, status_code=202)

    # -- queries ---------------------------------------------------------------------------------
    async def get_video(self, ex: Exchange) -> Response:
        task = self.task(ex)
        if task is None:
            raise self.policy.not_found()
        snap = self.backend.view(task, poll=True)
        return JSONResponse(self.job(task, snap, self.base_url(ex)))

    async def get_video_content(self, ex: Exchange) -> Response:
        """The MP4 of output `index` (one output per job): 409 until the job completed, 410
        once it expired or its stored copy is gone (decision content-errors)."""
        task = self.task(ex)
        if task is None:
            raise self.policy.not_found()
        backend = self.backend
        snap = backend.view(task)
        status = render.status_of(task, snap)
        index = ex.request.query_params.get("index") or "0"
        if status == STATUS["expired"] or (
                status == STATUS["succeeded"] and not self.output_kept(task, snap)):
            raise ProviderError(410, "not_found", "Video output has expired and is no longer "
                                "available")
        if status != STATUS["succeeded"]:
            raise ProviderError(409, "precondition_failed",
                                f"Video generation is not completed (status: {status})")
        if index.strip() != "0":
            raise ProviderError(400, "invalid_request",
                                f"Invalid index {index}: the job has 1 output")
        data = await anyio.to_thread.run_sync(backend.video_path(task).read_bytes)
        return Response(data, 200, media_type="video/mp4")

    async def list_video_models(self, ex: Exchange) -> Response:
        catalogue = self.contract.catalogue
        return JSONResponse({"data": [render.model(catalogue, entry)
                                      for entry in catalogue.models(self.name)]})

    # -- rendering -------------------------------------------------------------------------------
    def polling_url(self, base: str, task_id: str) -> str:
        """Absolute on the fake's public base, or the path alone (`openrouter_polling_url`)."""
        if self.backend.options["openrouter_polling_url"] == "relative":
            return "/" + VIDEOS + task_id
        return base + VIDEOS + task_id

    def output_kept(self, task: Task, snap: Snapshot) -> bool:
        """Whether the stored copy of a completed job's output is still there (`url_s` of
        the contract's retention after the job ended)."""
        ended = snap.ended_at if snap.ended_at is not None else snap.now
        return snap.now < ended + self.backend.url_ttl(task)

    def job(self, task: Task, snap: Snapshot, base: str) -> dict[str, Any]:
        """The job as `GET /api/v1/videos/{jobId}` shows it now."""
        backend = self.backend
        signed = None
        succeeded = snap.state is State.SUCCEEDED
        kept = succeeded and self.output_kept(task, snap)
        if kept and backend.options["openrouter_signed_urls"] == "on":
            ended = snap.ended_at if snap.ended_at is not None else snap.now
            signed = (backend.video_url(base, task, snap), int(ended + backend.url_ttl(task)))
        spec = task.spec
        cost = None
        if succeeded:
            entry = self.contract.catalogue.entry(self.name, spec.model)
            cost = render.cost(entry, spec.mode, spec.resolution, spec.duration)
        return render.job(task, snap, polling_url=self.polling_url(base, task.id),
                          content_url=f"{base}{VIDEOS}{task.id}/content?index=0",
                          signed=signed, cost=cost)

    # -- webhooks --------------------------------------------------------------------------------
    def sign_webhook(self, hook: Webhook, content: bytes) -> dict[str, str]:
        """The headers of one delivery attempt of `content` (the exact bytes sent): the
        idempotency key always, the signature when `openrouter_webhook_secret` is set, stamped
        with the wall time of the attempt (receivers refuse one older than five minutes,
        whatever the fake's clock says)."""
        data = hook.body.get("data") if isinstance(hook.body, dict) else None
        status = str(data.get("status", "")) if isinstance(data, dict) else ""
        secret = str(self.backend.options["openrouter_webhook_secret"] or "")
        return signing.headers(hook.task_id, status, content, secret, int(time.time()))

    def webhook_body(self, task: Task, *args: Any) -> dict[str, Any] | None:
        """`video.generation.<status>` once the job reached a terminal status (args: the
        public base the submit saw)."""
        (base,) = args
        snap = self.backend.view(task)
        if not snap.state.terminal:
            return None
        return render.event(task, snap, self.job(task, snap, str(base)), task.spec.model)
