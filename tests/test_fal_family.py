"""The fal family in process: fal-client 1.0.3, unchanged, through the pytest plugin's routing
of fal's real hosts (queue.fal.run, fal.run, rest.fal.ai, v3.fal.media), and fal's wire rules
the clients rely on (contracts/fal.yaml)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mockserver
from mockserver.core.tasks import State
from mockserver.images import SAMPLE_PNG_DATA_URI
from mockserver.providers.fal import signing

fal_client = pytest.importorskip("fal_client", reason="pip install -e '.[test]' (fal-client)")

KEY = "wm-key-id:wm-key-secret"
AUTH = {"Authorization": f"Key {KEY}"}
APP = "fal-ai/wan/v2.2-a14b/image-to-video"
PNG = base64.b64decode(SAMPLE_PNG_DATA_URI.split(",", 1)[1])


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)  # read by fal-client on each call


@pytest.mark.wanmock(timing="instant")
def test_upload_then_image_to_video(wanmock, tmp_path: Path):
    """upload_file (rest.fal.ai token, v3.fal.media bytes), then an i2v job with the URL."""
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    url = fal_client.upload_file(picture)
    assert re.fullmatch(r"https://v3b\.fal\.media/files/b/\w+/cat\.png", url), url
    served = httpx.get(url)
    assert served.content == PNG and served.headers["content-type"] == "image/png"
    updates: list = []
    result = fal_client.subscribe(APP, {"prompt": "the cat blinks", "image_url": url},
                                  with_logs=True, on_queue_update=updates.append)
    assert result["video"]["content_type"] == "video/mp4"
    assert result["prompt"] == "the cat blinks" and isinstance(result["seed"], int)
    video = httpx.get(result["video"]["url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert result["video"]["file_size"] == len(video.content)
    assert isinstance(updates[-1], fal_client.Completed) and updates[-1].logs
    [submit] = wanmock.requests(family="fal", operation="submitWan22A14bI2v")
    assert json.loads(submit.request_body)["image_url"] == url
    assert KEY not in json.dumps(submit.request_headers)  # the journal keeps no key
    [task] = wanmock.tasks("fal")
    assert task.spec.model == "wan2.2-i2v"
    # First and last frame (fal-ai/wan-flf2v): both images are required, in the runner.
    both = {"prompt": "the cat turns", "start_image_url": url, "end_image_url": url}
    assert fal_client.subscribe("fal-ai/wan-flf2v", both)["video"]["content_type"] == "video/mp4"
    with wanmock.expect_violations(), pytest.raises(fal_client.client.FalClientHTTPError) as e:
        fal_client.subscribe("fal-ai/wan-flf2v", {"prompt": "the cat turns",
                                                  "start_image_url": url})
    assert e.value.status_code == 422 and e.value.message[0]["loc"] == ["body", "end_image_url"]
    assert e.value.message[0]["type"] == "missing"
    # Wan 2.7 takes the same upload as its first frame.
    out = fal_client.subscribe("fal-ai/wan/v2.7/image-to-video",
                               {"prompt": "the cat blinks", "image_url": url, "duration": 2,
                                "resolution": "720p"})
    assert out["video"]["duration"] == 2.0 and out["actual_prompt"] == "the cat blinks"
    assert sorted(t.spec.model for t in wanmock.tasks("fal")) == [
        "wan2.1-flf2v", "wan2.1-flf2v", "wan2.2-i2v", "wan2.7-i2v"]


@pytest.mark.wanmock(clock="manual", mode="time", timing="fast")
def test_status_words_logs_and_urls(wanmock):
    handle = fal_client.submit("fal-ai/wan/v2.7/text-to-video", {"prompt": "a lighthouse"})
    root = f"https://queue.fal.run/fal-ai/wan/requests/{handle.request_id}"
    assert (handle.status_url, handle.response_url) == (root + "/status", root)
    rebuilt = fal_client.SyncClient().get_handle("fal-ai/wan/v2.7/text-to-video",
                                                 handle.request_id)
    assert (rebuilt.status_url, rebuilt.response_url, rebuilt.cancel_url) == (
        handle.status_url, handle.response_url, handle.cancel_url)
    assert isinstance(handle.status(), fal_client.Queued)
    raw = httpx.get(root + "/status", headers={"Authorization": f"Key {KEY}"})
    assert raw.status_code == 202 and raw.json()["logs"] is None
    task = wanmock.task(handle.request_id)
    wanmock.advance(wanmock.backend.view(task).eta / 2 + task.plan.queue_s / 2)
    running = handle.status(with_logs=True)
    assert isinstance(running, fal_client.InProgress) and running.logs
    assert handle.status(with_logs=False).logs is None
    early = httpx.get(root, headers={"Authorization": f"Key {KEY}"})  # fal-client would wait
    assert early.status_code == 400 and early.json()["detail"] == "Request is still in progress"
    wanmock.run_until_terminal(handle.request_id)
    done = handle.status()
    assert isinstance(done, fal_client.Completed) and done.error is None
    assert done.metrics["inference_time"] > 0
    assert handle.get()["video"]["url"].startswith("https://queue.fal.run/_wanmock/videos/")


@pytest.mark.wanmock(timing="instant")
def test_the_runner_refuses_an_input_with_422(wanmock):
    with wanmock.expect_violations():
        handle = fal_client.submit("wan/v2.6/text-to-video", {"prompt": "a fox", "duration": "7"})
        with pytest.raises(fal_client.client.FalClientHTTPError) as refused:
            handle.get()
    assert refused.value.status_code == 422
    assert refused.value.response_headers["x-fal-retryable"] == "false"
    [item] = refused.value.message
    assert item["loc"] == ["body", "duration"] and item["type"] == "literal_error"
    assert item["msg"] == "Input should be '5', '10' or '15'"
    status = handle.status()
    assert isinstance(status, fal_client.Completed) and status.error == "Invalid status code: 422"
    assert wanmock.backend.view(wanmock.task(handle.request_id)).state is State.FAILED


@pytest.mark.wanmock(timing="instant", fal_validation="submit")
def test_validation_at_submit_answers_at_once(wanmock):
    with wanmock.expect_violations(), pytest.raises(fal_client.client.FalClientHTTPError) as e:
        fal_client.submit("wan/v2.6/text-to-video", {"duration": "5"})
    assert e.value.status_code == 422 and e.value.message[0]["type"] == "missing"
    assert e.value.response_headers["x-fal-retryable"] == "false"
    assert wanmock.tasks("fal") == []
    # A transient model error says it may be retried; a request error names its type instead.
    internal = fal_client.submit("wan/v2.6/text-to-video", {"prompt": "a fox"},
                                 headers={"X-Wanmock-Scenario": "fail; kind=internal"})
    wanmock.run_until_terminal()
    answer = httpx.get(internal.response_url, headers={"Authorization": f"Key {KEY}"})
    assert answer.status_code == 500 and answer.json()["error_type"] == "internal_server_error"
    assert answer.headers["x-fal-retryable"] == "true"
    assert answer.headers["x-fal-error-type"] == "internal_server_error"


@pytest.mark.wanmock(clock="manual", mode="time", timing="fast")
def test_cancel_answers_each_state(wanmock):
    app = "fal-ai/wan-t2v"
    handle = fal_client.submit(app, {"prompt": "a cat"})
    handle.cancel()  # 202 CANCELLATION_REQUESTED while queued
    with pytest.raises(fal_client.client.FalClientHTTPError) as again:
        handle.cancel()
    assert again.value.status_code == 400
    assert again.value.response.json() == {"status": "ALREADY_COMPLETED"}
    with pytest.raises(fal_client.client.FalClientHTTPError) as result:
        handle.get()
    assert (result.value.status_code, result.value.error_type) == (400, "request_cancelled")
    assert handle.status().error_type == "request_cancelled"
    gone = httpx.put("https://queue.fal.run/fal-ai/wan-t2v/requests/nope/cancel",
                     headers={"Authorization": f"Key {KEY}"})
    assert gone.status_code == 404 and gone.json() == {"status": "NOT_FOUND"}


@pytest.mark.wanmock(timing="instant")
def test_run_host_and_unknown_apps(wanmock):
    out = fal_client.run("wan/v2.6/text-to-video", {"prompt": "a fox", "resolution": "720p"})
    assert (out["video"]["width"], out["video"]["height"]) == (1280, 720)
    assert out["actual_prompt"] == "a fox"
    [entry] = wanmock.requests(family="fal", operation="runAppTask")
    assert entry.path == "/fal.run/wan/v2.6/text-to-video"
    silent = fal_client.run("wan/v2.6/image-to-video/flash",
                            {"prompt": "a fox", "image_url": IMG, "generate_audio": False,
                             "resolution": "720p"})
    assert silent["video"]["content_type"] == "video/mp4"
    [flash] = wanmock.requests(family="fal", operation="runAppVersionTask")
    assert flash.path == "/fal.run/wan/v2.6/image-to-video/flash"
    assert wanmock.tasks("fal")[-1].spec.audio is False
    turbo = fal_client.run("fal-ai/wan/v2.2-a14b/text-to-video/turbo",
                           {"prompt": "a kite", "resolution": "480p"})
    assert turbo["prompt"] == "a kite"
    [five] = wanmock.requests(family="fal", operation="runAppVersionTaskVariant")
    assert five.path == "/fal.run/fal-ai/wan/v2.2-a14b/text-to-video/turbo"
    with wanmock.expect_violations(), pytest.raises(fal_client.client.FalClientHTTPError) as e:
        fal_client.run("fal-ai/veo-3", {"prompt": "x"})
    assert (e.value.status_code, e.value.message) == (404, "Application 'veo-3' not found")


@pytest.mark.wanmock(clock="manual", mode="time", timing="fast")
def test_start_timeout_and_queue_length(wanmock):
    auth = {"Authorization": f"Key {KEY}", "X-Fal-Request-Timeout": "0.5"}
    first = httpx.post("https://queue.fal.run/fal-ai/wan-t2v?fal_max_queue_length=1",
                       json={"prompt": "a"}, headers=auth)
    assert first.status_code == 200
    full = httpx.post("https://queue.fal.run/fal-ai/wan-t2v?fal_max_queue_length=1",
                      json={"prompt": "b"}, headers={"Authorization": f"Key {KEY}"})
    assert full.status_code == 429 and full.json()["error_type"] == "queue_full"
    wanmock.advance(1)
    result = httpx.get(first.json()["response_url"], headers=auth)
    assert result.status_code == 504
    assert result.headers["x-fal-request-timeout-type"] == "user"
    assert result.json() == {"detail": "Request timed out", "error_type": "request_timeout"}


def test_webhook_signature_and_the_published_key():
    key = signing.private_key(b"seed")
    body = b'{"request_id":"r1","status":"OK","payload":{}}'
    headers = signing.sign_headers(key, "r1", "wanmock-user", 1_800_000_000, body)
    keys = signing.jwks(key)
    assert signing.verify(keys, headers, body, now=1_800_000_100)
    assert not signing.verify(keys, headers, body.replace(b"OK", b"KO"), now=1_800_000_100)
    assert not signing.verify(keys, headers, body, now=1_800_000_400)  # beyond 300 s
    # fal's own sample decodes x with no padding added: a padded x works, an unpadded one not
    x = keys["keys"][0]["x"]
    assert len(x) == 44 and base64.urlsafe_b64decode(x)
    with pytest.raises(ValueError):
        base64.urlsafe_b64decode(signing.public_x(key, padded=False))
    text = "\n".join(["r1", "wanmock-user", "1800000000", hashlib.sha256(body).hexdigest()])
    assert signing.message("r1", "wanmock-user", "1800000000", body) == text.encode()


def test_the_family_is_one_folder():
    """Nothing in the package outside providers/fal/ names fal (the family-folder rule)."""
    root = Path(mockserver.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("providers/fal/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bfal\b|fal\.(run|ai|media)|X-Fal|x-fal", line, re.I):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
    assert (root.parent / "contracts" / "fal.yaml").is_file()


@pytest.mark.wanmock(mode="polls")
def test_status_stream_sends_each_change_then_closes(wanmock):
    """GET .../status/stream: `data:` events as the status body, logs only the new lines,
    closed after COMPLETED (what @fal-ai/client's streaming mode reads)."""
    auth = {"Authorization": f"Key {KEY}"}
    created = httpx.post("https://queue.fal.run/fal-ai/wan-t2v", json={"prompt": "a cat"},
                         headers=auth).json()
    stream = httpx.get(created["status_url"] + "/stream", params={"logs": "1"}, headers=auth,
                       timeout=30)
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in stream.text.split("\n\n")
              if line.startswith("data: ")]
    assert [e["status"] for e in events][-1] == "COMPLETED"
    assert "IN_PROGRESS" in [e["status"] for e in events]
    lines = [log["message"] for e in events for log in e.get("logs") or []]
    assert len(lines) == len(set(lines)) and "Encoding video" in lines  # each line once
    assert events[-1]["metrics"]["inference_time"] > 0


@pytest.mark.wanmock(timing="instant")
def test_both_key_forms(wanmock):
    """`Key <id>:<secret>` and a plain `Key <key>` (what FAL_KEY holds) are both accepted;
    no key or another scheme is fal's 401 (decision authorization)."""
    url = "https://queue.fal.run/fal-ai/wan-t2v"
    for key in (KEY, "a-plain-fal-key"):
        sent = httpx.post(url, json={"prompt": "a"}, headers={"Authorization": f"Key {key}"})
        assert sent.status_code == 200 and sent.json()["status"] == "IN_QUEUE", sent.text
    with wanmock.expect_violations():
        missing = httpx.post(url, json={"prompt": "a"})
        bearer = httpx.post(url, json={"prompt": "a"}, headers={"Authorization": f"Bearer {KEY}"})
    assert (missing.status_code, missing.json()) == (401, {"detail": "Unauthorized"})
    assert (bearer.status_code, bearer.json()) == (401, {"detail": "Unauthorized"})
    assert len(wanmock.tasks("fal")) == 2


@pytest.mark.wanmock(timing="instant", fal_strict_key=True)
def test_the_strict_key_format_refuses_a_key_without_a_colon(wanmock):
    url = "https://queue.fal.run/fal-ai/wan-t2v"
    with wanmock.expect_violations():
        plain = httpx.post(url, json={"prompt": "a"}, headers={"Authorization": "Key plain"})
    assert plain.status_code == 401
    assert plain.json() == {"detail": "Invalid Key Authorization header format. "
                                      "Expected '<key_id>:<key_secret>'."}
    paired = httpx.post(url, json={"prompt": "a"}, headers={"Authorization": f"Key {KEY}"})
    assert paired.status_code == 200


# -- the endpoints added after the first twelve (contracts/fal.yaml decision endpoints) ---------
IMG = "https://v3.fal.media/files/rabbit/cat.png"
CLIP = "https://v3.fal.media/files/rabbit/clip.mp4"
SPEECH = "https://v3.fal.media/files/rabbit/speech.mp3"
LORA = "https://huggingface.co/example/wan-lora/resolve/main/style.safetensors"
# Small outputs where the endpoint takes them: the fake renders each result as a real MP4.
SMALL = {"resolution": "480p", "duration": 2}
SMALL_720 = {"resolution": "720p", "duration": 2}
# endpoint, a valid body, the catalogue model, and one endpoint-specific field's bad value with
# the pydantic type fal's 422 names.
NEW_ENDPOINTS = [
    ("fal-ai/wan/v2.7/image-to-video", {"prompt": "a cat", "image_url": IMG, **SMALL_720},
     "wan2.7-i2v", ("duration", "5", "int_type")),
    ("fal-ai/wan/v2.7/reference-to-video",
     {"prompt": "Character1 waves", "reference_video_urls": [CLIP], **SMALL_720}, "wan2.7-r2v",
     ("duration", 12, "literal_error")),
    ("fal-ai/wan/v2.7/edit-video", {"prompt": "make it snow", "video_url": CLIP, **SMALL_720},
     "wan2.7-videoedit", ("audio_setting", "keep", "literal_error")),
    ("wan/v2.6/image-to-video/flash", {"prompt": "a fox", "image_url": IMG, "resolution": "720p"},
     "wan2.6-i2v-flash", ("generate_audio", "loud", "bool_type")),
    ("wan/v2.6/reference-to-video/flash",
     {"prompt": "Character1 sings", "image_urls": [IMG], "resolution": "720p"},
     "wan2.6-r2v-flash", ("video_urls", [CLIP] * 4, "too_long")),
    ("alibaba/wan-3.0/image-to-video", {"start_image_url": IMG, **SMALL}, "wan3.0-i2v",
     ("duration", 31, "less_than_equal")),
    ("alibaba/wan-3.0-prime/text-to-video", {"prompt": "a paper boat", **SMALL},
     "wan3.0-prime-t2v", ("resolution", "4k", "literal_error")),
    ("alibaba/wan-3.0-prime/image-to-video", {"start_image_url": IMG, **SMALL},
     "wan3.0-prime-i2v", ("end_image_url", 7, "string_type")),
    ("fal-ai/wan/v2.2-a14b/text-to-video/turbo", {"prompt": "a kite", "resolution": "480p"},
     "wan2.2-t2v-turbo", ("acceleration", "max", "literal_error")),
    ("fal-ai/wan/v2.2-a14b/image-to-video/turbo",
     {"prompt": "a kite", "image_url": IMG, "resolution": "480p"}, "wan2.2-i2v-turbo",
     ("aspect_ratio", "21:9", "literal_error")),
    ("fal-ai/wan/v2.2-a14b/video-to-video",
     {"prompt": "as clay", "video_url": CLIP, "resolution": "480p"}, "wan2.2-v2v",
     ("strength", "strong", "float_type")),
    ("fal-ai/wan/v2.2-5b/text-to-video", {"prompt": "lanterns", "resolution": "580p"},
     "wan2.2-5b-t2v", ("resolution", "480p", "literal_error")),
    ("fal-ai/wan/v2.2-5b/image-to-video",
     {"prompt": "lanterns", "image_url": IMG, "resolution": "580p"}, "wan2.2-5b-i2v",
     ("num_interpolated_frames", 5, "less_than_equal")),
    ("fal-ai/wan-vace-14b", {"prompt": "a robot dances", "video_url": CLIP, "task": "pose"},
     "wan2.1-vace-14b", ("task", "paint", "literal_error")),
    ("fal-ai/wan-vace-14b/depth", {"prompt": "a robot dances", "video_url": CLIP},
     "wan2.1-vace-14b-v2v", ("resolution", "1080p", "literal_error")),
    ("fal-ai/wan-vace-14b/pose", {"prompt": "a robot dances", "video_url": CLIP},
     "wan2.1-vace-14b-v2v", ("sampler", "ddim", "literal_error")),
    ("fal-ai/wan-vace-14b/inpainting",
     {"prompt": "a red door", "video_url": CLIP, "mask_image_url": IMG}, "wan2.1-vace-14b-v2v",
     ("mask_video_url", 3, "string_type")),
    ("fal-ai/wan-vace-14b/outpainting",
     {"prompt": "a wider street", "video_url": CLIP, "expand_left": True}, "wan2.1-vace-14b-v2v",
     ("expand_ratio", 1.5, "less_than_equal")),
    ("fal-ai/wan-pro/text-to-video", {"prompt": "a hummingbird"}, "wan2.1-pro-t2v",
     ("enable_safety_checker", "sure", "bool_type")),
    ("fal-ai/wan-pro/image-to-video", {"prompt": "it flies", "image_url": IMG},
     "wan2.1-pro-i2v", ("enable_safety_checker", "sure", "bool_type")),
    # The reframe app's prompt is optional ("Optional for reframing"): none is sent.
    ("fal-ai/wan-vace-14b/reframe", {"video_url": CLIP}, "wan2.1-vace-14b-reframe",
     ("zoom_factor", "close", "float_type")),
    ("fal-ai/wan/v2.2-14b/speech-to-video",
     {"prompt": "she speaks", "image_url": IMG, "audio_url": SPEECH}, "wan2.2-14b-s2v",
     ("num_frames", 124, "less_than_equal")),
    ("fal-ai/wan/v2.2-14b/animate/move", {"image_url": IMG, "video_url": CLIP},
     "wan2.2-14b-animate-move", ("use_turbo", "fast", "bool_type")),
    ("fal-ai/wan/v2.2-14b/animate/replace", {"image_url": IMG, "video_url": CLIP},
     "wan2.2-14b-animate-replace", ("resolution", "1080p", "literal_error")),
    ("fal-ai/wan/v2.2-5b/text-to-video/distill", {"prompt": "lanterns", "resolution": "580p"},
     "wan2.2-5b-t2v-distill", ("aspect_ratio", "4:3", "literal_error")),
    ("fal-ai/wan/v2.2-5b/text-to-video/fast-wan", {"prompt": "lanterns", "resolution": "480p"},
     "wan2.2-5b-t2v-fast", ("num_frames", 162, "less_than_equal")),
    ("fal-ai/wan/v2.2-a14b/text-to-video/lora",
     {"prompt": "a kite", "resolution": "480p", "loras": [{"path": LORA, "scale": 0.8}]},
     "wan2.2-t2v-lora", ("reverse_video", "yes", "bool_type")),
    ("fal-ai/wan/v2.2-a14b/image-to-video/lora",
     {"prompt": "a kite", "image_url": IMG, "resolution": "480p"}, "wan2.2-i2v-lora",
     ("loras", "style", "list_type")),
]
# The outputs that differ from {video, seed[, actual_prompt]} (fal-js output types): I2VOutput
# is the video alone; WanMotionOutput, edittoOutput and Animate's output echo the prompt.
VIDEO_ALONE = ("wan2.1-pro", "wan2.2-14b-s2v")
PROMPT_ECHOED = ("wan2.2", "wan2.1-vace")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for the module's many in-process requests (a client per call builds its TLS
    context each time); the plugin's routing intercepts it like any other. No default key: a
    signed video URL refuses a second auth mechanism, as OSS does."""
    with httpx.Client() as client:
        yield client


@pytest.mark.parametrize(("endpoint", "body", "model", "bad"), NEW_ENDPOINTS,
                         ids=[e[0] for e in NEW_ENDPOINTS])
@pytest.mark.wanmock(clock="manual", mode="time", timing="fast")
def test_each_endpoint_runs_and_refuses_its_own_fields(wanmock, http, endpoint, body, model,
                                                        bad):
    """Submit -> status -> result with a playable MP4 on the fake's clock; the queue URLs keep
    owner/alias only; a bad value of a field of this endpoint is fal's 422 from the runner."""
    sent = http.post(f"https://queue.fal.run/{endpoint}", json=body, headers=AUTH)
    assert sent.status_code == 200, sent.text
    created = sent.json()
    root = "https://queue.fal.run/" + "/".join(endpoint.split("/")[:2]) + "/requests/"
    assert created["response_url"] == root + created["request_id"]
    assert created["status_url"] == root + created["request_id"] + "/status"
    queued = http.get(created["status_url"], headers=AUTH)
    assert (queued.status_code, queued.json()["status"]) == (202, "IN_QUEUE")
    assert wanmock.task(created["request_id"]).spec.model == model
    wanmock.run_until_terminal(created["request_id"])
    done = http.get(created["status_url"], headers=AUTH).json()
    assert done["status"] == "COMPLETED" and "error" not in done
    result = http.get(created["response_url"], headers=AUTH)
    assert result.status_code == 200, result.text
    out = result.json()
    video = http.get(out["video"]["url"])
    assert video.content[4:8] == b"ftyp" and out["video"]["file_size"] == len(video.content)
    if model.startswith(VIDEO_ALONE):  # I2VOutput: the video alone
        assert set(out) == {"video"}
    else:
        assert isinstance(out["seed"], int)
        if model.startswith(PROMPT_ECHOED):  # WanMotionOutput, edittoOutput
            assert out["prompt"] == body.get("prompt", "")
    field, value, kind = bad
    with wanmock.expect_violations():
        refused = http.post(f"https://queue.fal.run/{endpoint}", json={**body, field: value},
                            headers=AUTH)
        wanmock.run_until_terminal(refused.json()["request_id"])
        answer = http.get(refused.json()["response_url"], headers=AUTH)
    assert answer.status_code == 422 and answer.headers["x-fal-retryable"] == "false"
    [item] = answer.json()["detail"]
    assert item["loc"] == ["body", field] and item["type"] == kind, item


@pytest.mark.wanmock(clock="manual", mode="time", timing="fast")
def test_reframe_alone_of_the_vace_apps_runs_without_a_prompt(wanmock, http):
    """fal-ai/wan-vace-14b/reframe's prompt is optional (its own catalogue entry); depth, on the
    same model, still requires one; speech-to-video's output carries the speech (sound on)."""
    answers = {}
    with wanmock.expect_violations():
        for app in ("fal-ai/wan-vace-14b/reframe", "fal-ai/wan-vace-14b/depth"):
            created = http.post(f"https://queue.fal.run/{app}", json={"video_url": CLIP},
                                headers=AUTH).json()
            wanmock.run_until_terminal(created["request_id"])
            answers[app] = http.get(created["response_url"], headers=AUTH)
    assert answers["fal-ai/wan-vace-14b/reframe"].status_code == 200
    depth = answers["fal-ai/wan-vace-14b/depth"]
    assert depth.status_code == 422
    assert [(d["loc"], d["type"]) for d in depth.json()["detail"]] == [(["body", "prompt"],
                                                                         "missing")]
    speech = http.post("https://queue.fal.run/fal-ai/wan/v2.2-14b/speech-to-video",
                       json={"prompt": "hello", "image_url": IMG, "audio_url": SPEECH},
                       headers=AUTH).json()
    silent = http.post("https://queue.fal.run/fal-ai/wan/v2.2-14b/animate/move",
                       json={"image_url": IMG, "video_url": CLIP}, headers=AUTH).json()
    assert wanmock.task(speech["request_id"]).spec.audio is True
    assert wanmock.task(silent["request_id"]).spec.audio is False


@pytest.mark.wanmock(clock="manual", mode="time", timing="fast")
def test_cross_field_rules_of_the_new_endpoints(wanmock, http):
    """Wan 2.7 i2v takes a first frame or a clip, not both and not neither (decision
    wan27-i2v-inputs); Wan 2.6 R2V flash needs a reference; Wan 3.0 Prime runs faster than
    Wan 3.0 on the same input (the catalogue's speed)."""
    cases = {"both": {"image_url": IMG, "video_url": CLIP}, "neither": {"prompt": "a cat"},
             "clip": {"video_url": CLIP, "resolution": "720p", "duration": 2},
             "no_refs": {"prompt": "Character1"}}
    answers = {}
    with wanmock.expect_violations():
        for name, body in cases.items():
            app = ("wan/v2.6/reference-to-video/flash" if name == "no_refs"
                   else "fal-ai/wan/v2.7/image-to-video")
            created = http.post(f"https://queue.fal.run/{app}", json=body, headers=AUTH).json()
            wanmock.run_until_terminal(created["request_id"])
            answers[name] = http.get(created["response_url"], headers=AUTH)
    assert answers["clip"].status_code == 200
    codes = {name: (a.status_code, a.json()["detail"][0]["loc"], a.json()["detail"][0]["type"])
             for name, a in answers.items() if name != "clip"}
    assert codes == {"both": (422, ["body"], "value_error"),
                     "neither": (422, ["body", "image_url"], "missing"),
                     "no_refs": (422, ["body", "image_urls"], "missing")}
    plans = {}
    for app in ("alibaba/wan-3.0/text-to-video", "alibaba/wan-3.0-prime/text-to-video"):
        created = http.post(f"https://queue.fal.run/{app}", json={"prompt": "a boat"},
                            headers=AUTH).json()
        plans[app] = wanmock.task(created["request_id"]).plan.run_s
    assert plans["alibaba/wan-3.0-prime/text-to-video"] < plans["alibaba/wan-3.0/text-to-video"]
