"""OpenRouter jobs through the differential loop: recorded by `wanmock proxy` from a live fake
(the stand-in for https://openrouter.ai), diffed with no drift, replayed with the recorded
states, and the proxy's budget counts its submits (refunds a refusal, stops the one over).
One upstream for the module, on a manual clock."""

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


def test_the_proxys_budget_counts_openrouters_submits(upstream: ThreadedMockServer,
                                                     tmp_path: Path) -> None:
    """A budget of one: a refused submit is refunded, one job goes through, the next is
    stopped in OpenRouter's envelope; polls, downloads and the model list never count."""
    proxy = Proxy(upstream.url, record=tmp_path / "budget.jsonl", budget=1,
                  clock=upstream.backend.clock.now)
    with ThreadedMockServer(app=proxy.app()) as server, \
            httpx.Client(base_url=server.url, headers=AUTH) as client:
        rejected = client.post("/api/v1/videos", json={**BODY, "duration": 7})
        billed = client.post("/api/v1/videos", json={**BODY, "prompt": "budget one"})
        stopped = client.post("/api/v1/videos", json={**BODY, "prompt": "budget two"})
        job_id = billed.json()["id"]
        polled = client.get(f"/api/v1/videos/{job_id}")
        models = client.get("/api/v1/videos/models")
        budget = client.get("/_wanmock/proxy").json()["budget"]
    assert [a.status_code for a in (rejected, billed, stopped, polled, models)] == [
        400, 202, 429, 200, 200]
    assert stopped.headers["x-wanmock-proxy"] == "budget"
    error = stopped.json()["error"]  # OpenRouter's envelope: the SDK's typed 429
    assert error["code"] == 429 and "budget of" in error["message"]
    assert budget["families"]["openrouter"] == {"forwarded": 2, "refunded": 1, "refused": 1,
                                                "spent": 1}
    prompts = [t.request.get("prompt") for t in upstream.backend.tasks()]
    assert "budget one" in prompts and "budget two" not in prompts


@pytest.mark.parametrize("budget", [0, 2])
def test_a_budgeted_check_creates_at_most_its_budget(budget: int) -> None:
    """`wanmock check --budget N` against OpenRouter: every video submit counts, reads are
    free, and a budget of 0 still checks everything else."""
    from mockserver.app import create_app
    from mockserver.conformance import check

    app = create_app(["openrouter"], seed=11, mode="polls", queued_polls=0, running_polls=1,
                     api_keys={KEY})
    report = check(app, families=["openrouter"], api_key=KEY, budget=budget, max_examples=3,
                   phases=("examples", "fuzzing"))
    created = list(app.state.backend.tasks("openrouter"))
    # A budget buys real jobs (bodies the contract layer accepts are drawn first), never more.
    assert len(created) == budget and report.results[0].billable == budget
    assert all(t.plan.failure is None for t in created)
    assert report.cases > 10 and report.findings == [], report.summary()
