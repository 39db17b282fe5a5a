"""OpenRouter's video API (contracts/openrouter.yaml) in process: the job's life, its content,
the Wan models' capability objects and the refusals OpenRouter words, all on a manual clock
(nothing sleeps). The real SDKs are in tests/clients/test_openrouter_sdk.py."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

import mockserver
from mockserver.contracts import contracts_dir, load
from mockserver.handle import WanMock
from mockserver.server import create_app
from tests.helpers import SyncASGITransport

KEY = "sk-or-v1-family-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
BASE = "https://openrouter.ai/api/v1"
T2V = {"model": "alibaba/wan-2.6", "prompt": "a lighthouse at dusk", "duration": 5,
       "resolution": "720p", "aspect_ratio": "16:9"}
FIRST = {"type": "image_url", "image_url": {"url": "https://example.com/first.png"},
         "frame_type": "first_frame"}
LAST = {**FIRST, "image_url": {"url": "https://example.com/last.png"}, "frame_type": "last_frame"}
REF = {"type": "image_url", "image_url": {"url": "https://example.com/style.png"}}


class Fake:
    """An app on a manual clock (`fast` timing: queued 1 s, then running) and a client."""

    def __init__(self, **options: Any) -> None:
        options = {"seed": 5, "clock": "manual", "timing": "fast", "api_keys": [KEY, "sk-other"],
                   **options}
        self.app = create_app(["openrouter"], **options)
        self.handle = WanMock(self.app.state.backend)
        self.client = httpx.Client(transport=SyncASGITransport(self.app), base_url=BASE,
                                   headers=AUTH)

    def submit(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.client.post("/videos", json=body, headers=headers)

    def job(self, job_id: str, **headers: str) -> dict[str, Any]:
        answer = self.client.get(f"/videos/{job_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        return conforms("getVideo", answer)

    def close(self) -> None:
        self.client.close()


def conforms(operation: str, response: httpx.Response) -> Any:
    """The JSON body, checked against the contract's schema for its status."""
    op = load().operation("openrouter", operation)
    status = str(response.status_code)
    assert status in op.raw["responses"], f"{operation} does not document {status}"
    body = response.json()
    validator = op.response_validators.get(status)
    if validator is not None:
        validator.validate(body)
    return body


@pytest.fixture(scope="module")
def _fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fake]:
    fake = Fake(video_dir=str(tmp_path_factory.mktemp("openrouter-videos")))
    yield fake
    fake.close()


@pytest.fixture
def fake(_fake: Fake) -> Fake:
    _fake.handle.reset()
    return _fake


def error(response: httpx.Response, status: int) -> tuple[int, str]:
    """(error.code, error.message) of an OpenRouter error answer of `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["code"], int)
    return body["error"]["code"], body["error"]["message"]


# -- the job's life ----------------------------------------------------------------------------
def test_a_job_from_pending_to_completed_and_its_video(fake: Fake) -> None:
    created = fake.submit(T2V)
    assert created.status_code == 202
    body = conforms("createVideo", created)
    job_id = body["id"]
    assert re.fullmatch(r"gen-vid-\d{10}-[A-Za-z0-9]{20}", job_id)
    assert body == {"id": job_id, "polling_url": f"{BASE}/videos/{job_id}", "status": "pending"}
    assert fake.job(job_id) == body  # still queued: no generation_id yet
    early = fake.client.get(f"/videos/{job_id}/content")
    assert error(early, 409) == (409, "Video generation is not completed (status: pending)")
    fake.handle.advance(1.5)
    running = fake.job(job_id)
    assert running["status"] == "in_progress"
    assert re.fullmatch(r"gen-\d{10}-[A-Za-z0-9]{20}", running["generation_id"])
    fake.handle.advance(10)
    done = fake.job(job_id)
    assert done["status"] == "completed"
    assert done["generation_id"] == running["generation_id"]
    assert done["unsigned_urls"] == [f"{BASE}/videos/{job_id}/content?index=0"]
    assert done["usage"] == {"cost": 0.4, "is_byok": False}  # 5 s x text_to_video 720p $0.08
    assert done["urls"][0].startswith("https://openrouter.ai/_wanmock/videos/")
    ended = fake.handle.task(job_id)
    assert done["expires_at"] == int(fake.handle.backend.lifecycle.view(ended).ended_at + 86400)
    content = fake.client.get(f"/videos/{job_id}/content", params={"index": 0})
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    stream = av.open(io.BytesIO(content.content)).streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    signed = fake.client.get(done["urls"][0], headers={"Authorization": ""})
    assert signed.status_code == 200 and signed.content == content.content  # no key needed
    assert error(fake.client.get(f"/videos/{job_id}/content?index=1"), 400)[0] == 400
    with fake.handle.expect_violations():  # the contract's parameter schema refuses it
        negative = fake.client.get(f"/videos/{job_id}/content?index=-1")
    assert error(negative, 400)[1] == (
        "Invalid request parameters: index must be a non-negative integer")
    # a day later OpenRouter's stored copy is gone: no signed URL, the content is 410
    fake.handle.advance(86400)
    later = fake.job(job_id)
    assert later["status"] == "completed" and "urls" not in later and "expires_at" not in later
    assert error(fake.client.get(f"/videos/{job_id}/content"), 410)[0] == 410
    fake.handle.assert_all_requests_conform()


def test_frames_make_image_to_video_and_references_reference_to_video(fake: Fake) -> None:
    i2v = fake.submit({"model": "alibaba/wan-2.7", "frame_images": [FIRST, LAST],
                       "input_references": [REF], "resolution": "1080p",
                       "aspect_ratio": "9:16"})
    assert i2v.status_code == 202, i2v.text  # no prompt: image input alone is enough
    task = fake.handle.task(i2v.json()["id"])
    assert task.spec.mode == "i2v" and (task.spec.width, task.spec.height) == (1080, 1920)
    assert task.spec.inputs["img_url"] == "https://example.com/first.png"
    assert task.spec.inputs["last_frame_url"] == "https://example.com/last.png"
    assert task.extra["dropped"] == ["input_references (frame_images take precedence)"]
    r2v = fake.submit({"model": "alibaba/wan-3.0", "prompt": "in this style",
                       "input_references": [REF, {"type": "video_url",
                                                  "video_url": {"url": "https://x/v.mp4"}}],
                       "size": "720x720", "provider": {"options": {
                           "alibaba": {"negative_prompt": "blur"}, "google-vertex": {"x": 1}}}})
    assert r2v.status_code == 202, r2v.text
    task = fake.handle.task(r2v.json()["id"])
    assert task.spec.mode == "r2v" and task.spec.inputs["reference_urls"] == [
        "https://example.com/style.png"]
    # a size is its tier and ratio; the video is the upstream's geometry for them
    assert (task.spec.resolution, task.spec.ratio, task.spec.width) == ("720P", "1:1", 960)
    assert task.spec.negative_prompt is None  # wan-3.0 allows no passthrough parameter
    assert task.extra["dropped"] == ["input_references.1 (video_url)",
                                     "provider.options.alibaba.negative_prompt",
                                     "provider.options.google-vertex (another provider)"]
    passed = fake.submit({**T2V, "provider": {"options": {"alibaba": {
        "negative_prompt": "blur", "shot_type": "multi"}}}})
    spec = fake.handle.task(passed.json()["id"]).spec
    assert (spec.negative_prompt, spec.inputs["shot_type"]) == ("blur", "multi")
    fake.handle.advance(3600)
    assert fake.job(i2v.json()["id"])["usage"]["cost"] == 0.5  # 5 s x wan-2.7 $0.1
    assert fake.job(r2v.json()["id"])["usage"]["cost"] == 0.5  # 5 s x wan-3.0 720p $0.1


@pytest.mark.parametrize(("scenario", "status", "message", "generation_id"), [
    ("cancel", "cancelled", "Job was cancelled", False),
    ("expire", "expired", "Job exceeded maximum time to live", True),
    ("timeout", "expired", "Job exceeded maximum time to live", True),
    ("moderation", "failed", "Content policy violation", True),
    ("fail; kind=internal", "failed", "Provider returned error", True),
])
def test_jobs_that_end_without_a_video(fake: Fake, scenario: str, status: str, message: str,
                                       generation_id: bool) -> None:
    """No cancel endpoint exists: `cancelled` and `expired` come from job scenarios."""
    job_id = fake.submit(T2V, **{"X-Wanmock-Scenario": scenario}).json()["id"]
    fake.handle.advance(20000)
    body = fake.job(job_id)
    assert (body["status"], body["error"]) == (status, message)
    assert ("generation_id" in body) is generation_id
    assert "unsigned_urls" not in body and "usage" not in body
    content = fake.client.get(f"/videos/{job_id}/content")
    assert content.status_code == (410 if status == "expired" else 409)
    conforms("getVideoContent", content)


def test_jobs_belong_to_their_key(fake: Fake) -> None:
    job_id = fake.submit(T2V).json()["id"]
    other = {"Authorization": "Bearer sk-other"}
    assert error(fake.client.get(f"/videos/{job_id}", headers=other), 404) == (
        404, "Resource not found")
    assert error(fake.client.get(f"/videos/{job_id}/content", headers=other), 404)[0] == 404
    assert error(fake.client.get("/videos/gen-vid-0-nope"), 404)[0] == 404


# -- the model list ----------------------------------------------------------------------------
def test_the_models_capability_objects(fake: Fake) -> None:
    listed = fake.client.get("/videos/models", headers={"Authorization": ""})
    assert listed.status_code == 200  # public (decision models-auth)
    data = {m["id"]: m for m in conforms("listVideoModels", listed)["data"]}
    assert list(data) == ["alibaba/wan-2.6", "alibaba/wan-2.7", "alibaba/wan-3.0",
                          "alibaba/wan-3.0-prime"]
    wan26, wan27, wan3 = data["alibaba/wan-2.6"], data["alibaba/wan-2.7"], data["alibaba/wan-3.0"]
    assert (wan26["supported_durations"], wan26["supported_resolutions"],
            wan26["supported_aspect_ratios"], wan26["supported_frame_images"]) == (
        [5, 10], ["720p", "1080p"], ["16:9", "9:16"], ["first_frame"])
    assert wan26["canonical_slug"] == "alibaba/wan-2.6-20260327"
    assert wan26["pricing_skus"]["image_to_video_duration_seconds_1080p"] == "0.15"
    assert wan27["supported_durations"] == list(range(2, 11))
    assert wan27["supported_frame_images"] == ["first_frame", "last_frame"]
    assert "last_image" in wan27["allowed_passthrough_parameters"]
    assert wan3["supported_sizes"] is None and wan3["supported_durations"] == list(range(2, 31))
    assert wan3["supported_aspect_ratios"] == ["16:9", "4:3", "1:1", "3:4", "9:16"]
    assert data["alibaba/wan-3.0-prime"]["pricing_skus"]["duration_seconds_1080p"] == "0.28"
    for model in data.values():  # the SDK's VideoModel requires each key (null allowed)
        assert model["upscale_factor"] is None and model["creativity"] is None
        assert isinstance(model["name"], str) and isinstance(model["created"], int)


# -- refusals, in OpenRouter's envelope --------------------------------------------------------
REFUSED = [
    ({"prompt": "a"}, "Invalid request parameters: model is required"),
    ({**T2V, "model": "alibaba/wan-9"}, "alibaba/wan-9 is not a valid model ID"),
    ({**T2V, "duration": 7}, "Unsupported duration 7 for alibaba/wan-2.6. Supported: 5, 10"),
    ({**T2V, "resolution": "480p"},
     "Unsupported resolution 480P for alibaba/wan-2.6. Supported: 720P, 1080P"),
    ({**T2V, "resolution": "4K"},
     "Unsupported resolution 4K for alibaba/wan-2.6. Supported: 720P, 1080P"),
    ({**T2V, "aspect_ratio": "1:1"},
     "Unsupported aspect_ratio 1:1 for alibaba/wan-2.6. Supported: 16:9, 9:16"),
    ({**T2V, "aspect_ratio": "5:4"}, "Invalid request parameters: aspect_ratio must be one of "
                                     "16:9, 9:16, 1:1, 4:3, 3:4, 3:2, 2:3, 21:9, 9:21"),
    ({**T2V, "size": "720x720"}, "Unsupported size 720x720 for alibaba/wan-2.6. Supported: "
                                 "1280x720, 1080x1920, 720x1280, 1920x1080"),
    ({"model": "alibaba/wan-2.6", "duration": 5},
     "Invalid request parameters: prompt is required for alibaba/wan-2.6 unless frame_images "
     "are given"),
    ({**T2V, "frame_images": [LAST]},
     "Unsupported frame_type last_frame for alibaba/wan-2.6. Supported: first_frame"),
    ({**T2V, "model": "alibaba/wan-2.7", "frame_images": [LAST]},
     "Invalid request parameters: a last_frame needs a first_frame for alibaba/wan-2.7"),
    ({**T2V, "frame_images": [FIRST, FIRST]}, "Invalid request parameters: "
     "frame_images.1.frame_type has too many images for alibaba/wan-2.6 (at most 1)"),
    ({**T2V, "input_references": [REF] * 6}, "Invalid request parameters: input_references "
     "has too many images for alibaba/wan-2.6 (at most 5)"),
    ({**T2V, "frame_images": [{**FIRST, "image_url": {"url": "ftp://x/a.png"}}]},
     "Invalid request parameters: frame_images.0.image_url.url must be an https or "
     "data:image URL"),
    ({**T2V, "callback_url": "http://hooks.example.com/x"},
     "Invalid request parameters: callback_url must be an HTTPS URL"),
]


@pytest.mark.parametrize(("body", "message"), REFUSED,
                         ids=[m[:40] for _, m in REFUSED])
def test_refused_at_submit(fake: Fake, body: dict[str, Any], message: str) -> None:
    with fake.handle.expect_violations():
        answer = fake.submit(body)
    assert error(answer, 400) == (400, message)
    conforms("createVideo", answer)
    assert list(fake.handle.tasks()) == []
    [entry] = fake.handle.requests(operation="createVideo")
    assert entry.violations and entry.violations[0]["message"] == message


def test_authentication_and_bodies(fake: Fake) -> None:
    assert error(fake.submit(T2V, Authorization=""), 401)[1] == "No auth credentials found"
    assert error(fake.submit(T2V, Authorization="Bearer sk-or-unknown"), 401)[1] == (
        "User not found.")
    broken = fake.client.post("/videos", content=b'{"model": NaN}',
                              headers={"Content-Type": "application/json"})
    assert error(broken, 400)[1] == "Invalid JSON in request body"
    form = fake.client.post("/videos", data={"model": "alibaba/wan-2.6", "prompt": "a"})
    assert error(form, 400)[1].startswith("Request body must be JSON")  # the openai SDK's form
    assert error(fake.client.delete("/videos"), 405)[0] == 405


@pytest.mark.parametrize(("fault", "status", "message", "retry_after"), [
    ("payment-required", 402,
     "Insufficient credits. Add more using https://openrouter.ai/credits", False),
    ("request-timeout", 408, "Request timed out", False),
    ("throttle", 429, "Rate limit exceeded", True),
    ("server-error", 500, "Internal Server Error", False),
    ("bad-gateway", 502, "Provider returned error", False),
    ("unavailable", 503,
     "There is no available model provider that meets your routing requirements.", False),
])
def test_transport_faults_in_openrouters_words(fake: Fake, fault: str, status: int,
                                               message: str, retry_after: bool) -> None:
    answer = fake.submit(T2V, **{"X-Wanmock-Scenario": fault})
    assert error(answer, status) == (status, message)
    conforms("createVideo", answer)
    assert ("retry-after" in answer.headers) is retry_after  # throttle's always; the others
    if not retry_after:                                       # when asked
        asked = fake.submit(T2V, **{"X-Wanmock-Scenario": f"{fault}; retry_after=3"})
        assert asked.headers["retry-after"] == "3"


def test_a_moderation_block_carries_its_metadata(fake: Fake) -> None:
    flagged = "x" * 60 + "y" * 60
    answer = fake.submit(T2V, **{"X-Wanmock-Scenario":
                                 f"blocked; reason=violence; flagged_input={flagged}"})
    assert error(answer, 403)[1] == "Your input was flagged by content moderation"
    metadata = conforms("createVideo", answer)["error"]["metadata"]
    assert metadata["reasons"] == ["violence"] and metadata["provider_name"] == "Alibaba"
    assert len(metadata["flagged_input"]) == 100 and "..." in metadata["flagged_input"]


# -- options -------------------------------------------------------------------------------------
def test_the_options_that_pick_the_other_reading() -> None:
    fake = Fake(openrouter_polling_url="relative", openrouter_unknown_model_status=404,
                openrouter_models_auth="required", openrouter_signed_urls="off",
                openrouter_passthrough="strict", timing="instant")
    try:
        created = fake.submit(T2V).json()
        assert created["polling_url"] == f"/api/v1/videos/{created['id']}"
        done = fake.job(created["id"])
        assert done["status"] == "completed" and "urls" not in done and "expires_at" not in done
        with fake.handle.expect_violations():
            assert error(fake.submit({**T2V, "model": "x/y"}), 404)[1] == "Resource not found"
            strict = fake.submit({**T2V, "provider": {"options": {"alibaba": {"seed": 1}}}})
        assert error(strict, 400)[1] == ("Invalid request parameters: "
                                         "provider.options.alibaba.seed is not an allowed "
                                         "passthrough parameter for this model")
        assert fake.client.get("/videos/models", headers={"Authorization": ""}).status_code == 401
    finally:
        fake.close()


# -- webhooks (in process: recorded; tests/clients posts and signs them) -------------------------
def test_the_callback_is_owed_the_terminal_event(fake: Fake) -> None:
    hook = "http://127.0.0.1:9/openrouter"
    job_id = fake.submit({**T2V, "callback_url": hook}).json()["id"]
    failed = fake.submit({**T2V, "callback_url": hook},
                         **{"X-Wanmock-Scenario": "moderation"}).json()["id"]
    assert [h.state for h in fake.handle.webhooks()] == ["pending", "pending"]
    fake.handle.advance(3600)
    hooks = {h.task_id: h for h in fake.handle.webhooks()}
    done = hooks[job_id].body
    assert done["type"] == "video.generation.completed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", done["created_at"])
    polled = fake.job(job_id)
    assert done["data"] == {"id": job_id, "status": "completed", "model": "alibaba/wan-2.6",
                            "generation_id": polled["generation_id"],
                            "unsigned_urls": polled["unsigned_urls"], "usage": polled["usage"]}
    assert hooks[failed].body["type"] == "video.generation.failed"
    assert hooks[failed].body["data"]["error"] == "Content policy violation"


# -- everything a family gets ----------------------------------------------------------------------
def test_journal_and_dashboard_know_the_job(fake: Fake) -> None:
    job_id = fake.submit(T2V).json()["id"]
    fake.job(job_id)
    entries = fake.handle.requests(family="openrouter")
    assert [e.operation for e in entries] == ["createVideo", "getVideo"]
    assert fake.handle.polls(job_id) == [entries[1]]
    page = fake.client.get(f"http://127.0.0.1/_wanmock/ui/tasks/{job_id}",
                           headers={"Authorization": ""})
    assert page.status_code == 200 and job_id in page.text and "alibaba/wan-2.6" in page.text


def test_the_family_is_one_folder() -> None:
    """Nothing in the package outside providers/openrouter/ names OpenRouter; the catalogue
    names it only in entries of its own (the family-folder rule)."""
    root = Path(mockserver.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("providers/openrouter/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            # Another family's folder may name the same owner: fal's app alibaba/wan-3.0.
            other = rel.startswith("providers/") and rel.count("/") > 1
            pattern = r"openrouter|open_router" if other else r"openrouter|open_router|alibaba/wan"
            if re.search(pattern, line, re.I):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
    catalogue = load().catalogue
    for entry in catalogue.models():
        if "openrouter" in entry.families:
            assert entry.families == ("openrouter",) and entry.protocol == "openrouter"
    text = (contracts_dir() / "catalogue.yaml").read_text(encoding="utf-8")
    mentions = [line for line in text.splitlines() if "openrouter" in line.lower()]
    assert mentions and all(
        "families: [openrouter]" in line or "protocol: openrouter" in line
        or line.lstrip().startswith(("#", "openrouter:", "source:", "- model: alibaba/"))
        or "GET /api/v1/videos/models" in line for line in mentions), mentions
    assert (contracts_dir() / "openrouter.yaml").is_file()
