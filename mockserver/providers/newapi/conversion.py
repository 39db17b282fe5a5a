"""new-api's request conversion (no Starlette): how its Ali adaptor turns a task request into
the DashScope job it relays, what it refuses while doing so, and the order in which new-api
meets a body's problems (api-facts §2.8; relay/channel/task/ali at 4a188dee).

`NewApiPolicy.judge` (policy.py) runs these steps between the contract's schema and DashScope's
rules; nothing here reads the request or the backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mockserver.catalogue import Catalogue, ModelEntry, RuleFailure, entry_task
from mockserver.contracts import ContractSet, get_path
from mockserver.errors import Violation

_ATOI = re.compile(r"^[+-]?\d+$")
BUILD_FAILED = "build_request_failed"
LEGACY_BUILD_FAILED = "convert_to_ali_request_failed"
# Where new-api's Ali adaptor takes the first frame from, in order (api-facts §2.8).
IMAGE_PATHS = ("image", "images.0", "input_reference")
# (message, field, value) -> the family's build_request violation (NewApiPolicy.build_error)
BuildError = Callable[[str, str, Any], Violation]


def precedence(violation: Violation) -> int:
    """The order new-api meets problems: JSON decoding, the model (distributor), the prompt
    (validator), the request conversion, then DashScope itself."""
    if violation.code == "invalid_json":
        return 0
    if violation.code == "missing_model" or violation.wrap == "distributor":
        return 1
    if violation.rule == "model_known":
        return 2
    if violation.code == "invalid_request" and violation.field == "prompt":
        return 3
    if violation.code in (BUILD_FAILED, LEGACY_BUILD_FAILED):
        return 4
    return 5


def first_image(body: Mapping[str, Any]) -> str | None:
    """The first frame the Ali adaptor takes: `image`, `images[0]`, then `input_reference`."""
    for path in IMAGE_PATHS:
        value = get_path(body, path)
        if isinstance(value, str) and value:
            return value
    return None


def kf2v_frames(body: Mapping[str, Any], fields: dict[str, Any], sources: dict[str, str]
                ) -> None:
    """What DashScope's kf2v task reads of new-api's Ali body: `input.first_frame_url` and
    `input.last_frame_url`, which only metadata fills (nested `input` over the flat keys);
    `input.img_url` (from image, images, input_reference) is not read there."""
    for name in ("img_url", "last_frame_url"):
        fields.pop(name, None)
        sources.pop(name, None)
    for name, target in (("first_frame_url", "img_url"), ("last_frame_url", "last_frame_url")):
        for path in (f"metadata.input.{name}", f"metadata.{name}"):
            value = get_path(body, path)
            if isinstance(value, str) and value:
                fields[target] = value
                sources[target] = path
                break


def norm_key(key: str) -> str:
    """new-api treats `sk-x` and `x` as one key (TokenAuth)."""
    return key.removeprefix("sk-")


def kf2v_entry(catalogue: Catalogue, model: Any) -> ModelEntry | None:
    """A DashScope first-and-last-frame model: new-api's Ali adaptor relays it (its
    AliVideoInput has first_frame_url/last_frame_url; its ratio table lists
    wan2.2-kf2v-flash)."""
    if not isinstance(model, str) or "kf2v" not in model:
        return None
    entry = catalogue.entry("dashscope", model)
    return entry if entry is not None and entry_task(entry) == "image2video" else None


def kf2v_upstream_refusal(contracts: ContractSet, model: str) -> Violation:
    """new-api posts every Ali job to /video-generation/ (BuildRequestURL); DashScope serves
    kf2v models only on /image2video/ and answers its unknown-model 400 (dashscope.yaml
    decision kf2v), which new-api relays as fail_to_fetch_task."""
    ds_op = contracts["dashscope"].operation("createVideoSynthesis")
    refusal = ds_op.rule_violation(RuleFailure("model_known", "model", model, None, model),
                                   {"model": "model"}, "submit")
    return Violation("model", "kf2v_path", refusal.status, refusal.code, refusal.message,
                     value=model, wrap="fail_to_fetch_task")


def conversion_errors(entry: ModelEntry, body: Mapping[str, Any],
                      build_error: BuildError) -> list[Violation]:
    """What the Ali adaptor refuses while building the DashScope body (api-facts §2.8)."""
    out = []
    model = entry.model
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and "model" in metadata and metadata["model"] != model:
        out.append(build_error("can't change model with metadata", "metadata.model",
                               metadata["model"]))
    size = body.get("size")
    if isinstance(size, str) and size and "*" not in size and "t2v" in model:
        out.append(build_error(f"invalid size: {size}, example: 1920*1080", "size", size))
    if entry.protocol == "wan27" and entry.mode == "i2v":
        media = get_path(body, "metadata.input.media")
        flat = get_path(body, "metadata.media")
        if not first_image(body) and not (isinstance(media, list) and media) and not (
            isinstance(flat, list) and flat
        ):
            out.append(build_error(
                "wan2.7-i2v requires image, images, input_reference, or input.media",
                "image", None))
    return out


def convert(entry: ModelEntry, body: Mapping[str, Any], fields: dict[str, Any],
            sources: dict[str, str], *, drop_shot_type: bool) -> None:
    """Post-process the neutral fields the way new-api builds the DashScope request."""
    size = body.get("size")
    if isinstance(size, str) and size and "*" not in size:
        # Without `*` the size is a tier: upper-cased, `P` appended, sent as resolution.
        if sources.get("size") == "size":
            fields.pop("size", None)
            sources.pop("size", None)
        tier = size.strip().upper()
        if "resolution" not in fields:
            fields["resolution"] = tier if tier.endswith("P") else tier + "P"
            sources["resolution"] = "size"
    if sources.get("duration") in ("duration", "seconds"):
        value = fields["duration"]
        if isinstance(value, str):  # `seconds` goes through atoi; junk reads as 0
            value = int(value) if _ATOI.match(value) else 0
        if value:
            fields["duration"] = value
        else:  # Go's zero value: absent, new-api sends its default
            fields.pop("duration")
            sources.pop("duration")
    if fields.get("seed") == -1 and sources.get("seed") == "extra_body.seed":
        fields.pop("seed")
        sources.pop("seed")
    fields.setdefault("prompt_extend", True)
    if drop_shot_type:
        fields.pop("shot_type", None)
    if entry.mode == "r2v":
        if sources.get("img_url") in IMAGE_PATHS:
            fields.pop("img_url", None)
            sources.pop("img_url", None)
    else:
        for name in ("reference_images", "reference_videos"):
            fields.pop(name, None)
            sources.pop(name, None)
    if entry.protocol == "wan27" and entry.mode == "i2v" and "media" not in fields:
        first = first_image(body)
        if first:
            media = [{"type": "first_frame", "url": first}]
            images = body.get("images")
            if isinstance(images, list) and len(images) > 1 and isinstance(images[1], str):
                media.append({"type": "last_frame", "url": images[1]})
            if isinstance(fields.get("audio_url"), str) and fields["audio_url"]:
                media.append({"type": "driving_audio", "url": fields["audio_url"]})
            fields["media"] = media
            sources["media"] = "images"
            fields.pop("img_url", None)
