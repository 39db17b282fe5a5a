"""What wanmock knows about OpenRouter's video API outside its HTTP class (no Starlette): hosts
come from contracts/openrouter.yaml `servers:`; paths, status words, where its answers carry
them, options."""

from __future__ import annotations

from typing import Any

from mockserver.families import FamilySpec, StatusField, read_path
from mockserver.options import Option

NAME = "openrouter"
# neutral state -> the video job's `status` (openrouter 1.3.84
# components/videogenerationresponse.py VideoGenerationResponseStatus). OpenRouter has no held
# state: a suspended task reads in_progress.
STATUS = {
    "queued": "pending",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "cancelled",
    "expired": "expired",
    "suspended": "in_progress",
}
WORDS = {"pending": "queued", "in_progress": "running", "completed": "succeeded",
         "failed": "failed", "cancelled": "canceled", "expired": "expired"}

OPTIONS = (
    Option("openrouter_unknown_model_status", 400, "an unknown model id: 400 \"<id> is not a "
           "valid model ID\" (default, as OpenRouter answers it on every API) or 404 \"Resource "
           "not found\" (the SDK's NotFoundResponseError of a submit)", kind="int",
           choices=(400, 404), family=NAME),
    Option("openrouter_polling_url", "absolute", "polling_url as an absolute URL on the fake's "
           "public base (absolute, default: the video guide's examples) or the path alone "
           "(relative: the OpenAPI example)", choices=("absolute", "relative"), family=NAME),
    Option("openrouter_signed_urls", "on", "a completed job shows `urls` (signed download "
           "links usable without a key) and `expires_at` (on, default: openrouter 1.3.84) or "
           "only `unsigned_urls` (off: no stored copy, the 2026-08 OpenAPI)",
           choices=("on", "off"), family=NAME),
    Option("openrouter_models_auth", "public", "GET /api/v1/videos/models without a key: "
           "answered (public, default: the guide's curl sends none) or 401 (required)",
           choices=("public", "required"), family=NAME),
    Option("openrouter_webhook_secret", "", "the workspace's webhook signing secret: callback "
           "deliveries carry X-OpenRouter-Signature t=<unix>,v1=<hex HMAC-SHA256 of "
           "\"<t>,<body>\"> when set (default: unset, deliveries are not signed)", family=NAME),
    Option("openrouter_passthrough", "drop", "provider.options keys a model does not list in "
           "allowed_passthrough_parameters: dropped silently (drop, default: the SDK's "
           "ProviderOptions text) or 400 (strict)", choices=("drop", "strict"), family=NAME),
)


class OpenRouterSpec(FamilySpec):
    """A failed (or cancelled, expired) job carries only an `error` string: its code is the
    status word."""

    def failure(self, body: Any) -> tuple[str, str] | None:
        status = read_path(body, "status")
        error = read_path(body, "error")
        if isinstance(status, str) and isinstance(error, str) and error:
            return status, error
        return None


FAMILY = OpenRouterSpec(
    name=NAME,
    routes="mockserver.providers.openrouter.routes:OpenRouter",
    policy="mockserver.providers.openrouter.policy:OpenRouterPolicy",
    prefixes=("/api/v1/videos",),
    task_paths=("/api/v1/videos/",),
    statuses=(StatusField("status", WORDS),),
    task_id_paths=("id",),
    # the signed link first: it downloads without a key (unsigned_urls need one)
    video_url_paths=("urls.0", "unsigned_urls.0"),
    base_url_hint="{url}/api/v1   (openrouter SDK: OpenRouter(server_url=...))",
    key_variables=("OPENROUTER_API_KEY",),
    options=OPTIONS,
    order=60,
)
