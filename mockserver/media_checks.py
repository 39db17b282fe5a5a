"""Each newer protocol's media rules (`CHECKERS`, by catalogue `protocol`): Wan 3.0 (`wan3`),
wan2.7-videoedit (`videoedit`), VACE (`vace`), wan2.2-s2v (`s2v`) and wan2.2-animate (`animate`).

A checker reads a request already reduced to neutral fields, reports each failed rule through
`fail(rule, field, value, allowed)` and returns `Overrides`: what the request's media decide
about the output (its mode, ratio, length, the input seconds it bills). Inputs behind a URL are
never fetched: their lengths and ratios are `mockserver.media.Assumed`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mockserver.media import (
    FETCHED_URL,
    IMAGE_MEDIA,
    IMAGE_URL,
    PAGE_URL,
    Assumed,
    Fail,
    Overrides,
    adaptive_ratio,
    as_list,
    audio_url_ok,
    items,
)

# -- Wan 3.0 -----------------------------------------------------------------------------------
_FRAMES = ("first_frame", "last_frame")
_DOCUMENTS = ("file", "link")


def check_wan3(entry: Any, fields: Mapping[str, Any], fail: Fail, assume: Assumed,
               duration: int) -> Overrides:
    """Wan 3.0's media rules (help.aliyun.com/zh/model-studio/wan3-video-generation-api-reference
    素材组合): a prompt or media; frames mode is [first_frame] or [first_frame, last_frame] and
    excludes reference/file/link media (the one documented message, a FAILED task); file xor
    link; counts per type; reference videos and audios at most 15 s in total; input video plus
    output at most 30 s; prompt_extend true with a file or link."""
    media = items(fields.get("media"))
    prompt = fields.get("prompt")
    if not media and not (isinstance(prompt, str) and prompt.strip()):
        fail("input_required", "prompt", prompt)
    limits: Mapping[str, int] = entry.get("media") or {}
    types = [str(m.get("type")) for m in media]
    unknown = [t for t in types if t not in limits]
    if unknown:
        fail("media_type", "media", unknown[0], sorted(limits))
        return Overrides()
    frames = [t for t in types if t in _FRAMES]
    if frames and len(frames) != len(types):
        fail("media_exclusive", "media", types)
    elif frames and sorted(frames) not in (["first_frame"], ["first_frame", "last_frame"]):
        fail("media_unlisted", "media", types, [["first_frame"], ["first_frame", "last_frame"]])
    elif all(d in types for d in _DOCUMENTS):
        fail("media_unlisted", "media", types, "file or link, not both")
    for kind in dict.fromkeys(types):
        if types.count(kind) > limits[kind]:
            fail("media_count", "media", types.count(kind), {"type": kind, "max": limits[kind]})
    for item in media:
        item_kind, url = item.get("type"), item.get("url")
        pattern = IMAGE_URL if item_kind in IMAGE_MEDIA else PAGE_URL if item_kind == "link" else (
            FETCHED_URL)
        if not (isinstance(url, str) and pattern.match(url)):
            fail("image_url_format", "media", url)
        elif item_kind == "reference_audio" and not audio_url_ok(url):
            fail("audio_url_format", "media", url)
    videos, audios = types.count("reference_video"), types.count("reference_audio")
    video_s = videos * assume.video_s
    totals = entry.get("media_seconds") or {}
    for count, each, kind in ((videos, assume.video_s, "reference_video"),
                              (audios, assume.audio_s, "reference_audio")):
        low, high, total = totals.get(kind) or (0, 10**6, 10**6)
        if count and (not low <= each <= high or count * each > total):
            fail("media_duration", "media", count * each, {"type": kind, "low": low,
                                                           "high": high, "total": total})
    if any(d in types for d in _DOCUMENTS) and fields.get("prompt_extend") is False:
        fail("prompt_extend_required", "prompt_extend", False)
    longest = int(entry.get("max_total_s") or 30)
    if duration == -1:  # smart duration: the model's pick, assumed (within what is left)
        out = max(2, min(assume.smart_s, longest - int(video_s)))
    else:
        out = duration
        if videos and video_s + out > longest:
            fail("duration_with_video", "duration", duration, max(0, longest - int(video_s)))
    mode = "t2v" if not media else "i2v" if frames else "r2v"
    ratio = fields.get("ratio")
    if ratio in (None, "adaptive"):
        ratio = adaptive_ratio(assume, media)
    return Overrides(mode=mode, ratio=str(ratio), duration=out, input_video_s=video_s)


# -- wan2.7-videoedit ------------------------------------------------------------------------
def check_videoedit(entry: Any, fields: Mapping[str, Any], fail: Fail, assume: Assumed,
                    duration: int) -> Overrides:
    """One `video` to edit and up to 4 reference images; the input video 2-10 s; duration 0
    keeps its length, 2-10 must not exceed it; without a ratio, the input's (assumed)."""
    media = items(fields.get("media"))
    if not media and fields.get("video_url"):  # a flat body (jiekou/Novita): `video_url`
        media = [{"type": "video", "url": fields["video_url"]}]
    limits: Mapping[str, int] = entry.get("media") or {}
    types = [str(m.get("type")) for m in media]
    unknown = [t for t in types if t not in limits]
    if unknown:
        fail("media_type", "media", unknown[0], sorted(limits))
        return Overrides()
    if "video" not in types:
        fail("video_required", "media", types)
    for kind in dict.fromkeys(types):
        if types.count(kind) > limits[kind]:
            fail("media_count", "media", types.count(kind), {"type": kind, "max": limits[kind]})
    for item in media:
        url, pattern = item.get("url"), FETCHED_URL if item.get("type") == "video" else IMAGE_URL
        if not (isinstance(url, str) and pattern.match(url)):
            fail("image_url_format", "media", url)
    low, high = entry.get("video_seconds") or (0, 10**6)
    if not low <= assume.video_s <= high:
        fail("media_duration", "media", assume.video_s, {"type": "video", "low": low,
                                                         "high": high, "total": high})
    source = max(1, int(assume.video_s))
    if duration == 0:  # keep the input's length
        out = source
    else:
        out = duration
        if duration > assume.video_s:
            fail("duration_with_video", "duration", duration, source)
    ratio = fields.get("ratio") or adaptive_ratio(assume, [])
    return Overrides(ratio=str(ratio), duration=out, input_video_s=assume.video_s)


# -- VACE ----------------------------------------------------------------------------------
_VIDEO_FUNCTIONS = ("video_repainting", "video_edit", "video_outpainting")


def check_vace(entry: Any, fields: Mapping[str, Any], fail: Fail, assume: Assumed,
               duration: int) -> Overrides:
    """VACE's functions and the inputs each needs (VACE API reference): image_reference 1-3
    reference images (obj_or_bg one per image, at most one bg); video_repainting a video and a
    control condition; video_edit a video and one mask (image xor video); video_extension a
    first/last frame or clip (a motion video needs a control condition); video_outpainting a
    video. A video function's output keeps the input's length (at most 5 s) and size."""
    function = fields.get("function")
    if function not in (entry.get("functions") or ()):
        fail("function_inputs", "function", function, entry.get("functions"))
        return Overrides()
    video = fields.get("video_url")
    refs = as_list(fields.get("ref_images"))
    if function == "image_reference":
        if not refs:
            fail("function_inputs", "ref_images", None)
        sides = fields.get("obj_or_bg")
        if sides is not None and (not isinstance(sides, list) or len(sides) != min(len(refs), 3)
                                  or sides.count("bg") > 1):
            fail("function_inputs", "obj_or_bg", sides, "one obj/bg per image, at most one bg")
        return Overrides(mode="r2v")
    frames = [fields.get(k) for k in ("img_url", "last_frame_url", "first_clip_url",
                                      "last_clip_url")]
    if function in _VIDEO_FUNCTIONS and not video:
        fail("video_required", "video_url", video)
    if function == "video_repainting" and not fields.get("control_condition"):
        fail("function_inputs", "control_condition", None)
    if function == "video_edit" and bool(fields.get("mask_image_url")) == bool(
            fields.get("mask_video_url")):
        fail("function_inputs", "mask_image_url", None, "mask_image_url or mask_video_url")
    if function == "video_extension":
        if not any(frames):
            fail("function_inputs", "img_url", None,
                 "first_frame_url, last_frame_url, first_clip_url or last_clip_url")
        if video and not fields.get("control_condition"):
            fail("function_inputs", "control_condition", None)
        return Overrides(mode="v2v")
    for url in (video, fields.get("mask_video_url")):
        if url is not None and not (isinstance(url, str) and FETCHED_URL.match(url)):
            fail("image_url_format", "video_url", url)
    out = max(1, min(5, int(assume.video_s)))  # the input's length, its first 5 s at most
    ratio = assume.ratio or "16:9"
    return Overrides(mode="v2v", duration=out, ratio=ratio,
                     size=_TIER_720.get(ratio, "1280*720"))


_TIER_720 = {"16:9": "1280*720", "9:16": "720*1280", "1:1": "960*960", "4:3": "1088*832",
             "3:4": "832*1088"}


# -- wan2.2-s2v and wan2.2-animate -----------------------------------------------------------
def check_s2v(entry: Any, fields: Mapping[str, Any], fail: Fail, assume: Assumed,
              duration: int) -> Overrides:
    """A portrait and a speech track (S2V API reference): the audio is required, wav/mp3 and
    shorter than 20 s; the video lasts as long as the audio (assumed) and keeps the image's
    aspect ratio."""
    audio = fields.get("audio_url")
    if not audio:
        fail("parameter_required", "audio_url", audio)
    elif not (isinstance(audio, str) and FETCHED_URL.match(audio)):
        fail("image_url_format", "audio_url", audio)
    low, high = entry.get("audio_seconds") or (0, 10**6)
    if not low < assume.audio_s < high:
        fail("media_duration", "audio_url", assume.audio_s, {"type": "audio", "low": low,
                                                              "high": high, "total": high})
    return Overrides(duration=max(1, round(assume.audio_s)), output_s=assume.audio_s)


def check_animate(entry: Any, fields: Mapping[str, Any], fail: Fail, assume: Assumed,
                  duration: int) -> Overrides:
    """A character image and a motion video (animate API reference): the video and
    `parameters.mode` (wan-std, wan-pro) are required; the video 2-30 s (assumed); the output
    is 720P, as long as the video; move follows the image's ratio, mix the video's."""
    video = fields.get("video_url")
    if not video:
        fail("video_required", "video_url", video)
    elif not (isinstance(video, str) and FETCHED_URL.match(video)):
        fail("image_url_format", "video_url", video)
    if not fields.get("animate_mode"):
        fail("parameter_required", "animate_mode", None)
    low, high = entry.get("video_seconds") or (0, 10**6)
    if not low <= assume.video_s <= high:
        fail("media_duration", "video_url", assume.video_s, {"type": "video", "low": low,
                                                              "high": high, "total": high})
    mix = str(entry.model).endswith("-mix")
    ratio = assume.ratio or ("16:9" if mix else adaptive_ratio(assume, [], fields.get("img_url")))
    return Overrides(ratio=ratio, duration=max(1, round(assume.video_s)), output_s=assume.video_s)


CHECKERS: dict[str, Callable[..., Overrides]] = {
    "wan3": check_wan3, "videoedit": check_videoedit, "vace": check_vace, "s2v": check_s2v,
    "animate": check_animate}
