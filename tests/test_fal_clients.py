"""Real clients of fal against a live fake on 127.0.0.1: LiteLLM's `fal_ai/` video backend in
its own process, and a webhook receiver that verifies the fake's signatures with the JWKS the
fake publishes (fal's documented scheme)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mockserver.providers.fal import signing
from tests.helpers import missing

KEY = "wm-key-id:wm-key-secret"

LITELLM = """
import json, os, sys
import litellm
base, key = sys.argv[1], sys.argv[2]
out = {}
for name, model in (("ok", "fal_ai/wan/v2.6/text-to-video"),
                     ("string_duration", "fal_ai/fal-ai/wan/v2.7/text-to-video")):
    video = litellm.video_generation(model=model, prompt="a lighthouse", seconds="5",
                                     size="1280x720", api_base=base, api_key=key)
    status = litellm.video_status(video_id=video.id, api_base=base, api_key=key)
    out[name] = {"created": video.status, "status": status.status}
    if status.status == "completed":
        content = litellm.video_content(video_id=video.id, api_base=base, api_key=key)
        out[name]["head"] = content[4:8].decode("latin-1")
print(json.dumps(out))
"""


@pytest.mark.clients
@pytest.mark.wanmock(timing="instant")
def test_litellm_fal_video_backend_end_to_end(wanmock_server):
    """`litellm.video_generation/video_status/video_content` with `api_base` (LiteLLM reads no
    host variable for fal video) and `FAL_AI_API_KEY`-style `api_key`."""
    if importlib.util.find_spec("litellm") is None:  # not imported here: it reaches out
        missing("litellm is not installed: pip install -e '.[test]'")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no cost-map download
    with wanmock_server.expect_violations():  # the Wan 2.7 body LiteLLM gets wrong, on purpose
        done = subprocess.run([sys.executable, "-c", LITELLM, wanmock_server.url, KEY],
                              env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ok"] == {"created": "queued", "status": "completed", "head": "ftyp"}
    # LiteLLM sends duration "5"; fal's Wan 2.7 takes an integer: the runner's 422 -> failed
    assert out["string_duration"]["status"] == "failed"
    [submit] = [e for e in wanmock_server.requests(family="fal")
                if e.operation == "submitWan26T2v"]
    assert json.loads(submit.request_body) == {"prompt": "a lighthouse", "duration": "5",
                                               "resolution": "720p", "aspect_ratio": "16:9"}


class _Receiver(http.server.BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    _Receiver.got = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fal-hook", _Receiver.got
    finally:
        server.shutdown()
        server.server_close()


def fal_sample_verify(keys: dict[str, Any], headers: dict[str, str], body: bytes) -> bool:
    """fal's documented receiver (Webhooks API doc, Python), with cryptography for PyNaCl:
    `urlsafe_b64decode(x)` as written, no padding added."""
    if abs(int(time.time()) - int(headers["x-fal-webhook-timestamp"])) > 300:
        return False
    message = "\n".join([headers["x-fal-webhook-request-id"], headers["x-fal-webhook-user-id"],
                         headers["x-fal-webhook-timestamp"],
                         hashlib.sha256(body).hexdigest()]).encode("utf-8")
    signature = bytes.fromhex(headers["x-fal-webhook-signature"])
    for item in keys.get("keys", []):
        try:
            public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(item["x"]))
            public.verify(signature, message)
            return True
        except Exception:
            continue
    return False


@pytest.mark.wanmock(timing="instant", webhooks="auto")
def test_a_receiver_verifies_the_signed_webhook(wanmock_server, receiver):
    hook_url, got = receiver
    base = wanmock_server.url
    with httpx.Client(base_url=base, headers={"Authorization": f"Key {KEY}"}) as client:
        created = client.post("/wan/v2.6/text-to-video", params={"fal_webhook": hook_url},
                              json={"prompt": "a fox", "duration": "5"})
        assert created.status_code == 200, created.text
        request_id = created.json()["request_id"]
        keys = client.get("/rest.fal.ai/.well-known/jwks.json").json()
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        wanmock_server.webhooks()  # renders what is due; the server's sender posts it
        time.sleep(0.05)
    assert got, "no webhook arrived"
    headers, body = got[0]
    event = json.loads(body)
    assert event["request_id"] == request_id == headers["x-fal-webhook-request-id"]
    assert event["status"] == "OK" and event["payload"]["video"]["content_type"] == "video/mp4"
    assert headers["x-fal-webhook-user-id"] == "wanmock-user"
    assert fal_sample_verify(keys, headers, body)
    assert signing.verify(keys, headers, body, now=time.time())
    tampered = body.replace(b'"OK"', b'"ERROR"')
    assert not fal_sample_verify(keys, headers, tampered)
    assert not signing.verify(keys, headers, tampered, now=time.time())
