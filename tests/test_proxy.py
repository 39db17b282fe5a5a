"""`wanmock proxy` in front of a live fake on 127.0.0.1: real SDKs run whole jobs through it,
the cassette holds every exchange and no credential, `--guard` and `--budget` keep requests
from the upstream (checked in the upstream's own journal)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import dashscope
import httpx
import openai
import pytest
from dashscope import VideoSynthesis
from novita_client import NovitaClient
from novita_client.proto import V3TaskResponseStatus

from mockserver import cassette
from mockserver.cli import build_parser
from mockserver.errors import MockServerError
from mockserver.proxy import Proxy, parse_targets
from mockserver.server import ThreadedMockServer

KEY = "sk-proxy-secret-0123456789abcdef"
DS_SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
DS_HEADERS = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
pytestmark = [pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
              pytest.mark.usefixtures("loopback_only")]


@pytest.fixture(scope="module")
def upstream(instant_upstream) -> ThreadedMockServer:
    return instant_upstream  # tests/conftest.py


def _serve(proxy: Proxy) -> ThreadedMockServer:
    return ThreadedMockServer(app=proxy.app()).start()


@pytest.fixture(scope="module")
def recording(upstream, tmp_path_factory) -> Iterator[tuple[Proxy, ThreadedMockServer, list]]:
    out = tmp_path_factory.mktemp("proxy")
    said: list[str] = []
    proxy = Proxy(upstream.url, record=out / "run.jsonl", report=out / "report", budget=None,
                  echo=said.append)
    server = _serve(proxy)
    yield proxy, server, said
    server.stop()


@pytest.fixture(scope="module")
def guarded(upstream, tmp_path_factory) -> Iterator[tuple[Proxy, ThreadedMockServer]]:
    out = tmp_path_factory.mktemp("guarded")
    proxy = Proxy({"dashscope": upstream.url}, record=out / "guard.jsonl", guard=True,
                  budget=1, echo=None)
    server = _serve(proxy)
    yield proxy, server
    server.stop()


def _lines(proxy: Proxy) -> list[dict]:
    text = proxy.writer.path.read_text()
    return [json.loads(line) for line in text.splitlines()]


def _task_lines(proxy: Proxy, task: str) -> list[dict]:
    return [line for line in _lines(proxy)[1:] if line["task"] == task]


def assert_every_exchange_recorded(lines: list[dict], upstream, task: str) -> None:
    """What the provider saw of the task (its journal) is exactly what the cassette holds."""
    seen = [(e.operation, e.status) for e in upstream.backend.journal.entries(task_id=task)]
    assert [(x["operation"], x["response"]["status"]) for x in lines] == seen


def test_dashscope_sdk_job_through_the_proxy_is_recorded(recording, upstream, monkeypatch):
    proxy, server, _ = recording
    monkeypatch.setattr(dashscope, "base_http_api_url", server.url + "/api/v1")
    submitted = VideoSynthesis.async_call(model="wan2.6-t2v", prompt="a fox in snow",
                                          size="1280*720", duration=5, api_key=KEY)
    task_id = submitted.output.task_id
    done = VideoSynthesis.wait(task_id, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED"
    # the result URL passes through unchanged: the client downloads from the provider
    assert done.output.video_url.startswith(upstream.url + "/_wanmock/videos/")
    assert httpx.get(done.output.video_url).status_code == 200
    lines = _task_lines(proxy, task_id)
    assert [(x["operation"], x["response"]["status"]) for x in lines] == [
        ("createVideoSynthesis", 200), ("getTask", 200)]
    assert lines[0]["since_submit"] == 0.0 and lines[1]["since_submit"] > 0
    assert lines[1]["response"]["body"]["output"]["task_status"] == "SUCCEEDED"
    assert "Signature=[redacted]" in lines[1]["response"]["body"]["output"]["video_url"]
    assert lines[0]["request"]["headers"]["authorization"] == "Bearer [redacted]"
    assert all(not x["violations"] for x in lines)
    assert_every_exchange_recorded(lines, upstream, task_id)


def test_novita_client_job_through_the_proxy(recording, upstream):
    proxy, server, _ = recording
    client = NovitaClient(KEY, base_url=server.url)
    task_id = client._post("/v3/async/wan-t2v", {"prompt": "a comet", "width": 1280,
                                                  "height": 720})["task_id"]
    done = client.wait_for_task_v3(task_id, wait_for=3)
    assert done.task.status is V3TaskResponseStatus.TASK_STATUS_SUCCEED
    lines = _task_lines(proxy, task_id)
    assert [x["operation"] for x in lines] == ["createWanT2vTask", "getTaskResult"]
    assert_every_exchange_recorded(lines, upstream, task_id)


def test_openai_sdk_job_and_download_through_the_proxy(recording, upstream):
    proxy, server, _ = recording
    with openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        video = sdk.videos.create_and_poll(model="wan2.6-t2v", prompt="a lighthouse",
                                           seconds="5", size="1280*720", poll_interval_ms=1,
                                           extra_headers={"Content-Type": "application/json"})
        assert video.status == "completed"
        content = sdk.videos.download_content(video.id).read()
    assert content[4:8] == b"ftyp"  # an MP4, streamed through
    # a streamed answer is recorded once its last chunk has gone out
    deadline = time.monotonic() + 5
    while len(lines := _task_lines(proxy, video.id)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [x["operation"] for x in lines] == ["createVideo", "getVideo", "getVideoContent"]
    download = lines[-1]["response"]
    assert download["encoding"] == "omitted" and download["size"] == len(content)
    assert_every_exchange_recorded(lines, upstream, video.id)


def test_no_credential_reaches_the_cassette(recording):
    proxy, server, _ = recording
    with httpx.Client(base_url=server.url) as c:
        c.post(DS_SUBMIT, params={"api_key": KEY}, headers=DS_HEADERS,
               json={"model": "wan2.6-t2v", "input": {"prompt": "a key"}, "api_key": KEY,
                     "parameters": {"size": "1280*720"}})
        c.get("/v3/async/task-result", params={"task_id": "x", "key": KEY},
              headers={"Authorization": KEY, "X-Api-Key": KEY})
    text = proxy.writer.path.read_text()
    assert KEY not in text
    assert KEY[3:] not in text  # not even without its `sk-` prefix
    tail = _lines(proxy)[-2:]
    assert tail[0]["request"]["query"] == "api_key=[redacted]"
    assert tail[0]["request"]["body"]["api_key"] == "[redacted]"
    assert tail[1]["request"]["headers"]["x-api-key"] == "[redacted]"
    assert tail[1]["request"]["headers"]["authorization"] == "[redacted]"


def test_violations_are_printed_journaled_and_reported(recording):
    proxy, server, said = recording
    with httpx.Client(base_url=server.url, headers=DS_HEADERS) as c:
        answer = c.post(DS_SUBMIT, json={"model": "wan2.6-t2v"})
        journal = c.get("/_wanmock/journal", params={"operation": "createVideoSynthesis"})
        status = c.get("/_wanmock/proxy").json()
    assert answer.status_code == 400  # not guarded: the upstream answered
    assert any("[schema:required] input" in line for line in said)
    entry = journal.json()["entries"][-1]
    assert entry["violations"][0]["rule"] == "schema:required"
    assert entry["scenario"] == "proxy:upstream"
    ops = {(o["family"], o["operation"]): o for o in status["operations"]}
    assert ops[("dashscope", "createVideoSynthesis")]["statuses"]["400"] >= 1


def test_report_is_written_at_exit(upstream, tmp_path):
    proxy = Proxy(upstream.url, report=tmp_path / "exit", budget=1)
    with ThreadedMockServer(app=proxy.app()) as server:
        httpx.post(server.url + DS_SUBMIT, headers=DS_HEADERS, json={"model": "wan2.6-t2v"})
        for _ in range(2):  # one forwarded and billed, one refused by the budget
            httpx.post(server.url + DS_SUBMIT, headers=DS_HEADERS, json={
                "model": "wan2.6-t2v", "input": {"prompt": "a fox"}})
    data = json.loads((tmp_path / "exit.json").read_text())
    assert data["requests"] == 3 and data["violations"] == 1
    assert data["budget"]["families"] == {"dashscope": {
        "forwarded": 2, "refunded": 1, "refused": 1, "spent": 1}}
    text = (tmp_path / "exit.md").read_text()
    assert "schema:required" in text
    assert ("billable submits: 1 of 1 spent (forwarded 2, refunded 1, refused 1) - dashscope: "
            "forwarded 2, refunded 1, refused 1") in text


def test_guard_answers_a_violating_submit_locally(guarded, upstream):
    proxy, server = guarded
    before = len(upstream.backend.journal.entries(operation="createVideoSynthesis"))
    answer = httpx.post(server.url + DS_SUBMIT, headers=DS_HEADERS,
                        json={"model": "wan2.6-t2v"})
    assert answer.status_code == 400
    assert answer.headers["x-wanmock-proxy"] == "guard"
    assert answer.json()["code"] == "BadRequest.EmptyInput"  # DashScope's own envelope
    assert set(answer.json()) == {"code", "message", "request_id"}
    assert len(upstream.backend.journal.entries(operation="createVideoSynthesis")) == before
    [line] = [x for x in _lines(proxy)[1:] if x["origin"] == "guard"]
    assert line["violations"][0]["rule"] == "schema:required"


def test_guard_keeps_a_job_that_would_fail_later_local(guarded, upstream):
    proxy, server = guarded
    before = len(upstream.backend.journal.entries())
    with httpx.Client(base_url=server.url, headers=DS_HEADERS) as c:
        # wan2.6-t2v offers no 480P: DashScope accepts it and fails the task later
        created = c.post(DS_SUBMIT, json={"model": "wan2.6-t2v", "input": {"prompt": "x"},
                                          "parameters": {"size": "832*480"}})
        assert created.status_code == 200, created.text
        task_id = created.json()["output"]["task_id"]
        proxy.backend.clock.advance(30)
        polled = c.get(f"/api/v1/tasks/{task_id}").json()
    assert polled["output"]["task_status"] == "FAILED"
    assert polled["output"]["code"] == "InvalidParameter"
    assert len(upstream.backend.journal.entries()) == before  # the upstream saw neither


def test_budget_stops_forwarding_billable_submits(guarded, upstream):
    proxy, server = guarded
    body = {"model": "wan2.6-t2v", "input": {"prompt": "budget"},
            "parameters": {"size": "1280*720"}}
    before = len(upstream.backend.journal.entries(operation="createVideoSynthesis"))
    first = httpx.post(server.url + DS_SUBMIT, headers=DS_HEADERS, json=body)
    second = httpx.post(server.url + DS_SUBMIT, headers=DS_HEADERS, json=body)
    assert first.status_code == 200 and "x-wanmock-proxy" not in first.headers
    assert second.status_code == 429
    assert second.json()["code"] == "Throttling.RateQuota"  # DashScope's own quota answer
    assert set(second.json()) == {"code", "message", "request_id"}
    assert second.json()["request_id"]
    assert len(upstream.backend.journal.entries(operation="createVideoSynthesis")) == before + 1
    assert (proxy.spent, proxy.refused) == (1, 1)


def test_an_unreachable_target_is_a_502_in_the_family_envelope(tmp_path):
    proxy = Proxy("http://127.0.0.1:9", budget=None, timeout=2)
    with ThreadedMockServer(app=proxy.app()) as server:
        answer = httpx.post(server.url + "/v3/async/wan-t2v", json={"prompt": "a cat"},
                            headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 502
    assert answer.json()["reason"] == "WanmockUpstreamError"  # jiekou's {code, reason, ...}


def test_targets_parse_and_the_cli_takes_the_options():
    assert parse_targets(["https://dashscope-intl.aliyuncs.com/"]) == {
        None: "https://dashscope-intl.aliyuncs.com"}
    assert parse_targets(["jiekou=https://api.novita.ai", "dashscope=http://127.0.0.1:1"]) == {
        "jiekou": "https://api.novita.ai", "dashscope": "http://127.0.0.1:1"}
    with pytest.raises(MockServerError):
        parse_targets(["ftp://x"])
    args = build_parser().parse_args(["proxy", "--target", "https://x.test", "--record",
                                      "c.jsonl", "--guard", "--budget", "3", "--port", "0"])
    assert (args.targets, args.record, args.guard, args.budget) == (
        ["https://x.test"], "c.jsonl", True, 3)
    assert build_parser().parse_args(["proxy", "--target", "https://x.test"]).budget == 0


# -- the cassette reader ---------------------------------------------------------------------
def _exchange(seq: int) -> dict:
    return {"seq": seq, "time": 0.1 * seq, "family": "jiekou", "operation": "getTaskResult",
            "request": {"method": "GET", "path": "/v3/async/task-result", "query": "task_id=a"},
            "response": {"status": 200, "body": {"task": {"status": "TASK_STATUS_QUEUED"}},
                         "encoding": "json"}}


def test_bad_cassette_lines_are_reported_with_their_line_numbers(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    missing = _exchange(3)
    del missing["response"]
    lines = [json.dumps({"wanmock_cassette": True, "version": 1}), json.dumps(_exchange(1)),
             json.dumps({**_exchange(2), "version": 9}), json.dumps(missing),
             json.dumps(_exchange(4))[:40]]
    path.write_text("\n".join(lines) + "\n")
    read = cassette.read(path)
    assert [e.seq for e in read.exchanges] == [1]
    assert [(p.line, p.message.split(" (")[0]) for p in read.problems] == [
        (3, "unknown version 9"), (4, "missing field response"), (5, "not valid JSON")]
    with pytest.raises(cassette.CassetteError, match="line 5"):
        cassette.read(path, strict=True)


def test_a_cassette_of_an_unknown_version_is_refused(tmp_path: Path):
    path = tmp_path / "future.jsonl"
    path.write_text(json.dumps({"wanmock_cassette": True, "version": 2}) + "\n")
    with pytest.raises(cassette.CassetteError, match="line 1: unknown cassette version 2"):
        cassette.read(path)
    path.write_text("")
    with pytest.raises(cassette.CassetteError, match="line 1"):
        cassette.read(path)


def test_signed_urls_lose_their_signatures():
    url = ("https://dashscope-result.oss-cn-beijing.aliyuncs.com/a.mp4?Expires=1&"
           "OSSAccessKeyId=LTAI5tXYZ&Signature=abc%2Fdef%3D")
    assert cassette.redact_text(url) == (
        "https://dashscope-result.oss-cn-beijing.aliyuncs.com/a.mp4?Expires=1&"
        "OSSAccessKeyId=[redacted]&Signature=[redacted]")
    assert cassette.redact_body({"output": {"video_url": url}, "token": "t0k3n"}) == {
        "output": {"video_url": cassette.redact_text(url)}, "token": "[redacted]"}


def test_the_wanmock_proxy_command_prints_violations_and_reports_at_exit(upstream, tmp_path):
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "mockserver", "proxy", "--target", upstream.url,
               "--port", str(port), "--record", str(tmp_path / "tapes" / "cli.jsonl"),
               "--unlimited"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/_wanmock/proxy", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        answer = httpx.post(url + DS_SUBMIT, headers=DS_HEADERS, json={"model": "wan2.6-t2v"})
        assert answer.status_code == 400
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "billable submits: unlimited" in out
    assert "request violation [schema:required] input" in err
    assert "1 request(s), 1 contract violation(s), 0 billable submit(s) of unlimited" in err
    assert KEY not in out + err
    # the report goes next to the cassette, never unasked into the working directory
    assert sorted(p.name for p in (tmp_path / "tapes").iterdir()) == [
        "cli.jsonl", "cli.report.json", "cli.report.md"]
    assert list(cwd.iterdir()) == []
    report = json.loads((tmp_path / "tapes" / "cli.report.json").read_text())
    assert report["requests"] == 1 and report["violations"] == 1
    assert len((tmp_path / "tapes" / "cli.jsonl").read_text().splitlines()) == 2


def test_the_journal_holds_no_credential_either(recording):
    proxy, server, said = recording
    bare = "plainkey-without-prefix-987654"
    with httpx.Client(base_url=server.url) as c:
        c.post(DS_SUBMIT, headers={"Authorization": f"Bearer {bare}",
                                   "X-DashScope-Async": "enable"},
               json={"model": "wan2.6-t2v", "input": {"prompt": f"echo {bare}"},
                     "parameters": {"size": "1280*720"}, "token": "tok-0123456789"})
        journal = c.get("/_wanmock/journal").text
    assert bare not in journal and "tok-0123456789" not in journal
    assert bare not in "\n".join(said)
