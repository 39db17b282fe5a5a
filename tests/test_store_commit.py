"""Group commit of new tasks in the shared stores (core/store/shared.py `SharedStore.commit`).

A submit inside a request is written before the request answers, in one round trip with every
other submit of the same event-loop turn. These tests drive raw ASGI calls, so what runs in one
turn is known exactly, over a real SQLite file and a real redis-server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mockserver.app import create_app
from mockserver.core.backend import Backend, Options
from mockserver.core.store import StoreUnavailable

KEY = "sk-commit-test"
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk"},
        "parameters": {"size": "1280*720", "duration": 5}}


async def call(app: Any, method: str, path: str, body: Any = None,
               key: str = KEY, extra: list[tuple[bytes, bytes]] | None = None
               ) -> tuple[int, dict[str, Any]]:
    """One request through the app as a server would make it; (status, JSON body)."""
    raw = b"" if body is None else json.dumps(body).encode()
    headers = [(b"host", b"fake.test"), (b"authorization", f"Bearer {key}".encode()),
               (b"x-dashscope-async", b"enable"), (b"content-type", b"application/json"),
               (b"content-length", str(len(raw)).encode()), *(extra or [])]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "server": ("fake.test", 80), "client": ("127.0.0.1", 5000)}
    sent: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()  # nothing more: the client waits for the answer
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(payload) if payload else {}


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/commit.db"
    return str(request.getfixturevalue("redis_server").url())


@pytest.fixture
def apps(store_url: str, contract_set: Any) -> Iterator[list[Any]]:
    """Two apps over one store (two workers), each with its own Backend."""
    made = [create_app(backend=Backend(Options().merged(store=store_url, clock="manual", seed=3,
                                                             # 12 submits in one turn
                                                             dashscope_rate_limits="off"),
                                       contracts=contract_set)) for _ in range(2)]
    yield made
    for app in made:
        app.state.backend.state.close()


def _count_inserts(app: Any) -> list[int]:
    """Record the size of every batch the app's store driver inserts."""
    driver = app.state.backend.state.driver
    sizes: list[int] = []
    real = driver.put_tasks

    def put_tasks(epoch: int, rows: list[Any]) -> list[bool]:
        sizes.append(len(rows))
        return real(epoch, rows)

    driver.put_tasks = put_tasks
    return sizes


def test_concurrent_submits_are_written_in_one_round_trip(apps: list[Any]) -> None:
    a, b = apps
    sizes = _count_inserts(a)

    async def run() -> list[tuple[int, dict[str, Any]]]:
        return await asyncio.gather(*(call(a, "POST", CREATE, BODY) for _ in range(12)))

    answers = asyncio.run(run())
    assert [status for status, _ in answers] == [200] * 12
    ids = [body["output"]["task_id"] for _, body in answers]
    assert len(set(ids)) == 12
    assert sizes == [12]  # one insert for the twelve submits of one turn
    # Each was in the store when it was answered: the other worker knows every one.

    async def polls() -> list[tuple[int, dict[str, Any]]]:
        return [await call(b, "GET", f"/api/v1/tasks/{i}") for i in ids]

    assert [body["output"]["task_status"] for _, body in asyncio.run(polls())] == (
        ["PENDING"] * 12)


def test_submits_one_after_another_are_each_written_before_their_answer(apps: list[Any]
                                                                         ) -> None:
    a, b = apps
    sizes = _count_inserts(a)

    async def run() -> list[str]:
        seen = []
        for _ in range(3):
            status, body = await call(a, "POST", CREATE, BODY)
            assert status == 200
            task_id = body["output"]["task_id"]
            status, polled = await call(b, "GET", f"/api/v1/tasks/{task_id}")
            seen.append(polled["output"]["task_status"])
        return seen

    assert asyncio.run(run()) == ["PENDING"] * 3
    assert sizes == [1, 1, 1]


def test_the_store_failing_at_commit_answers_503_and_keeps_no_task(apps: list[Any]) -> None:
    a, b = apps
    driver = a.state.backend.state.driver

    def down(epoch: int, rows: list[Any]) -> list[bool]:
        raise StoreUnavailable("the store went away")

    driver.put_tasks = down

    async def run() -> list[tuple[int, dict[str, Any]]]:
        return await asyncio.gather(*(call(a, "POST", CREATE, BODY) for _ in range(3)))

    answers = asyncio.run(run())
    # DashScope's own 503 envelope (its contract's `unavailable` fault), for every submit.
    fault = a.state.backend.contracts["dashscope"].extensions.faults["unavailable"]
    assert [status for status, _ in answers] == [fault.status] * 3 == [503] * 3
    assert {(body["code"], body["message"]) for _, body in answers} == {
        (fault.code, fault.message)}
    assert len(b.state.backend.store) == 0  # nothing half-made in the store
    # The journal says what the client got.
    entries = a.state.backend.journal.entries(operation="createVideoSynthesis")
    assert [e.status for e in entries] == [503] * 3
    # No task of a failed submit is left for this worker to answer about either.
    ids = [t.id for t in a.state.backend.store]
    assert ids == []


def test_new_api_submits_with_an_alias_are_written_before_the_alias(apps: list[Any]) -> None:
    """new-api gives its task an alias (the upstream id) in the same request: the task is
    written first, so the alias never points at nothing."""
    a, b = apps
    body = {"model": "wan2.6-t2v", "prompt": "a lighthouse at dusk", "duration": 5,
            "size": "1280*720"}

    async def run() -> tuple[int, dict[str, Any], int, dict[str, Any]]:
        status, made = await call(a, "POST", "/v1/video/generations", body)
        task_id = made.get("task_id") or made.get("id")
        polled_status, polled = await call(b, "GET", f"/v1/video/generations/{task_id}")
        return status, made, polled_status, polled

    status, made, polled_status, polled = asyncio.run(run())
    assert status == 200, made
    assert polled_status == 200, polled
    assert len(b.state.backend.store) == 1


def test_a_write_forgets_only_the_rows_it_wrote(store_url: str) -> None:
    """A worker's own insert of one task drops that task's cached read, not every task's: polls
    of other tasks keep being answered from the cache while submits go on."""
    from mockserver.core.store import open_store

    store = open_store(store_url)
    try:
        driver = store.driver
        epoch = store.view().epoch
        driver.put_tasks(epoch, [("a", 1.0, "{}")])
        driver.sync("a", False)  # task a's row read (and cached)
        driver.sync("b", False)  # no task b yet: that read is cached too
        def cached() -> set[str]:
            return set(driver._cache.rows if hasattr(driver, "_cache") else driver._local.rows)

        assert {"a", "b"} <= cached()
        driver.put_tasks(epoch, [("b", 2.0, "{}")])
        assert "a" in cached() and "b" not in cached()
        assert driver.sync("b", False)["row"] is not None  # read again: it exists now
    finally:
        store.close()


def test_a_task_polled_before_its_submit_is_answered_is_written_once(apps: list[Any]) -> None:
    """A poll that reaches a task while its submit still waits for the batch (a client that
    guessed a seeded id) writes it on the spot; the batch then leaves it out, and the submit is
    answered 200, not as an id already taken."""
    a, b = apps
    backend = a.state.backend
    seen: dict[str, Any] = {}

    async def run() -> tuple[int, int]:
        async def submit() -> int:
            status, body = await call(a, "POST", CREATE, BODY)
            seen["id"] = body.get("output", {}).get("task_id")
            return status

        async def poll_pending() -> int:
            # Runs in the same turn, before the batch callback: the task is still pending.
            pending = list(backend.state._tasks._pending)
            assert len(pending) == 1
            status, _ = await call(a, "GET", f"/api/v1/tasks/{pending[0]}")
            return status

        first = asyncio.ensure_future(submit())
        await asyncio.sleep(0)  # the submit runs up to its commit, then this goes on
        second = await poll_pending()
        return await first, second

    statuses = asyncio.run(run())
    assert list(statuses) == [200, 200]
    assert len(b.state.backend.store) == 1  # written once, visible to the other worker


def test_a_flush_after_the_store_closed_leaves_it_alone(
        store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """close() flushes what was queued; an entry a late request queues after it (the server is
    shutting down) is not written to the closed store by the event loop's flush timer, and no
    error is logged for it."""
    from mockserver.core.store import open_store

    async def run() -> int:
        store = open_store(store_url)
        epoch = store.view().epoch
        store.close()
        store.queue_entry(epoch, "a late entry")
        await asyncio.sleep(0.12)  # past the 50 ms flush interval
        return epoch

    with caplog.at_level("ERROR", logger="mockserver"):
        epoch = asyncio.run(run())
    assert not [r for r in caplog.records if r.name == "mockserver"]
    again = open_store(store_url)
    try:
        assert again.driver.journal(epoch) == []
    finally:
        again.close()
