"""F10: tasks belong to the API key that created them, per family (audit F10).

Another key's task is UNKNOWN on DashScope, not found on jiekou and apiyi, `task_not_exist` on
new-api; one family's ids are unknown to another; `GET /api/v1/tasks` lists only the caller's
tasks, each with a stable `api_key_id` that is not the key. The control API still sees all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.core.ids import key_id
from tests.helpers import conforms

pytestmark = pytest.mark.anyio
ALICE, BOB = "sk-alice-0123456789", "sk-bob-9876543210"
T2V = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse"}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(clock=ManualClock(), seed=3, timing="instant")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        yield app, client


def auth(key: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **more}


async def dashscope_task(client: httpx.AsyncClient, key: str) -> str:
    r = await client.post("/api/v1/services/aigc/video-generation/video-synthesis", json=T2V,
                          headers=auth(key, **{"X-DashScope-Async": "enable"}))
    assert r.status_code == 200, r.text
    return str(r.json()["output"]["task_id"])


async def dashscope_status(client: httpx.AsyncClient, task_id: str, key: str) -> str:
    r = await client.get(f"/api/v1/tasks/{task_id}", headers=auth(key))
    assert r.status_code == 200, r.text
    return str(conforms("dashscope", "getTask", r)["output"]["task_status"])


async def test_F10_dashscope_other_keys_task_is_unknown(fake: Any) -> None:
    app, client = fake
    task_id = await dashscope_task(client, ALICE)
    app.state.backend.clock.advance(5)
    assert await dashscope_status(client, task_id, ALICE) == "SUCCEEDED"
    assert await dashscope_status(client, task_id, BOB) == "UNKNOWN"
    # Bob cannot cancel it either: the answer for a task he does not have.
    r = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=auth(BOB))
    assert r.status_code == 400 and r.json()["code"] == "UnsupportedOperation"
    # The control API sees every task, whoever made it.
    listed = (await client.get("/_wanmock/tasks")).json()
    assert task_id in [t["id"] for t in listed["tasks"]]


async def test_F10_dashscope_list_shows_only_the_callers_tasks(fake: Any) -> None:
    _, client = fake
    mine = [await dashscope_task(client, ALICE) for _ in range(2)]
    theirs = await dashscope_task(client, BOB)
    r = await client.get("/api/v1/tasks", headers=auth(ALICE))
    body = conforms("dashscope", "listTasks", r)
    assert sorted(row["task_id"] for row in body["data"]) == sorted(mine)
    assert body["total"] == 2
    assert {row["api_key_id"] for row in body["data"]} == {key_id(ALICE)}
    assert key_id(ALICE) != key_id(BOB) and ALICE not in r.text and "alice" not in key_id(ALICE)
    # api_key_id is a documented filter: another key's id matches none of Alice's tasks.
    r = await client.get("/api/v1/tasks", params={"api_key_id": key_id(BOB)}, headers=auth(ALICE))
    assert conforms("dashscope", "listTasks", r)["data"] == []
    bob = conforms("dashscope", "listTasks",
                   await client.get("/api/v1/tasks", headers=auth(BOB)))
    assert [row["task_id"] for row in bob["data"]] == [theirs]


async def test_F10_ids_of_one_family_are_unknown_to_another(fake: Any) -> None:
    app, client = fake
    r = await client.post("/v1/video/generations", headers=auth(ALICE),
                          json={"model": "wan2.6-t2v", "prompt": "a lighthouse"})
    assert r.status_code == 200, r.text
    newapi_id = r.json()["id"]
    r = await client.post("/v3/async/wan-t2v", headers=auth(ALICE),
                          json={"prompt": "a lighthouse", "width": 832, "height": 480})
    assert r.status_code == 200, r.text
    jiekou_id = r.json()["task_id"]
    app.state.backend.clock.advance(5)
    # A new-api `task_...` id (and its upstream id) and a jiekou id mean nothing to DashScope.
    task = app.state.backend.store.get(newapi_id)
    for foreign in (newapi_id, task.extra["upstream_id"], jiekou_id):
        assert await dashscope_status(client, foreign, ALICE) == "UNKNOWN"
    # A DashScope id means nothing to jiekou, apiyi or new-api.
    ds_id = await dashscope_task(client, ALICE)
    r = await client.get("/v3/async/task-result", params={"task_id": ds_id}, headers=auth(ALICE))
    assert r.status_code == 404 and conforms("jiekou", "getTaskResult", r)["reason"]
    r = await client.get(f"/v1/tasks/{ds_id}", headers=auth(ALICE))
    assert r.status_code == 404 and r.json()["error"]["code"] == "task_not_found"
    r = await client.get(f"/v1/video/generations/{ds_id}", headers=auth(ALICE))
    assert r.status_code == 400 and r.json()["code"] == "task_not_exist"


async def test_F10_jiekou_other_keys_task_is_not_found(fake: Any) -> None:
    app, client = fake
    r = await client.post("/v3/async/wan-t2v", headers=auth(ALICE),
                          json={"prompt": "a lighthouse", "width": 832, "height": 480})
    task_id = r.json()["task_id"]
    app.state.backend.clock.advance(5)
    mine = await client.get("/v3/async/task-result", params={"task_id": task_id},
                            headers=auth(ALICE))
    assert mine.status_code == 200
    assert mine.json()["task"]["status"] == "TASK_STATUS_SUCCEED"
    theirs = await client.get("/v3/async/task-result", params={"task_id": task_id},
                              headers=auth(BOB))
    assert theirs.status_code == 404
    assert conforms("jiekou", "getTaskResult", theirs)["reason"] == "TASK_NOT_FOUND"


async def test_F10_apiyi_and_newapi_other_keys_task_is_not_found(fake: Any) -> None:
    app, client = fake
    r = await client.post("/wan/api/v1/services/aigc/video-generation/video-synthesis",
                          json=T2V, headers=auth(ALICE, **{"X-DashScope-Async": "enable"}))
    apiyi_id = r.json()["output"]["task_id"]
    r = await client.post("/v1/video/generations", headers=auth(ALICE),
                          json={"model": "wan2.6-t2v", "prompt": "a lighthouse"})
    newapi_id = r.json()["id"]
    app.state.backend.clock.advance(5)
    assert (await client.get(f"/v1/tasks/{apiyi_id}", headers=auth(ALICE))).status_code == 200
    theirs = await client.get(f"/v1/tasks/{apiyi_id}", headers=auth(BOB))
    assert theirs.status_code == 404
    assert conforms("apiyi", "getTask", theirs)["error"]["code"] == "task_not_found"
    # An apiyi task is apiyi's: DashScope's own task API does not know it.
    assert await dashscope_status(client, apiyi_id, ALICE) == "UNKNOWN"
    r = await client.get(f"/v1/video/generations/{newapi_id}", headers=auth(BOB))
    assert r.status_code == 400 and r.json()["code"] == "task_not_exist"
    # new-api treats `sk-xxx` and `xxx` as one token.
    r = await client.get(f"/v1/video/generations/{newapi_id}",
                         headers=auth(ALICE.removeprefix("sk-")))
    assert r.status_code == 200


# -- F21: SUSPENDED ------------------------------------------------------------------------------
async def test_F21_suspended_is_reachable_by_forcing_and_worded_per_family(fake: Any) -> None:
    app, client = fake
    backend = app.state.backend
    task_id = await dashscope_task(client, ALICE)
    r = await client.post(f"/_wanmock/tasks/{task_id}/state", json={"state": "suspended"})
    assert r.status_code == 200 and r.json()["state"] == "suspended"
    r = await client.get(f"/api/v1/tasks/{task_id}", headers=auth(ALICE))
    out = conforms("dashscope", "getTask", r)["output"]
    assert out["task_status"] == "SUSPENDED" and "video_url" not in out and "end_time" not in out
    listed = conforms("dashscope", "listTasks", await client.get(
        "/api/v1/tasks", params={"status": "SUSPENDED"}, headers=auth(ALICE)))
    assert [row["task_id"] for row in listed["data"]] == [task_id]
    # Not an end: clients keep polling, nothing is owed a webhook, and it can move on.
    backend.clock.advance(3600)
    assert await dashscope_status(client, task_id, ALICE) == "SUSPENDED"
    r = await client.post(f"/_wanmock/tasks/{task_id}/state", json={"state": "succeeded"})
    assert await dashscope_status(client, task_id, ALICE) == "SUCCEEDED"
    # The other families word a held task as not ended: new-api's Ali adaptor reads a
    # status it does not know as QUEUED "20%" (its OpenAI video: "unknown").
    r = await client.post("/v1/video/generations", headers=auth(ALICE),
                          json={"model": "wan2.6-t2v", "prompt": "a"})
    newapi_id = r.json()["id"]
    await client.post(f"/_wanmock/tasks/{newapi_id}/state", json={"state": "suspended"})
    backend.clock.advance(60)  # past new-api's poller lag
    r = await client.get(f"/v1/video/generations/{newapi_id}", headers=auth(ALICE))
    data = conforms("newapi", "getVideoGeneration", r)["data"]
    assert (data["status"], data["progress"]) == ("QUEUED", "20%")
    r = await client.post("/v3/async/wan-t2v", headers=auth(ALICE),
                          json={"prompt": "a", "width": 832, "height": 480})
    jiekou_id = r.json()["task_id"]
    await client.post(f"/_wanmock/tasks/{jiekou_id}/state", json={"state": "suspended"})
    r = await client.get("/v3/async/task-result", params={"task_id": jiekou_id},
                         headers=auth(ALICE))
    assert conforms("jiekou", "getTaskResult", r)["task"]["status"] == "TASK_STATUS_PROCESSING"
