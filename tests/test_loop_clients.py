"""The whole loop with real clients: the dashscope SDK (`VideoSynthesis`, `AioVideoSynthesis`
with its trailing-slash polls, the 2.x `Client`), novita-client and the openai SDK (multipart,
and a file) run through `wanmock proxy` in front of a provider on 127.0.0.1; the cassette
keeps forms as fields and file digests; `wanmock diff` against a fake with the same timing is
clean, and a planted difference is found by name; calibrate files each job under its model;
the multipart job replays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import dashscope
import httpx
import openai
import pytest
from dashscope import VideoSynthesis
from dashscope.aigc.video_synthesis import AioVideoSynthesis
from dashscope.api_entities.aio_session import close_shared_aio_session
from novita_client import NovitaClient
from novita_client.proto import V3TaskResponseStatus

from mockserver import cassette
from mockserver.calibrate import calibrate
from mockserver.cli import main
from mockserver.proxy import Proxy
from mockserver.server import ThreadedMockServer

KEY = "sk-loop-clients-0123456789"
pytestmark = [pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
              pytest.mark.usefixtures("loopback_only")]


def _aio(url: str) -> str:
    async def run() -> str:
        try:
            job = await AioVideoSynthesis.async_call(model="wan2.6-t2v", prompt="a paper boat",
                                                     size="1280*720", api_key=KEY)
            done = await AioVideoSynthesis.wait(job, api_key=KEY)
        finally:
            await close_shared_aio_session()
        return str(done.output.task_status)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def tape(tmp_path_factory) -> Iterator[Path]:
    """One cassette of every client's job, recorded through the proxy."""
    out = tmp_path_factory.mktemp("loop-clients")
    path = out / "clients.jsonl"
    with ThreadedMockServer(timing="instant", seed=8, video_dir=str(out / "v")) as provider:
        proxy = Proxy(provider.url, budget=8, record=path, echo=None)
        with ThreadedMockServer(app=proxy.app()) as server:
            saved = dashscope.base_http_api_url
            dashscope.base_http_api_url = server.url + "/api/v1"
            try:
                done = VideoSynthesis.call(model="wan2.6-t2v", prompt="a fox", size="1280*720",
                                           api_key=KEY)
                assert done.output.task_status == "SUCCEEDED"
                assert _aio(server.url) == "SUCCEEDED"
            finally:
                dashscope.base_http_api_url = saved
            with dashscope.Client(api_key=KEY, base_url=server.url + "/api/v1") as client:
                job = client.videos.jobs.create(model="wan2.6-t2v", prompt="a kite",
                                                size="1280*720")
                assert client.videos.jobs.wait(job.task_id).status == "SUCCEEDED"
            novita = NovitaClient(KEY, base_url=server.url)
            task = novita._post("/v3/async/wan-t2v", {"prompt": "a comet", "width": 1280,
                                                      "height": 720})["task_id"]
            assert novita.wait_for_task_v3(task, wait_for=3).task.status is \
                V3TaskResponseStatus.TASK_STATUS_SUCCEED
            with openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0) as sdk:
                for extra in ({}, {"input_reference": ("ref.png", b"\x89PNG-ref", "image/png")}):
                    video = sdk.videos.create_and_poll(  # multipart, the SDK's default
                        model="wan2.6-t2v", prompt="a red kite", seconds="5", size="1280*720",
                        poll_interval_ms=1, **extra)
                    assert video.status == "completed"
            form = httpx.post(server.url + "/v1/video/generations", headers={
                "Authorization": f"Bearer {KEY}"}, data={"model": "wan2.6-t2v",
                                                         "prompt": "a urlencoded form"})
            assert form.status_code == 200, form.text
            assert proxy.recorder.stats.violation_count == 0  # every body judged as read
    yield path


def _submits(path: Path) -> list[dict]:
    lines = [json.loads(x) for x in path.read_text().splitlines()[1:]]
    return [x for x in lines if x["role"] == "submit"]


def test_forms_are_recorded_as_fields_and_file_digests(tape):
    submits = _submits(tape)
    forms = [s["request"] for s in submits if s["request"]["encoding"] in ("form", "multipart")]
    assert [f["encoding"] for f in forms] == ["multipart", "multipart", "form"]
    plain, with_file, urlencoded = (f["body"] for f in forms)
    assert plain == {"form": {"prompt": "a red kite", "model": "wan2.6-t2v", "seconds": "5",
                              "size": "1280*720"}, "files": []}
    [part] = with_file["files"]
    assert (part["name"], part["filename"], part["content_type"], part["size"]) == (
        "input_reference", "ref.png", "image/png", 8)
    assert len(part["sha256"]) == 64 and "\\x89PNG" not in tape.read_text()
    assert urlencoded["form"] == {"model": "wan2.6-t2v", "prompt": "a urlencoded form"}
    assert [s["request"]["sha256"] for s in submits].count(forms[0]["sha256"]) == 1
    # the digest is over the fields: another boundary, the same form, the same digest
    assert forms[0]["sha256"] == cassette.encode_form("multipart", plain["form"], [])["sha256"]


def test_diff_against_a_fake_with_the_same_timing_is_clean(tape, capsys):
    assert main(["diff", str(tape), "--timing", "instant"]) == 0
    out = capsys.readouterr().out
    assert "0 differences -> NO DRIFT" in out and "createVideo" in out


def test_a_planted_difference_is_found_by_name(tape, tmp_path, capsys):
    lines = tape.read_text().splitlines()
    for n, line in enumerate(lines[1:], start=1):
        data = json.loads(line)
        body = data["response"]["body"]
        if data["operation"] == "getTask" and body["output"]["task_status"] == "SUCCEEDED":
            body["output"]["planted_quality"] = "hd"
            lines[n] = json.dumps(data)
            break
    planted = tmp_path / "planted.jsonl"
    planted.write_text("\n".join(lines) + "\n")
    assert main(["diff", str(planted), "--timing", "instant"]) == 1
    out = capsys.readouterr().out
    assert [x for x in out.splitlines() if x.startswith("- ")] == [
        "- dashscope.getTask [field-missing] output.planted_quality: recorded hd, fake null"]
    assert "1 differences -> DRIFT" in out


def test_calibrate_files_form_jobs_under_their_model(tape):
    profile = calibrate(cassette.read(tape))
    assert "unknown" not in profile["models"]
    # 3 dashscope jobs + the 2 multipart ones (the urlencoded one was never polled: its queue
    # time was not observed, so it is no sample)
    assert profile["models"]["wan2.6-t2v"]["samples"] == 5


def test_the_multipart_job_replays(tape):
    with ThreadedMockServer(replay=str(tape), families=["newapi"], seed=2) as fake, \
            openai.OpenAI(base_url=fake.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        video = sdk.videos.create_and_poll(model="wan2.6-t2v", prompt="a red kite",
                                           seconds="5", size="1280*720", poll_interval_ms=1)
        [submit] = fake.backend.journal.entries(operation="createVideo")
        polls = fake.backend.journal.entries(operation="getVideo")
        page = httpx.get(fake.url + "/_wanmock/ui/journal").text  # the dashboard says so too
    assert video.status == "completed"
    assert "the recorded answer (wanmock serve --replay)" in page
    # marked in the journal: these answers are the cassette's (the recorded job, matched on
    # the multipart body's fields)
    assert submit.scenario is not None and submit.scenario.startswith("replay of task_")
    assert polls[-1].scenario == submit.scenario
    # Every poll is marked, those the cassette has no answer for too (the fake's own answer,
    # in a state the recording never polled in).
    assert all(p.scenario and p.scenario.startswith(submit.scenario) for p in polls), [
        p.scenario for p in polls]
