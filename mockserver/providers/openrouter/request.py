"""How OpenRouter reads a `POST /api/v1/videos` body (no Starlette): the neutral fields the
catalogue judges, the mode the images choose, and OpenRouter's own checks against the model's
capability object (contracts/catalogue.yaml `openrouter:`).

Sources (contracts/openrouter.yaml x-wanmock-decisions): the video guide
(https://openrouter.ai/docs/guides/overview/multimodal/video-generation: "If both fields are
provided, frame_images takes precedence and the request is treated as image-to-video"; only
values from the model's supported sets), openrouter 1.3.84 components/frameimage.py,
inputreference.py (image, audio and video references), videogenerationrequest.py
(ProviderOptions: "Only options for the matched provider are forwarded ... Unrecognized keys
are silently dropped").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mockserver.catalogue import RuleFailure
from mockserver.core.webhooks import is_loopback_url

# OpenRouter's resolution words -> the catalogue's tiers (the others: no Wan tier).
TIERS = {"480p": "480P", "720p": "720P", "1080p": "1080P"}
# A frame or reference image: an http(s) URL or a data: URI (clients send both; the video
# guide's examples use https, the SDK's docstrings data URLs too).
IMAGE_URL = re.compile(r"^(https?://\S+|data:image/[\w.+-]+;base64,.+)$", re.S)
SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
# The provider slug the Wan models are served by (videogenerationrequest.py's slug list).
PROVIDER = "alibaba"


@dataclass(slots=True)
class Reading:
    """A body as OpenRouter reads it for one model."""

    fields: dict[str, Any]  # neutral fields for `Catalogue.evaluate`
    sources: dict[str, str]  # neutral field -> where it came from on the wire
    mode: str = "t2v"
    failures: list[RuleFailure] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # what OpenRouter ignored, for the journal
    refused: list[str] = field(default_factory=list)  # passthrough keys refused (strict)


def callback_ok(url: str) -> bool:
    """A `callback_url` OpenRouter takes: HTTPS ("Must be HTTPS", videogenerationrequest.py);
    the fake also takes plain http on a loopback host, so tests can receive it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(url))


def ratio_of(width: int, height: int) -> str:
    """`1280x720` -> `16:9`, `960x720` -> `4:3` (the reduced fraction)."""
    a, b = width, height
    while b:
        a, b = b, a % b
    return f"{width // a}:{height // a}"


def sizes_of(entry: Any) -> list[str]:
    """The `WxH` sizes a model takes: its `supported_sizes`, or, for a model that lists none
    (Wan 3.0), each supported tier at each supported ratio, the tier as the short side."""
    listed = (entry.get("openrouter") or {}).get("sizes")
    if listed is not None:
        return list(listed)
    out = []
    for tier in entry.get("resolutions") or []:
        short = int(str(tier).rstrip("Pp"))
        for ratio in entry.get("ratios") or []:
            w, _, h = str(ratio).partition(":")
            if not (w.isdigit() and h.isdigit()):
                continue
            a, b = int(w), int(h)
            width, height = (round(short * a / b), short) if a >= b else (
                short, round(short * b / a))
            out.append(f"{width}x{height}")
    return out


def size_reading(size: str, entry: Any) -> tuple[str, str] | None:
    """(tier, ratio) of a `WxH` size the model takes (`sizes_of`), else None."""
    match = SIZE.match(size.strip())
    if match is None or size.strip() not in sizes_of(entry):
        return None
    width, height = int(match.group(1)), int(match.group(2))
    tier = TIERS.get(f"{min(width, height)}p")
    return None if tier is None else (tier, ratio_of(width, height))


def read(entry: Any, body: Mapping[str, Any], fields: dict[str, Any],
         sources: dict[str, str], strict_passthrough: bool = False) -> Reading:
    """OpenRouter's reading of a schema-valid body for the catalogue `entry` (None: an unknown
    model, which is all there is to say). `fields`/`sources`: the operation's
    `x-wanmock-spec` extraction."""
    reading = Reading(dict(fields), dict(sources))
    if entry is None:
        return reading
    out, fail = reading.fields, reading.failures
    model = entry.model
    own: Mapping[str, Any] = entry.get("openrouter") or {}
    resolution = body.get("resolution")  # `720p`: read here (the catalogue's tiers are 720P)
    if isinstance(resolution, str):
        out["resolution"] = TIERS.get(resolution, resolution)
        reading.sources["resolution"] = "resolution"
    size = body.get("size")
    if isinstance(size, str):
        found = size_reading(size, entry)
        if found is None:
            fail.append(RuleFailure("size_allowed", "size", size, sizes_of(entry), model))
        else:  # "Interchangeable with resolution + aspect_ratio": the size says both
            out["resolution"], out["ratio"] = found
            reading.sources["resolution"] = reading.sources["ratio"] = "size"
    frames = body.get("frame_images") or []
    references = body.get("input_references") or []
    if frames:
        reading.mode = "i2v"
        _frames(reading, frames, own, model)
        if references:
            reading.dropped.append("input_references (frame_images take precedence)")
    elif references:
        reading.mode = "r2v"
        _references(reading, references, entry, model)
    _passthrough(reading, body, own, strict_passthrough)
    return reading


def _frames(reading: Reading, frames: list[Any], own: Mapping[str, Any],
            model: str | None) -> None:
    allowed = list(own.get("frame_images") or [])
    seen: set[str] = set()
    for i, frame in enumerate(frames):
        kind = frame.get("frame_type")
        url = (frame.get("image_url") or {}).get("url")
        where = f"frame_images.{i}"
        if kind not in allowed:
            reading.failures.append(RuleFailure("media_type", f"{where}.frame_type", kind,
                                                allowed, model))
        elif kind in seen:
            reading.failures.append(RuleFailure("media_count", f"{where}.frame_type", kind,
                                                {"max": 1}, model))
        elif not (isinstance(url, str) and IMAGE_URL.match(url)):
            reading.failures.append(RuleFailure("image_url_format", f"{where}.image_url.url",
                                                url, None, model))
        else:
            seen.add(kind)
            name = "img_url" if kind == "first_frame" else "last_frame_url"
            reading.fields[name] = url
            reading.sources[name] = f"{where}.image_url.url"
    if seen == {"last_frame"}:  # a last frame alone: the upstream needs the first one
        reading.failures.append(RuleFailure("image_required", "frame_images", None,
                                            None, model))


def _references(reading: Reading, references: list[Any], entry: Any,
                model: str | None) -> None:
    images = []
    for i, ref in enumerate(references):
        kind = ref.get("type")
        if kind != "image_url":
            # Audio and video references are "honoured only by some providers" (Seedance);
            # the Wan models take images only (input_modalities text, image): ignored.
            reading.dropped.append(f"input_references.{i} ({kind})")
            continue
        url = (ref.get("image_url") or {}).get("url")
        if not (isinstance(url, str) and IMAGE_URL.match(url)):
            reading.failures.append(RuleFailure("image_url_format",
                                                f"input_references.{i}.image_url.url", url,
                                                None, model))
            return
        images.append(url)
    limits = entry.get("references") or {}
    most = int(limits.get("images", limits.get("max", len(images))))
    if len(images) > most:
        reading.failures.append(RuleFailure("media_count", "input_references", len(images),
                                            {"max": most}, model))
    if images:
        reading.fields["reference_urls"] = images
        reading.sources["reference_urls"] = "input_references"
    else:  # only ignored kinds: text to video after all
        reading.mode = "t2v"


def _passthrough(reading: Reading, body: Mapping[str, Any], own: Mapping[str, Any],
                 strict: bool) -> None:
    options = (body.get("provider") or {}).get("options") or {}
    allowed = set(own.get("passthrough") or [])
    for slug, params in options.items():
        if slug != PROVIDER or not isinstance(params, Mapping):
            reading.dropped.append(f"provider.options.{slug} (another provider)")
            continue
        for key, value in params.items():
            if key not in allowed:
                if strict:
                    reading.refused.append(f"provider.options.{slug}.{key}")
                else:
                    reading.dropped.append(f"provider.options.{slug}.{key}")
            elif key == "negative_prompt" and isinstance(value, str):
                reading.fields["negative_prompt"] = value
                reading.sources["negative_prompt"] = f"provider.options.{slug}.{key}"
            elif key == "shot_type" and isinstance(value, str):
                reading.fields["shot_type"] = value
                reading.sources["shot_type"] = f"provider.options.{slug}.{key}"
            elif key in ("prompt_extend", "enable_prompt_expansion") and isinstance(value, bool):
                reading.fields["prompt_extend"] = value
                reading.sources["prompt_extend"] = f"provider.options.{slug}.{key}"
