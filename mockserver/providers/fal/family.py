"""What wanmock knows about fal.ai outside its HTTP class (no Starlette): the queue host comes
from contracts/fal.yaml `servers:` and the other hosts from its `x-wanmock-mounts`; paths,
status words, where its answers carry them, options."""

from __future__ import annotations

from typing import Any

from mockserver.families import FamilySpec, StatusField, read_path
from mockserver.options import Option

NAME = "fal"
# neutral state -> the queue's status word. fal-client 1.0.3 knows no other word: a failed,
# cancelled or forgotten request reads COMPLETED with `error` (contracts/fal.yaml
# decisions status-words, failed-request, cancelled-request).
STATUS = {
    "queued": "IN_QUEUE",
    "running": "IN_PROGRESS",
    "suspended": "IN_PROGRESS",
    "succeeded": "COMPLETED",
    "failed": "COMPLETED",
    "canceled": "COMPLETED",
    "expired": "COMPLETED",
}
COMPLETED = "COMPLETED"
# The apps whose requests the fake serves: `/{owner}/{alias}/requests/{id}` (the request URLs
# use the owner and alias only).
APP_ROOTS = ("fal-ai/wan-t2v", "fal-ai/wan-i2v", "fal-ai/wan-flf2v", "fal-ai/wan",
             "fal-ai/wan-25-preview", "fal-ai/wan-pro", "fal-ai/wan-vace-14b", "wan/v2.6",
             "alibaba/wan-3.0", "alibaba/wan-3.0-prime")

OPTIONS = (
    Option("fal_validation", "runner", "fal: where a model input is checked: in the runner "
           "(runner, default: the request is queued and ends COMPLETED with a 422 error, as "
           "fal's Webhooks doc shows) or at submit (submit: a synchronous 422)",
           choices=("runner", "submit"), family=NAME),
    Option("fal_result_pending", "400", "fal: the result of a request still queued or "
           "running: 400 {\"detail\": \"Request is still in progress\"} (400, default, what the "
           "AI SDK and LiteLLM expect) or 202 with the status body (202, aimock's answer)",
           choices=("400", "202"), family=NAME),
    Option("fal_strict_key", False, "fal: answer 401 to `Key <key>` without a colon, as fal "
           "does for keys not shaped <key_id>:<key_secret> (default off: any key)",
           kind="bool", family=NAME),
    Option("fal_cancel_running", "accept", "fal: cancelling a running request: accept (202 "
           "CANCELLATION_REQUESTED, default, fal's current doc) or already_completed (400, "
           "the older doc: only queued requests can be cancelled)",
           choices=("accept", "already_completed"), family=NAME),
    Option("fal_jwks_padding", "padded", "fal: the JWKS key's `x` as padded base64url "
           "(padded, default: fal's own Python sample can decode it) or unpadded (RFC 7517)",
           choices=("padded", "unpadded"), family=NAME),
    Option("fal_webhook_user_id", "wanmock-user", "fal: the X-Fal-Webhook-User-Id webhooks "
           "are signed with", family=NAME),
)


class FalSpec(FamilySpec):
    """A fal status body is COMPLETED whether the run succeeded or not: `error` tells."""

    def status(self, body: Any, operation: str | None = None) -> tuple[str | None, str | None]:
        state, word = super().status(body, operation)
        if word == COMPLETED and isinstance(read_path(body, "error"), str):
            return "failed", word
        return state, word

    def failure(self, body: Any) -> tuple[str, str] | None:
        error = read_path(body, "error")
        if isinstance(error, str) and error:
            kind = read_path(body, "error_type")
            return (kind if isinstance(kind, str) and kind else "model_error"), error
        return None


FAMILY = FalSpec(
    name=NAME,
    routes="mockserver.providers.fal.routes:Fal",
    policy="mockserver.providers.fal.policy:FalPolicy",
    # `/wan/v2.` (wan/v2.6/...): apiyi owns the rest of `/wan/` (the longest prefix wins).
    prefixes=("/fal-ai/", "/wan/v2.", "/alibaba/", "/fal.run/", "/rest.fal.ai/", "/fal.media/"),
    task_paths=tuple(f"/{root}/requests/" for root in APP_ROOTS),
    statuses=(StatusField("status", {"IN_QUEUE": "queued", "IN_PROGRESS": "running",
                                     "COMPLETED": "succeeded"}),),
    task_id_paths=("request_id",),
    video_url_paths=("video.url",),
    base_url_hint="{url}   (fal: FAL_QUEUE_RUN_HOST=<host:port>, FAL_RUN_HOST=<host:port>/fal.run;"
                  " fal-client speaks https only: serve with --tls)",
    key_variables=("FAL_KEY",),
    key_header="Key {key}",
    video_url_operations=("getRequestResult",),
    options=OPTIONS,
    order=50,
)
