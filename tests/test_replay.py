"""`wanmock serve --replay`: recorded jobs on the fake's own engine, whatever the poll rhythm.

Jobs are recorded through the proxy from a provider that adds a field the fake never sends
(`output.provider_note`), so a replayed body is visibly the recorded one. Clients polling ten
times faster and ten times slower than the recording see the recorded states in order and end
in the recorded final state."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from mockserver import create_app
from mockserver.cassette import Exchange
from mockserver.cli import build_parser
from mockserver.core.backend import Options
from mockserver.core.tasks import State
from mockserver.errors import MockServerError
from mockserver.replay import lifecycle
from mockserver.server import ThreadedMockServer
from tests.recording_helpers import (
    AUTH,
    DS,
    DS_BODY,
    DS_SUBMIT,
    dashscope_job,
    record,
    start,
    wrong_provider,
)

STEP = 0.5  # the recording polls every 0.5 s: queue 1 s, run 4 s (`fast`, 720P, 5 s)


def _note(request, status, body):
    if isinstance(body.get("output"), dict) and "task_status" in body["output"]:
        body["output"]["provider_note"] = body["output"]["task_status"].lower()
    return status, body


@pytest.fixture(scope="module")
def tape(tmp_path_factory) -> Iterator[tuple[Path, list[str], list[str]]]:
    """A cassette: one job that succeeds, one that fails, one refused submit."""
    out = tmp_path_factory.mktemp("replay")
    with ThreadedMockServer(timing="fast", clock="manual", seed=3,
                            video_dir=str(out / "videos")) as upstream:
        clock = upstream.backend.clock
        wrong = start(wrong_provider(upstream.url, _note))
        states: dict[str, list[str]] = {}

        def session(c: httpx.Client) -> None:
            states["ok"] = dashscope_job(c, clock, step=STEP)[1]
            states["failed"] = dashscope_job(
                c, clock, step=STEP, body={**DS_BODY, "input": {"prompt": "a storm"}},
                headers={"X-Wanmock-Scenario": "fail; kind=moderation; at=0.5"})[1]
            c.post(DS_SUBMIT, json={"model": "wan2.6-t2v"}, headers=DS)

        try:
            path = record(out / "jobs.jsonl", wrong.url, clock, session)
        finally:
            wrong.stop()
    yield path, states["ok"], states["failed"]


def _collapse(seq: list[str]) -> list[str]:
    return [s for i, s in enumerate(seq) if i == 0 or seq[i - 1] != s]


async def _replay(path: Path, step: float, body=DS_BODY, strict=False, mode="time"):
    # Polls at any rhythm, faster than the 20 QPS DashScope allows (decision rate-limits).
    app = create_app(replay=str(path), replay_strict=strict, clock="manual", seed=11,
                     dashscope_rate_limits="off",
                     mode=mode, families=["dashscope"])
    clock = app.state.backend.clock
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake", headers=DS) as c:
        created = await c.post(DS_SUBMIT, json=body)
        if created.status_code != 200:
            return created, [], None, None
        task_id = created.json()["output"]["task_id"]
        seen, last = [created.json()["output"]["task_status"]], None
        for _ in range(2000):
            clock.advance(step)
            last = (await c.get(f"/api/v1/tasks/{task_id}")).json()
            seen.append(last["output"]["task_status"])
            if seen[-1] in ("SUCCEEDED", "FAILED"):
                break
    video = None
    if last and last["output"].get("video_url"):  # a signed URL: no Authorization header
        async with httpx.AsyncClient(transport=transport) as download:
            video = (await download.get(last["output"]["video_url"])).content
    return created, seen, last, video


@pytest.mark.parametrize("step", [STEP / 10, STEP * 10], ids=["10x-faster", "10x-slower"])
def test_any_poll_rhythm_sees_the_recorded_states_in_order(tape, step):
    path, recorded, _ = tape
    created, seen, last, video = asyncio.run(_replay(path, step))
    assert _collapse(recorded) == ["PENDING", "RUNNING", "SUCCEEDED"]
    states = _collapse(seen)
    assert states[-1] == "SUCCEEDED"
    assert all(s in recorded for s in states)
    assert [recorded.index(s) for s in states] == sorted(recorded.index(s) for s in states)
    if step < STEP:  # a faster poller sees every recorded state, at the recorded times
        assert states == _collapse(recorded)
        assert seen.index("RUNNING") * step == pytest.approx(1.0, abs=1.5 * step)
        assert seen.index("SUCCEEDED") * step == pytest.approx(5.0, abs=1.5 * step)
    else:
        assert len(seen) == 2  # one poll, 5 s after submit: already done
    assert last["output"]["provider_note"] == "succeeded"  # the recorded body
    assert created.json()["output"]["task_id"] == last["output"]["task_id"]  # the fake's id
    url = last["output"]["video_url"]
    assert url.startswith("http://fake/_wanmock/videos/") and "[redacted]" not in url
    stream = av.open(io.BytesIO(video)).streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)


def test_poll_count_mode_replays_the_states_in_order(tape):
    path, recorded, _ = tape
    _, seen, last, _ = asyncio.run(_replay(path, 0.0, mode="polls"))
    assert _collapse(seen) == _collapse(recorded)
    assert last["output"]["provider_note"] == "succeeded"


def test_a_recorded_failure_replays_with_its_code(tape):
    path, _, recorded = tape
    body = {**DS_BODY, "input": {"prompt": "a storm"}}
    _, seen, last, _ = asyncio.run(_replay(path, STEP / 10, body=body))
    assert _collapse(seen) == _collapse(recorded) == ["PENDING", "RUNNING", "FAILED"]
    assert last["output"]["code"] == "DataInspectionFailed"
    assert last["output"]["provider_note"] == "failed"


def test_a_recorded_refusal_is_answered_as_recorded(tape):
    path, _, _ = tape
    created, _, _, _ = asyncio.run(_replay(path, 1, body={"model": "wan2.6-t2v"}))
    assert created.status_code == 400
    assert created.json()["code"] == "BadRequest.EmptyInput"


def test_unknown_requests_fall_back_to_the_fake_or_404_when_strict(tape):
    path, _, _ = tape
    other = {**DS_BODY, "input": {"prompt": "never recorded"}}
    _, seen, last, _ = asyncio.run(_replay(path, 1.0, body=other))
    assert seen[-1] == "SUCCEEDED" and "provider_note" not in last["output"]  # the plain fake
    created, seen, _, _ = asyncio.run(_replay(path, 1.0, body=other, strict=True))
    assert created.status_code == 404
    assert set(created.json()) == {"code", "message", "request_id"}  # DashScope's envelope
    assert "not in the cassette" in created.json()["message"]
    _, seen, last, _ = asyncio.run(_replay(path, 1.0, strict=True))  # a recorded job still is
    assert last["output"]["provider_note"] == "succeeded"


def test_replay_options_are_checked(tmp_path):
    with pytest.raises(MockServerError, match="replay_strict needs replay"):
        Options(replay_strict=True).check()
    with pytest.raises(MockServerError, match="no cassette"):
        Options(replay=str(tmp_path / "missing.jsonl")).check()
    args = build_parser().parse_args(["serve", "--replay", "x.jsonl", "--replay-strict"])
    assert (args.replay, args.replay_strict) == ("x.jsonl", True)


# -- the pytest plugin: record, then replay -----------------------------------------------------
PLUGIN_TEST = '''
import httpx

def test_job(wanmock):
    headers = {"Authorization": "Bearer sk-plugin-secret-000111222", "X-DashScope-Async": "enable"}
    with httpx.Client(base_url="https://dashscope.aliyuncs.com/api/v1", headers=headers) as c:
        task = c.post("/services/aigc/video-generation/video-synthesis",
                      json={"model": "wan2.6-t2v", "input": {"prompt": "a plugin cat"}}
                      ).json()["output"]["task_id"]
        for _ in range(20):
            status = c.get(f"/tasks/{task}").json()["output"]["task_status"]
            if status in ("SUCCEEDED", "FAILED"):
                break
    assert status == "SUCCEEDED"
'''


def test_plugin_records_a_cassette_per_test_then_replays_it(pytester, monkeypatch):
    pytester.makepyfile(test_recorded=PLUGIN_TEST)
    with ThreadedMockServer(timing="instant", seed=1, families=["dashscope"]) as upstream:
        monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-plugin-secret-000111222")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        result = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=record",
                                    f"--wanmock-upstream=dashscope={upstream.url}",
                                    "--wanmock-budget=1")
        result.assert_outcomes(passed=1)
        assert len(upstream.backend.journal.entries(operation="createVideoSynthesis")) == 1
    path = pytester.path / "tests/cassettes/test_recorded/test_job.jsonl"
    text = path.read_text()
    assert "sk-plugin-secret-000111222" not in text and "a plugin cat" in text
    replayed = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=replay")
    replayed.assert_outcomes(passed=1)
    path.unlink()
    missing = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=replay")
    missing.assert_outcomes(errors=1)  # in CI a missing cassette fails the run
    missing.stdout.fnmatch_lines(["*no cassette for this test*--wanmock-target=record*"])


def test_plugin_record_mode_keeps_to_the_budget(pytester, monkeypatch):
    pytester.makepyfile(test_recorded=PLUGIN_TEST)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-plugin-secret-000111222")
    result = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=record",
                                "--wanmock-upstream=dashscope=http://127.0.0.1:9", "-rs")
    result.assert_outcomes(skipped=1)  # budget 0: skipped before anything is sent
    result.stdout.fnmatch_lines(["*beyond the budget (0)*"])


SERVER_TEST = '''
import httpx

def test_srv(wanmock_server):
    headers = {"Authorization": "Bearer sk-any", "X-DashScope-Async": "enable"}
    with httpx.Client(base_url=wanmock_server.url + "/api/v1", headers=headers) as c:
        task = c.post("/services/aigc/video-generation/video-synthesis",
                      json={"model": "wan2.6-t2v", "input": {"prompt": "a plugin cat"}}
                      ).json()["output"]["task_id"]
        for _ in range(20):
            output = c.get(f"/tasks/{task}").json()["output"]
            if output["task_status"] in ("SUCCEEDED", "FAILED"):
                break
    assert output["task_status"] == "SUCCEEDED"
    assert output["replayed"] is True  # only the cassette says so
'''


def test_plugin_replays_cassettes_for_the_live_server_fixture(pytester, tmp_path):
    pytester.makepyfile(test_srv=SERVER_TEST)

    def note(request, status, body):
        if isinstance(body.get("output"), dict) and "task_status" in body["output"]:
            body["output"]["replayed"] = True
        return status, body

    with ThreadedMockServer(timing="instant", clock="manual", seed=1) as upstream:
        wrong = start(wrong_provider(upstream.url, note))
        try:
            record(pytester.path / "tests/cassettes/test_srv/test_srv.jsonl", wrong.url,
                   upstream.backend.clock, lambda c: dashscope_job(
                       c, upstream.backend.clock,
                       body={"model": "wan2.6-t2v", "input": {"prompt": "a plugin cat"}}))
        finally:
            wrong.stop()
    result = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=replay")
    result.assert_outcomes(passed=1)


def test_jiekou_and_openai_video_jobs_replay_too(tmp_path):
    with ThreadedMockServer(timing="fast", clock="manual", seed=3) as upstream:
        clock = upstream.backend.clock

        def session(c: httpx.Client) -> None:
            t = c.post("/v3/async/wan-t2v", json={"prompt": "koi", "width": 832, "height": 480},
                       headers=AUTH).json()["task_id"]
            v = c.post("/v1/videos", json={"model": "wan2.6-t2v", "prompt": "koi"},
                       headers=AUTH).json()["id"]
            for _ in range(16):
                clock.advance(0.5)
                c.get("/v3/async/task-result", params={"task_id": t}, headers=AUTH)
                c.get(f"/v1/videos/{v}", headers=AUTH)

        path = record(tmp_path / "two.jsonl", upstream.url, clock, session)

    async def replay():
        app = create_app(replay=str(path), clock="manual", seed=2)
        clock = app.state.backend.clock
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://fake", headers=AUTH) as c:
            t = (await c.post("/v3/async/wan-t2v", json={"prompt": "koi", "width": 832,
                                                         "height": 480})).json()["task_id"]
            v = (await c.post("/v1/videos", json={"model": "wan2.6-t2v",
                                                  "prompt": "koi"})).json()["id"]
            jobs, videos = [], []
            for _ in range(40):
                clock.advance(0.25)
                jobs.append((await c.get("/v3/async/task-result", params={"task_id": t}))
                            .json()["task"]["status"])
                videos.append((await c.get(f"/v1/videos/{v}")).json()["status"])
            content = await c.get(f"/v1/videos/{v}/content")
        return jobs, videos, content

    jobs, videos, content = asyncio.run(replay())
    assert _collapse(jobs) == ["TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING",
                               "TASK_STATUS_SUCCEED"]
    assert _collapse(videos) == ["queued", "in_progress", "completed"]
    assert content.status_code == 200 and content.content[4:8] == b"ftyp"


def _ex(seq: int, since: float, status_word: str, role: str = "query") -> Exchange:
    op = "createVideoSynthesis" if role == "submit" else "getTask"
    return Exchange(line=seq + 1, seq=seq, time=since, method="GET", path="/", query="",
                    request_headers={}, request_body=None, request_encoding="empty",
                    status=200, response_headers={},
                    response_body={"output": {"task_id": "t1", "task_status": status_word}},
                    response_encoding="json", family="dashscope", operation=op, role=role,
                    task="t1", since_submit=since)


def test_the_plan_puts_each_change_between_the_polls_that_bracket_it():
    lc = lifecycle("t1", [_ex(1, 0.0, "PENDING", "submit"), _ex(2, 1.0, "PENDING"),
                          _ex(3, 1.0004, "RUNNING"), _ex(4, 6.0, "RUNNING"),
                          _ex(5, 9.0, "SUCCEEDED")])
    assert 1.0 < lc.plan.queue_s < 1.0004  # polls 0.4 ms apart still see both states
    assert 9.0 - 1e-3 == pytest.approx(lc.plan.end_s)
    assert lc.queue_bounds == (1.0, 1.0004) and lc.end_bounds == (6.0, 9.0)
    assert lc.states == [State.QUEUED, State.RUNNING, State.SUCCEEDED]
    never = lifecycle("t1", [_ex(1, 0.0, "PENDING", "submit"), _ex(2, 30.0, "PENDING")])
    assert never.queue_bounds is None and never.end_bounds is None  # queued while recorded
    assert never.cut == "never ended in the recording: last seen PENDING at +30 s"
    # it ends when the recording does, failing from the queue: never an open-ended run
    assert never.plan.end_s == pytest.approx(30.0 + 1e-3)
    assert never.plan.failure.code == "WanmockRecordingEnded"


def test_plugin_replay_fails_a_stale_cassette(pytester):
    pytester.makepyfile(test_recorded=PLUGIN_TEST)
    path = pytester.path / "tests/cassettes/test_recorded/test_job.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"wanmock_cassette": true, "version": 1, "created": "2020-01-01T00:00:00Z"}\n')
    stale = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=replay",
                               "--wanmock-cassette-max-age=30")
    stale.assert_outcomes(errors=1)
    stale.stdout.fnmatch_lines(["*days old (more than 30)*re-record it*"])


def test_a_replayed_task_stays_its_keys_own(tape):
    path, _, _ = tape

    async def other_key():
        app = create_app(replay=str(path), clock="manual", seed=11, families=["dashscope"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake") as c:
            task = (await c.post(DS_SUBMIT, json=DS_BODY, headers=DS)).json()["output"]["task_id"]
            app.state.backend.clock.advance(10)
            return (await c.get(f"/api/v1/tasks/{task}", headers={
                "Authorization": "Bearer sk-someone-else-000000"})).json()

    body = asyncio.run(other_key())
    assert body["output"]["task_status"] == "UNKNOWN"  # DashScope's answer for another's task
    assert "provider_note" not in body["output"]


# -- a recording cut short ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def cut_tape(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """One job the client stopped polling after a 429 (RUNNING at +2 s, 429 at +2.5 s)."""
    out = tmp_path_factory.mktemp("cut")
    with ThreadedMockServer(timing="fast", clock="manual", seed=4) as upstream:
        clock = upstream.backend.clock
        ids = []

        def session(c: httpx.Client) -> None:
            task = c.post(DS_SUBMIT, json=DS_BODY, headers=DS).json()["output"]["task_id"]
            ids.append(task)
            for _ in range(4):
                clock.advance(STEP)
                c.get(f"/api/v1/tasks/{task}", headers=DS)
            clock.advance(STEP)
            throttled = c.get(f"/api/v1/tasks/{task}",
                              headers={**DS, "X-Wanmock-Scenario": "throttle"})
            assert throttled.status_code == 429  # ... and the client gave up here

        path = record(out / "cut.jsonl", upstream.url, clock, session)
    yield path, ids[0]


def test_a_job_that_never_ended_is_reported_at_load(cut_tape):
    from mockserver.replay import ReplayBook

    path, task = cut_tape
    book = ReplayBook.load(str(path))
    assert book.unfinished == [
        f"task {task} (line 2): never ended in the recording: last seen RUNNING at +2 s, "
        "then 429 Throttling at +2.5 s"]


def test_wanmock_serve_names_the_cut_jobs_at_start(cut_tape, capsys):
    from mockserver.cli import banner, build_parser, serve_app

    path, task = cut_tape
    args = build_parser().parse_args(["serve", "--replay", str(path), "--family", "dashscope"])
    banner(args, serve_app(args), None)
    out = capsys.readouterr().out.splitlines()
    assert f"  replay     {path}: 1 recorded job(s)" in out
    assert (f"  replay     task {task} (line 2): never ended in the recording: last seen "
            "RUNNING at +2 s, then 429 Throttling at +2.5 s") in out


def test_a_cassette_cut_after_a_429_replays_to_its_last_state_within_the_recorded_time(
        cut_tape):
    path, _ = cut_tape

    async def poll() -> tuple[list[tuple[float, int, str]], Any]:
        app = create_app(replay=str(path), clock="manual", seed=11, families=["dashscope"])
        clock = app.state.backend.clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake",
                                     headers=DS) as c:
            task = (await c.post(DS_SUBMIT, json=DS_BODY)).json()["output"]["task_id"]
            seen, elapsed = [], 0.0
            while elapsed < 60:  # a client that polls until something ends it
                clock.advance(0.1)
                elapsed = round(elapsed + 0.1, 6)
                answer = await c.get(f"/api/v1/tasks/{task}")
                word = (answer.json().get("output") or {}).get("task_status") or \
                    answer.json().get("code")
                seen.append((elapsed, answer.status_code, word))
                if answer.status_code != 200 or word in ("SUCCEEDED", "FAILED"):
                    break
            clock.advance(5)
            after = app.state.backend.view(app.state.backend.store.get(task))
            polls = app.state.backend.journal.entries(operation="getTask")
            page = (await c.get("/_wanmock/ui/journal")).text
            return seen, after, polls, page

    seen, after, polls, page = asyncio.run(poll())
    assert _collapse([w for _, _, w in seen]) == ["PENDING", "RUNNING", "Throttling"]
    first_running = next(t for t, _, w in seen if w == "RUNNING")
    assert first_running == pytest.approx(1.0, abs=0.11)  # as recorded: running from +1 s
    end, status, _ = seen[-1]
    assert status == 429 and end <= 2.5 + 0.1  # the recorded fault, within the recorded time
    assert after.state is State.FAILED  # and the task ended, never an open-ended run
    # every answer says it is the cassette's, and where the recording was cut
    cut = "never ended in the recording: last seen RUNNING at +2 s, then 429 Throttling at +2.5 s"
    assert {p.scenario for p in polls} == {f"replay of {cut_tape[1]} ({cut})"}
    assert cut in page


def test_a_cut_job_without_a_fault_ends_where_the_recording_ends(cut_tape, tmp_path):
    path, recorded = cut_tape
    lines = path.read_text().splitlines()
    (tmp_path / "no-429.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # no 429 at the end

    async def poll() -> tuple[list[str], Any]:
        app = create_app(replay=str(tmp_path / "no-429.jsonl"), clock="manual", seed=11,
                         families=["dashscope"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake",
                                     headers=DS) as c:
            task = (await c.post(DS_SUBMIT, json=DS_BODY)).json()["output"]["task_id"]
            words = []
            for _ in range(30):  # a client that polls until the task ends
                app.state.backend.clock.advance(0.25)
                output = (await c.get(f"/api/v1/tasks/{task}")).json()["output"]
                words.append(output["task_status"])
                if words[-1] in ("SUCCEEDED", "FAILED"):
                    break
            return words, (output, app.state.backend.journal.entries(operation="getTask")[-1])

    words, (last, entry) = asyncio.run(poll())
    assert _collapse(words) == ["PENDING", "RUNNING", "FAILED"]
    assert len(words) <= 10  # ended just after the last recorded poll (+2 s), not later
    assert last["code"] == "WanmockRecordingEnded"
    assert entry.scenario == (f"replay end of {recorded}: never ended in the recording: last "
                              "seen RUNNING at +2 s; ended FAILED where the recording ends")


def test_diff_asks_the_fake_for_the_fault_the_provider_answered(cut_tape, tmp_path, capsys):
    """The provider throttled a poll; the fake, asked for the same fault (x-wanmock-faults
    matched on status and code), answers it in its own envelope: no drift."""
    import json

    from mockserver.cli import main

    path, _ = cut_tape
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines[1:], start=1):  # as a real provider's 429: no scenario
        data = json.loads(line)
        data["request"]["headers"].pop("x-wanmock-scenario", None)
        lines[n] = json.dumps(data)
    real = tmp_path / "real-429.jsonl"
    real.write_text("\n".join(lines) + "\n")
    assert main(["diff", str(real), "--timing", "fast"]) == 0, capsys.readouterr().out
