"""`public_url` (`--public-url`, WANMOCK_PUBLIC_URL): every self-link the fake renders (result
URLs of every family, jiekou's webhook payloads, the control API's contract links) starts with
it instead of the request's own base URL, so a fake reached as `http://wanmock:8000` inside a
compose network, or behind a reverse proxy under a path prefix, hands out URLs its clients can
fetch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.backend import Options
from mockserver.errors import MockServerError
from tests.helpers import SyncASGITransport, self_links

PUBLIC = "http://wanmock:8000/fake"
KEY = {"Authorization": "Bearer sk-public-url-test"}
DASHSCOPE = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk"},
             "parameters": {"size": "1280*720", "duration": 5}}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    app = create_app(seed=3, timing="instant", public_url=PUBLIC + "/")
    # The client's own host differs from the public one: no link may carry it.
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://10.0.0.7:8123",
                      headers=KEY) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


def _fetch(client: httpx.Client, url: str) -> httpx.Response:
    """A public link fetched as the reverse proxy in front of the fake would: the public
    prefix replaced by the fake's own address."""
    assert url.startswith(PUBLIC + "/_wanmock/videos/"), url
    return client.get(url.removeprefix(PUBLIC), headers={"Authorization": ""})


def _poll_links(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    links = self_links(response.json())
    assert links, response.text
    return links


def test_the_option_is_normalised_and_checked() -> None:
    assert Options().merged(public_url=" http://wanmock:8000/ ").check().public_url == \
        "http://wanmock:8000"
    assert Options().merged(public_url="https://gw.example/a/b/").public_url == \
        "https://gw.example/a/b"
    assert Options().public_url is None
    for bad, why in [("wanmock:8000", "http:// or https:// URL with a host"),
                     ("ftp://wanmock", "http:// or https:// URL with a host"),
                     ("http://", "http:// or https:// URL with a host"),
                     ("http://wanmock:8000/?x=1", "scheme, host, port and path prefix only"),
                     ("http://wanmock/#top", "scheme, host, port and path prefix only"),
                     ("http://user:secret@wanmock", "scheme, host, port and path prefix only"),
                     ("http://wanmock:99999", "must be a URL such as http://wanmock:8000")]:
        with pytest.raises(MockServerError, match=re.escape(why)):
            Options().merged(public_url=bad).check()
        with pytest.raises(MockServerError, match="public_url"):
            create_app(public_url=bad)


def test_dashscope_result_urls(client: httpx.Client) -> None:
    submit = client.post("/api/v1/services/aigc/video-generation/video-synthesis",
                         json=DASHSCOPE, headers={"X-DashScope-Async": "enable"})
    task_id = submit.json()["output"]["task_id"]
    [url] = _poll_links(client, f"/api/v1/tasks/{task_id}")
    video = _fetch(client, url)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def test_apiyi_result_urls(client: httpx.Client) -> None:
    submit = client.post("/wan/api/v1/services/aigc/video-generation/video-synthesis",
                         json=DASHSCOPE, headers={"X-DashScope-Async": "enable"})
    task_id = submit.json()["output"]["task_id"]
    links = _poll_links(client, f"/v1/tasks/{task_id}")
    assert all(_fetch(client, url).status_code == 200 for url in links)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/video/generations", {"model": "wan2.5-t2v-preview", "prompt": "a fox"}),
    ("/v1/videos", {"model": "wan2.6-t2v", "prompt": "a fox", "size": "1280*720"}),
])
def test_newapi_result_urls(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    submit = client.post(path, json=body)
    assert submit.status_code == 200, submit.text
    video_id = submit.json()["id"]
    client.app.state.backend.clock.advance(60)  # type: ignore[attr-defined]  # new-api's poller
    links = _poll_links(client, f"{path}/{video_id}")
    # /v1/video/generations: data.result_url (v1.0.0-rc.25) and the relayed
    # output.video_url; /v1/videos: metadata.url
    assert len(links) == (2 if path.endswith("generations") else 1)
    assert all(_fetch(client, url).status_code == 200 for url in links)


def test_jiekou_result_urls_and_webhook_payloads(client: httpx.Client) -> None:
    body = {"prompt": "a fox", "width": 832, "height": 480,
            "extra": {"webhook": {"url": "http://127.0.0.1:9/hook"}}}
    submit = client.post("/v3/async/wan-t2v", json=body)
    task_id = submit.json()["task_id"]
    [url] = _poll_links(client, "/v3/async/task-result", {"task_id": task_id})
    assert _fetch(client, url).status_code == 200
    backend = client.app.state.backend  # type: ignore[attr-defined]
    backend.flush_webhooks()
    [hook] = backend.webhooks.entries(task_id)
    assert self_links(hook.body) == [url]  # the payload carries the same public link


def test_control_api_links(client: httpx.Client) -> None:
    families = client.get("/_wanmock/contracts").json()["families"]
    for name, entry in families.items():
        assert entry["yaml"] == f"{PUBLIC}/_wanmock/contracts/{name}.yaml"
        assert client.get(entry["json"].removeprefix(PUBLIC)).status_code == 200


def test_without_it_links_carry_the_requests_own_base() -> None:
    app = create_app(seed=3, timing="instant")
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://10.0.0.7:8123",
                      headers=KEY) as c:
        task_id = c.post("/v3/async/wan-t2v", json={"prompt": "a fox"}).json()["task_id"]
        [url] = _poll_links(c, "/v3/async/task-result", {"task_id": task_id})
    assert url.startswith("http://10.0.0.7:8123/_wanmock/videos/")


def test_self_links_are_built_in_one_place() -> None:
    """A family (or the control API) that read `request.base_url` itself would skip the
    option: every self-link goes through `Pipeline.base_url` / `hotpath.public_base`."""
    allowed = {ROOT / "mockserver/providers/hotpath.py"}
    # Not self-links: the proxy forwards to its targets, the checkers call other servers.
    allowed |= {ROOT / f"mockserver/{name}.py" for name in ("proxy", "conformance", "live")}
    offenders = []
    for path in sorted((ROOT / "mockserver").rglob("*.py")):
        if path in allowed:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"request\.base_url|\.url_for\(|\burl_for\(", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "self-links must use Pipeline.base_url / hotpath.public_base:\n" + \
        "\n".join(offenders)
