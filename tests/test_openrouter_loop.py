"""OpenRouter jobs through the differential loop: recorded by `wanmock proxy` from a live fake
(the stand-in for https://openrouter.ai), diffed with no drift, replayed with the recorded
states, and the proxy's budget stops a billable submit. One upstream for the module, on a
manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mockserver import cassette
from mockserver.diff import diff
from mockserver.proxy import Proxy
from mockserver.server import ThreadedMockServer
from tests.recording_helpers import record

KEY = "sk-or-v1-loop-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"model": "alibaba/wan-2.6", "prompt": "a lighthouse", "duration": 5,
        "resolution": "720p"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedMockServer]:
    with ThreadedMockServer(families=["openrouter"], timing="fast", clock="manual", seed=3,
                            video_dir=str(tmp_path_factory.mktemp("or-loop"))) as live:
        yield live


def _job(client: httpx.Client, clock, prompt: str, headers=None) -> list[str]:
    created = client.post("/api/v1/videos", json={**BODY, "prompt": prompt},
                          headers={**AUTH, **(headers or {})})
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    seen = [created.json()["status"]]
    for _ in range(20):
        clock.advance(0.5)
        seen.append(client.get(f"/api/v1/videos/{job_id}", headers=AUTH).json()["status"])
        if seen[-1] not in ("pending", "in_progress"):
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
        c.post("/api/v1/videos", json={**BODY, "duration": 7}, headers=AUTH)  # refused
        c.get("/api/v1/videos/models")

    path = record(tmp_path_factory.mktemp("or-tape") / "openrouter.jsonl", upstream.url,
                  clock, session)
    return path, states


def test_recorded_then_diffed_without_drift(tape) -> None:
    path, states = tape
    assert states["ok"][0] == "pending" and states["ok"][-1] == "completed"
    assert "in_progress" in states["ok"] and states["failed"][-1] == "failed"
    exchanges = cassette.read(path).exchanges
    assert {e.family for e in exchanges} == {"openrouter"}
    assert [e.operation for e in exchanges][:2] == ["createVideo", "getVideo"]
    assert all(KEY not in line for line in path.read_text().splitlines())  # redacted
    result = diff(cassette.read(path), timing="fast")
    assert result.tasks == 2 and not result.drifts, result.drifts
    assert {f for f, _ in result.checked} == {"openrouter"}


def test_replayed_with_the_recorded_states(tape, tmp_path: Path) -> None:
    path, states = tape
    with ThreadedMockServer(families=["openrouter"], replay=str(path), clock="manual",
                            seed=8, video_dir=str(tmp_path)) as fake, \
            httpx.Client(base_url=fake.url, headers=AUTH) as client:
        clock = fake.backend.clock
        created = client.post("/api/v1/videos", json=BODY)
        assert created.status_code == 202
        seen = [created.json()["status"]]
        for _ in range(40):
            clock.advance(0.25)  # twice as often as the recording polled
            seen.append(client.get(f"/api/v1/videos/{created.json()['id']}").json()["status"])
        refused = client.post("/api/v1/videos", json={**BODY, "duration": 7})
    deduped = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    assert deduped == [s for i, s in enumerate(states["ok"])
                       if i == 0 or s != states["ok"][i - 1]]
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("Unsupported duration 7")


def test_the_proxys_budget_stops_a_billable_submit(upstream: ThreadedMockServer,
                                                   tmp_path: Path) -> None:
    proxy = Proxy(upstream.url, record=tmp_path / "budget.jsonl", budget=0,
                  clock=upstream.backend.clock.now)
    with ThreadedMockServer(app=proxy.app()) as server, \
            httpx.Client(base_url=server.url, headers=AUTH) as client:
        refused = client.post("/api/v1/videos", json=BODY)
        models = client.get("/api/v1/videos/models")  # free: passes
    assert refused.status_code >= 400 and models.status_code == 200
    assert not [t for t in upstream.backend.tasks() if t.request.get("prompt") == "budget"]
