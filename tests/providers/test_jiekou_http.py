"""The jiekou family over HTTP: submit, poll, download, and every error in the gateway envelope.

Every response is checked against the contract's schema for its status.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import pytest
from starlette.applications import Starlette

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from tests.helpers import conforms as conforms_to

KEY = {"Authorization": "Bearer sk_test_key"}
RESULT = "/v3/async/task-result"
T2V = "/v3/async/wan-t2v"
I2V_26 = "/v3/async/wan2.6-i2v"
IMG = "https://example.com/first-frame.png"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Starlette:
    """The jiekou fake on a manual clock (options from indirect parametrization, if any)."""
    options = getattr(request, "param", None) or {}
    return create_app(families=["jiekou"], clock=ManualClock(), seed=1, **options)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.jiekou.ai") as c:
        yield c


def conforms(operation_id: str, response: httpx.Response) -> Any:
    """The JSON body, after checking it against the contract's schema for its status."""
    return conforms_to("jiekou", operation_id, response)


def assert_envelope(operation_id: str, response: httpx.Response, status: int, reason: str) -> dict:
    assert response.status_code == status, response.text
    body = conforms(operation_id, response)
    assert body["code"] == status
    assert body["reason"] == reason
    assert body["metadata"] == {}
    assert isinstance(body["message"], str) and body["message"]
    return body


async def submit(client: httpx.AsyncClient, path: str, body: Any, op: str) -> str:
    r = await client.post(path, json=body, headers=KEY)
    assert r.status_code == 200, r.text
    data = conforms(op, r)
    assert set(data) == {"task_id"}
    return data["task_id"]


async def poll(client: httpx.AsyncClient, task_id: str) -> dict:
    r = await client.get(RESULT, params={"task_id": task_id}, headers=KEY)
    assert r.status_code == 200, r.text
    return conforms("getTaskResult", r)


async def run_to_end(app: Starlette, client: httpx.AsyncClient, task_id: str) -> list[dict]:
    seen = []
    for _ in range(60):
        body = await poll(client, task_id)
        seen.append(body)
        if body["task"]["status"] in ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"):
            return seen
        app.state.backend.clock.advance(0.5)
    raise AssertionError(f"task never finished: {seen[-1]}")


def probe(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        duration = float(container.duration) / av.time_base  # type: ignore[operator]
        return {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "duration": duration,
            "audio": len(container.streams.audio),
        }


# -- whole jobs ------------------------------------------------------------------------------
async def test_wan21_t2v_whole_job(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await submit(client, T2V, {"prompt": "A small cat running under the moonlight"},
                           "createWanT2vTask")
    first = await poll(client, task_id)
    assert first["task"] == {
        "task_id": task_id, "task_type": "TXT_TO_VIDEO", "status": "TASK_STATUS_QUEUED",
        "reason": "", "eta": first["task"]["eta"], "progress_percent": 0,
    }
    assert first["task"]["eta"] > 0
    assert first["videos"] == [] and first["images"] == []
    assert first["extra"]["debug_info"]["execute_time_ms"] == "0"
    assert first["extra"]["debug_info"]["complete_time_ms"] == "0"
    assert int(first["extra"]["seed"]) >= 0  # -1 (random) becomes a concrete seed

    seen = await run_to_end(app, client, task_id)
    statuses = [b["task"]["status"] for b in seen]
    assert statuses[0] == "TASK_STATUS_QUEUED"
    assert statuses[-1] == "TASK_STATUS_SUCCEED"
    running = [b for b in seen if b["task"]["status"] == "TASK_STATUS_PROCESSING"]
    progress = [b["task"]["progress_percent"] for b in running]
    assert len(set(progress)) >= 2 and progress == sorted(progress)
    assert all(0 <= p < 100 for p in progress)
    assert all(b["videos"] == [] for b in running)
    etas = [b["task"]["eta"] for b in seen]
    assert etas == sorted(etas, reverse=True)
    # Status order never goes back.
    order = {"TASK_STATUS_QUEUED": 0, "TASK_STATUS_PROCESSING": 1, "TASK_STATUS_SUCCEED": 2}
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)

    done = seen[-1]
    assert done["task"]["progress_percent"] == 100 and done["task"]["eta"] == 0
    assert done["task"]["reason"] == ""
    debug = done["extra"]["debug_info"]
    submit_ms, exec_ms, complete_ms = (int(debug[k]) for k in
                                       ("submit_time_ms", "execute_time_ms", "complete_time_ms"))
    assert 0 < submit_ms < exec_ms < complete_ms
    (video,) = done["videos"]
    assert video["video_type"] == "mp4"
    assert video["video_url_ttl"] == "3600"  # the TTL constant (decision video-url-ttl-type)

    r = await client.get(video["video_url"])
    assert r.status_code == 200
    assert r.headers["content-type"] == "video/mp4"
    info = probe(r.content)
    assert (info["width"], info["height"]) == (832, 480)
    assert info["duration"] == pytest.approx(5.0, abs=0.3)
    assert info["audio"] == 0


async def test_wan26_i2v_720p_10s_with_audio(app: Starlette, client: httpx.AsyncClient) -> None:
    body = {
        "input": {"prompt": "A kitten plays on the grass", "img_url": IMG},
        "parameters": {"resolution": "720P", "duration": 10, "seed": 42},
    }
    task_id = await submit(client, I2V_26, body, "createWan26I2vTask")
    seen = await run_to_end(app, client, task_id)
    done = seen[-1]
    assert done["task"]["status"] == "TASK_STATUS_SUCCEED"
    assert done["task"]["task_type"] == "IMG_TO_VIDEO"
    assert done["extra"]["seed"] == "42"
    r = await client.get(done["videos"][0]["video_url"])
    assert r.status_code == 200
    info = probe(r.content)
    assert (info["width"], info["height"]) == (1280, 720)
    assert info["duration"] == pytest.approx(10.0, abs=0.3)
    assert info["audio"] == 1


async def test_task_type_stored_in_extra(app: Starlette, client: httpx.AsyncClient) -> None:
    t2v = await submit(client, T2V, {"prompt": "a fox"}, "createWanT2vTask")
    i2v = await submit(client, "/v3/async/wan-i2v", {"prompt": "a fox", "image_url": IMG},
                       "createWanI2vTask")
    store = app.state.backend.store
    assert store.get(t2v).extra["task_type"] == "TXT_TO_VIDEO"
    assert store.get(i2v).extra["task_type"] == "IMG_TO_VIDEO"
    assert (await poll(client, i2v))["task"]["task_type"] == "IMG_TO_VIDEO"


# -- request validation ----------------------------------------------------------------------
BAD_REQUESTS = [
    pytest.param(T2V, "createWanT2vTask", {"prompt": "x", "width": 832, "height": 832},
                 "width/height", id="width-height-pair"),
    pytest.param(T2V, "createWanT2vTask", {"prompt": "x", "steps": 41}, "steps", id="steps-41"),
    pytest.param(T2V, "createWanT2vTask", {"prompt": "x", "seed": 10_000_000_000}, "seed",
                 id="seed-out-of-range"),
    pytest.param(T2V, "createWanT2vTask",
                 {"prompt": "x", "loras": [{"path": f"a/b{i}", "scale": 1.0} for i in range(4)]},
                 "loras", id="four-loras"),
    pytest.param(T2V, "createWanT2vTask", {"width": 832, "height": 480}, "prompt",
                 id="missing-prompt"),
    pytest.param(I2V_26, "createWan26I2vTask",
                 {"input": {"img_url": IMG}, "parameters": {"duration": 7}}, "duration",
                 id="wan26-duration-7"),
    pytest.param(I2V_26, "createWan26I2vTask", {"input": {"prompt": "a cat"}}, "img_url",
                 id="wan26-missing-img-url"),
    pytest.param("/v3/async/wan-i2v", "createWanI2vTask", {"prompt": "a cat"}, "image_url",
                 id="wan21-i2v-missing-image-url"),
]


@pytest.mark.parametrize(("path", "op", "body", "mentions"), BAD_REQUESTS)
async def test_invalid_request_is_400(
    app: Starlette, client: httpx.AsyncClient, path: str, op: str, body: dict, mentions: str,
) -> None:
    r = await client.post(path, json=body, headers=KEY)
    err = assert_envelope(op, r, 400, "INVALID_REQUEST_BODY")
    assert mentions in err["message"]
    assert len(list(app.state.backend.tasks())) == 0  # nothing was accepted


async def test_missing_prompt_uses_contract_message(client: httpx.AsyncClient) -> None:
    r = await client.post(T2V, json={"seed": 1}, headers=KEY)
    assert assert_envelope("createWanT2vTask", r, 400,
                           "INVALID_REQUEST_BODY")["message"] == "prompt is required"


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        pytest.param(b"{not json", "application/json", id="not-json"),
        pytest.param(b"", "application/json", id="empty"),
        pytest.param(b'{"prompt": "x"}', "text/plain", id="wrong-content-type"),
    ],
)
async def test_unreadable_body_is_400(client: httpx.AsyncClient, content: bytes,
                                      ctype: str) -> None:
    r = await client.post(T2V, content=content, headers={**KEY, "Content-Type": ctype})
    assert_envelope("createWanT2vTask", r, 400, "INVALID_REQUEST_BODY")


async def test_too_large_body_is_400(client: httpx.AsyncClient) -> None:
    big = b'{"prompt": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = await client.post(T2V, content=big, headers={**KEY, "Content-Type": "application/json"})
    assert_envelope("createWanT2vTask", r, 400, "INVALID_REQUEST_BODY")


async def test_wan26_overlong_prompt_is_truncated(app: Starlette,
                                                  client: httpx.AsyncClient) -> None:
    prompt = "a" * 2500
    task_id = await submit(client, I2V_26, {"input": {"prompt": prompt, "img_url": IMG}},
                           "createWan26I2vTask")
    spec = app.state.backend.store.get(task_id).spec
    assert spec.prompt == prompt
    assert spec.actual_prompt == "a" * 2000


async def test_wan21_overlong_prompt_is_rejected(client: httpx.AsyncClient) -> None:
    r = await client.post(T2V, json={"prompt": "a" * 2001}, headers=KEY)
    assert_envelope("createWanT2vTask", r, 400, "INVALID_REQUEST_BODY")


async def test_unknown_fields_tolerated(app: Starlette, client: httpx.AsyncClient) -> None:
    body = {"prompt": "a fox", "extend_prompt": True, "function": None, "whatever": {"x": [1]},
            "extra": {"webhook": {"url": "https://example.com/hook"}, "trace": "abc"}}
    task_id = await submit(client, T2V, body, "createWanT2vTask")
    assert app.state.backend.store.get(task_id).request == body
    r = await client.post(I2V_26, json={"input": {"img_url": IMG, "foo": 1}, "bar": 2},
                          headers=KEY)
    assert r.status_code == 200
    conforms("createWan26I2vTask", r)


async def test_wan21_defaults_when_width_or_height_missing(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    task_id = await submit(client, T2V, {"prompt": "x", "width": 1280}, "createWanT2vTask")
    spec = app.state.backend.store.get(task_id).spec
    assert (spec.width, spec.height) == (832, 480)
    task_id = await submit(client, T2V, {"prompt": "x", "width": 720, "height": 1280},
                           "createWanT2vTask")
    spec = app.state.backend.store.get(task_id).spec
    assert (spec.width, spec.height) == (720, 1280)


# -- authentication --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": ""}, id="empty"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Bearer "}, id="bearer-without-key"),
    ],
)
async def test_bad_authorization_is_401(
    app: Starlette, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.post(T2V, json={"prompt": "x"}, headers=headers)
    assert_envelope("createWanT2vTask", r, 401, "INVALID_API_KEY")
    r = await client.get(RESULT, params={"task_id": "abc"}, headers=headers)
    assert_envelope("getTaskResult", r, 401, "INVALID_API_KEY")
    assert len(list(app.state.backend.tasks())) == 0


async def test_auth_checked_before_body(client: httpx.AsyncClient) -> None:
    r = await client.post(T2V, content=b"{nope", headers={"Content-Type": "application/json"})
    assert_envelope("createWanT2vTask", r, 401, "INVALID_API_KEY")


async def test_api_keys_option_rejects_other_keys() -> None:
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=1, api_keys=["sk_good"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.jiekou.ai") as c:
        r = await c.post(T2V, json={"prompt": "x"}, headers={"Authorization": "Bearer sk_bad"})
        assert_envelope("createWanT2vTask", r, 401, "INVALID_API_KEY")
        r = await c.post(T2V, json={"prompt": "x"}, headers={"Authorization": "Bearer sk_good"})
        assert r.status_code == 200


async def test_bare_key_is_taken_as_the_npm_sdk_sends_it() -> None:
    """Decision bare-api-key (issue 12 item 3): every npm novita-sdk release (1.0.10 to 3.1.3)
    sends `Authorization: <key>`; the fake takes it as the key by default."""
    app = create_app(families=["jiekou"], clock=ManualClock(), seed=1, api_keys=["sk_good"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.jiekou.ai") as c:
        r = await c.post(T2V, json={"prompt": "x"}, headers={"Authorization": "sk_good"})
        assert r.status_code == 200, r.text
        task_id = r.json()["task_id"]
        r = await c.get(RESULT, params={"task_id": task_id}, headers={"Authorization": "sk_good"})
        assert conforms("getTaskResult", r)["task"]["task_id"] == task_id
        r = await c.post(T2V, json={"prompt": "x"}, headers={"Authorization": "sk_bad"})
        assert_envelope("createWanT2vTask", r, 401, "INVALID_API_KEY")
        r = await c.post(T2V, json={"prompt": "x"}, headers={"Authorization": "Bearer sk_good"})
        assert r.status_code == 200  # the documented form still works
        r = await c.post(T2V, json={"prompt": "x"}, headers={"Authorization": "Basic sk_good"})
        assert_envelope("createWanT2vTask", r, 401, "INVALID_API_KEY")
    journal = app.state.backend.journal.entries()
    assert [e.violations for e in journal if e.status == 200] == [[], [], []]
    assert all("sk_good" not in str(e.as_dict()) for e in journal)


@pytest.mark.parametrize("app", [{"jiekou_bare_key": "reject"}], indirect=True)
async def test_bare_key_reject_option_is_the_error_guides_401(
        app: Starlette, client: httpx.AsyncClient) -> None:
    """`jiekou_bare_key="reject"`: "not Bearer <key>" is a 401 (Novita's error guide)."""
    r = await client.post(T2V, json={"prompt": "x"}, headers={"Authorization": "sk_test_key"})
    assert_envelope("createWanT2vTask", r, 401, "INVALID_API_KEY")
    r = await client.get(RESULT, params={"task_id": "abc"},
                         headers={"Authorization": "sk_test_key"})
    assert_envelope("getTaskResult", r, 401, "INVALID_API_KEY")
    assert len(list(app.state.backend.tasks())) == 0


# -- task-result -----------------------------------------------------------------------------
async def test_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get(RESULT, params={"task_id": "6a1b2c3d-0000-4000-8000-00000000dead"},
                         headers=KEY)
    err = assert_envelope("getTaskResult", r, 404, "TASK_NOT_FOUND")
    assert "6a1b2c3d-0000-4000-8000-00000000dead" in err["message"]


@pytest.mark.parametrize("params", [pytest.param({}, id="missing"),
                                    pytest.param({"task_id": ""}, id="empty")])
async def test_task_id_required(client: httpx.AsyncClient, params: dict) -> None:
    r = await client.get(RESULT, params=params, headers=KEY)
    assert_envelope("getTaskResult", r, 400, "INVALID_REQUEST_BODY")


async def test_task_of_another_family_is_404() -> None:
    app = create_app(families=["jiekou", "dashscope"], clock=ManualClock(), seed=1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.jiekou.ai") as c:
        r = await c.post(
            "/api/v1/services/aigc/video-generation/video-synthesis",
            json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"}},
            headers={**KEY, "X-DashScope-Async": "enable"},
        )
        assert r.status_code == 200, r.text
        other = r.json()["output"]["task_id"]
        r = await c.get(RESULT, params={"task_id": other}, headers=KEY)
        assert_envelope("getTaskResult", r, 404, "TASK_NOT_FOUND")


async def test_failed_task_renders_reason(app: Starlette, client: httpx.AsyncClient) -> None:
    from mockserver.core.tasks import State

    task_id = await submit(client, T2V, {"prompt": "x"}, "createWanT2vTask")
    app.state.backend.clock.advance(2)
    running = await poll(client, task_id)
    assert running["task"]["status"] == "TASK_STATUS_PROCESSING"
    app.state.backend.force(app.state.backend.store.get(task_id), State.FAILED)
    body = await poll(client, task_id)
    assert body["task"]["status"] == "TASK_STATUS_FAILED"
    assert body["task"]["reason"] == "Forced failure (wanmock)"
    assert body["task"]["progress_percent"] >= running["task"]["progress_percent"]
    assert body["task"]["eta"] == 0
    assert body["videos"] == []
    assert body["extra"]["debug_info"]["complete_time_ms"] != "0"


async def test_canceled_task_renders_failed(app: Starlette, client: httpx.AsyncClient) -> None:
    from mockserver.core.tasks import State

    task_id = await submit(client, T2V, {"prompt": "x"}, "createWanT2vTask")
    app.state.backend.force(app.state.backend.store.get(task_id), State.CANCELED)
    body = await poll(client, task_id)
    assert body["task"]["status"] == "TASK_STATUS_FAILED"
    assert body["task"]["reason"]
    assert body["videos"] == []


async def test_expired_task_is_404(app: Starlette, client: httpx.AsyncClient) -> None:
    from mockserver.core.tasks import State

    task_id = await submit(client, T2V, {"prompt": "x"}, "createWanT2vTask")
    app.state.backend.force(app.state.backend.store.get(task_id), State.EXPIRED)
    r = await client.get(RESULT, params={"task_id": task_id}, headers=KEY)
    assert_envelope("getTaskResult", r, 404, "TASK_NOT_FOUND")


async def test_tasks_are_kept(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await submit(client, T2V, {"prompt": "x"}, "createWanT2vTask")
    app.state.backend.clock.advance(30 * 86400)
    assert (await poll(client, task_id))["task"]["status"] == "TASK_STATUS_SUCCEED"


# -- result URL ------------------------------------------------------------------------------
async def test_signed_url_expires(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await submit(client, T2V, {"prompt": "x"}, "createWanT2vTask")
    app.state.backend.clock.advance(20)
    done = await poll(client, task_id)
    (video,) = done["videos"]
    assert video["video_url_ttl"] == "3600"
    head = await client.head(video["video_url"])
    assert head.status_code == 200
    app.state.backend.clock.advance(3600)
    r = await client.get(video["video_url"])
    assert r.status_code == 403
    assert b"AccessDenied" in r.content
    # The TTL is a constant: a fresh poll still says "3600" though the URL has expired.
    later = await poll(client, task_id)
    assert later["videos"][0]["video_url_ttl"] == "3600"


@pytest.mark.parametrize("app", [{"jiekou_url_ttl": "countdown"}], indirect=True)
async def test_signed_url_ttl_countdown_option(app: Starlette,
                                               client: httpx.AsyncClient) -> None:
    """`jiekou_url_ttl=countdown`: the seconds left as an integer, counting from the end."""
    task_id = await submit(client, T2V, {"prompt": "x"}, "createWanT2vTask")
    app.state.backend.clock.advance(20)
    ttl = (await poll(client, task_id))["videos"][0]["video_url_ttl"]
    assert isinstance(ttl, int) and 0 < ttl <= 3600
    app.state.backend.clock.advance(ttl + 1)
    assert (await poll(client, task_id))["videos"][0]["video_url_ttl"] == 0


async def test_tampered_url_is_403(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await submit(client, T2V, {"prompt": "x"}, "createWanT2vTask")
    app.state.backend.clock.advance(20)
    url = (await poll(client, task_id))["videos"][0]["video_url"]
    r = await client.get(url[:-4] + "0000")
    assert r.status_code == 403


async def test_journal_records_task(app: Starlette, client: httpx.AsyncClient) -> None:
    task_id = await submit(client, T2V, {"prompt": "x"}, "createWanT2vTask")
    await poll(client, task_id)
    entries = app.state.backend.journal.entries(family="jiekou", task_id=task_id)
    assert [e.operation for e in entries] == ["createWanT2vTask", "getTaskResult"]
    assert [e.status for e in entries] == [200, 200]
