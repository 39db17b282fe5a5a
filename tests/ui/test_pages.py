"""The dashboard's pages in process (httpx ASGITransport): what each lists, its filters and
paging, escaping and truncation, the event stream's format, and shutdown with a stream open."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.server import ThreadedMockServer
from mockserver.ui import close_streams, open_streams
from mockserver.ui.stream import events
from mockserver.ui.views import key_label
from tests.ui.jobs import CREATE, DASHSCOPE_HEADERS, JOBS, dashscope, task_id

pytestmark = pytest.mark.anyio
UI = "/_wanmock/ui"
ROW = re.compile(r'<tr data-task="([^"]+)"')


@pytest.fixture
def app():
    # Pages of many tasks made at one moment: no DashScope limits (decision rate-limits).
    return create_app(clock=ManualClock(), seed=1, body_limit=16 * 1024 * 1024,
                      dashscope_rate_limits="off")


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


async def submit(client: httpx.AsyncClient, family: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> str:
    path, default_headers, default_body, _ = JOBS[family]
    r = await client.post(path, json=default_body if body is None else body,
                          headers={**default_headers, **(headers or {})})
    assert r.status_code == 200, r.text
    return task_id(family, r.json())


async def every_family(client: httpx.AsyncClient) -> dict[str, str]:
    return {family: await submit(client, family) for family in JOBS}


async def page(client: httpx.AsyncClient, path: str, **params: Any) -> str:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    return r.text


async def test_tasks_page_lists_every_family_with_its_columns(client, app) -> None:
    ids = await every_family(client)
    html = await page(client, UI)
    assert set(ROW.findall(html)) == set(ids.values())
    for family in JOBS:
        assert f">{family}</a>" in html
    assert "wan2.1-t2v" in html and "wan2.6-t2v" in html
    assert "1280×720" in html and "queued" in html
    # API keys are shown (and filtered) by a label, never in clear.
    assert "sk-ui-test-key-1" not in html
    assert key_label("sk-ui-test-key-1") in html


async def test_tasks_filters_by_family_state_model_mode_and_key(client, app) -> None:
    ids = await every_family(client)
    html = await page(client, UI, family="jiekou")
    assert ROW.findall(html) == [ids["jiekou"]]
    html = await page(client, UI, model="wan2.1-t2v")
    assert ROW.findall(html) == [ids["jiekou"]]
    # new-api takes `sk-x` and `x` for one key: its tasks keep (the digest of) the key
    # without `sk-`, and are labelled so
    html = await page(client, UI, key=key_label("ui-newapi-key"))
    assert ROW.findall(html) == [ids["newapi"]]
    html = await page(client, UI, key="sk-ui-test-key-1")  # the key itself works too
    assert set(ROW.findall(html)) == {ids["dashscope"], ids["apiyi"]}
    assert not ROW.findall(await page(client, UI, mode="i2v"))
    assert not ROW.findall(await page(client, UI, state="succeeded"))
    backend = app.state.backend
    backend.force(backend.store.get(ids["apiyi"]), __import__(
        "mockserver.core.tasks", fromlist=["State"]).State.SUCCEEDED)
    assert ROW.findall(await page(client, UI, state="succeeded")) == [ids["apiyi"]]
    # The filters stay in the URL: the form shows them selected, the pager keeps them.
    html = await page(client, UI, family="jiekou", state="queued")
    assert '<option selected>jiekou</option>' in html


async def test_tasks_are_paged_newest_first(client, app) -> None:
    ids = [await submit(client, "dashscope") for _ in range(57)]
    first = ROW.findall(await page(client, UI))
    assert first == ids[::-1][:50]
    html = await page(client, UI, page="2")
    assert ROW.findall(html) == ids[::-1][50:]
    assert "51–57 of 57" in html
    assert 'rel="prev"' in html and 'rel="next"' not in html
    assert len(ROW.findall(await page(client, UI, per_page="10", page="3"))) == 10
    # Nonsense page numbers read as the nearest page, never an error.
    assert ROW.findall(await page(client, UI, page="999")) == ids[::-1][50:]
    assert ROW.findall(await page(client, UI, page="-1")) == first
    assert ROW.findall(await page(client, UI, page="²", per_page="9" * 5000)) == first


async def test_task_page_shows_polls_verdict_video_and_responses(client, app) -> None:
    backend = app.state.backend
    tid = await submit(client, "dashscope")
    for step in (0.3, 0.3, 2.0, 2.0, 2.0, 2.0, 0.5):
        r = await client.get(f"/api/v1/tasks/{tid}", headers=DASHSCOPE_HEADERS)
        assert r.status_code == 200
        backend.clock.advance(step)
    r = await client.get(f"/api/v1/tasks/{tid}", headers=DASHSCOPE_HEADERS)
    assert r.json()["output"]["task_status"] == "SUCCEEDED"
    html = await page(client, f"{UI}/tasks/{tid}")
    ticks = re.findall(r'<g class="tick([^"]*)" data-seq="(\d+)"', html)
    assert len(ticks) == 8
    assert sum("too-fast" in cls for cls, _ in ticks) == 3  # 0.3, 0.3, 0.5 s; guidance 1 s
    # The job ends at +3.2 s; the poll at +4.6 s sees it, the three after it should not be.
    assert sum("after-end" in cls for cls, _ in ticks) == 3
    assert re.search(r"<dt>median interval</dt><dd>2\.000 s</dd>", html)
    assert "at least 1 s between polls" in html
    video = re.search(r'<video id="result"[^>]* src="([^"]+)"', html)
    assert video is not None
    src = video.group(1).replace("&amp;", "&")
    assert src.startswith(f"/_wanmock/videos/{tid}.mp4?") and "Signature=" in src
    head = await client.head(src)
    assert head.status_code == 200 and head.headers["content-type"] == "video/mp4"
    for label in ("submitted", "running", "succeeded"):
        assert f'data-kind="{label if label != "submitted" else "submit"}"' in html
    assert html.count('<details class="exchange"') == 9  # the submit and eight polls


async def test_task_page_lists_webhooks_and_scenario(client, app) -> None:
    backend = app.state.backend
    backend.scenarios.add("fail; kind=moderation; at=0.5", match={"family": "jiekou"})
    body = dict(JOBS["jiekou"][2], extra={"webhook": {"url": "http://127.0.0.1:9/hook"}})
    tid = await submit(client, "jiekou", body)
    backend.clock.advance(60)
    html = await page(client, f"{UI}/tasks/{tid}")
    assert "http://127.0.0.1:9/hook" in html
    assert re.search(r"<td>recorded</td>", html)
    assert "fail; kind=moderation; at=0.5" in html
    assert "state-failed" in html
    journal = await page(client, f"{UI}/journal", task=tid)
    assert "scenario fail; kind=moderation; at=0.5" in journal


async def test_hostile_values_are_escaped_and_long_bodies_cut(client, app) -> None:
    hostile = '<script>window.pwned=1</script><img src=x onerror="pwned()">'
    tid = await submit(client, "dashscope", dashscope(hostile),
                       headers={"X-Evil": "<b onmouseover=alert(1)>hdr</b>"})
    html = await page(client, f"{UI}/tasks/{tid}")
    assert "<script>window.pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    entry = app.state.backend.journal.entries(task_id=tid)[0]
    html = await page(client, f"{UI}/journal/{entry.seq}")
    assert "<b onmouseover" not in html
    assert "&lt;b onmouseover=alert(1)&gt;hdr&lt;/b&gt;" in html

    big = "x" * (10 * 1024 * 1024)
    tid = await submit(client, "dashscope", dashscope(big))
    start = time.perf_counter()
    html = await page(client, f"{UI}/tasks/{tid}")
    took = time.perf_counter() - start
    assert len(html) < 120_000, len(html)  # the 10 MB prompt is shown as its first 1 KB
    assert "(+10,484,736 characters)" in html
    assert f'href="{UI}/tasks/{tid}/request.json">Full body</a>' in html
    full = await client.get(f"{UI}/tasks/{tid}/request.json")
    assert full.status_code == 200 and len(full.content) > 10 * 1024 * 1024
    assert took < 5  # a generous bound: the page is bounded by its output, not its input
    html = await page(client, f"{UI}/journal", task=tid)
    assert len(html) < 60_000


async def test_journal_filters_and_why(client, app) -> None:
    ids = await every_family(client)
    bad = await client.post(CREATE, headers=DASHSCOPE_HEADERS,
                            json={"model": "wan2.6-t2v", "input": {"prompt": "x"},
                                  "parameters": {"size": "7*7", "duration": 2}})
    assert bad.status_code == 400
    await client.get(f"/api/v1/tasks/{ids['dashscope']}", headers=DASHSCOPE_HEADERS,
                     params={}, )
    seqs = re.compile(r'<tr data-seq="(\d+)"')
    everything = seqs.findall(await page(client, f"{UI}/journal"))
    assert len(everything) == 6 and everything == sorted(everything, key=int, reverse=True)
    assert len(seqs.findall(await page(client, f"{UI}/journal", family="jiekou"))) == 1
    assert len(seqs.findall(await page(client, f"{UI}/journal", operation="getTask"))) == 1
    four = await page(client, f"{UI}/journal", status="4xx")
    assert len(seqs.findall(four)) == 1
    assert "rule schema:enum at parameters.size: 400 InvalidParameter" in four  # why
    assert len(seqs.findall(await page(client, f"{UI}/journal", status="400"))) == 1
    only = await page(client, f"{UI}/journal", task=ids["dashscope"])
    assert len(seqs.findall(only)) == 2
    stats = await page(client, f"{UI}/journal")
    assert re.search(r'operation=createVideoSynthesis">createVideoSynthesis</a></td>\s*'
                     r'<td class="num">2</td><td class="num">1</td><td class="num">1</td>'
                     r'<td class="num">0</td><td class="num">0</td><td class="num">1</td>', stats)
    entry = app.state.backend.journal.entries()[-1]
    as_json = (await client.get(f"{UI}/journal/{entry.seq}.json")).json()
    assert as_json == entry.as_dict()
    assert (await client.get(f"{UI}/journal/99999")).status_code == 404
    assert (await client.get(f"{UI}/journal/99999.json")).status_code == 404


async def test_controls_and_contracts_pages(client, app) -> None:
    app.state.backend.scenarios.add("throttle", match={"family": "newapi"}, times=2)
    html = await page(client, f"{UI}/controls")
    for api in ("/_wanmock/clock/advance", "/_wanmock/tasks/{id}/state", "/_wanmock/scenarios",
                "/_wanmock/reset", "/_wanmock/scenarios/r1"):
        assert f'data-api="{api}"' in html
    assert '<tr data-rule="r1">' in html and "family=newapi" in html
    html = await page(client, f"{UI}/contracts")
    backend = app.state.backend
    for contract in backend.contracts:
        for op in contract.operations.values():
            assert f"<code>{op.operation_id}</code>" in html
    one = await page(client, f"{UI}/contracts", family="jiekou")
    assert "createWanT2vTask" in one and "getTask</code>" not in one
    assert "<code>model_name</code>" in one and "<code>task_id</code>" in one


async def test_missing_task_is_a_404_page(client) -> None:
    r = await client.get(f"{UI}/tasks/<b>nope")
    assert r.status_code == 404 and "task &lt;b&gt;nope" in r.text
    assert (await client.get(f"{UI}/tasks/nope/request.json")).status_code == 404
    assert (await client.get(f"{UI}/events", params={"view": "task", "id": "x"})).status_code == 404


async def test_the_proxy_serves_the_dashboard_too(tmp_path) -> None:
    from mockserver.proxy import Proxy

    proxy = Proxy("http://127.0.0.1:9", report=tmp_path / "report")  # never contacted here
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy.app()),
                                 base_url="http://127.0.0.1") as client:
        r = await client.get(UI)
        assert r.status_code == 200 and "<h1>Tasks</h1>" in r.text
        assert (await client.get(f"{UI}/static/ui.css")).status_code == 200
        assert (await client.get(f"{UI}/contracts")).status_code == 200


def test_webhook_delivery_attempts_show_on_the_task_page() -> None:
    """Under a server a webhook to a closed loopback port is tried again and again; the task
    page lists every attempt and puts each on the timeline."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ThreadedMockServer(seed=1, timing="instant") as server, httpx.Client(
            base_url=server.url, trust_env=False) as client:
        path, headers, body, _ = JOBS["jiekou"]
        hook = {"webhook": {"url": f"http://127.0.0.1:{port}/hook"}}
        r = client.post(path, headers=headers, json=dict(body, extra=hook))
        tid = task_id("jiekou", r.json())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            (found,) = server.backend.webhooks.entries(tid)
            if found.state == "failed":
                break
            time.sleep(0.1)  # retries wait real seconds (0.1 to 0.5 s under instant timing)
        assert found.state == "failed" and len(found.attempts) >= 2
        html = client.get(f"{UI}/tasks/{tid}").text
    assert html.count('<tr class="sub attempt">') == len(found.attempts)
    assert html.count("attempt ") >= len(found.attempts)
    assert f"http://127.0.0.1:{port}/hook" in html


async def test_static_files_are_served() -> None:
    app = create_app(seed=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1") as client:
        js = await client.get(f"{UI}/static/ui.js")
        css = await client.get(f"{UI}/static/ui.css")
    assert js.status_code == 200 and "EventSource" in js.text
    assert "innerHTML" not in js.text  # data reaches the page as text only
    assert css.status_code == 200 and "http" not in css.text  # nothing loaded from elsewhere


async def test_event_stream_sends_versions_when_the_page_changes(app) -> None:
    backend = app.state.backend
    count = [0]

    def version() -> str:
        return f"v{count[0]}"

    async def never() -> bool:
        return False

    got: list[str] = []

    async def read() -> None:
        async for chunk in events(backend, version, never, tick=0.01, max_life=0.3):
            got.append(chunk)
            if len(got) == 2:
                count[0] += 1

    await asyncio.wait_for(read(), 5)
    assert got[0] == "retry: 500\n\n"
    assert got[1] == 'event: version\ndata: {"version":"v0"}\n\n'
    assert got[2] == 'event: version\ndata: {"version":"v1"}\n\n'
    assert len(got) == 3  # no repeats while nothing changes; ended by max_life

    close_streams(backend)
    try:
        chunks = [c async for c in events(backend, version, never, tick=0.01, max_life=10)]
    finally:
        open_streams(backend)
    assert len(chunks) == 2  # closed: the stream ends after its first version


async def test_a_costly_version_is_computed_less_often(app) -> None:
    calls = [0]

    def slow() -> str:
        calls[0] += 1
        time.sleep(0.05)  # as a state filter over many tasks would
        return "same"

    async def never() -> bool:
        return False

    async for _ in events(app.state.backend, slow, never, tick=0.01, max_life=0.6):
        pass
    # Every 0.2 s (four times its cost), not every 0.01 s tick.
    assert 2 <= calls[0] <= 5, calls


def test_stop_returns_promptly_with_a_stream_open() -> None:
    server = ThreadedMockServer(seed=1).start()
    first: list[str] = []
    done = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", f"{server.url}{UI}/events", timeout=30) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                for line in r.iter_lines():
                    first.append(line)
        except httpx.HTTPError:
            pass
        done.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not any(line.startswith("data:") for line in first) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(line.startswith("data:") for line in first), first
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3.0
    assert done.wait(3.0)


async def test_under_poll_mode_the_timeline_follows_the_polls() -> None:
    """`mode=polls`: the task starts and ends at the polls that moved it, not by the clock."""
    app = create_app(clock=ManualClock(), seed=1, mode="polls")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1") as client:
        tid = await submit(client, "dashscope")
        seen = []
        for _ in range(5):
            app.state.backend.clock.advance(2)
            r = await client.get(f"/api/v1/tasks/{tid}", headers=DASHSCOPE_HEADERS)
            seen.append(r.json()["output"]["task_status"])
        html = await page(client, f"{UI}/tasks/{tid}")
    assert seen == ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"]
    assert "<title>running at +4.0 s</title>" in html  # the first poll that saw RUNNING
    assert "<title>succeeded at +8.0 s</title>" in html


async def test_task_page_says_when_the_journal_dropped_exchanges() -> None:
    app = create_app(clock=ManualClock(), seed=1, journal_size=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1") as client:
        tid = await submit(client, "dashscope")
        html = await page(client, f"{UI}/tasks/{tid}")
        assert "The journal is full" not in html
        for _ in range(3):
            await client.get(f"/api/v1/tasks/{tid}", headers=DASHSCOPE_HEADERS)
        html = await page(client, f"{UI}/tasks/{tid}")
    assert "The journal is full: it keeps the newest 3 exchanges" in html


async def test_one_dashboard_shows_every_workers_tasks(tmp_path) -> None:
    """Two fakes on one SQLite store (as `wanmock serve --workers 2` runs): a task submitted
    to one is on the other's dashboard, with its polls."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    one, two = (create_app(seed=1, clock="manual", store=url) for _ in range(2))
    try:
        await _two_workers(one, two)
    finally:
        for app in (one, two):
            app.state.backend.state.close()


async def _two_workers(one: Any, two: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=one),
                                 base_url="http://127.0.0.1") as a, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=two), base_url="http://127.0.0.1") as b:
        tid = await submit(a, "dashscope")
        await a.get(f"/api/v1/tasks/{tid}", headers=DASHSCOPE_HEADERS)
        assert ROW.findall(await page(b, UI)) == [tid]
        # A worker writes its journal in batches (mockserver.core.store.shared.FLUSH_S).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            html = await page(b, f"{UI}/tasks/{tid}")
            if re.findall(r'<g class="tick', html):
                break
            await asyncio.sleep(0.05)
    assert len(re.findall(r'<g class="tick', html)) == 1
