"""Replicate predictions through the differential loop and beyond one process: recorded by
`wanmock proxy` from a live fake (the stand-in for https://api.replicate.com), diffed with no
drift, replayed with the recorded states; the proxy's budget counting its creates; two fakes
sharing a prediction through a store; the journal and the dashboard. One upstream for the
module, on a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver import cassette
from mockserver.diff import diff
from mockserver.handle import WanMock
from mockserver.proxy import Proxy
from mockserver.server import ThreadedMockServer
from tests.recording_helpers import record

KEY = "r8_wanmock_loop_0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
T2V = "/v1/models/wan-video/wan-2.2-t2v-fast/predictions"
BODY = {"input": {"prompt": "a lighthouse", "resolution": "480p"}}
ENDED = ("succeeded", "failed", "canceled", "aborted")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedMockServer]:
    with ThreadedMockServer(families=["replicate"], timing="fast", clock="manual", seed=3,
                            video_dir=str(tmp_path_factory.mktemp("rep-loop"))) as live:
        yield live


def _job(client: httpx.Client, clock: Any, prompt: str,
         headers: dict[str, str] | None = None) -> list[str]:
    created = client.post(T2V, json={"input": {**BODY["input"], "prompt": prompt}},
                          headers={**AUTH, **(headers or {})})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    seen = [created.json()["status"]]
    for _ in range(20):
        clock.advance(0.5)
        seen.append(client.get(f"/v1/predictions/{pid}", headers=AUTH).json()["status"])
        if seen[-1] in ENDED:
            break
    return seen


@pytest.fixture(scope="module")
def tape(upstream: ThreadedMockServer, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[Path, dict[str, list[str]]]:
    clock = upstream.backend.clock
    states: dict[str, list[str]] = {}

    def session(c: httpx.Client) -> None:
        states["ok"] = _job(c, clock, "a lighthouse")
        states["failed"] = _job(c, clock, "a storm", {"X-Wanmock-Scenario": "moderation"})
        c.post(T2V, json={"input": {"prompt": "a cat", "resolution": "4k"}}, headers=AUTH)
        c.get("/v1/models/wan-video/wan-2.2-t2v-fast", headers=AUTH)

    path = record(tmp_path_factory.mktemp("rep-tape") / "replicate.jsonl", upstream.url,
                  clock, session)
    return path, states


def test_recorded_then_diffed_without_drift(tape: tuple[Path, dict[str, list[str]]]) -> None:
    path, states = tape
    assert states["ok"][0] == "starting" and states["ok"][-1] == "succeeded"
    assert "processing" in states["ok"] and states["failed"][-1] == "failed"
    exchanges = cassette.read(path).exchanges
    assert {e.family for e in exchanges} == {"replicate"}
    assert [e.operation for e in exchanges][:2] == ["createWan22T2vFastPrediction",
                                                    "getPrediction"]
    assert all(KEY not in line for line in path.read_text().splitlines())  # redacted
    result = diff(cassette.read(path), timing="fast")
    assert result.tasks == 2 and not result.drifts, result.drifts
    assert {f for f, _ in result.checked} == {"replicate"}


def test_replayed_with_the_recorded_states(tape: tuple[Path, dict[str, list[str]]],
                                           tmp_path: Path) -> None:
    path, states = tape
    with ThreadedMockServer(families=["replicate"], replay=str(path), clock="manual",
                            seed=8, video_dir=str(tmp_path)) as fake, \
            httpx.Client(base_url=fake.url, headers=AUTH) as client:
        clock = fake.backend.clock
        created = client.post(T2V, json=BODY)
        assert created.status_code == 201
        seen = [created.json()["status"]]
        for _ in range(40):
            clock.advance(0.25)  # twice as often as the recording polled
            seen.append(client.get(f"/v1/predictions/{created.json()['id']}").json()["status"])
        refused = client.post(T2V, json={"input": {"prompt": "a cat", "resolution": "4k"}})

    def steps(states: list[str]) -> list[str]:
        return [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]

    assert steps(seen) == steps(states["ok"])
    assert refused.status_code == 422
    assert refused.json()["title"] == "Input validation failed"


def test_the_proxys_budget_counts_its_creates(upstream: ThreadedMockServer,
                                              tmp_path: Path) -> None:
    """Budget 1: a refused create is refunded, one is billed, the next is stopped before it
    leaves; reads are free."""
    proxy = Proxy(upstream.url, record=tmp_path / "budget.jsonl", budget=1,
                  clock=upstream.backend.clock.now)
    before = len(list(upstream.backend.tasks("replicate")))
    with ThreadedMockServer(app=proxy.app()) as server, \
            httpx.Client(base_url=server.url, headers=AUTH) as client:
        refused = client.post(T2V, json={"input": {"prompt": "a", "resolution": "4k"}})
        billed = client.post(T2V, json=BODY)
        stopped = client.post(T2V, json=BODY)
        read = client.get(f"/v1/predictions/{billed.json()['id']}")
    assert (refused.status_code, billed.status_code, read.status_code) == (422, 201, 200)
    # the over-budget answer is Replicate's 429 problem, its detail saying why
    assert stopped.status_code == 429
    assert "budget of 1 billable submit(s) is spent" in stopped.json()["detail"]
    assert len(list(upstream.backend.tasks("replicate"))) == before + 1
    counted = proxy.submits.summary()["families"]["replicate"]
    assert (counted["forwarded"], counted["refunded"], counted["refused"]) == (2, 1, 1)


def test_two_fakes_share_one_prediction_through_a_store(tmp_path: Path) -> None:
    """Over a shared store (sqlite here; redis keeps the same driver contract) a prediction
    created on one fake is polled, canceled-or-not and downloaded from another."""
    shared = {"store": f"sqlite:///{tmp_path}/state.db", "video_dir": str(tmp_path / "v"),
              "families": ["replicate"], "clock": "manual", "timing": "fast", "seed": 5}
    with ThreadedMockServer(**shared) as one, ThreadedMockServer(**shared) as two, \
            httpx.Client(headers=AUTH) as client:
        created = client.post(one.url + T2V, json=BODY).json()
        WanMock(one.backend).advance(1.5)
        running = client.get(f"{two.url}/v1/predictions/{created['id']}").json()
        WanMock(two.backend).advance(60)
        done = client.get(f"{one.url}/v1/predictions/{created['id']}").json()
        assert (running["status"], done["status"]) == ("processing", "succeeded")
        assert done["urls"]["get"] == f"{one.url}/v1/predictions/{created['id']}"
        video = client.get(done["output"].replace(one.url, two.url))
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
        listed = client.get(f"{two.url}/v1/predictions").json()["results"]
        assert [p["id"] for p in listed] == [created["id"]]


def test_journal_and_dashboard_know_the_prediction(upstream: ThreadedMockServer) -> None:
    with httpx.Client(base_url=upstream.url, headers=AUTH) as client:
        pid = client.post(T2V, json=BODY).json()["id"]
        client.get(f"/v1/predictions/{pid}")
        handle = WanMock(upstream.backend)
        entries = [e for e in handle.requests(family="replicate") if e.task_id == pid]
        assert [e.operation for e in entries] == ["createWan22T2vFastPrediction",
                                                  "getPrediction"]
        assert handle.polls(pid) == [entries[1]]
        page = client.get(f"/_wanmock/ui/tasks/{pid}", headers={"Authorization": ""})
    assert page.status_code == 200 and pid in page.text
    assert "wan-video/wan-2.2-t2v-fast" in page.text


def test_a_budgeted_check_creates_at_most_its_budget() -> None:
    """`wanmock check --budget 2` against Replicate: every create counts (any of the twelve
    model paths, the version path, a deployment's), reads are free, and it still checks."""
    from mockserver.app import create_app
    from mockserver.conformance import check

    app = create_app(["replicate"], seed=11, mode="polls", queued_polls=0, running_polls=1,
                     api_keys={KEY})
    report = check(app, families=["replicate"], api_key=KEY, budget=2, max_examples=1,
                   phases=("examples", "fuzzing"))
    created = list(app.state.backend.tasks("replicate"))
    assert 0 < len(created) <= 2
    assert report.cases > 20 and report.findings == [], report.summary()
