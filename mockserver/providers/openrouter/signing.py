"""OpenRouter's webhook headers (no Starlette), as the video guide's "Webhooks" section and the
webhook cookbook say (https://openrouter.ai/docs/guides/overview/multimodal/video-generation,
https://openrouter.ai/docs/cookbook/video-generation/video-generation-webhooks):

- `X-OpenRouter-Idempotency-Key: <job id>-<status>` on every delivery (a retry repeats it);
- with a workspace signing secret, `X-OpenRouter-Signature: t=<unix seconds>,v1=<hex>`, the
  hex HMAC-SHA256 of `"<t>,<raw body>"` keyed with the secret's UTF-8 bytes; receivers refuse
  a timestamp older than five minutes. Not Standard Webhooks (no `webhook-id` headers).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from mockserver.jsonwire import ascii_int

SIGNATURE = "X-OpenRouter-Signature"
IDEMPOTENCY = "X-OpenRouter-Idempotency-Key"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `v1` value: hex HMAC-SHA256 of `"<t>,<body>"`."""
    message = str(int(timestamp)).encode("ascii") + b"," + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def headers(job_id: str, status: str, body: bytes, secret: str, timestamp: int
            ) -> dict[str, str]:
    """The headers of one delivery of `body` (the exact bytes sent)."""
    out = {IDEMPOTENCY: f"{job_id}-{status}"}
    if secret:
        out[SIGNATURE] = f"t={int(timestamp)},v1={signature(secret, timestamp, body)}"
    return out


def verify(secret: str, received: Mapping[str, str], body: bytes, now: float,
           tolerance_s: float = TOLERANCE_S) -> bool:
    """A receiver's check, as the cookbook writes it: a `t=` within `tolerance_s` of `now`
    and a `v1=` equal (in constant time) to the HMAC of those very bytes."""
    lower = {k.lower(): v for k, v in received.items()}
    parts = dict(item.strip().partition("=")[::2]
                 for item in lower.get(SIGNATURE.lower(), "").split(","))
    stamp, given = ascii_int(parts.get("t", "")), parts.get("v1", "")
    if stamp is None or not given or abs(now - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, stamp, body), given)
