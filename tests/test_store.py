"""One behavioural suite over every store: memory, SQLite (a file in tmp_path), Redis (a real
redis-server on a loopback port, see conftest.py) and the test-only toy driver
(tests/toy_driver.py): what the Backend relies on, whichever store holds the state. Each
driver also passes the driver contract, tests/test_store_driver.py.

Each test drives two fakes over one store, as two workers (or two hosts) are: `Fakes.twin()`
opens the store again from its URL (for `memory`, the second Backend shares the first's
MemoryStore object). Whatever one fake does, the other must see at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.backend import Backend, Options
from mockserver.core.clock import DEFAULT_EPOCH
from tests import toy_driver
from tests.helpers import SyncASGITransport

KEY = {"Authorization": "Bearer sk-store-test", "X-DashScope-Async": "enable"}
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk"},
        "parameters": {"size": "1280*720", "duration": 5}}
JIEKOU = {"Authorization": "Bearer sk_store_test"}
T2V = "/v3/async/wan-t2v"


def _within(seconds: float, read: Any, want: Any) -> Any:
    """`read()` once it equals `want`, or its last value after `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if value == want or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


class Fake:
    """One fake (a Backend, its app and a client into it)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.app = create_app(backend=backend)
        self.http = httpx.Client(transport=SyncASGITransport(self.app), base_url="http://fake.test")

    def submit(self, body: dict[str, Any] | None = None, **headers: str) -> str:
        response = self.http.post(CREATE, json=body or BODY, headers={**KEY, **headers})
        assert response.status_code == 200, response.text
        return str(response.json()["output"]["task_id"])

    def poll(self, task_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/tasks/{task_id}", headers=KEY)
        assert response.status_code == 200, response.text
        return response.json()["output"]  # type: ignore[no-any-return]

    def advance(self, seconds: float) -> None:
        self.http.post("/_wanmock/clock/advance", json={"seconds": seconds}).raise_for_status()


class Fakes:
    """Fakes over one store URL; all closed at the end of the test."""

    def __init__(self, url: str, contracts: Any) -> None:
        self.url = url
        self.contracts = contracts
        self.made: list[Fake] = []

    def new(self, **options: Any) -> Fake:
        """A fake on a store opened afresh from the URL (a new process would do the same)."""
        options.setdefault("clock", "manual")
        options.setdefault("seed", 7)
        backend = Backend(Options().merged(store=self.url, **options), contracts=self.contracts)
        return self._keep(Fake(backend))

    def twin(self, first: Fake, **options: Any) -> Fake:
        """A second fake on the first one's store: another worker."""
        opts = first.backend.options.merged(**options)
        store = first.backend.state if self.url == "memory" else None
        return self._keep(Fake(Backend(opts, contracts=self.contracts, store=store)))

    def _keep(self, fake: Fake) -> Fake:
        self.made.append(fake)
        return fake

    def close(self) -> None:
        for fake in self.made:
            fake.http.close()
            fake.backend.state.close()


@pytest.fixture(params=["memory", "sqlite", "redis", "toy"])
def fakes(request: pytest.FixtureRequest, tmp_path: Any, contract_set: Any) -> Iterator[Fakes]:
    if request.param == "memory":
        url = "memory"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
    elif request.param == "toy":
        toy_driver.register()
        url = toy_driver.url()
    else:
        url = request.getfixturevalue("redis_server").url()
    made = Fakes(url, contract_set)
    yield made
    made.close()


def test_a_task_made_on_one_worker_is_seen_by_the_other_in_the_same_state(fakes: Fakes) -> None:
    a = fakes.new()
    b = fakes.twin(a)
    task_id = a.submit()
    assert b.poll(task_id)["task_status"] == "PENDING"
    b.advance(2.0)
    assert a.poll(task_id)["task_status"] == "RUNNING"
    assert b.poll(task_id)["task_status"] == "RUNNING"
    a.advance(60)
    done = b.poll(task_id)
    assert done["task_status"] == "SUCCEEDED"
    assert a.poll(task_id) | {"task_status": None} == done | {"task_status": None}
    # The signed URL one worker made verifies on the other (one secret, in the store).
    path = done["video_url"].removeprefix("http://fake.test")
    for fake in (a, b):
        video = fake.http.get(path)
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert b.http.get(path.replace("Signature=", "Signature=0")).status_code == 403


def test_the_manual_clock_is_one_clock(fakes: Fakes) -> None:
    a = fakes.new()
    b = fakes.twin(a)
    assert a.backend.now() == b.backend.now() == DEFAULT_EPOCH
    a.advance(12.5)
    assert b.http.get("/_wanmock/clock").json()["now"] == DEFAULT_EPOCH + 12.5
    with pytest.raises(Exception, match="forward"):
        b.backend.clock.advance(-1)


def test_seeded_ids_are_unique_across_workers_and_reproducible(fakes: Fakes,
                                                               tmp_path: Any) -> None:
    a = fakes.new(seed=11)
    b = fakes.twin(a)
    ids = [a.submit(), b.submit(), a.submit(), b.submit()]
    assert len(set(ids)) == 4
    # A fresh store with the same seed and the same arrival order: the same ids.
    if fakes.url == "memory":
        again = Fakes("memory", fakes.contracts)
    elif fakes.url.startswith("sqlite"):
        again = Fakes(f"sqlite:///{tmp_path}/again.db", fakes.contracts)
    elif fakes.url.startswith("toy"):
        again = Fakes(toy_driver.url(), fakes.contracts)
    else:
        again = Fakes(fakes.url.rpartition("=")[0] + "=again" + fakes.url[-6:], fakes.contracts)
    try:
        c = again.new(seed=11)
        d = again.twin(c)
        assert [c.submit(), d.submit(), c.submit(), d.submit()] == ids
    finally:
        again.close()


def test_reset_on_one_worker_resets_every_worker(fakes: Fakes) -> None:
    a = fakes.new()
    b = fakes.twin(a)
    task_id = a.submit()
    assert b.http.get("/_wanmock/tasks").json()["count"] == 1
    b.http.post("/_wanmock/reset").raise_for_status()
    assert a.http.get("/_wanmock/tasks").json()["count"] == 0
    assert a.poll(task_id)["task_status"] == "UNKNOWN"
    assert a.http.get("/_wanmock/journal").json()["count"] == 1  # the poll just made
    fresh = b.submit()
    assert a.poll(fresh)["task_status"] == "PENDING"


def test_a_times_1_scenario_fires_once_in_total(fakes: Fakes) -> None:
    a = fakes.new()
    b = fakes.twin(a)
    rule = {"scenario": "server-error", "match": {"family": "dashscope",
                                                  "operation": "createVideoSynthesis"},
            "times": 1}
    assert a.http.post("/_wanmock/scenarios", json=rule).status_code == 201
    statuses = [f.http.post(CREATE, json=BODY, headers=KEY).status_code
                for f in (b, a, b, a, b)]
    assert sorted(statuses) == [200, 200, 200, 200, 500]
    [shown] = b.http.get("/_wanmock/scenarios").json()["rules"]
    assert shown["applied"] == 1 and shown["remaining"] == 0 and shown["matched"] == 5


def test_an_nth_rule_counts_matches_on_every_worker(fakes: Fakes) -> None:
    a = fakes.new()
    b = fakes.twin(a)
    a.backend.scenarios.add("throttle", match={"family": "dashscope", "nth": 3})
    statuses = [f.http.post(CREATE, json=BODY, headers=KEY).status_code for f in (a, b, a, b)]
    assert statuses == [200, 200, 429, 200]


def test_cancel_and_forced_states_are_seen_everywhere(fakes: Fakes) -> None:
    a = fakes.new()
    b = fakes.twin(a)
    first, second = a.submit(), a.submit()
    cancel = b.http.post(f"/api/v1/tasks/{first}/cancel", headers=KEY)
    assert cancel.status_code == 200, cancel.text
    assert a.poll(first)["task_status"] == "CANCELED"
    forced = a.http.post(f"/_wanmock/tasks/{second}/state", json={"state": "failed"})
    assert forced.status_code == 200
    polled = b.poll(second)
    assert polled["task_status"] == "FAILED" and polled["code"] == "InternalError"


def test_poll_counts_drive_poll_mode_across_workers(fakes: Fakes) -> None:
    a = fakes.new(mode="polls", queued_polls=1, running_polls=1)
    b = fakes.twin(a)
    task_id = a.submit()
    seen = [f.poll(task_id)["task_status"] for f in (b, a, b)]
    assert seen == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert a.http.get(f"/_wanmock/tasks/{task_id}").json()["polls"] == 3


def test_the_journal_holds_every_workers_requests(fakes: Fakes) -> None:
    a = fakes.new(journal_size=5)
    b = fakes.twin(a)
    task_id = a.submit()
    b.poll(task_id)
    # Another worker's entries arrive within its flush interval (50 ms).
    ops = _within(2.0, lambda: [e.operation for e in a.backend.journal.entries()],
                  ["createVideoSynthesis", "getTask"])
    assert ops == ["createVideoSynthesis", "getTask"]
    [entry] = b.backend.journal.entries(operation="createVideoSynthesis")
    assert entry.task_id == task_id and entry.status == 200
    assert "sk-store-test" not in str(entry.as_dict())  # redacted before it is stored
    for _ in range(6):
        b.poll(task_id)
    b.backend.state.flush()
    entries = a.backend.journal.entries()
    assert len(entries) == 5 and {e.operation for e in entries} == {"getTask"}  # newest kept


def test_the_request_rate_limit_is_one_window(fakes: Fakes) -> None:
    a = fakes.new(rate_limit_qps=2, clock="manual")
    b = fakes.twin(a)
    statuses = [f.http.post(CREATE, json=BODY, headers=KEY).status_code for f in (a, b, a)]
    assert statuses == [200, 200, 429]
    a.advance(1.5)
    assert b.http.post(CREATE, json=BODY, headers=KEY).status_code == 200


def test_a_webhook_is_claimed_once_by_one_worker(fakes: Fakes) -> None:
    a = fakes.new(families=["jiekou"])
    b = fakes.twin(a)
    body = {"prompt": "a lighthouse", "width": 832, "height": 480,
            "extra": {"webhook": {"url": "http://127.0.0.1:9/hook"}}}
    response = a.http.post(T2V, json=body, headers=JIEKOU)
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    assert b.backend.webhooks.has_pending()
    b.backend.clock.advance(60)
    # Both workers look for due webhooks; the second to look finds it claimed.
    rendered = b.backend.flush_webhooks() + a.backend.flush_webhooks()
    assert [h.task_id for h in rendered] == [task_id]
    [hook] = a.backend.webhooks.entries()
    assert hook.state == "recorded" and "TASK_STATUS_SUCCEED" in json.dumps(hook.body)
    assert b.backend.flush_webhooks() == [] and not a.backend.webhooks.has_pending()


def test_max_tasks_evicts_the_oldest_ended_tasks_first(fakes: Fakes) -> None:
    a = fakes.new(max_tasks=10, timing="instant", dashscope_rate_limits="off")  # 31 submits
    b = fakes.twin(a)
    running = a.submit({**BODY, "input": {"prompt": "stays running"}},
                       **{"X-Wanmock-Scenario": "stuck"})
    ids = [(a if i % 2 else b).submit() for i in range(30)]
    left = {t["id"] for t in b.http.get("/_wanmock/tasks").json()["tasks"]}
    assert len(left) <= 10 + 1  # the bound, plus at most one sweep's slack
    assert running in left  # unfinished tasks go last
    assert set(ids[-5:]) <= left and ids[0] not in left
    assert a.poll(ids[0])["task_status"] == "UNKNOWN"


def test_a_task_is_forgotten_after_its_familys_retention(fakes: Fakes) -> None:
    a = fakes.new()
    b = fakes.twin(a)
    old = a.submit()
    a.advance(60)
    assert b.poll(old)["task_status"] == "SUCCEEDED"
    b.advance(86400)  # DashScope: UNKNOWN 24 h after submit (contract x-wanmock-retention)
    assert a.poll(old)["task_status"] == "UNKNOWN"
    assert a.backend.store.get(old) is not None  # the result URL still has its 24 h
    a.advance(3600)
    a.submit()  # a submit sweeps what is past retention and URL expiry
    assert b.backend.store.get(old) is None
    assert a.poll(old)["task_status"] == "UNKNOWN"


def test_the_options_rules_come_back_once_with_every_epoch(fakes: Fakes, tmp_path: Any) -> None:
    """`--scenarios FILE` rules are in every epoch once in total: at the start and after a reset
    on any worker (the memory store reloads them at reset too)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - scenario: server-error\n    times: 1\n"
                     "    match: {operation: createVideoSynthesis}\n")
    a = fakes.new(scenarios=str(rules))
    b = fakes.twin(a)
    for _ in range(2):  # the first epoch, then the one a reset starts
        statuses = [f.http.post(CREATE, json=BODY, headers=KEY).status_code
                    for f in (a, b, a, b)]
        assert sorted(statuses) == [200, 200, 200, 500]
        for fake in (a, b):
            [shown] = fake.http.get("/_wanmock/scenarios").json()["rules"]
            assert (shown["id"], shown["scenario"], shown["applied"]) == ("r1", "server-error", 1)
        b.http.post("/_wanmock/reset").raise_for_status()
    added = a.http.post("/_wanmock/scenarios", json={"scenario": "throttle", "times": 1})
    assert added.status_code == 201
    shown = b.http.get("/_wanmock/scenarios").json()["rules"]
    assert [(r["id"], r["scenario"]) for r in shown] == [("r1", "server-error"), ("r2", "throttle")]
