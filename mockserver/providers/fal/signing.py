"""fal's webhook signatures (no Starlette): Ed25519 over the request id, the user id, the
timestamp and the body's SHA-256, as fal's Webhooks API doc ("Verifying Your Webhook") says,
and the JWKS that publishes the public key.

The fake signs with a key of its own, derived from its URL-signing secret (the same on every
worker of a shared store, the same across restarts under `--seed`): a receiver verifies it with
the JWKS the fake serves where fal publishes its own (contracts/fal.yaml decision
`webhook-signature`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KEY_ID = "wanmock-1"
HEADERS = ("x-fal-webhook-request-id", "x-fal-webhook-user-id", "x-fal-webhook-timestamp",
           "x-fal-webhook-signature")


def private_key(seed: bytes) -> Ed25519PrivateKey:
    """The signing key made from `seed` (any bytes; hashed to Ed25519's 32-byte seed)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fal-webhook:" + seed).digest())


def public_x(key: Ed25519PrivateKey | Ed25519PublicKey, padded: bool = True) -> str:
    """The JWK `x` of a key: its 32 raw public bytes as base64url, padded (44 characters,
    ending `=`) unless `padded` is False (43, RFC 7517)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    text = base64.urlsafe_b64encode(raw).decode("ascii")
    return text if padded else text.rstrip("=")


def jwks(key: Ed25519PrivateKey, padded: bool = True) -> dict[str, Any]:
    """The key set fal publishes at /.well-known/jwks.json, with the fake's one key."""
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": public_x(key, padded),
                      "kid": KEY_ID, "use": "sig", "alg": "EdDSA"}]}


def message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """What is signed: the four values joined by newlines, the body as its SHA-256 hex."""
    return "\n".join([request_id, user_id, timestamp,
                      hashlib.sha256(body).hexdigest()]).encode("utf-8")


def sign_headers(key: Ed25519PrivateKey, request_id: str, user_id: str, timestamp: int,
                 body: bytes) -> dict[str, str]:
    """The four X-Fal-Webhook-* headers of one delivery of `body` (the exact bytes sent)."""
    stamp = str(int(timestamp))
    signature = key.sign(message(request_id, user_id, stamp, body)).hex()
    return {"X-Fal-Webhook-Request-Id": request_id, "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": stamp, "X-Fal-Webhook-Signature": signature}


def verify(keys: Mapping[str, Any], headers: Mapping[str, str], body: bytes, now: float,
           leeway_s: float = 300.0) -> bool:
    """A receiver's check, as fal's doc writes it: the timestamp within `leeway_s` of `now`,
    and the signature verified by any key of the set (`x` read padded or not)."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        request_id, user_id, stamp, signature = (lower[h] for h in HEADERS)
        if abs(now - int(stamp)) > leeway_s:
            return False
        signed = bytes.fromhex(signature)
    except (KeyError, ValueError):
        return False
    text = message(request_id, user_id, stamp, body)
    for item in keys.get("keys") or []:
        x = str(item.get("x", "")) if isinstance(item, Mapping) else ""
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            Ed25519PublicKey.from_public_bytes(raw).verify(signed, text)
            return True
        except Exception:  # a malformed key or a bad signature: try the next key
            continue
    return False
