"""The real `openrouter` Python SDK (1.3.84, unchanged) against a live fake on 127.0.0.1:
`OpenRouter(server_url="http://127.0.0.1:PORT/api/v1")` submits, polls and downloads a Wan
video, reads the model list through its strict VideoModel, and meets each rejection as the
typed error its status maps to (`.data.error.code` an integer). The openai SDK's `videos`
speaks the same paths only for retrieve and download (its create posts a form: refused here,
decision openai-sdk). A callback receiver checks OpenRouter's webhook signature the way the
webhook cookbook does, and a tampered delivery fails that check.

One server per module on poll-count pacing (queued for 1 poll, running for 1): no sleeps."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import av
import pytest

from mockserver.handle import WanMock
from mockserver.server import ThreadedMockServer
from tests.helpers import until

openrouter = pytest.importorskip("openrouter", reason="pip install -e '.[test]' (openrouter)")
from openrouter import OpenRouter, errors  # noqa: E402
from openrouter.utils import BackoffStrategy, RetryConfig  # noqa: E402

pytestmark = [pytest.mark.clients,
              pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]
KEY = "sk-or-v1-sdk-0123456789abcdef"
SECRET = "whsec-openrouter-test-secret"
FAST_RETRIES = RetryConfig("backoff", BackoffStrategy(10, 20, 1.5, 2000, jitter_ms=0), True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedMockServer]:
    with ThreadedMockServer(families=["openrouter"], seed=11, timing="fast", mode="polls",
                            queued_polls=1, running_polls=1, api_keys=[KEY],
                            openrouter_webhook_secret=SECRET,
                            video_dir=str(tmp_path_factory.mktemp("openrouter-sdk"))) as live:
        yield live


@pytest.fixture
def client(server: ThreadedMockServer) -> Iterator[OpenRouter]:
    server.backend.reset()
    with OpenRouter(api_key=KEY, server_url=server.url + "/api/v1",
                    retry_config=FAST_RETRIES) as sdk:
        yield sdk


def test_submit_poll_and_download_a_wan_video(client: OpenRouter, server) -> None:
    job = client.video_generation.generate(
        model="alibaba/wan-2.7", prompt="a lighthouse at dusk", duration=3, resolution="720p",
        aspect_ratio="9:16",
        frame_images=[{"type": "image_url", "image_url": {"url": "https://example.com/a.png"},
                       "frame_type": "first_frame"}])
    assert job.status == "pending" and job.polling_url == f"{server.url}/api/v1/videos/{job.id}"
    seen = [client.video_generation.get_generation(job_id=job.id) for _ in range(3)]
    assert [s.status for s in seen] == ["pending", "in_progress", "completed"]
    done = seen[-1]
    assert done.generation_id and done.generation_id.startswith("gen-")
    assert done.unsigned_urls == [f"{server.url}/api/v1/videos/{job.id}/content?index=0"]
    assert done.usage is not None and done.usage.cost == 0.3 and done.usage.is_byok is False
    assert done.urls and done.expires_at
    response = client.video_generation.get_video_content(job_id=job.id, index=0)
    data = response.read()
    stream = av.open(io.BytesIO(data)).streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (720, 1280)
    assert server.backend.store.get(job.id).spec.mode == "i2v"
    assert all(not e.violations for e in server.backend.journal.entries())


def test_the_model_list_passes_the_sdks_strict_model(client: OpenRouter) -> None:
    listed = client.video_generation.list_videos_models()
    models = {m.id: m for m in listed.data}
    assert set(models) == {"alibaba/wan-2.6", "alibaba/wan-2.7", "alibaba/wan-3.0",
                           "alibaba/wan-3.0-prime"}
    assert models["alibaba/wan-2.6"].supported_durations == [5, 10]
    assert models["alibaba/wan-3.0"].supported_sizes is None
    assert models["alibaba/wan-2.7"].supported_frame_images == ["first_frame", "last_frame"]


def test_rejections_are_the_sdks_typed_errors(client: OpenRouter, server) -> None:
    handle = WanMock(server.backend)
    with handle.expect_violations():
        with pytest.raises(errors.BadRequestResponseError) as bad:
            client.video_generation.generate(model="alibaba/wan-2.6", prompt="a cat",
                                             duration=7)
    assert bad.value.status_code == 400 and bad.value.data.error.code == 400
    assert bad.value.data.error.message == (
        "Unsupported duration 7 for alibaba/wan-2.6. Supported: 5, 10")
    with OpenRouter(api_key="sk-or-unknown", server_url=server.url + "/api/v1") as stranger:
        with pytest.raises(errors.UnauthorizedResponseError) as who:
            stranger.video_generation.get_generation(job_id="gen-vid-1-x")
    assert who.value.data.error.message == "User not found."
    job = client.video_generation.generate(model="alibaba/wan-2.6", prompt="a cat")
    with pytest.raises(errors.ConflictResponseError):  # not completed yet
        client.video_generation.get_video_content(job_id=job.id)
    with pytest.raises(errors.NotFoundResponseError):
        client.video_generation.get_generation(job_id="gen-vid-0-unknown")
    typed = {"payment-required": errors.PaymentRequiredResponseError,
             "blocked; reason=violence": errors.ForbiddenResponseError,
             "throttle": errors.TooManyRequestsResponseError}
    for scenario, error in typed.items():
        with pytest.raises(error) as raised:
            client.video_generation.generate(model="alibaba/wan-2.6", prompt="a cat",
                                             http_headers={"X-Wanmock-Scenario": scenario})
        assert raised.value.data.error.code == raised.value.status_code
    assert raised.value.headers.get("retry-after") == "1"  # 429 is not retried by the SDK
    assert len(handle.requests(operation="createVideo")) == 5


def test_a_503_is_retried_and_an_expired_output_is_gone(client: OpenRouter, server) -> None:
    handle = WanMock(server.backend)
    handle.scenario("unavailable", match={"operation": "createVideo"}, times=1)
    job = client.video_generation.generate(model="alibaba/wan-3.0-prime", prompt="a cat",
                                           duration=2, resolution="480p")
    assert [e.status for e in handle.requests(operation="createVideo")] == [503, 202]
    gone = client.video_generation.generate(model="alibaba/wan-2.6", prompt="a dog")
    handle.force(gone.id, "expired")  # what the `expire` scenario does once a clock moves
    assert client.video_generation.get_generation(job_id=gone.id).status == "expired"
    with pytest.raises(errors.GoneResponseError):
        client.video_generation.get_video_content(job_id=gone.id)
    assert client.video_generation.get_generation(job_id=job.id).status == "pending"


# -- the openai SDK: retrieve and download only ------------------------------------------------
def test_the_openai_sdk_retrieves_and_downloads_but_cannot_create(server) -> None:
    openai = pytest.importorskip("openai")
    server.backend.reset()
    with OpenRouter(api_key=KEY, server_url=server.url + "/api/v1") as sdk:
        job = sdk.video_generation.generate(model="alibaba/wan-2.6", prompt="a cat",
                                            resolution="720p")
    with openai.OpenAI(base_url=server.url + "/api/v1", api_key=KEY, max_retries=0) as oa:
        states = [oa.videos.retrieve(job.id).status for _ in range(3)]
        assert states == ["pending", "in_progress", "completed"]  # outside openai's own enum
        content = oa.videos.download_content(job.id).read()  # ?variant=video is ignored
        assert av.open(io.BytesIO(content)).streams.video[0].codec_context.width == 1280
        handle = WanMock(server.backend)
        with handle.expect_violations(), pytest.raises(openai.BadRequestError) as refused:
            oa.videos.create(model="alibaba/wan-2.6", prompt="a cat", seconds="4")
    assert refused.value.status_code == 400  # a multipart form: OpenRouter reads JSON only


# -- webhooks, signed ----------------------------------------------------------------------------
class Receiver:
    """A callback receiver that checks deliveries as OpenRouter's webhook cookbook does:
    `X-OpenRouter-Signature: t=<unix>,v1=<hex>`, the HMAC-SHA256 of `"<t>,<raw body>"` under
    the signing secret, compared in constant time, at most five minutes old; 204 when it
    holds, 401 when it does not."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.seen: list[tuple[dict[str, str], bytes, bool]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = outer.verify(headers.get("x-openrouter-signature", ""), body)
                outer.seen.append((headers, body, ok))
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/openrouter"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, header: str, body: bytes) -> bool:
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        stamp, given = fields.get("t", ""), fields.get("v1", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            return False
        expected = hmac.new(self.secret, stamp.encode() + b"," + body, hashlib.sha256)
        return hmac.compare_digest(expected.hexdigest(), given)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_signed_callback_verifies_and_a_tampered_one_does_not(client: OpenRouter,
                                                               server) -> None:
    receiver = Receiver(SECRET)
    try:
        job = client.video_generation.generate(model="alibaba/wan-2.6", prompt="a cat",
                                               callback_url=receiver.url)
        for _ in range(3):
            client.video_generation.get_generation(job_id=job.id)
        headers, body, ok = until(lambda: receiver.seen, 10, "the webhook")[0]
        assert ok, headers
        event = json.loads(body)
        assert event["type"] == "video.generation.completed" and event["data"]["id"] == job.id
        assert headers["x-openrouter-idempotency-key"] == f"{job.id}-completed"
        assert receiver.verify(headers["x-openrouter-signature"], body.replace(
            b'"completed"', b'"failed"', 1)) is False  # a changed body fails the check
        forged = headers["x-openrouter-signature"].replace("v1=", "v1=0")
        assert receiver.verify(forged, body) is False
        hook = until(lambda: [h for h in server.backend.webhooks.entries(job.id)
                              if h.state == "sent"], 5, "the delivery recorded")[0]
        assert hook.attempts[-1]["status"] == 204
    finally:
        receiver.close()
