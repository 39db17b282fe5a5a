"""The dashboard in a real browser: Playwright driving Debian's chromium (launched by its path;
skipped locally without it, a failure under CI=true) against a live fake on 127.0.0.1.

One server, one browser and one page for the module. Every test also checks that the page sent
no request beyond 127.0.0.1 and logged no console error. With WANMOCK_SCREENSHOTS=1 the tests
save the screenshots of the README and docs/dashboard.md into docs/ui/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.contracts import load
from mockserver.core.tasks import State
from mockserver.server import ThreadedMockServer
from tests.helpers import require_program
from tests.ui.jobs import DASHSCOPE_HEADERS, JOBS, dashscope, task_id

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
UI = "/_wanmock/ui"


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedMockServer]:
    with ThreadedMockServer(seed=3, clock="manual", body_limit=16 * 1024 * 1024) as live:
        yield live


@pytest.fixture(scope="module")
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def browser_page(server) -> Iterator[Any]:
    chromium = require_program("chromium", "apt-get install chromium")
    from playwright import sync_api  # the test extra installs it: missing, the test errors

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.set_default_timeout(8000)
        page.urls, page.problems = [], []
        page.on("request", lambda r: page.urls.append(r.url))
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        yield page
        context.close()
        browser.close()


@pytest.fixture
def page(browser_page, server, http) -> Iterator[Any]:
    """The shared page, on a fake reset for this test; afterwards: only 127.0.0.1 was asked,
    and the console stayed clean."""
    http.post("/_wanmock/reset").raise_for_status()
    browser_page.urls.clear()
    browser_page.problems.clear()
    yield browser_page
    origin = server.url + "/"
    strays = [u for u in browser_page.urls
              if not (u.startswith(origin) or u.startswith("data:"))]
    assert not strays, strays
    assert all(u.startswith("http://127.0.0.1:") or u.startswith("data:")
               for u in browser_page.urls)
    assert not browser_page.problems, browser_page.problems


def shot(page: Any, name: str) -> None:
    if os.environ.get("WANMOCK_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def submit(http: httpx.Client, family: str, body: Any = None, **headers: str) -> str:
    path, default_headers, default_body, _ = JOBS[family]
    r = http.post(path, json=default_body if body is None else body,
                  headers={**default_headers, **headers})
    assert r.status_code == 200, r.text
    return task_id(family, r.json())


def poll(http: httpx.Client, tid: str) -> str:
    r = http.get(f"/api/v1/tasks/{tid}", headers=DASHSCOPE_HEADERS)
    return str(r.json()["output"]["task_status"])


def test_tasks_page_lists_every_family_and_shows_new_tasks_live(page, server, http) -> None:
    ids = {family: submit(http, family) for family in JOBS}
    page.goto(server.url + UI)
    rows = page.locator("#tasks tbody tr[data-task]")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.task)")) == sorted(ids.values())
    families = page.locator("#tasks tbody tr td:nth-child(2)").all_text_contents()
    assert sorted(families) == sorted(JOBS)
    page.wait_for_selector("#live.on")  # the event stream is open
    page.evaluate("window.notReloaded = true")
    fresh = submit(http, "dashscope")
    page.wait_for_selector(f'#tasks tr[data-task="{fresh}"]')
    server.backend.clock.advance(30)  # every task ends; the page follows without a reload
    page.wait_for_selector(f'#tasks tr[data-task="{fresh}"][data-state="succeeded"]')
    assert page.evaluate("window.notReloaded") is True
    shot(page, "tasks")


def test_task_page_reaches_the_end_live_plays_the_video_and_shows_polls(page, server,
                                                                        http) -> None:
    tid = submit(http, "dashscope")
    clock = server.backend.clock
    poll(http, tid)
    page.goto(f"{server.url}{UI}/tasks/{tid}")
    page.wait_for_selector("#live.on")
    assert page.locator(".task-title .state").text_content() == "queued"
    page.evaluate("window.notReloaded = true")
    seen = []
    for step in (0.4, 1.2, 1.2, 1.2):
        clock.advance(step)
        seen.append(poll(http, tid))
    assert seen[-1] == "SUCCEEDED", seen
    page.wait_for_selector(".task-title .state-succeeded")
    page.wait_for_selector('#polls tbody tr:nth-child(5)')
    assert page.locator("svg.timeline g.tick").count() == 5
    assert page.locator("svg.timeline g.tick.too-fast").count() == 1  # the 0.4 s one
    assert page.locator("#verdict").text_content().count("1.2") >= 1  # median 1.200 s
    page.wait_for_function(
        "() => { const v = document.querySelector('video#result');"
        " return v && v.readyState >= 1 && v.duration > 1.5; }")
    duration = page.evaluate("document.querySelector('video#result').duration")
    assert 1.5 < duration < 2.5  # the 2 s job's MP4
    played = page.evaluate(
        "() => document.querySelector('video#result').play().then(() => true)")
    assert played is True
    page.wait_for_function("() => document.querySelector('video#result').currentTime > 0")
    assert page.evaluate("window.notReloaded") is True
    page.evaluate("document.querySelector('video#result').pause()")
    shot(page, "task")
    bad = http.post(JOBS["dashscope"][0], headers=DASHSCOPE_HEADERS, json=dashscope() | {
        "parameters": {"size": "7*7", "duration": 2}})
    assert bad.status_code == 400
    page.goto(f"{server.url}{UI}/journal")
    why = page.locator("#journal tbody tr[data-seq]").first.locator(".why").text_content()
    assert why.startswith("rule schema:enum at parameters.size: 400 InvalidParameter")
    shot(page, "journal")


def test_each_control_works_from_the_page(page, server, http) -> None:
    backend = server.backend
    tid = submit(http, "dashscope")
    page.goto(f"{server.url}{UI}/controls?task={tid}")
    before = backend.now()
    page.fill("#advance input[name=seconds]", "2.5")
    page.click("#advance button")
    page.wait_for_selector("#advance output.ok")
    assert backend.now() == pytest.approx(before + 2.5)

    page.select_option("#force select[name=state]", "failed")
    page.click("#force button")
    page.wait_for_selector("#force output.ok")
    assert backend.view(backend.store.get(tid)).state is State.FAILED

    page.fill("#add-scenario input[name=scenario]", "fail; kind=moderation; at=0.5")
    page.select_option("#add-scenario select[name='match.family']", "jiekou")
    page.fill("#add-scenario input[name=times]", "2")
    page.click("#add-scenario button")
    page.wait_for_selector('#rules tr[data-rule]')  # the rules table refreshed itself
    rules = backend.scenarios.rules()
    assert [(r.scenario.name, r.match, r.times) for r in rules] == [
        ("fail", {"family": "jiekou"}, 2)]
    shot(page, "controls")
    page.click(f'#rules tr[data-rule="{rules[0].id}"] button')
    page.wait_for_selector("#rules tr[data-rule]", state="detached")
    assert backend.scenarios.rules() == []

    page.click("#reset button")  # confirm() is accepted by the page's dialog handler
    page.wait_for_selector("#reset output.ok")
    assert list(backend.tasks()) == []


def test_hostile_values_are_shown_escaped_and_cut(page, server, http) -> None:
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    tid = submit(http, "dashscope", dashscope(hostile),
                 **{"X-Evil": '<img src=y onerror="window.pwned = 3">'})
    page.goto(f"{server.url}{UI}/tasks/{tid}")
    shown = page.locator("pre.body").first.text_content()
    assert hostile.replace('"', '\\"') in shown  # as text, JSON-quoted
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    seq = server.backend.journal.entries(task_id=tid)[0].seq
    page.goto(f"{server.url}{UI}/journal/{seq}")
    assert "onerror" in page.locator("#request-headers").text_content()
    assert page.evaluate("window.pwned") is None

    big = submit(http, "dashscope", dashscope("y" * (10 * 1024 * 1024)))
    page.goto(f"{server.url}{UI}/tasks/{big}")
    text = page.locator("pre.body").first.text_content()
    assert len(text) < 4200 and "+10,484,736 characters" in text
    assert page.locator("a", has_text="Full body").first.get_attribute("href") == (
        f"{UI}/tasks/{big}/request.json")
    page.goto(f"{server.url}{UI}/journal")
    assert page.evaluate("window.pwned") is None
    page.goto(f"{server.url}{UI}/contracts?family=dashscope")
    assert page.locator("details.operation").count() == len(load()["dashscope"].operations)
    shot(page, "contracts")
