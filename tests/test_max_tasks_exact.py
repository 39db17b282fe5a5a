"""`--max-tasks N` is exact on every store (issue 20, point 7): a submit that takes the count
past N evicts at once (SQLite kept up to 1,055 tasks for 1,000, one sweep every N/20 submits),
the oldest ended tasks first, then the oldest unfinished ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.server import ThreadedMockServer
from tests.conftest import RedisServer

DS = {"Authorization": "Bearer sk-x", "X-DashScope-Async": "enable"}
LIMIT = 40


def submit(c: httpx.Client, n: int) -> str:
    # a key per submit: DashScope's documented per-key rate limit is not what is tested here
    r = c.post("/api/v1/services/aigc/video-generation/video-synthesis",
               headers={**DS, "Authorization": f"Bearer sk-{n}"},
               json={"model": "wan2.6-t2v", "input": {"prompt": f"job {n}"}})
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]  # type: ignore[no-any-return]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: Any, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return server.url()
    return "memory"


def test_max_tasks_is_never_exceeded(store: str) -> None:
    with ThreadedMockServer(store=store, clock="manual", max_tasks=LIMIT, seed=1) as fake, \
            httpx.Client(base_url=fake.url, trust_env=False) as c:
        ids = []
        for n in range(3 * LIMIT):
            ids.append(submit(c, n))
            if n % 7 == 3:
                c.post("/_wanmock/clock/advance", json={"seconds": 30})  # some tasks end
            count = c.get("/_wanmock/tasks").json()["count"]
            assert count <= LIMIT, f"{count} tasks kept after submit {n + 1} (max {LIMIT})"
        kept = {t["id"] for t in c.get("/_wanmock/tasks").json()["tasks"]}
        assert ids[-1] in kept and ids[0] not in kept  # the newest stay, the oldest went
        assert len(kept) >= LIMIT - LIMIT // 20 - 1
