"""A page on another origin, in a real Chromium, tries to drive the fake's control plane (issue
20, point 1) and is refused; the dashboard's own forms, with and without a control token, work.

The attacker's page is served by a second fake's port under another origin
(`http://localhost:P` against the victim's `http://127.0.0.1:Q`), so both stay on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from mockserver.server import ThreadedMockServer
from tests.helpers import require_program
from tests.ui.test_browser import FLAGS

ATTACK = """<!doctype html><meta charset="utf-8"><title>cute cats</title>
<iframe name="sink"></iframe>
<form id="f" method="post" enctype="text/plain" target="sink" action="{fake}/_wanmock/reset">
<input name='{{"x":"' value='"}}'></form>
<script>
const fake = "{fake}";
const simple = (path, body, type) => fetch(fake + path, {{method: "POST", mode: "no-cors",
  headers: type ? {{"Content-Type": type}} : {{}}, body}}).catch(() => null);
window.attack = Promise.all([
  simple("/_wanmock/scenarios", JSON.stringify({{scenario: "unavailable"}}), "text/plain"),
  simple("/_wanmock/clock/advance", '{{"seconds": 1000}}', "text/plain"),
  simple("/_wanmock/clock/advance", new Blob(['{{"seconds": 1000}}'])),
  simple("/_wanmock/tasks/{task}/state", "state=failed", "application/x-www-form-urlencoded"),
  fetch(fake + "/_wanmock/reset", {{method: "POST", headers: {{"Content-Type":
    "application/json"}}, body: "{{}}"}}).catch(() => "blocked by CORS"),
]).then(() => {{ document.getElementById("f").submit(); return "done"; }});
</script>"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    path = require_program("chromium", "apt-get install chromium")
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=FLAGS)
        yield browser
        browser.close()


def submit(url: str) -> str:
    r = httpx.post(url + "/api/v1/services/aigc/video-generation/video-synthesis",
                   headers={"Authorization": "Bearer sk-x", "X-DashScope-Async": "enable"},
                   json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"},
                         "parameters": {"size": "1280*720", "duration": 5}}, trust_env=False)
    assert r.status_code == 200, r.text
    return r.json()["output"]["task_id"]  # type: ignore[no-any-return]


def test_a_cross_origin_page_cannot_drive_the_fake(chromium: Any) -> None:
    with ThreadedMockServer(clock="manual") as victim:
        task = submit(victim.url)
        page_html = ATTACK.format(fake=victim.url, task=task)
        evil = Starlette(routes=[Route("/", lambda r: HTMLResponse(page_html))])
        with ThreadedMockServer(evil) as attacker:
            context = chromium.new_context()
            page = context.new_page()
            answers: list[tuple[str, int]] = []
            page.on("response", lambda r: r.url.startswith(victim.url)
                    and answers.append((r.url[len(victim.url):], r.status)))
            page.goto(f"http://localhost:{attacker.port}/")
            assert page.evaluate("window.attack") == "done"
            page.wait_for_function("() => true")
            deadline = 50
            while len(answers) < 5 and deadline:  # the form's navigation lands in the iframe
                page.wait_for_timeout(100)
                deadline -= 1
            context.close()
        backend = victim.backend
        assert backend.scenarios.rules() == []
        assert backend.now() == 1767225600.0
        assert [t.id for t in backend.tasks()] == [task]
        assert backend.view(backend.store.get(task)).state.value == "queued"
        # every simple request reached the fake and was refused there (the JSON one never
        # left the browser: its preflight got no CORS approval)
        assert len(answers) == 5, answers
        assert all(status in (403, 415) for _, status in answers), answers
        assert ("/_wanmock/reset", 403) in answers


def test_the_dashboard_forms_work_with_a_control_token(chromium: Any) -> None:
    with ThreadedMockServer(clock="manual", allow_remote=True) as server:
        task = submit(server.url)
        context = chromium.new_context()
        page = context.new_page()
        page.set_default_timeout(8000)
        assert page.goto(f"{server.url}/_wanmock/ui/controls").status == 401
        page.goto(f"{server.url}/_wanmock/ui/controls?task={task}&token={server.control_token}")
        assert "token=" not in page.url  # the cookie carries it from here
        page.fill("#advance input[name=seconds]", "2.5")
        page.click("#advance button")
        page.wait_for_selector("#advance output.ok")
        assert server.backend.now() == pytest.approx(1767225602.5)
        page.select_option("#force select[name=state]", "failed")
        page.click("#force button")
        page.wait_for_selector("#force output.ok")
        assert server.backend.view(server.backend.store.get(task)).state.value == "failed"
        page.goto(f"{server.url}/_wanmock/ui/tasks/{task}")
        assert page.locator("h1").first.text_content()
        context.close()
