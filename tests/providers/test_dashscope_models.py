"""The other Wan models on DashScope's endpoints (audit N06): wan2.7-videoedit and VACE on the
video-generation path, wan2.2-s2v (with its synchronous wan2.2-s2v-detect) and wan2.2-animate
on image2video. Each: a whole job as its reference shows it, and its rejections."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.images import SAMPLE_PNG_DATA_URI
from tests.providers.dashscope_client import AUTH, IMAGE2VIDEO, DashScopeTest, png_data_uri

pytestmark = pytest.mark.anyio

DETECT = "/api/v1/services/aigc/image2video/face-detect"
VIDEO = "https://example.com/source.mp4"
IMAGE = "https://example.com/outfit.png"
GENERIC = "Required parameter({}) missing or invalid, please check the request parameters."


def videoedit(media: list[dict[str, str]], **parameters: Any) -> dict[str, Any]:
    return {"model": "wan2.7-videoedit",
            "input": {"prompt": "Replace the outfit with the one in image 1", "media": media},
            "parameters": parameters}


def vace(function: str, model: str = "wanx2.1-vace-plus", parameters: dict[str, Any] | None = None,
         **inputs: Any) -> dict[str, Any]:
    return {"model": model, "input": {"function": function, "prompt": "a girl dances", **inputs},
            "parameters": parameters or {}}


async def test_N06_wan27_videoedit_keeps_the_input_length_and_bills_it() -> None:
    async with DashScopeTest() as ds:
        done = await ds.job(videoedit([{"type": "video", "url": VIDEO},
                                       {"type": "reference_image", "url": IMAGE}],
                                      resolution="720P", audio_setting="origin"))
        usage = done["usage"]
        # duration 0 (the default) keeps the input's length, assumed 5 s; both are billed.
        assert (usage["output_video_duration"], usage["input_video_duration"],
                usage["duration"], usage["SR"]) == (5, 5, 10, 720)
        # Without a ratio the output takes the input's: an `inputs` scenario sets it.
        tall = await ds.job(videoedit([{"type": "video", "url": VIDEO}], duration=4),
                            **{"X-Wanmock-Scenario": "inputs; ratio=9:16; video_s=8"})
        video = await ds.video(tall["output"]["video_url"])
        assert (video["width"], video["height"], video["audio"]) == (1080, 1920, 1)
        assert (tall["usage"]["output_video_duration"], tall["usage"]["duration"]) == (4, 12)


async def test_N06_wan27_videoedit_rejections() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        # The audit's probe: `video` was refused as a media type; now a missing one is.
        r = await ds.post(videoedit([{"type": "reference_image", "url": IMAGE}]))
        assert (r.status_code, r.json()["message"]) == (400, GENERIC.format("input.media"))
        r = await ds.post(videoedit([{"type": "video", "url": VIDEO}]
                                    + [{"type": "reference_image", "url": IMAGE}] * 4))
        assert r.status_code == 200  # 4 reference images: the most it takes
        done = await ds.run_to_end(r.json()["output"]["task_id"])
        assert done["output"]["task_status"] == "SUCCEEDED"
        too_many = await ds.job(videoedit([{"type": "video", "url": VIDEO}]
                                          + [{"type": "reference_image", "url": IMAGE}] * 5))
        assert too_many["output"]["task_status"] == "FAILED"
        longer = await ds.job(videoedit([{"type": "video", "url": VIDEO}], duration=8))
        assert longer["output"]["task_status"] == "FAILED"  # longer than the 5 s input
        r = await ds.post(videoedit([{"type": "video", "url": VIDEO}], duration=11))
        assert r.status_code == 400
        r = await ds.post(videoedit([{"type": "video", "url": VIDEO}], audio_setting="loud"))
        assert (r.status_code, r.json()["message"]) == (
            400, GENERIC.format("parameters.audio_setting"))


async def test_N06_vace_image_reference_and_video_functions() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        done = await ds.job(vace("image_reference", ref_images_url=[IMAGE, IMAGE], parameters={
            "prompt_extend": True, "obj_or_bg": ["obj", "bg"], "size": "720*1280"}))
        out = done["output"]
        # The wanx2.1 usage shape, actual_prompt with prompt_extend, a silent 5 s video.
        assert done["usage"] == {"video_duration": 5, "video_ratio": "standard", "video_count": 1}
        assert out["actual_prompt"]
        video = await ds.video(out["video_url"])
        assert (video["width"], video["height"], video["audio"]) == (720, 1280, 0)
        edit = await ds.job(vace("video_edit", video_url=VIDEO, mask_image_url=IMAGE),
                            **{"X-Wanmock-Scenario": "inputs; video_s=3; ratio=1:1"})
        video = await ds.video(edit["output"]["video_url"])  # the input's size and length
        assert (video["width"], video["height"]) == (960, 960)
        assert edit["usage"]["video_duration"] == 3
        for function, extra in (("video_repainting", {"video_url": VIDEO}),
                                ("video_outpainting", {"video_url": VIDEO}),
                                ("video_extension", {"first_clip_url": VIDEO})):
            params = {"control_condition": "depth"} if function == "video_repainting" else {}
            assert (await ds.job(vace(function, parameters=params, **extra)))[
                "output"]["task_status"] == "SUCCEEDED", function


async def test_N06_vace_rejections_and_the_documented_size_failure() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        r = await ds.post(vace("video_repainting", video_url=VIDEO))  # no control_condition
        assert (r.status_code, r.json()["message"]) == (
            400, GENERIC.format("parameters.control_condition"))
        r = await ds.post(vace("video_edit", video_url=VIDEO))  # no mask
        assert r.status_code == 400 and "mask_image_url" in r.json()["message"]
        r = await ds.post(vace("video_outpainting"))  # no video
        assert (r.status_code, r.json()["message"]) == (400, GENERIC.format("input.video_url"))
        r = await ds.post({"model": "wanx2.1-vace-plus", "input": {"prompt": "a"}})
        assert r.status_code == 400  # no function
        r = await ds.post(vace("image_reference", ref_images_url=[IMAGE],
                               parameters={"obj_or_bg": ["bg", "bg"]}))
        assert r.status_code == 400
        # VACE's one documented failure is asynchronous: "The size is not match ...".
        done = await ds.job(vace("image_reference", ref_images_url=[IMAGE],
                                 parameters={"size": "1920*1080"}))
        assert done["output"]["task_status"] == "FAILED"
        assert done["output"]["message"].startswith("The size is not match")


async def test_N06_s2v_lasts_as_long_as_its_audio_and_nests_the_url() -> None:
    portrait = png_data_uri(600, 800)  # 3:4, within s2v's [400, 7000] px
    body = {"model": "wan2.2-s2v", "input": {"image_url": portrait,
                                             "audio_url": "https://example.com/speech.mp3"},
            "parameters": {"resolution": "480P"}}
    async with DashScopeTest() as ds:
        done = await ds.job(body, IMAGE2VIDEO, **{"X-Wanmock-Scenario": "inputs; audio_s=6.5"})
        out = done["output"]
        assert "video_url" not in out and "orig_prompt" not in out
        assert done["usage"] == {"duration": 6.5, "video_count": 1, "SR": 480}
        video = await ds.video(out["results"]["video_url"])
        assert video["audio"] == 1  # the speech
        assert video["width"] / video["height"] == pytest.approx(3 / 4, abs=0.05)  # the image's
        r = await ds.post({**body, "input": {**body["input"],
                                             "image_url": SAMPLE_PNG_DATA_URI}}, IMAGE2VIDEO)
        assert r.status_code == 400  # 480x360: under s2v's 400 px
        assert video["duration"] == pytest.approx(6.0, abs=0.6)


async def test_N06_s2v_rejections() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        r = await ds.post({"model": "wan2.2-s2v", "input": {"image_url": IMAGE}}, IMAGE2VIDEO)
        assert (r.status_code, r.json()["code"], r.json()["message"]) == (
            400, "InvalidURL", "Required URL is missing or invalid, please check the request URL.")
        long_audio = await ds.job({"model": "wan2.2-s2v", "input": {
            "image_url": IMAGE, "audio_url": "https://example.com/a.wav"}}, IMAGE2VIDEO,
            **{"X-Wanmock-Scenario": "inputs; audio_s=25"})
        assert (long_audio["output"]["task_status"], long_audio["output"]["code"]) == (
            "FAILED", "InvalidFile.Duration")
        # s2v is on image2video only: on video-generation it is an unknown model.
        r = await ds.post({"model": "wan2.2-s2v", "input": {"image_url": IMAGE}})
        assert (r.status_code, r.json()["message"]) == (400, "Model not exist.")


async def test_N06_s2v_detect_is_synchronous() -> None:
    async with DashScopeTest() as ds:
        body = {"model": "wan2.2-s2v-detect", "input": {"image_url": IMAGE}}
        r = await ds.client.post(DETECT, json=body, headers=AUTH)
        assert r.status_code == 200
        got = r.json()
        assert (got["output"], got["usage"]) == ({"check_pass": True, "humanoid": True},
                                                 {"image_count": 1})
        r = await ds.client.post(DETECT, json=body,
                                 headers={**AUTH, "X-Wanmock-Scenario": "inputs; humanoid=false"})
        assert r.json()["output"] == {"check_pass": False, "humanoid": False}  # still a 200
        small = {"model": "wan2.2-s2v-detect", "input": {"image_url": SAMPLE_PNG_DATA_URI}}
        r = await ds.client.post(DETECT, json=small, headers=AUTH)  # 480x360: under 400 px
        assert (r.status_code, r.json()["code"]) == (400, "InvalidFile.Resolution")
        r = await ds.client.post(DETECT, json=body, headers={**AUTH, "X-DashScope-Async": "enable"})
        assert (r.status_code, r.json()["message"]) == (
            403, "Current user api does not support asynchronous calls.")
        assert list(ds.backend.tasks()) == []  # a synchronous check makes no task


async def test_N06_animate_move_and_mix() -> None:
    body = {"model": "wan2.2-animate-mix", "input": {"image_url": IMAGE, "video_url": VIDEO,
                                                     "watermark": True},
            "parameters": {"mode": "wan-std", "check_image": True}}
    async with DashScopeTest() as ds:
        done = await ds.job(body, IMAGE2VIDEO, **{"X-Wanmock-Scenario": "inputs; video_s=5.2"})
        assert done["usage"] == {"video_duration": 5.2, "video_ratio": "standard"}
        video = await ds.video(done["output"]["results"]["video_url"])
        assert (video["width"], video["height"]) == (1280, 720)
        move = {**body, "model": "wan2.2-animate-move",
                "input": {"image_url": SAMPLE_PNG_DATA_URI, "video_url": VIDEO},
                "parameters": {"mode": "wan-pro"}}
        done = await ds.job(move, IMAGE2VIDEO)
        assert done["output"]["task_status"] == "SUCCEEDED"


async def test_N06_animate_rejections() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        r = await ds.post({"model": "wan2.2-animate-move",
                           "input": {"image_url": IMAGE, "video_url": VIDEO}}, IMAGE2VIDEO)
        assert (r.status_code, r.json()["message"]) == (400, GENERIC.format("parameters.mode"))
        r = await ds.post({"model": "wan2.2-animate-move", "input": {"image_url": IMAGE},
                           "parameters": {"mode": "wan-std"}}, IMAGE2VIDEO)
        assert (r.status_code, r.json()["code"]) == (400, "InvalidURL")
        r = await ds.post({"model": "wan2.2-animate-mix", "input": {
            "image_url": IMAGE, "video_url": VIDEO}, "parameters": {"mode": "wan-max"}},
            IMAGE2VIDEO)
        assert (r.status_code, r.json()["message"]) == (400, GENERIC.format("parameters.mode"))
