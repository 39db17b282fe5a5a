"""Input checks that need no network, per family (audit F11, F12, F15, F22, F23; U12-U14).

Each rule answers in the family's own envelope, at submit, with a 4xx; nothing is fetched, bad
input never gets a 500, and every rejected request stays in the journal.
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from mockserver.app import create_app
from mockserver.core.clock import ManualClock
from mockserver.images import SAMPLE_PNG_DATA_URI
from tests.helpers import conforms

pytestmark = pytest.mark.anyio
KEY = "sk-input-checks-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
ASYNC = {**AUTH, "X-DashScope-Async": "enable"}
DS = "/api/v1/services/aigc/video-generation/video-synthesis"
APIYI = "/wan/api/v1/services/aigc/video-generation/video-synthesis"
KF2V = "/api/v1/services/aigc/image2video/video-synthesis"
AUDIO_MESSAGE = "File type is not supported. Allowed types are: .wav, .mp3."


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make(**options: Any) -> Any:
    return create_app(clock=ManualClock(), seed=11, timing="instant", **options)


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = make(body_limit=40 * 1024 * 1024)
    async with client_for(app) as client:
        yield app, client


def image_uri(width: int, height: int, fmt: str = "PNG", mode: str = "L") -> str:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 128 if mode == "L" else (10, 20, 30, 0)[:len(mode)]).save(
        buffer, fmt)
    mime = {"PNG": "png", "JPEG": "jpeg", "BMP": "bmp", "WEBP": "webp", "GIF": "gif",
            "TIFF": "tiff"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def i2v(img: str, model: str = "wan2.6-i2v", **parameters: Any) -> dict[str, Any]:
    return {"model": model, "input": {"prompt": "p", "img_url": img},
            "parameters": {"resolution": "720P", **parameters}}


def journaled(app: Any, status: int) -> Any:
    entry = app.state.backend.journal.entries()[-1]
    assert entry.status == status and entry.request_body  # what the client sent is kept
    return entry


async def ds_error(client: httpx.AsyncClient, body: Any, path: str = DS,
                   headers: dict[str, str] | None = None, op: str = "createVideoSynthesis",
                   family: str = "dashscope") -> dict[str, Any]:
    r = await client.post(path, json=body, headers=headers or ASYNC)
    assert r.status_code == 400, r.text
    data = conforms(family, op, r)
    assert set(data) == {"code", "message", "request_id"}
    return data


async def video_geometry(app: Any, client: httpx.AsyncClient, task_id: str) -> tuple[int, int]:
    app.state.backend.clock.advance(5)
    task = app.state.backend.store.get(task_id)
    return task.spec.width, task.spec.height


# -- F11 ---------------------------------------------------------------------------------------
async def test_F11_wan27_i2v_with_img_url_names_media(fake: Any) -> None:
    app, client = fake
    r = await client.post(DS, headers=ASYNC, json={
        "model": "wan2.7-i2v", "input": {"prompt": "a", "img_url": "https://x/a.png"}})
    task_id = r.json()["output"]["task_id"]
    app.state.backend.clock.advance(5)
    out = (await client.get(f"/api/v1/tasks/{task_id}", headers=AUTH)).json()["output"]
    assert out["task_status"] == "FAILED" and out["code"] == "InvalidParameter"
    assert out["message"] == ("Required parameter(input.media) missing or invalid, please check "
                              "the request parameters.")
    assert "image_url" not in out["message"]
    # Legacy i2v keeps seed 002's wording for a missing img_url.
    r = await client.post(DS, headers=ASYNC, json={"model": "wan2.6-i2v", "input": {"prompt": "a"}})
    task_id = r.json()["output"]["task_id"]
    app.state.backend.clock.advance(5)
    out = (await client.get(f"/api/v1/tasks/{task_id}", headers=AUTH)).json()["output"]
    assert out["message"] == "image_url must provided"


# -- F12 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "family"), [(DS, "dashscope"), (APIYI, "apiyi")])
async def test_F12_oss_input_needs_the_resolve_header(fake: Any, path: str, family: str) -> None:
    app, client = fake
    body = i2v("oss://dashscope-instant/a/b.png")
    err = await ds_error(client, body, path, family=family)
    assert (err["code"], err["message"]) == ("InvalidParameter", "url error, please check url！")
    journaled(app, 400)
    r = await client.post(path, json=body,
                          headers={**ASYNC, "X-DashScope-OssResourceResolve": "enable"})
    assert r.status_code == 200, r.text
    # Any input field counts: media items and audio too.
    media = {"model": "wan2.7-i2v", "input": {"media": [
        {"type": "first_frame", "url": "https://x/a.png"},
        {"type": "driving_audio", "url": "oss://dashscope-instant/a/voice.mp3"}]}}
    await ds_error(client, media, path, family=family)


async def test_F12_option_ignores_the_header() -> None:
    async with client_for(make(dashscope_oss_resolve="ignore")) as client:
        r = await client.post(DS, json=i2v("oss://dashscope-instant/a/b.png"), headers=ASYNC)
    assert r.status_code == 200


# -- F15 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["https://x/a.ogg", "https://x/a.wav.txt", "https://x/a",
                                 "data:audio/ogg;base64,AAAA", "oss://b/a.flac"])
async def test_F15_audio_url_extension_on_dashscope(fake: Any, url: str) -> None:
    app, client = fake
    err = await ds_error(client, {"model": "wan2.6-t2v", "input": {"prompt": "a",
                                                                   "audio_url": url}},
                         headers={**ASYNC, "X-DashScope-OssResourceResolve": "enable"})
    assert (err["code"], err["message"]) == ("InvalidURL", AUDIO_MESSAGE)
    journaled(app, 400)


async def test_F15_audio_url_accepted_forms(fake: Any) -> None:
    _, client = fake
    for url in ("https://x/a.MP3", "https://x/a.wav?Expires=1&Signature=x", "https://x/b.mp3#t",
                "data:audio/mpeg;base64,AAAA"):
        r = await client.post(DS, headers=ASYNC, json={
            "model": "wan2.6-t2v", "input": {"prompt": "a", "audio_url": url}})
        assert r.status_code == 200, (url, r.text)


async def test_F15_audio_url_on_apiyi_media_and_every_family(fake: Any) -> None:
    app, client = fake
    err = await ds_error(client, {"model": "wan2.7-i2v", "input": {"media": [
        {"type": "first_frame", "url": "https://x/a.png"},
        {"type": "driving_audio", "url": "https://x/voice.aac"}]}}, APIYI, family="apiyi")
    assert (err["code"], err["message"]) == ("InvalidURL", AUDIO_MESSAGE)
    # new-api: the upstream error in its own TaskError envelope.
    r = await client.post("/v1/video/generations", headers=AUTH, json={
        "model": "wan2.6-t2v", "prompt": "a", "metadata": {"input": {"audio_url": "https://x/a.ogg"}}})
    assert r.status_code == 400, r.text
    body = conforms("newapi", "createVideoGeneration", r)
    assert AUDIO_MESSAGE in str(body) and "InvalidURL" in str(body)
    # jiekou: its own envelope {code, reason, message, metadata}.
    r = await client.post("/v3/async/wan2.6-i2v", headers=AUTH, json={
        "input": {"prompt": "a", "img_url": "https://x/a.png", "audio_url": "https://x/a.m4a"}})
    assert r.status_code == 400, r.text
    body = conforms("jiekou", "createWan26I2vTask", r)
    assert (body["code"], body["reason"], body["message"]) == (
        400, "INVALID_REQUEST_BODY", AUDIO_MESSAGE)
    journaled(app, 400)


# -- F22 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "expected"), [((480, 360), (1104, 832)),
                                                ((360, 640), (720, 1280)),
                                                ((500, 500), (960, 960))])
async def test_F22_inline_image_keeps_its_aspect_ratio(fake: Any, size: tuple[int, int],
                                                       expected: tuple[int, int]) -> None:
    app, client = fake
    r = await client.post(DS, headers=ASYNC, json=i2v(image_uri(*size)))
    assert r.status_code == 200, r.text
    task_id = r.json()["output"]["task_id"]
    assert await video_geometry(app, client, task_id) == expected
    body = (await client.get(f"/api/v1/tasks/{task_id}", headers=AUTH)).json()
    assert body["usage"]["SR"] == 720  # the tier, whatever the aspect ratio
    # A URL image cannot be measured without fetching it: 16:9 at the tier, as before.
    r = await client.post(DS, headers=ASYNC, json=i2v("https://x/a.png"))
    assert await video_geometry(app, client, r.json()["output"]["task_id"]) == (1280, 720)


async def test_F22_rendered_mp4_follows_the_image(fake: Any) -> None:
    import av

    app, client = fake
    r = await client.post(KF2V, headers=ASYNC, json={
        "model": "wan2.2-kf2v-flash", "input": {"first_frame_url": image_uri(360, 480)},
        "parameters": {"resolution": "480P"}})
    task_id = r.json()["output"]["task_id"]
    app.state.backend.clock.advance(5)
    url = (await client.get(f"/api/v1/tasks/{task_id}", headers=AUTH)).json()["output"][
        "video_url"]
    video = await client.get(url)
    with av.open(io.BytesIO(video.content)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
    assert abs(width / height - 3 / 4) < 0.03 and (width, height) == (544, 736)


# -- F23 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("img", "problem"), [
    (image_uri(100, 100), "sides"),                      # below 240 px
    (image_uri(8100, 300), "sides"),                     # above 8000 px
    (image_uri(300, 300, "PNG", "RGBA"), "alpha"),       # PNG with transparency
    (image_uri(300, 300, "GIF", "L"), "format"),         # not an accepted format
    ("data:image/png;base64,not base64!!", "base64"),
    ("data:image/png;base64," + base64.b64encode(b"%PDF-1.4 hello").decode(), "not an image"),
    ("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).decode(),
     "not an image"),                                    # a PNG signature and garbage
])
async def test_F23_inline_image_limits_on_dashscope(fake: Any, img: str, problem: str) -> None:
    app, client = fake
    err = await ds_error(client, i2v(img))
    assert err["code"] == "InvalidParameter"
    assert "input.img_url" in err["message"]
    assert problem in err["message"] or (problem == "sides" and "[240, 8000] px" in err["message"])
    assert len(err["message"]) < 300  # the image is never echoed back
    journaled(app, 400)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP"])
async def test_F23_accepted_formats(fake: Any, fmt: str) -> None:
    _, client = fake
    r = await client.post(DS, headers=ASYNC, json=i2v(image_uri(320, 240, fmt)))
    assert r.status_code == 200, r.text


async def test_F23_jiekou_limits_are_seed_003s(fake: Any) -> None:
    app, client = fake
    ok = await client.post("/v3/async/wan2.6-i2v", headers=AUTH,
                           json={"input": {"img_url": SAMPLE_PNG_DATA_URI}})
    assert ok.status_code == 200, ok.text
    for img in (image_uri(300, 400), image_uri(2100, 400)):  # outside [360, 2000]
        r = await client.post("/v3/async/wan2.6-i2v", headers=AUTH,
                              json={"input": {"img_url": img}})
        assert r.status_code == 400, r.text
        body = conforms("jiekou", "createWan26I2vTask", r)
        assert body["reason"] == "INVALID_REQUEST_BODY" and "[360, 2000] px" in body["message"]
    journaled(app, 400)


async def test_F23_byte_limits_and_a_30_mb_data_uri(fake: Any) -> None:
    app, client = fake
    # 12 MB of zeros: over wan2.2's 10 MB, refused for its size before anything is decoded...
    blob = "data:image/png;base64," + base64.b64encode(b"\x00" * (12 * 1024 * 1024)).decode()
    err = await ds_error(client, i2v(blob, "wan2.2-i2v-flash"))
    assert "at most 10 MB" in err["message"]
    # ... and 30 MB is over every limit: refused from its length, before decoding.
    huge = "data:image/png;base64," + "A" * (40 * 1024 * 1024 - 1000)
    err = await ds_error(client, i2v(huge))
    assert "at most 20 MB" in err["message"] and len(err["message"]) < 300
    journaled(app, 400)


async def test_F23_a_30_mb_body_under_the_default_limit_is_the_family_4xx() -> None:
    app = make()
    huge = "data:image/png;base64," + "A" * (30 * 1024 * 1024)
    async with client_for(app) as client:
        r = await client.post(DS, headers=ASYNC, json=i2v(huge))
        assert r.status_code == 400
        assert conforms("dashscope", "createVideoSynthesis", r)["code"] == "InvalidParameter"
        r = await client.post("/v3/async/wan2.6-i2v", headers=AUTH,
                              json={"input": {"img_url": huge}})
        assert 400 <= r.status_code < 500
    entries = app.state.backend.journal.entries()
    assert len(entries) == 2 and all(e.status >= 400 for e in entries)


async def test_F23_newapi_and_apiyi_envelopes(fake: Any) -> None:
    _, client = fake
    bad = image_uri(100, 100)
    err = await ds_error(client, i2v(bad), APIYI, family="apiyi")
    assert err["code"] == "InvalidParameter" and "[240, 8000] px" in err["message"]
    r = await client.post("/v1/video/generations", headers=AUTH, json={
        "model": "wan2.6-i2v", "prompt": "a", "image": bad})
    assert r.status_code == 400, r.text
    assert "[240, 8000] px" in str(conforms("newapi", "createVideoGeneration", r))


# -- U12, U13, U14 -----------------------------------------------------------------------------
async def succeeded(client: httpx.AsyncClient, app: Any, body: Any) -> dict[str, Any]:
    r = await client.post(DS, headers=ASYNC, json=body)
    assert r.status_code == 200, r.text
    app.state.backend.clock.advance(5)
    task_id = r.json()["output"]["task_id"]
    return (await client.get(f"/api/v1/tasks/{task_id}", headers=AUTH)).json()  # type: ignore


async def test_U12_no_actual_prompt_on_wan27_unless_asked(fake: Any) -> None:
    app, client = fake
    body = {"model": "wan2.7-t2v", "input": {"prompt": "a lighthouse"}}
    out = (await succeeded(client, app, body))["output"]
    assert out["orig_prompt"] == "a lighthouse" and "actual_prompt" not in out
    other = make(dashscope_actual_prompt_wan27=True)
    async with client_for(other) as c:
        assert "actual_prompt" in (await succeeded(c, other, body))["output"]


async def test_U13_sr_in_wan25_usage_only_with_the_option(fake: Any) -> None:
    app, client = fake
    body = {"model": "wan2.5-t2v-preview", "input": {"prompt": "a"},
            "parameters": {"size": "832*480"}}
    assert (await succeeded(client, app, body))["usage"] == {
        "video_count": 1, "video_duration": 5, "video_ratio": "832*480"}
    other = make(dashscope_usage_sr=True)
    async with client_for(other) as c:
        assert (await succeeded(c, other, body))["usage"]["SR"] == 480


async def test_U14_r2v_prompt_over_1500_is_truncated_by_default(fake: Any) -> None:
    app, client = fake
    body = {"model": "wan2.6-r2v", "input": {"prompt": "x" * 1600,
                                             "reference_urls": ["https://x/a.png"]}}
    r = await client.post(DS, headers=ASYNC, json=body)
    assert r.status_code == 200, r.text
    task = app.state.backend.store.get(r.json()["output"]["task_id"])
    assert task.spec.actual_prompt == "x" * 1500
    async with client_for(make(dashscope_r2v_prompt_over="reject")) as c:
        err = await ds_error(c, body)
    assert err["message"] == ("The length of input.prompt exceeds the limit of model "
                              "wan2.6-r2v: 1500 characters.")


# -- F20, N06: the Wan models the fake once refused are modelled ---------------------------------
ONCE_REFUSED = [
    (DS, "wan2.7-videoedit", {"prompt": "make it snow",
                              "media": [{"type": "video", "url": "https://x/v.mp4"}]}, {}),
    (KF2V, "wan2.2-s2v", {"image_url": "https://x/a.png", "audio_url": "https://x/a.mp3"}, {}),
    (KF2V, "wan2.2-animate-move", {"image_url": "https://x/a.png", "video_url": "https://x/v.mp4"},
     {"mode": "wan-std"}),
    (KF2V, "wan2.2-animate-mix", {"image_url": "https://x/a.png", "video_url": "https://x/v.mp4"},
     {"mode": "wan-pro"}),
    (DS, "wanx2.1-vace-plus", {"prompt": "a", "function": "image_reference",
                               "ref_images_url": ["https://x/a.png"]}, {}),
    (DS, "wan2.1-vace-plus", {"prompt": "a", "function": "image_reference",
                              "ref_images_url": ["https://x/a.png"]}, {}),
]


@pytest.mark.parametrize(("path", "model", "inputs", "parameters"), ONCE_REFUSED,
                         ids=[m for _, m, _, _ in ONCE_REFUSED])
async def test_F20_N06_models_once_refused_are_modelled(path, model, inputs, parameters,
                                                       contract_set):
    """Round 2 refused these as DashScope refuses a model it does not offer (F20); round 3
    models each from its reference (N06), and the contract's decision says so."""
    app = make()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://dashscope.aliyuncs.com") as c:
        r = await c.post(path, json={"model": model, "input": inputs, "parameters": parameters},
                         headers=ASYNC)
    assert r.status_code == 200, r.text
    assert r.json()["output"]["task_status"] == "PENDING"
    decisions = {d.topic: d for d in contract_set["dashscope"].extensions.decisions}
    assert model in decisions["wan-models-offered"].chosen
