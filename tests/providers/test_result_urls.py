"""F03 and F18: result URLs behave like OSS presigned links (audit F03, F18; seed 004).

Fetched without `Authorization`; with one, OSS's 400 InvalidArgument; an altered signature is
403 SignatureDoesNotMatch; missing query-auth parameters 403 AccessDenied with OSS's message;
URLs carry `OSSAccessKeyId`; an expired link stays 403 AccessDenied "Request has expired.".
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.clock import ManualClock

pytestmark = pytest.mark.anyio
KEY = "sk-result-url-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def finished_url(options: dict[str, Any] | None = None) -> tuple[Any, str]:
    app = create_app(clock=ManualClock(), seed=5, timing="instant", **(options or {}))
    async with client_for(app) as client:
        r = await client.post("/api/v1/services/aigc/video-generation/video-synthesis",
                              headers=HEADERS, json={"model": "wanx2.1-t2v-turbo",
                                                     "input": {"prompt": "a cat"},
                                                     "parameters": {"size": "832*480"}})
        task_id = r.json()["output"]["task_id"]
        app.state.backend.clock.advance(5)
        body = (await client.get(f"/api/v1/tasks/{task_id}", headers=HEADERS)).json()
    return app, body["output"]["video_url"]


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="https://dashscope.aliyuncs.com")


@pytest.fixture
async def served() -> AsyncIterator[tuple[Any, httpx.AsyncClient, str]]:
    app, url = await finished_url()
    async with client_for(app) as client:
        yield app, client, url


def xml_code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/xml")
    match = re.search(r"<Code>([^<]+)</Code>", response.text)
    assert match, response.text
    assert "<RequestId>" in response.text
    return match.group(1)


async def test_F18_urls_carry_oss_access_key_id(served: Any) -> None:
    app, client, url = served
    query = parse_qs(urlsplit(url).query)
    assert set(query) == {"OSSAccessKeyId", "Expires", "Signature"}
    assert query["OSSAccessKeyId"][0].startswith("LTAI")
    assert KEY not in url
    r = await client.get(url)  # no Authorization: the signed link alone is enough
    assert r.status_code == 200 and r.content[4:8] == b"ftyp"


async def test_F03_authorization_header_gets_oss_invalid_argument(served: Any) -> None:
    app, client, url = served
    r = await client.get(url, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400
    assert xml_code(r) == "InvalidArgument"
    assert "Only one auth mechanism allowed" in r.text and "<EC>0002-00000039</EC>" in r.text
    assert KEY not in r.text  # the key is never echoed
    head = await client.head(url, headers={"Authorization": f"Bearer {KEY}"})
    assert head.status_code == 400
    # The journal does not record downloads; the key never reaches an answer or a log.
    entries = (await client.get("/_wanmock/journal")).text
    assert KEY not in entries


async def test_F03_authorization_ignored_with_the_option() -> None:
    app, url = await finished_url({"dashscope_result_auth": "ignore"})
    async with client_for(app) as client:
        r = await client.get(url, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"


async def test_F18_altered_signature_is_signature_does_not_match(served: Any) -> None:
    _, client, url = served
    sig = parse_qs(urlsplit(url).query)["Signature"][0]
    other = ("0" if sig[0] != "0" else "1") + sig[1:]
    r = await client.get(url.replace(sig, other))
    assert r.status_code == 403 and xml_code(r) == "SignatureDoesNotMatch"
    assert "Check your key and signing method." in r.text


@pytest.mark.parametrize("drop", ["OSSAccessKeyId", "Expires", "Signature", "all"])
async def test_F18_missing_query_auth_parameters(served: Any, drop: str) -> None:
    _, client, url = served
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if drop != "all" and not p.startswith(drop + "=")]
    r = await client.get(base + ("?" + "&".join(kept) if kept else ""))
    assert r.status_code == 403 and xml_code(r) == "AccessDenied"
    assert ("Query string authentication requires the Signature, Expires and OSSAccessKeyId "
            "parameters") in r.text


async def test_F18_unknown_access_key_id(served: Any) -> None:
    _, client, url = served
    aid = parse_qs(urlsplit(url).query)["OSSAccessKeyId"][0]
    r = await client.get(url.replace(aid, "LTAI5tSomeoneElse000000"))
    assert r.status_code == 403 and xml_code(r) == "InvalidAccessKeyId"


async def test_F18_expired_link_stays_access_denied(served: Any) -> None:
    app, client, url = served
    expires = int(parse_qs(urlsplit(url).query)["Expires"][0])
    app.state.backend.clock.advance(expires - app.state.backend.now() + 1)
    r = await client.get(url)
    assert r.status_code == 403 and xml_code(r) == "AccessDenied"
    assert "<Message>Request has expired.</Message>" in r.text


async def test_F18_hostile_query_values_are_4xx(served: Any) -> None:
    _, client, url = served
    base = url.partition("?")[0]
    for query in ("OSSAccessKeyId=%00&Expires=1e99&Signature=%FF",
                  "Expires=99999999999999999999999999&Signature=" + "a" * 5000
                  + "&OSSAccessKeyId=x", "Expires=-1&Signature=&OSSAccessKeyId="):
        r = await client.get(f"{base}?{query}")
        assert 400 <= r.status_code < 500, (query, r.status_code)
        assert xml_code(r) in ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId")


async def test_a_family_may_take_authorization_on_its_result_urls(served: Any) -> None:
    """The result URL asks the task's family (`Policy.result_auth`): Replicate's FileOutput
    sends the API token with every download, DashScope's OSS refuses one."""
    app, client, dashscope_url = served
    r = await client.post("/v1/models/wan-video/wan-2.2-t2v-fast/predictions",
                          headers=HEADERS, json={"input": {"prompt": "a cat"}})
    app.state.backend.clock.advance(60)
    prediction = (await client.get(f"/v1/predictions/{r.json()['id']}", headers=HEADERS)).json()
    replicate = await client.get(prediction["output"], headers={"Authorization": "Bearer x"})
    assert replicate.status_code == 200 and replicate.content[4:8] == b"ftyp"
    dashscope = await client.get(dashscope_url, headers={"Authorization": "Bearer x"})
    assert dashscope.status_code == 400 and xml_code(dashscope) == "InvalidArgument"
