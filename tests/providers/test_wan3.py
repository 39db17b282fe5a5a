"""Wan 3.0 (`wan3.0-video`, `wan3.0-video-prime`) on DashScope and apiyi, every mode and rule of
the Model Studio reference (help.aliyun.com/zh/model-studio/wan3-video-generation-api-reference):
text, first/last frame, references (images, videos, audios), documents and links, video edit and
extend; durations 2-30 and -1; 1080P, `adaptive` and 21:9; sound on by default; usage; the mode
error as a FAILED task; the facts the fake assumes of inputs it never fetches."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.images import SAMPLE_PNG_DATA_URI
from tests.providers.dashscope_client import CREATE, DashScopeTest

pytestmark = pytest.mark.anyio

W3 = "wan3.0-video"
IMG = "https://example.com/cat.png"
VID = "https://example.com/role.mp4"
AUD = "https://example.com/voice.mp3"
EXCLUSIVE = ("The two modes are mutually exclusive. Do not pass reference_xx and "
             "first_frame/last_frame at the same time.")


def body(media: list[dict[str, str]] | None = None, prompt: str | None = "a cat on a roof",
         model: str = W3, **parameters: Any) -> dict[str, Any]:
    inp: dict[str, Any] = {}
    if prompt is not None:
        inp["prompt"] = prompt
    if media is not None:
        inp["media"] = media
    return {"model": model, "input": inp, "parameters": parameters}


def m(kind: str, url: str) -> dict[str, str]:
    return {"type": kind, "url": url}


# The cases both doors to Wan 3.0 run: DashScope's own API and apiyi's `/wan` pass-through
# (polled on apiyi's own task API).
DOORS = [pytest.param("", "dashscope", id="dashscope"), pytest.param("/wan", "apiyi", id="apiyi")]
FIRST_FRAME = body([m("first_frame", SAMPLE_PNG_DATA_URI)], resolution="1080P")
FIRST_LAST = body([m("first_frame", IMG), m("last_frame", IMG)])
REFERENCES = body([m("reference_image", IMG), m("reference_video", VID), m("reference_audio", AUD)],
                  prompt="视频1抱着图1说话", duration=8, resolution="480P")
GENERIC = "Required parameter({}) missing or invalid, please check the request parameters."
AT_SUBMIT = [
    # outside the schema's range: 400 at once
    pytest.param(body(duration=31), "InvalidParameter", GENERIC.format("parameters.duration"),
                 id="duration-31"),
    pytest.param(body(duration=-2), "InvalidParameter", GENERIC.format("parameters.duration"),
                 id="duration--2"),
    # in range for the schema, not a Wan 3.0 duration
    pytest.param(body(duration=1), "InvalidParameter",
                 "The duration 1 is not supported by model wan3.0-video, allowed: -1, 2, 3, 4, 5, "
                 "6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, ...", id="duration-1"),
    pytest.param(body(resolution="4K"), "InvalidParameter",
                 GENERIC.format("parameters.resolution"), id="resolution-4K"),
    pytest.param(body(prompt=None), "InvalidParameter",  # neither a prompt nor media
                 GENERIC.format("input.prompt or input.media"), id="no-prompt-or-media"),
    pytest.param(body([m("driving_audio", AUD)]), "InvalidParameter",  # wan2.7-i2v's type
                 GENERIC.format("input.media"), id="driving-audio"),
    pytest.param(body([m("reference_video", "data:video/mp4;base64,AAAA")]), "InvalidParameter",
                 "url error, please check url！", id="inline-video"),
    pytest.param(body([m("reference_audio", "https://x.test/a.ogg")]), "InvalidURL",
                 "File type is not supported. Allowed types are: .wav, .mp3.", id="ogg-audio"),
]


def failed(done: dict[str, Any]) -> tuple[str, str]:
    out = done["output"]
    assert out["task_status"] == "FAILED", out
    assert "usage" not in done and "video_url" not in out
    return out["code"], out["message"]


async def test_wan3_text_to_video_defaults_1080p_adaptive_sound_and_w3_usage() -> None:
    async with DashScopeTest() as ds:
        done = await ds.job(body())
        out = done["output"]
        assert out["task_status"] == "SUCCEEDED"
        assert out["orig_prompt"] == "a cat on a roof" and "actual_prompt" not in out
        # W3's example usage: floats for seconds, fps 30, SR the tier, the ratio chosen.
        assert done["usage"] == {"video_count": 1, "duration": 5.0, "input_video_duration": 0.0,
                                 "output_video_duration": 5.0, "fps": 30, "SR": 1080,
                                 "ratio": "16:9"}
        assert isinstance(done["usage"]["duration"], float)
        video = await ds.video(out["video_url"])
        assert (video["width"], video["height"], video["audio"]) == (1920, 1080, 1)
        assert video["duration"] == pytest.approx(5.0, abs=0.3)


async def test_wan3_durations_2_to_30_and_smart_duration() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        longest = await ds.job(body(duration=30, resolution="480P"))
        assert longest["usage"]["output_video_duration"] == 30.0
        smart = await ds.job(body(duration=-1))  # the model's pick, assumed 5 s
        assert smart["usage"]["duration"] == 5.0
        # An `inputs` scenario sets what smart duration picks.
        chosen = await ds.job(body(duration=-1, resolution="480P"),
                              **{"X-Wanmock-Scenario": "inputs; smart_s=12"})
        assert chosen["usage"]["output_video_duration"] == 12.0


async def test_wan3_resolutions_ratios_seed_and_silence() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        wide = await ds.job(body(resolution="720P", ratio="21:9", seed=-1, audio=False,
                                 watermark=True, prompt_extend=False))
        assert (wide["usage"]["SR"], wide["usage"]["ratio"]) == (720, "21:9")
        video = await ds.video(wide["output"]["video_url"])
        assert (video["width"], video["height"], video["audio"]) == (1680, 720, 0)
        tall = await ds.job(body(resolution="480P", ratio="9:16"))
        assert (tall["usage"]["SR"], tall["usage"]["ratio"]) == (480, "9:16")
        # negative_prompt is not documented for Wan 3.0: accepted and ignored; enable_thinking
        # (the SDK's Agentic PE switch) too.
        with_extras = {**body(), "parameters": {"enable_thinking": True}}
        with_extras["input"]["negative_prompt"] = "blurry"
        assert (await ds.job(with_extras))["output"]["task_status"] == "SUCCEEDED"


async def test_wan3_first_frame_and_first_last_frame_usage() -> None:
    async with DashScopeTest() as ds:
        done = await ds.job(FIRST_FRAME)
        # `adaptive` follows the 4:3 inline first frame.
        assert done["usage"]["ratio"] == "4:3"
        both = await ds.job(FIRST_LAST)
        assert both["output"]["task_status"] == "SUCCEEDED"
        assert both["usage"]["ratio"] == "16:9"  # a URL image: unknown, 16:9 assumed


async def test_wan3_mode_exclusivity_fails_the_task_as_w3_shows() -> None:
    async with DashScopeTest() as ds:
        # Accepted (200, PENDING), then FAILED with W3's verbatim message.
        done = await ds.job(body([m("first_frame", IMG), m("reference_image", IMG)]))
        assert failed(done) == ("InvalidParameter", EXCLUSIVE)
        done = await ds.job(body([m("last_frame", IMG), m("reference_audio", AUD)]))
        assert failed(done) == ("InvalidParameter", EXCLUSIVE)


async def test_wan3_unlisted_combinations_and_counts_fail_the_task() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        code, message = failed(await ds.job(body([m("last_frame", IMG)])))
        assert code == "InvalidParameter" and "last_frame" in message
        code, message = failed(await ds.job(body([m("file", "https://x.test/a.pdf"),
                                                  m("link", "https://x.test/news")])))
        assert code == "InvalidParameter" and "file" in message and "link" in message
        code, message = failed(await ds.job(body([m("reference_image", IMG)] * 11)))
        assert message == ("The number of reference_image exceeds the limit of model "
                           "wan3.0-video (max 10).")
        ok = await ds.job(body([m("reference_image", IMG)] * 10))
        assert ok["output"]["task_status"] == "SUCCEEDED"


async def test_wan3_reference_images_videos_and_audios() -> None:
    async with DashScopeTest() as ds:
        done = await ds.job(REFERENCES)
        usage = done["usage"]
        # The input video is billed on top of the output (assumed 5 s: decision
        # inputs-not-fetched).
        assert (usage["input_video_duration"], usage["output_video_duration"],
                usage["duration"]) == (5.0, 8.0, 13.0)
        audio_only = await ds.job(body([m("reference_audio", AUD)]))
        assert audio_only["output"]["task_status"] == "SUCCEEDED"


async def test_wan3_input_video_plus_output_at_most_30_seconds() -> None:
    async with DashScopeTest(dashscope_rate_limits="off") as ds:
        ok = await ds.job(body([m("reference_video", VID)], duration=25))  # 5 + 25 = 30
        assert ok["usage"]["duration"] == 30.0
        code, message = failed(await ds.job(body([m("reference_video", VID)], duration=26)))
        assert code == "InvalidParameter" and "at most 25 seconds" in message
        # Longer inputs, as an `inputs` scenario says they are: 2 x 8 s > 15 s in total.
        code, message = failed(await ds.job(
            body([m("reference_video", VID)] * 2, duration=5),
            **{"X-Wanmock-Scenario": "inputs; video_s=8"}))
        assert "reference_video" in message and "15" in message
        one = await ds.job(body([m("reference_video", VID)], duration=-1),
                           **{"X-Wanmock-Scenario": "inputs; video_s=12; smart_s=20"})
        assert (one["usage"]["input_video_duration"],
                one["usage"]["output_video_duration"]) == (12.0, 18.0)  # smart fits 30 s


async def test_wan3_video_edit_and_extend() -> None:
    async with DashScopeTest() as ds:
        # W3's video-edit tab: one reference video, 720P, no ratio or duration.
        edit = await ds.job(body([m("reference_video", VID)], prompt="将整个画面转换为黏土风格",
                                 resolution="720P", prompt_extend=True))
        assert (edit["usage"]["SR"], edit["usage"]["input_video_duration"]) == (720, 5.0)
        # The extend tab: ratio adaptive (its requirement); an `inputs` scenario sets the
        # ratio the source video has.
        extend = await ds.job(body([m("reference_video", VID)], prompt="将视频1向后延长",
                                   resolution="720P", ratio="adaptive"),
                              **{"X-Wanmock-Scenario": "inputs; ratio=9:16"})
        assert extend["usage"]["ratio"] == "9:16"
        video = await ds.video(extend["output"]["video_url"])
        assert (video["width"], video["height"]) == (720, 1280)


async def test_wan3_documents_and_links_need_prompt_rewriting() -> None:
    async with DashScopeTest() as ds:
        deck = await ds.job(body([m("file", "https://x.test/glass.pptx")], resolution="480P",
                                 ratio="adaptive", duration=10, prompt_extend=True))
        assert deck["output"]["task_status"] == "SUCCEEDED"
        code, message = failed(await ds.job(body([m("link", "https://x.test/a")],
                                                 prompt_extend=False)))
        assert message == "prompt_extend must be true when file or link media is provided."


@pytest.mark.parametrize(("prefix", "family"), DOORS)
@pytest.mark.parametrize(("request_body", "code", "message"), AT_SUBMIT)
async def test_wan3_rejections_at_submit(prefix: str, family: str, request_body: dict[str, Any],
                                         code: str, message: str) -> None:
    async with DashScopeTest(prefix=prefix, family=family) as ds:
        r = await ds.post(request_body)
        assert r.status_code == 400
        assert (r.json()["code"], r.json()["message"]) == (code, message)
        assert list(ds.backend.tasks()) == []


@pytest.mark.parametrize(("prefix", "family"), DOORS)
@pytest.mark.parametrize(("request_body", "size", "seconds", "mode"), [
    # `adaptive` follows the 4:3 inline first frame; URL images and videos: 16:9 assumed.
    pytest.param(FIRST_FRAME, (1632, 1248), 5, "i2v", id="first-frame"),
    pytest.param(FIRST_LAST, (1920, 1080), 5, "i2v", id="first-last-frame"),
    pytest.param(REFERENCES, (832, 480), 8, "r2v", id="reference-image-video-audio"),
])
async def test_wan3_modes_to_a_video(prefix: str, family: str, request_body: dict[str, Any],
                                     size: tuple[int, int], seconds: int, mode: str) -> None:
    async with DashScopeTest(prefix=prefix, family=family) as ds:
        task_id = await ds.create(request_body)
        assert ds.backend.store.get(task_id).spec.mode == mode
        state, url, failure = await ds.ending(task_id)
        assert (state, failure) == ("succeeded", None)
        assert url is not None
        video = await ds.video(url)
        assert (video["width"], video["height"], video["audio"]) == (*size, 1)
        assert video["duration"] == pytest.approx(seconds, abs=0.3)


async def test_wan3_prime_is_the_same_model_only_faster() -> None:
    async with DashScopeTest() as ds:
        std = await ds.create(body())
        prime = await ds.create(body(model="wan3.0-video-prime"))
        plans = [ds.backend.store.get(t).plan for t in (std, prime)]
        assert plans[1].run_s < plans[0].run_s
        done = await ds.run_to_end(prime)
        assert done["usage"]["duration"] == 5.0 and done["usage"]["SR"] == 1080


async def test_wan3_through_apiyis_pass_through_and_task_api() -> None:
    async with DashScopeTest(prefix="/wan", family="apiyi") as ds:
        task_id = await ds.create(body(duration=30))
        r = await ds.client.get(f"/v1/tasks/{task_id}", headers={"Authorization": "Bearer k"})
        assert r.status_code == 404  # tasks belong to their key
        ds.backend.clock.advance(120)
        r = await ds.client.get(f"/v1/tasks/{task_id}", headers={"Authorization": "Bearer sk-test"})
        assert r.json()["status"] == "completed" and r.json()["result_url"]
        bad = await ds.create(body([m("first_frame", IMG), m("reference_video", VID)]))
        ds.backend.clock.advance(120)
        r = await ds.client.get(f"/v1/tasks/{bad}", headers={"Authorization": "Bearer sk-test"})
        assert r.json()["status"] == "failed"
        assert EXCLUSIVE in r.json()["error"]["message"]


async def test_wan3_bad_inputs_scenario_is_the_toolkits_400() -> None:
    async with DashScopeTest() as ds:
        r = await ds.client.post(CREATE, json=body(), headers={
            "Authorization": "Bearer sk-test", "X-DashScope-Async": "enable",
            "X-Wanmock-Scenario": "inputs; video_s=-3"})
        assert r.status_code == 400 and r.json()["type"] == "MockServerError"
        assert "video_s" in r.json()["error"]


@pytest.mark.parametrize(("prefix", "family"), [("", "dashscope"), ("/wan", "apiyi")])
async def test_an_unknown_model_is_reported_before_wan3s_own_ranges(prefix: str,
                                                                    family: str) -> None:
    # -1 is a duration only Wan 3.0's branch of the schema allows: for a model DashScope does
    # not know, the model is what is wrong.
    async with DashScopeTest(prefix=prefix, family=family) as ds:
        r = await ds.post(body(model="wan9.9-video", duration=-1))
        assert r.status_code == 400
        assert (r.json()["code"], r.json()["message"]) == ("InvalidParameter", "Model not exist.")
