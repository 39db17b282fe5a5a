"""Media inputs: what each model's media may be, and what the fake assumes of unfetched ones.

`Catalogue.evaluate` reduces a request to neutral fields; the rules here read its media (input
images, videos, audios, documents) without fetching anything. Inline `data:` images are decoded
and measured (`mockserver.images`); everything behind a URL is unknown, so where a model's output
depends on it (an input video's length, what `ratio: adaptive` or smart duration `-1` picks, the
length of a driving audio) the fake assumes it: `Assumed`, the defaults below, which an `inputs`
job scenario changes per task (`X-Wanmock-Scenario: inputs; video_s=8; audio_s=12`). The
contracts state the assumptions (decision `inputs-not-fetched`).

Each protocol with media rules of its own has a checker (`mockserver.media_checks.CHECKERS`):
Wan 3.0, wan2.7-videoedit, VACE, wan2.2-s2v and wan2.2-animate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mockserver.images import FORMATS, DataImage, inspect, is_data_uri

Fail = Callable[..., None]
IMAGE_URL = re.compile(r"^(https?://\S+|oss://\S+|data:[\w.+-]+/[\w.+-]+;base64,.+)$", re.S)
# Videos, audios and documents are read from a URL only (no base64 forms documented).
FETCHED_URL = re.compile(r"^(https?://\S+|oss://\S+)$", re.S)
PAGE_URL = re.compile(r"^https?://\S+$", re.S)
AUDIO_TYPES = (".wav", ".mp3")
_AUDIO_MIMES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/mpeg", "audio/mp3")
IMAGE_MEDIA = ("first_frame", "last_frame", "reference_image")
# The ratios `adaptive` and "about the input's ratio" choose among, as (name, width/height).
_RATIOS = (("21:9", 21 / 9), ("16:9", 16 / 9), ("4:3", 4 / 3), ("1:1", 1.0), ("3:4", 3 / 4),
           ("9:16", 9 / 16))


@dataclass(frozen=True, slots=True)
class Assumed:
    """What the fake takes to be true of inputs it never fetches (decision
    `inputs-not-fetched`): each input video's and audio's length in seconds, the length smart
    duration (`-1`) picks, the ratio `adaptive` picks (None: an inline image's, else 16:9),
    and whether a portrait shows a person (wan2.2-s2v-detect)."""

    video_s: float = 5.0
    audio_s: float = 5.0
    smart_s: int = 5
    ratio: str | None = None
    humanoid: bool = True

    PARAMS = ("video_s", "audio_s", "smart_s", "ratio", "humanoid")

    @classmethod
    def of(cls, params: Mapping[str, Any] | None) -> Assumed:
        """From a scenario's parameters (the others are ignored); bad values keep the
        default (`scenario_problem` words them for the toolkit's 400)."""
        if not params:
            return DEFAULT
        out: dict[str, Any] = {}
        for name in ("video_s", "audio_s"):
            value = params.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                out[name] = float(value)
        smart = params.get("smart_s")
        if isinstance(smart, int) and not isinstance(smart, bool) and smart > 0:
            out["smart_s"] = smart
        ratio = params.get("ratio")
        if isinstance(ratio, str) and ratio in dict(_RATIOS):
            out["ratio"] = ratio
        if isinstance(params.get("humanoid"), bool):
            out["humanoid"] = params["humanoid"]
        return cls(**out) if out else DEFAULT


DEFAULT = Assumed()


def scenario_problem(params: Mapping[str, Any]) -> str | None:
    """Why an `inputs` scenario's parameters cannot be used (None: they can)."""
    for name in ("video_s", "audio_s"):
        value = params.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)
                                  or value <= 0 or value > 3600):
            return f"{name}= must be a number of seconds in (0, 3600]"
    smart = params.get("smart_s")
    if smart is not None and (not isinstance(smart, int) or isinstance(smart, bool)
                              or not 1 <= smart <= 60):
        return "smart_s= must be an integer of seconds in [1, 60]"
    ratio = params.get("ratio")
    if ratio is not None and ratio not in dict(_RATIOS):
        return f"ratio= must be one of {', '.join(r for r, _ in _RATIOS)}"
    if params.get("humanoid") is not None and not isinstance(params.get("humanoid"), bool):
        return "humanoid= must be true or false"
    return None


@dataclass(slots=True)
class Overrides:
    """What a request's media decide about its output (None: the catalogue's defaults)."""

    mode: str | None = None
    ratio: str | None = None  # a ratio of the catalogue's `ratios` table
    duration: int | None = None  # whole seconds of output (the video file's length)
    output_s: float | None = None  # the exact output seconds, when not whole (s2v, animate)
    input_video_s: float = 0.0
    audio: bool | None = None
    size: str | None = None  # a W*H the output takes from its input (VACE)


def audio_url_ok(url: str) -> bool:
    """Whether an audio URL names a wav or mp3 file (by its path's extension; a `data:` URI by
    its media type), the check DashScope answers with InvalidURL (audit F15). Nothing is
    fetched."""
    if url[:5].lower() == "data:":
        return url[5:].split(";", 1)[0].split(",", 1)[0].strip().lower() in _AUDIO_MIMES
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(AUDIO_TYPES)


def looks_like_video(url: Any) -> bool:
    return isinstance(url, str) and url.lower().split("?")[0].endswith((".mp4", ".mov", ".webm"))


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def items(media: Any) -> list[Mapping[str, Any]]:
    """The media items of a request (the schema made each an object with `type` and `url`)."""
    return [m for m in as_list(media) if isinstance(m, Mapping)]


def nearest_ratio(width: int, height: int) -> str:
    """The listed ratio closest to an image's (what `adaptive` picks for a known image)."""
    aspect = width / height
    return min(_RATIOS, key=lambda r: abs(r[1] - aspect))[0]


def first_visual(media: list[Mapping[str, Any]], image: Any = None) -> DataImage | None:
    """The first inline image among the inputs (a first frame first), measured; None when the
    first visual input is a URL (its ratio is unknown) or no input is an image."""
    candidates = [image] + [m.get("url") for m in media if m.get("type") in IMAGE_MEDIA]
    for url in candidates:
        if url is None:
            continue
        if not is_data_uri(url):
            return None
        found = inspect(str(url), 20 * 1024 * 1024)
        return found if found.problem is None and found.height else None
    return None


def adaptive_ratio(assume: Assumed, media: list[Mapping[str, Any]], image: Any = None) -> str:
    """What `ratio: adaptive` (or "about the input's ratio") resolves to: the scenario's
    `ratio=`, else the first inline image's nearest ratio, else 16:9."""
    if assume.ratio:
        return assume.ratio
    found = first_visual(media, image)
    return nearest_ratio(found.width, found.height) if found is not None else "16:9"


# -- reference video billing (wan2.6-r2v, wan2.7-r2v) ------------------------------------------
def reference_videos(fields: Mapping[str, Any]) -> int:
    """How many reference videos an r2v request gives (lists, URLs that name a video, media)."""
    videos = len(as_list(fields.get("reference_videos")))
    videos += sum(1 for u in as_list(fields.get("reference_urls")) if looks_like_video(u))
    return videos + sum(1 for m in items(fields.get("media"))
                        if m.get("type") == "reference_video")


def reference_video_s(entry: Any, videos: int, assume: Assumed) -> float:
    """The input video seconds an r2v task bills (audit N05): the assumed length of its
    `videos` reference videos, at most the entry's `input_billing.cap_s` in total; 0 when the
    entry bills none (or the option turned it off)."""
    billing = entry.get("input_billing")
    if not billing or not videos:
        return 0.0
    return min(videos * assume.video_s, float(billing.get("cap_s", 10**6)))


# -- checks shared by the older protocols --------------------------------------------------
def inline_images(limits: Mapping[str, Any] | None, entry: Any, fields: Mapping[str, Any],
                  fail: Fail) -> DataImage | None:
    """Check every `data:` image of the request against the family's limits (`image_limits`);
    return the first frame's measurements when it is a valid inline image."""
    img, last, media = fields.get("img_url"), fields.get("last_frame_url"), fields.get("media")
    if not (media or is_data_uri(img) or is_data_uri(last)):
        return None  # the common case, kept cheap: nothing inline to decode
    if not limits:
        return None
    # (neutral field, value, whether it is the first frame)
    images: list[tuple[str, Any, bool]] = [("img_url", img, True),
                                           ("last_frame_url", last, False)]
    for item in as_list(media):
        if isinstance(item, Mapping) and item.get("type") in IMAGE_MEDIA:
            images.append(("media", item.get("url"), item.get("type") == "first_frame"))
    low, high = (int(v) for v in entry.get("image_sides") or limits.get("sides", (0, 10**9)))
    max_mb = float(entry.get("image_max_mb") or limits.get("max_mb", 20))
    max_bytes = int(max_mb * 1024 * 1024)
    first: DataImage | None = None
    for name, value, is_first in images:
        if not is_data_uri(value):
            continue
        image = inspect(value, max_bytes)
        if image.problem == "too large":
            fail("image_data_limits", name, f"{image.size} bytes",
                 f"sides [{low}, {high}] px, at most {max_mb:g} MB")
        elif image.problem is not None:
            fail("image_data_format", name, image.problem, list(FORMATS))
        elif not (low <= image.width <= high and low <= image.height <= high):
            fail("image_data_limits", name, f"{image.width}x{image.height} px",
                 f"sides [{low}, {high}] px, at most {max_mb:g} MB")
        elif is_first and first is None:
            first = image
    return first


def check_combinations(entry: Any, media: Any, fail: Fail) -> None:
    """wan2.7-i2v: `media` one of the entry's `media_combinations`, each URL well formed."""
    if not media:
        fail("image_required", "media", media)
        return
    if not isinstance(media, list) or not all(isinstance(m, Mapping) for m in media):
        fail("media_combination", "media", media)
        return
    types = [m.get("type") for m in media]
    combos = [sorted(c) for c in entry.get("media_combinations") or []]
    if len(set(types)) != len(types) or sorted(t for t in types if t) not in combos:
        fail("media_combination", "media", types, entry.get("media_combinations"))
        return
    for item in media:
        url = item.get("url")
        if not (isinstance(url, str) and IMAGE_URL.match(url)):
            fail("image_url_format", "media", url)
            return
        if item.get("type") == "driving_audio" and not audio_url_ok(url):
            fail("audio_url_format", "media", url, list(AUDIO_TYPES))
            return


def check_references(entry: Any, fields: Mapping[str, Any], fail: Fail) -> None:
    """r2v: at least one reference, within the entry's `references` limits."""
    urls = as_list(fields.get("reference_urls"))
    images = list(as_list(fields.get("reference_images")))
    videos = list(as_list(fields.get("reference_videos")))
    # wan2.7-r2v passes references as media items (`reference_image`, `reference_video`).
    for item in items(fields.get("media")):
        kind = item.get("type")
        if kind == "reference_image":
            images.append(item.get("url"))
        elif kind == "reference_video":
            videos.append(item.get("url"))
    total = len(urls) + len(images) + len(videos)
    if total == 0:
        fail("references_required", "reference_urls", None)
        return
    limits = entry.get("references") or {}
    n_videos = len(videos) + sum(1 for u in urls if looks_like_video(u))
    n_images = total - n_videos
    if (
        total > limits.get("max", total)
        or n_images > limits.get("images", n_images)
        or n_videos > limits.get("videos", n_videos)
    ):
        fail("references_count", "reference_urls", total, limits)


