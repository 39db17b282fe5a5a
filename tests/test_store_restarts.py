"""What a shared store keeps when it restarts or a worker dies: the option's scenario rules
after a Redis that lost its data, webhook deliveries whose worker died mid-delivery (leases),
the URL-signing secret and the manual clock. Against a real redis-server of this module's own
(it is restarted) and a SQLite file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mockserver.core.backend import Backend, Options
from tests.conftest import RedisServer
from tests.helpers import require_program
from tests.test_store import BODY, CREATE, KEY, Fake

RULES = ("rules:\n  - scenario: server-error\n    times: 1\n"
         "    match: {operation: createVideoSynthesis}\n")


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    """A redis-server (no persistence) this module may stop and start on the same port."""
    server = RedisServer(require_program("redis-server", "apt-get install redis-server")).start()
    yield server
    server.stop()


@pytest.fixture
def made() -> Iterator[list[Fake]]:
    fakes: list[Fake] = []
    yield fakes
    for fake in fakes:
        fake.http.close()
        fake.backend.state.close()


def _fake(made: list[Fake], contracts: Any, url: str, **options: Any) -> Fake:
    options.setdefault("clock", "manual")
    options.setdefault("seed", 7)
    fake = Fake(Backend(Options().merged(store=url, **options), contracts=contracts))
    made.append(fake)
    return fake


def _restart(server: RedisServer) -> None:
    """Kill and start redis-server on the same port: it comes back empty."""
    server.stop()
    server.start()


def _submit_statuses(fakes: list[Fake]) -> list[int]:
    """One submit per fake, each retried while the store is still coming back (503)."""
    out = []
    for fake in fakes:
        for _ in range(50):  # bounded: the fake reconnects within a few requests
            status = fake.http.post(CREATE, json=BODY, headers=KEY).status_code
            if status != 503:
                break
        out.append(status)
    return out


def test_the_options_rules_are_back_once_after_redis_lost_its_data(
        own_redis: RedisServer, made: list[Fake], contract_set: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    url = own_redis.url()
    a = _fake(made, contract_set, url, scenarios=str(rules))
    b = _fake(made, contract_set, url, scenarios=str(rules))
    assert sorted(_submit_statuses([a, b, a, b])) == [200, 200, 200, 500]
    _restart(own_redis)
    # The fakes see a new epoch (the data is gone) and the rule is there again, once.
    assert sorted(_submit_statuses([b, a, b, a, b])) == [200, 200, 200, 200, 500]
    for fake in (a, b):
        [shown] = fake.http.get("/_wanmock/scenarios").json()["rules"]
        assert shown["applied"] == 1 and shown["matched"] == 5


def test_workers_meeting_a_new_epoch_at_once_load_the_rules_once(
        own_redis: RedisServer, made: list[Fake], contract_set: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES + "  - scenario: throttle\n    match: {family: apiyi}\n")
    url = own_redis.url()
    fakes = [_fake(made, contract_set, url, scenarios=str(rules)) for _ in range(6)]
    import redis

    redis.Redis(port=own_redis.port).flushall()  # as a restart without persistence
    gate = threading.Barrier(len(fakes))
    seen: list[int] = []

    def look(fake: Fake) -> None:
        gate.wait()
        seen.append(len(fake.backend.scenarios.rules()))

    threads = [threading.Thread(target=look, args=(f,)) for f in fakes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen == [2] * len(fakes)
    shown = fakes[0].http.get("/_wanmock/scenarios").json()["rules"]
    assert [(r["id"], r["scenario"]) for r in shown] == [("r1", "server-error"),
                                                         ("r2", "throttle")]
