"""`wanmock diff` and `wanmock calibrate` on cassettes recorded through the proxy.

The fake's own traffic shows no drift; each deliberately wrong provider in front of the fake (a
renamed field, a changed status word, an error in another envelope, a state that moves
backwards, a slower queue) is reported as that kind of difference, and the command exits 1."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest

from mockserver import cassette
from mockserver.app import create_app
from mockserver.calibrate import calibrate, write_profile
from mockserver.cli import main
from mockserver.core.tasks import Lifecycle
from mockserver.diff import diff
from mockserver.errors import MockServerError
from mockserver.server import ThreadedMockServer
from tests.recording_helpers import (
    AUTH,
    DS,
    DS_SUBMIT,
    dashscope_job,
    record,
    start,
    wrong_provider,
)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[ThreadedMockServer]:
    with ThreadedMockServer(timing="fast", clock="manual", seed=3,
                            video_dir=str(tmp_path_factory.mktemp("diff-videos"))) as live:
        yield live


def _poll(client: httpx.Client, clock, path: str, params=None, headers=AUTH) -> None:
    for _ in range(14):
        clock.advance(0.5)
        client.get(path, params=params, headers=headers)


def _every_family(upstream):
    clock = upstream.backend.clock

    def session(c: httpx.Client) -> None:
        dashscope_job(c, clock)
        dashscope_job(c, clock, headers={"X-Wanmock-Scenario": "fail; kind=moderation"})
        t = c.post("/v3/async/wan-t2v", json={"prompt": "a cat", "width": 832, "height": 480},
                   headers=AUTH).json()["task_id"]
        _poll(c, clock, "/v3/async/task-result", {"task_id": t})
        t = c.post("/v1/video/generations", json={"model": "wan2.6-t2v", "prompt": "a cat"},
                   headers=AUTH).json()["task_id"]
        _poll(c, clock, f"/v1/video/generations/{t}")
        t = c.post("/v1/videos", json={"model": "wan2.6-t2v", "prompt": "a cat"},
                   headers=AUTH).json()["id"]
        _poll(c, clock, f"/v1/videos/{t}")
        t = c.post("/wan" + DS_SUBMIT, json={"model": "wan2.6-t2v", "input": {"prompt": "x"}},
                   headers=DS).json()["output"]["task_id"]
        _poll(c, clock, f"/v1/tasks/{t}")
        c.post(DS_SUBMIT, json={"model": "wan2.6-t2v"}, headers=DS)  # errors, in each envelope
        c.post("/v3/async/wan-t2v", json={"width": 832}, headers=AUTH)
        c.post("/v1/video/generations", json={"model": "nope"}, headers=AUTH)
        c.get("/v1/tasks/nope", headers=AUTH)
        c.get("/api/v1/tasks", headers=AUTH)

    return session


def test_the_fakes_own_traffic_shows_no_drift(upstream, tmp_path):
    path = record(tmp_path / "own.jsonl", upstream.url, upstream.backend.clock,
                  _every_family(upstream))
    junit, report = tmp_path / "drift.xml", tmp_path / "drift.md"
    code = main(["diff", str(path), "--timing", "fast", "--junit", str(junit),
                 "--report", str(report)])
    assert code == 0, report.read_text()
    result = diff(cassette.read(path), timing="fast")
    assert result.tasks == 6 and result.exchanges >= 80 and not result.drifts
    assert {f for f, _ in result.checked} == {"dashscope", "jiekou", "newapi", "apiyi"}
    suites = ET.parse(junit).getroot()
    assert suites.get("failures") == "0" and len(suites.findall("testsuite")) == 4
    assert "Verdict: **no drift**" in report.read_text()


def _rename(request, status, body):
    if isinstance(body.get("output"), dict) and "orig_prompt" in body["output"]:
        body["output"]["original_prompt"] = body["output"].pop("orig_prompt")
    return status, body


def _status_word(request, status, body):
    if body.get("output", {}).get("task_status") == "SUCCEEDED":
        body["output"]["task_status"] = "SUCCESS"
    return status, body


def _envelope(request, status, body):
    if status >= 400:
        return status, {"error": {"message": body.get("message"), "type": "invalid_request",
                                  "code": body.get("code")}}
    return status, body


def _backwards():
    running: dict[str, int] = {}

    def mutate(request, status, body):
        out = body.get("output", {})
        if out.get("task_status") == "RUNNING":
            running[out["task_id"]] = running.get(out["task_id"], 0) + 1
            if running[out["task_id"]] == 3:
                out["task_status"] = "PENDING"
                out.pop("scheduled_time", None)
        return status, body

    return mutate


def _slow_queue(clock):
    submitted: dict[str, float] = {}

    def mutate(request, status, body):
        out = body.get("output", {})
        task = out.get("task_id")
        if out.get("task_status") == "PENDING" and task not in submitted:
            submitted[task] = clock.now()
        if out.get("task_status") == "RUNNING" and clock.now() - submitted.get(task, 0) < 4:
            out["task_status"] = "PENDING"
            out.pop("scheduled_time", None)
        return status, body

    return mutate


@pytest.mark.parametrize(("name", "kind", "where"), [
    ("renamed field", "field-missing", "output.original_prompt"),  # the fake lacks it
    ("changed status word", "word", "output.task_status"),
    ("error in another envelope", "envelope", "(top level)"),
    ("state moves backwards", "state-sequence", "(task)"),
    ("slower queue", "timing", "queue_s"),
])
def test_a_wrong_provider_is_reported_as_drift(upstream, tmp_path, name, kind, where):
    clock = upstream.backend.clock
    mutate = {"renamed field": _rename, "changed status word": _status_word,
              "error in another envelope": _envelope, "state moves backwards": _backwards(),
              "slower queue": _slow_queue(clock)}[name]
    wrong = start(wrong_provider(upstream.url, mutate))
    try:
        def session(c: httpx.Client) -> None:
            dashscope_job(c, clock)
            c.post(DS_SUBMIT, json={"model": "wan2.6-t2v"}, headers=DS)

        path = record(tmp_path / "wrong.jsonl", wrong.url, clock, session)
    finally:
        wrong.stop()
    junit = tmp_path / "drift.xml"
    assert main(["diff", str(path), "--timing", "fast", "--junit", str(junit)]) == 1
    result = diff(cassette.read(path), timing="fast")
    found = {(d.kind, d.where) for d in result.drifts}
    assert (kind, where) in found, found
    failures = ET.parse(junit).getroot().iter("failure")
    assert kind in {f.get("type") for f in failures}


def test_drift_report_shows_both_sides_grouped(upstream, tmp_path):
    clock = upstream.backend.clock
    wrong = start(wrong_provider(upstream.url, _status_word))
    try:
        path = record(tmp_path / "w.jsonl", wrong.url, clock, lambda c: dashscope_job(c, clock))
    finally:
        wrong.stop()
    report = tmp_path / "drift.md"
    main(["diff", str(path), "--timing", "fast", "--report", str(report)])
    text = report.read_text()
    assert "## dashscope `getTask`" in text and "### word (1)" in text
    # a word the fake does not know ends nothing: its twin is still running at that time
    assert "| `output.task_status` | SUCCESS | RUNNING |" in text


def test_diff_and_calibrate_report_bad_lines_and_refuse_unknown_versions(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"wanmock_cassette": true, "version": 1}\n{"seq": 1, "time": 0, "requ\n')
    assert main(["diff", str(path)]) == 0  # nothing to compare: no drift, one bad line
    assert "line 2: not valid JSON" in capsys.readouterr().err
    path.write_text('{"wanmock_cassette": true, "version": 3}\n')
    assert main(["diff", str(path)]) == 2
    assert "line 1: unknown cassette version 3" in capsys.readouterr().err
    assert main(["calibrate", str(path), "-o", str(tmp_path / "p.yaml")]) == 2


# -- calibrate -------------------------------------------------------------------------------
def test_calibrate_gives_a_profile_that_serve_timing_uses(upstream, tmp_path, capsys):
    clock = upstream.backend.clock

    hd = {"model": "wan2.6-t2v", "input": {"prompt": "hd"},
          "parameters": {"size": "1920*1080", "duration": 5}}

    def session(c: httpx.Client) -> None:
        for _ in range(3):
            dashscope_job(c, clock)
        dashscope_job(c, clock, body=hd)

    path = record(tmp_path / "cal.jsonl", upstream.url, clock, session)
    profile = calibrate(cassette.read(path))
    assert profile["models"]["wan2.6-t2v"]["samples"] == 4
    entry = profile["models"]["wan2.6-t2v/720P/5s"]
    assert entry["samples"] == 3
    assert entry["queue_s"]["p50"] == 1.0 and entry["run_s"]["p50"] == 4.0  # `fast`, 720P 5 s
    assert profile["models"]["wan2.6-t2v/1080P/5s"]["run_s"]["max"] == 6.0  # 5.8 s, 0.5 s polls
    out = tmp_path / "profile.yaml"
    assert main(["calibrate", str(path), "-o", str(out)]) == 0
    assert "wan2.6-t2v" in capsys.readouterr().out
    assert main(["diff", str(path), "--timing", str(out)]) == 0  # like the provider: no drift
    app = create_app(timing=str(out), clock="manual", seed=1)
    assert _Async(app).submit().status_code == 200  # 720P: its own entry, not the model's
    assert _Async(app).submit(hd).status_code == 200
    sd, full_hd = sorted(app.state.backend.tasks(), key=lambda t: t.spec.sr)
    assert (sd.plan.queue_s, sd.plan.run_s) == (1.0, 4.0)
    assert (full_hd.plan.queue_s, full_hd.plan.run_s) == (1.0, 6.0)


def test_calibrate_never_invents_a_run_time(upstream, tmp_path, capsys):
    """A model whose recorded tasks all failed has no `run_s`: serve takes the next entry's
    (here the default's), and a profile with no succeeded task at all the built-in realistic
    run time; every figure says how many samples it rests on."""
    clock = upstream.backend.clock
    doomed = {"model": "wan2.5-t2v-preview", "input": {"prompt": "doomed"},
              "parameters": {"size": "1280*720", "duration": 5}}
    fail = {"X-Wanmock-Scenario": "fail; kind=moderation; at=0.5"}

    def session(c: httpx.Client) -> None:
        dashscope_job(c, clock)
        for _ in range(2):
            dashscope_job(c, clock, body=doomed, headers=fail)

    path = record(tmp_path / "failed.jsonl", upstream.url, clock, session)
    profile = calibrate(cassette.read(path))
    entry = profile["models"]["wan2.5-t2v-preview"]
    assert "run_s" not in entry and entry["queue_s"]["samples"] == 2
    assert profile["default"]["queue_s"]["samples"] == 3
    assert profile["default"]["run_s"]["samples"] == 1 and profile["default"]["run_s"]["min"] > 0
    out = tmp_path / "failed.yaml"
    assert main(["calibrate", str(path), "-o", str(out)]) == 0
    assert "wan2.5-t2v-preview" in capsys.readouterr().out
    app = create_app(timing=str(out), clock="manual", seed=1)
    assert _Async(app).submit(doomed).status_code == 200
    [task] = app.state.backend.tasks()
    assert task.plan.run_s == profile["default"]["run_s"]["p50"] == 4.0  # the default's

    only_failed = record(tmp_path / "only.jsonl", upstream.url, clock,
                         lambda c: dashscope_job(c, clock, body=doomed, headers=fail))
    bare = calibrate(cassette.read(only_failed))
    assert "run_s" not in bare["default"]
    write_profile(bare, tmp_path / "bare.json")
    app = create_app(timing=str(tmp_path / "bare.json"), clock="manual", seed=1)
    _Async(app).submit(doomed)
    [task] = app.state.backend.tasks()
    assert 90 <= task.plan.run_s <= 720  # the built-in realistic run, not an invented 0 s


class _Async:
    """A DashScope submit into an app, from sync test code."""

    def __init__(self, app):
        self.app = app

    def submit(self, body=None):
        import asyncio

        async def go():
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                return await c.post(DS_SUBMIT, headers=DS, json=body or {
                    "model": "wan2.6-t2v", "input": {"prompt": "p"},
                    "parameters": {"size": "1280*720", "duration": 5}})

        return asyncio.run(go())


def test_profile_times_are_seeded_and_follow_the_distribution(tmp_path):
    spread = {"min": 2, "p10": 3, "p25": 4, "p50": 10, "p75": 20, "p90": 40, "max": 50}
    path = tmp_path / "p.json"
    write_profile({"wanmock_timing_profile": 1, "default": {"queue_s": spread,
                                                             "run_s": spread}}, path)

    def plans(seed):
        # Many submits at one moment: no per-model rate or queue (decision rate-limits) may
        # bend the profile's own times.
        app = create_app(timing=str(path), clock="manual", seed=seed,
                         dashscope_rate_limits="off")
        for _ in range(20):
            _Async(app).submit()
        return [(t.plan.queue_s, t.plan.run_s) for t in app.state.backend.tasks()]

    first = plans(4)
    assert first == plans(4) and first != plans(5)
    assert all(2 <= q <= 50 and 2 <= r <= 50 for q, r in first)
    assert len({q for q, _ in first}) > 10


@pytest.mark.parametrize("bad", [".inf", ".nan"])
def test_a_profile_with_non_finite_seconds_is_refused(tmp_path, bad):
    spread = f"{{min: 2, p10: 3, p25: 4, p50: 10, p75: 20, p90: 40, max: {bad}}}"
    path = tmp_path / "inf.yaml"
    path.write_text(f"wanmock_timing_profile: 1\ndefault: {{queue_s: {spread}, "
                    f"run_s: {spread}}}\n")
    with pytest.raises(MockServerError, match="finite"):
        Lifecycle(clock=None, timing=str(path))  # type: ignore[arg-type]


def test_a_bad_profile_is_refused_up_front(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("wanmock_timing_profile: 1\ndefault: {queue_s: {min: 3, max: 1}}\n")
    with pytest.raises(MockServerError, match="bad.yaml"):
        Lifecycle(clock=None, timing=str(bad))  # type: ignore[arg-type]
    assert main(["serve", "--timing", str(tmp_path / "missing.yaml"), "--port", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["serve", "--timing", "slowish"])
