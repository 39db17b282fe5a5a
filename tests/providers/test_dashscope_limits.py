"""DashScope's documented limits, on by default (audit N01; contracts/dashscope.yaml decision
rate-limits): 20 requests/s per key on the task APIs, each model's submits per second and its
tasks in progress per key (extra tasks wait PENDING), and the option that lifts them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from tests.helpers import conforms

pytestmark = pytest.mark.anyio

DS = "/api/v1/services/aigc/video-generation/video-synthesis"
KEY = {"Authorization": "Bearer sk-one", "X-DashScope-Async": "enable"}
OTHER = {"Authorization": "Bearer sk-two", "X-DashScope-Async": "enable"}
RATE = ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")


def t2v(model: str = "wan2.6-t2v") -> dict[str, Any]:
    return {"model": model, "input": {"prompt": "a lighthouse at dusk"}}


async def fake(**options: Any) -> tuple[Any, httpx.AsyncClient]:
    app = create_app(clock=ManualClock(), seed=1, **options)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="https://dashscope.aliyuncs.com")
    return app, client


def throttled(r: httpx.Response, operation: str) -> None:
    assert r.status_code == 429, r.text
    body = conforms("dashscope", operation, r)
    assert (body["code"], body["message"]) == RATE
    assert body["request_id"]
    assert "retry-after" not in r.headers  # none documented


async def test_N01_the_task_apis_take_20_requests_a_second_per_key() -> None:
    app, client = await fake()
    async with client:
        task_id = (await client.post(DS, json=t2v(), headers=KEY)).json()["output"]["task_id"]
        polls = [await client.get(f"/api/v1/tasks/{task_id}", headers=KEY) for _ in range(20)]
        assert [r.status_code for r in polls] == [200] * 20
        # The 21st within the second: the poll, the list and the cancel share the limit.
        throttled(await client.get(f"/api/v1/tasks/{task_id}", headers=KEY), "getTask")
        throttled(await client.get("/api/v1/tasks", headers=KEY), "listTasks")
        throttled(await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=KEY),
                  "cancelTask")
        # Another key has its own 20; a submit is not a task-API call.
        assert (await client.get(f"/api/v1/tasks/{task_id}", headers=OTHER)).status_code == 200
        assert (await client.post(DS, json=t2v("wan2.7-t2v"), headers=KEY)).status_code == 200
        app.state.backend.clock.advance(1.0)  # the window moves on
        assert (await client.get(f"/api/v1/tasks/{task_id}", headers=KEY)).status_code == 200


async def test_N01_each_model_takes_its_own_submits_per_second() -> None:
    app, client = await fake()
    async with client:
        five = [await client.post(DS, json=t2v(), headers=KEY) for _ in range(5)]
        assert [r.status_code for r in five] == [200] * 5
        throttled(await client.post(DS, json=t2v(), headers=KEY), "createVideoSynthesis")
        # Per model and per key: wan2.7-t2v and another key still submit.
        assert (await client.post(DS, json=t2v("wan2.7-t2v"), headers=KEY)).status_code == 200
        assert (await client.post(DS, json=t2v(), headers=OTHER)).status_code == 200
        # wan2.2/wan2.1 models take 2 a second (the table's second row).
        two = [await client.post(DS, json=t2v("wanx2.1-t2v-turbo"), headers=KEY)
               for _ in range(3)]
        assert [r.status_code for r in two[:2]] == [200, 200]
        throttled(two[2], "createVideoSynthesis")
        app.state.backend.clock.advance(1.0)
        assert (await client.post(DS, json=t2v(), headers=KEY)).status_code == 200
    # No task was made by a refused submit.
    assert len(app.state.backend.store) == 5 + 1 + 1 + 2 + 1


async def test_N01_a_task_beyond_the_models_concurrent_limit_waits_pending() -> None:
    app, client = await fake()
    backend = app.state.backend
    async with client:
        ids = []
        for _ in range(2):  # wanx2.1-t2v-turbo: 2 a second, 2 in progress at once
            r = await client.post(DS, json=t2v("wanx2.1-t2v-turbo"), headers=KEY)
            ids.append(r.json()["output"]["task_id"])
        backend.clock.advance(1.0)
        r = await client.post(DS, json=t2v("wanx2.1-t2v-turbo"), headers=KEY)
        third = r.json()["output"]["task_id"]
        other = (await client.post(DS, json=t2v("wanx2.1-t2v-turbo"), headers=OTHER)
                 ).json()["output"]["task_id"]

        async def status(task_id: str, headers: dict[str, str] = KEY) -> str:
            body = (await client.get(f"/api/v1/tasks/{task_id}", headers=headers)).json()
            return str(body["output"]["task_status"])

        first_end = backend.view(backend.store.get(ids[0])).eta  # from now (t = 1)
        own_queue = backend.store.get(other).plan.queue_s  # a task that waited for nothing
        backend.clock.advance(first_end - 0.5)  # the first two run, the third still waits
        assert [await status(i) for i in ids] == ["RUNNING", "RUNNING"]
        assert await status(third) == "PENDING"
        assert await status(other, OTHER) == "RUNNING"  # another key's slots are its own
        # A slot frees when the first two end; then the third goes through its own queue.
        backend.clock.advance(0.5 + own_queue - 0.1)
        assert [await status(i) for i in ids] == ["SUCCEEDED", "SUCCEEDED"]
        assert await status(third) == "PENDING"
        backend.clock.advance(0.2)
        assert await status(third) == "RUNNING"
        backend.clock.advance(60)
        assert await status(third) == "SUCCEEDED"


async def test_N01_reject_policy_refuses_the_task_beyond_the_limit() -> None:
    app, client = await fake(concurrency_policy="reject")
    async with client:
        for _ in range(2):
            r = await client.post(DS, json=t2v("wanx2.1-t2v-turbo"), headers=KEY)
            assert r.status_code == 200
        app.state.backend.clock.advance(1.0)
        r = await client.post(DS, json=t2v("wanx2.1-t2v-turbo"), headers=KEY)
        assert r.status_code == 429
        body = conforms("dashscope", "createVideoSynthesis", r)
        assert body["code"] == "Throttling"


async def test_N01_dashscope_rate_limits_off_lifts_every_limit() -> None:
    app, client = await fake(dashscope_rate_limits="off")
    async with client:
        created = [await client.post(DS, json=t2v("wanx2.1-t2v-turbo"), headers=KEY)
                   for _ in range(8)]
        assert [r.status_code for r in created] == [200] * 8
        task_id = created[-1].json()["output"]["task_id"]
        polls = [await client.get(f"/api/v1/tasks/{task_id}", headers=KEY) for _ in range(40)]
        assert {r.status_code for r in polls} == {200}
        plans = [t.plan.queue_s for t in app.state.backend.tasks()]
        assert len(set(plans)) == 1  # nobody waited for a slot


async def test_N01_apiyi_passes_the_create_through_without_dashscopes_table() -> None:
    # apiyi's own contract documents no such limits (its x-wanmock-limits names no switch).
    app, client = await fake()
    async with client:
        created = [await client.post("/wan" + DS, json=t2v("wan2.7-t2v"), headers=KEY)
                   for _ in range(8)]
        assert [r.status_code for r in created] == [200] * 8


@pytest.mark.wanmock(timing="fast")
def test_N01_the_plugin_fixture_keeps_the_documented_limits(wanmock) -> None:
    # The in-process fixture is faithful by default: a tight poll loop meets the 429 it would
    # meet in production (lift it with @pytest.mark.wanmock(dashscope_rate_limits="off")).
    with httpx.Client(base_url="https://dashscope.aliyuncs.com", headers=KEY) as client:
        task_id = client.post(DS, json=t2v()).json()["output"]["task_id"]
        codes = [client.get(f"/api/v1/tasks/{task_id}").status_code for _ in range(40)]
    assert codes[0] == 200 and 429 in codes
    assert wanmock.backend.options["dashscope_rate_limits"] == "on"


@pytest.mark.wanmock(dashscope_rate_limits="off")
def test_N01_a_marker_lifts_them_for_a_test_that_hammers(wanmock) -> None:
    with httpx.Client(base_url="https://dashscope.aliyuncs.com", headers=KEY) as client:
        task_id = client.post(DS, json=t2v()).json()["output"]["task_id"]
        codes = {client.get(f"/api/v1/tasks/{task_id}").status_code for _ in range(40)}
    assert codes == {200}


@pytest.mark.parametrize("version", ["latest", "legacy"])
async def test_N01_through_new_api_the_channel_shares_dashscopes_submit_rate(version) -> None:
    # Two new-api users, one channel (one DashScope account): wan2.6-t2v takes 5 submits a
    # second in all; the 6th is DashScope's 429, which new-api relays as its throttle answer.
    app, client = await fake(families=["newapi"], newapi_version=version,
                             newapi_poll_interval=0)
    users = [{"Authorization": "Bearer sk-user-a"}, {"Authorization": "Bearer sk-user-b"}]
    body = {"model": "wan2.6-t2v", "prompt": "a lighthouse at dusk"}
    async with client:
        codes = [(await client.post("/v1/video/generations", json=body,
                                    headers=users[n % 2])).status_code for n in range(5)]
        assert codes == [200] * 5
        refused = await client.post("/v1/video/generations", json=body, headers=users[0])
        assert refused.status_code == 429, refused.text
        err = conforms("newapi", "createVideoGeneration", refused)
        assert err["code"] == "fail_to_fetch_task"
        assert err["message"].startswith("当前分组上游负载已饱和，请稍后再试")
        app.state.backend.clock.advance(1.0)  # the next second takes submits again
        again = await client.post("/v1/video/generations", json=body, headers=users[1])
        assert again.status_code == 200, again.text


async def test_N01_through_new_api_the_switch_lifts_the_upstream_rate() -> None:
    app, client = await fake(families=["newapi"], dashscope_rate_limits="off",
                             newapi_poll_interval=0)
    body = {"model": "wan2.6-t2v", "prompt": "a lighthouse at dusk"}
    async with client:
        codes = [(await client.post("/v1/video/generations", json=body,
                                    headers={"Authorization": "Bearer sk-a"})).status_code
                 for _ in range(8)]
    assert codes == [200] * 8
