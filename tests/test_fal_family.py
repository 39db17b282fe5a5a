"""The fal family in process: fal-client 1.0.3, unchanged, through the pytest plugin's routing
of fal's real hosts (queue.fal.run, fal.run, rest.fal.ai, v3.fal.media), and fal's wire rules
the clients rely on (contracts/fal.yaml)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest

import mockserver
from mockserver.core.tasks import State
from mockserver.images import SAMPLE_PNG_DATA_URI
from mockserver.providers.fal import signing

fal_client = pytest.importorskip("fal_client", reason="pip install -e '.[test]' (fal-client)")

KEY = "wm-key-id:wm-key-secret"
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
    assert wanmock.tasks("fal") == []


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
