"""The round-3 fidelity review's DashScope and apiyi findings, each as
its source says and, where users could need the other reading, its option (the contracts'
x-wanmock-decisions)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.providers.dashscope_client import IMAGE2VIDEO, DashScopeTest

pytestmark = pytest.mark.anyio

VIDEO = {"type": "reference_video", "url": "https://example.com/dance.mp4"}
IMAGE = {"type": "reference_image", "url": "https://example.com/girl.png"}


def r2v27(media: list[dict[str, str]], **parameters: Any) -> dict[str, Any]:
    return {"model": "wan2.7-r2v", "input": {"prompt": "Video 1 dances", "media": media},
            "parameters": parameters}


async def test_N02_wan27_r2v_with_a_reference_video_takes_2_to_10_seconds() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        done = await ds.job(r2v27([VIDEO], duration=15))  # the audit's probe
        out = done["output"]
        assert (out["task_status"], out["code"]) == ("FAILED", "InvalidParameter")
        assert "at most 10 seconds" in out["message"]
        assert (await ds.job(r2v27([VIDEO], duration=10)))["output"]["task_status"] == (
            "SUCCEEDED")
        # Without a reference video: 2-15.
        assert (await ds.job(r2v27([IMAGE], duration=15)))["output"]["task_status"] == (
            "SUCCEEDED")
    async with DashScopeTest(dashscope_wan27_r2v_video_max=15) as ds:  # the Qwen guide's 2-15
        assert (await ds.job(r2v27([VIDEO], duration=15)))["output"]["task_status"] == (
            "SUCCEEDED")


async def test_N03_wan27_r2v_takes_5_references_in_any_split() -> None:
    async with DashScopeTest() as ds:
        done = await ds.job(r2v27([VIDEO] * 4 + [IMAGE], duration=5))  # the audit's 4 videos
        assert done["output"]["task_status"] == "SUCCEEDED"
        r = await ds.post(r2v27([VIDEO] * 5 + [IMAGE]))
        assert r.status_code == 400
        assert r.json()["message"] == ("Too many references for model wan2.7-r2v: at most 5 in "
                                       "total, 5 images and 5 videos.")
    async with DashScopeTest(dashscope_wan27_r2v_videos=3) as ds:
        r = await ds.post(r2v27([VIDEO] * 4))
        assert r.status_code == 400 and "3 videos" in r.json()["message"]


async def test_N04_wan26_r2v_makes_sound_and_takes_the_documented_audio_flag() -> None:
    # The Bailian model card's curl, as the audit sent it.
    body = {"model": "wan2.6-r2v", "input": {"prompt": "character1 sings",
                                             "reference_urls": ["https://example.com/a.mp4"]},
            "parameters": {"size": "1280*720", "duration": 5, "audio": True, "shot_type": "multi"}}
    async with DashScopeTest() as ds:
        done = await ds.job(body)
        assert done["output"]["task_status"] == "SUCCEEDED"
        assert (await ds.video(done["output"]["video_url"]))["audio"] == 1
        silent = await ds.job({**body, "parameters": {**body["parameters"], "audio": False}})
        assert (await ds.video(silent["output"]["video_url"]))["audio"] == 1  # ignored
    async with DashScopeTest(dashscope_wan26_r2v_audio="strict") as ds:
        r = await ds.post(body)
        assert r.status_code == 400
        assert r.json()["message"] == ("Model wan2.6-r2v does not support audio "
                                       "(parameters.audio).")


async def test_N05_r2v_reference_videos_are_billed_up_to_5_seconds() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        done = await ds.job(r2v27([VIDEO, VIDEO], duration=4))  # 2 x 5 s assumed, capped at 5
        usage = done["usage"]
        assert (usage["input_video_duration"], usage["output_video_duration"],
                usage["duration"]) == (5, 4, 9)
        short = await ds.job(r2v27([VIDEO], duration=4),
                             **{"X-Wanmock-Scenario": "inputs; video_s=2.5"})
        assert (short["usage"]["input_video_duration"], short["usage"]["duration"]) == (2.5, 6.5)
        images = await ds.job(r2v27([IMAGE], duration=4))  # no video, nothing to bill
        assert (images["usage"]["input_video_duration"], images["usage"]["duration"]) == (0, 4)
    async with DashScopeTest(dashscope_r2v_input_billing="off") as ds:
        done = await ds.job(r2v27([VIDEO], duration=4))
        assert (done["usage"]["input_video_duration"], done["usage"]["duration"]) == (0, 4)


async def test_N17_apiyi_polls_only_on_its_own_task_api() -> None:
    async with DashScopeTest(prefix="/wan", family="apiyi") as ds:
        task_id = await ds.create({"model": "wan2.7-t2v", "input": {"prompt": "a cat"}})
        native = await ds.client.get(f"/wan/api/v1/tasks/{task_id}",
                                     headers={"Authorization": "Bearer sk-test"})
        assert native.status_code == 404  # apiyi's FAQ: queries are /v1/tasks/{id} only
        own = await ds.client.get(f"/v1/tasks/{task_id}",
                                  headers={"Authorization": "Bearer sk-test"})
        assert own.status_code == 200 and own.json()["task_id"] == task_id


async def test_N18_the_task_list_names_the_path_each_task_used() -> None:
    kf2v = {"model": "wan2.2-kf2v-flash",
            "input": {"first_frame_url": "https://example.com/a.png"}}
    async with DashScopeTest() as ds:
        await ds.create(kf2v, IMAGE2VIDEO)
        await ds.create({"model": "wan2.6-t2v", "input": {"prompt": "a cat"}})
        r = await ds.client.get("/api/v1/tasks", headers={"Authorization": "Bearer sk-test"})
        keys = {row["model_name"]: row["user_api_unique_key"] for row in r.json()["data"]}
        # The manage-asynchronous-tasks example: apikey:v1:aigc:image2video:video-synthesis:...
        assert keys == {
            "wan2.2-kf2v-flash": "apikey:v1:aigc:image2video:video-synthesis:wan2.2-kf2v-flash",
            "wan2.6-t2v": "apikey:v1:aigc:video-generation:video-synthesis:wan2.6-t2v"}
