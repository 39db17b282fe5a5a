"""Bounded memos: each belongs to one fake, so two apps in one process share nothing."""

from __future__ import annotations

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.core.memo import Memo

HEADERS = {"Authorization": "Bearer sk-memo", "X-DashScope-Async": "enable"}
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


def test_a_full_memo_forgets_everything_and_keeps_the_newest():
    memo: Memo[int, str] = Memo(3)
    for i in range(3):
        memo.put(i, str(i))
    assert len(memo) == 3 and memo.get(0) == "0"
    assert memo.put(3, "3") == "3"
    assert len(memo) == 1 and memo.get(3) == "3" and memo.get(0) is None


def test_a_memo_needs_room_for_one_entry():
    with pytest.raises(ValueError):
        Memo(0)


async def _job(app, prompt):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport,
                                 base_url="https://dashscope.aliyuncs.com") as c:
        created = await c.post(CREATE, headers=HEADERS, json={
            "model": "wan2.6-t2v", "input": {"prompt": prompt}})
        task_id = created.json()["output"]["task_id"]
        app.backend.clock.advance(60)
        polled = await c.get(f"/api/v1/tasks/{task_id}", headers=HEADERS)
    return task_id, polled.json()


@pytest.mark.anyio
async def test_two_apps_in_one_process_share_no_memo():
    first = create_app(clock=ManualClock(), seed=7)
    second = create_app(clock=ManualClock(), seed=7)  # same seed: the same task ids
    id_a, body_a = await _job(first, "a lighthouse")
    assert len(first.backend.memo("headers")) == 2  # the POST's header set and the GET's
    assert len(first.backend.memo("dashscope.polls")) == 1
    assert len(second.backend.memo("headers")) == 0
    assert len(second.backend.memo("dashscope.polls")) == 0
    id_b, body_b = await _job(second, "a harbour")
    assert id_a == id_b  # what a process-wide poll cache keyed by task id would mix up
    assert body_a["output"]["task_status"] == body_b["output"]["task_status"] == "SUCCEEDED"
    assert body_a["output"]["orig_prompt"] == "a lighthouse"
    assert body_b["output"]["orig_prompt"] == "a harbour"


@pytest.mark.anyio
async def test_reset_empties_the_memos():
    app = create_app(clock=ManualClock(), seed=7)
    await _job(app, "a lighthouse")
    app.backend.reset()
    assert len(app.backend.memo("headers")) == 0
    assert len(app.backend.memo("dashscope.polls")) == 0
