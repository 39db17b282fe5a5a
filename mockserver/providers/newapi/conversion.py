"""new-api's Ali (DashScope) task adaptor: the upstream request it builds from a TaskSubmitReq,
what it refuses while building it, and the billing ratios it reports (no Starlette).

`ali_request` returns exactly the JSON object new-api POSTs to DashScope's
`/api/v1/services/aigc/video-generation/video-synthesis`: Go structs marshalled with
`omitempty`, so `prompt_extend: false`, `watermark: false`, `seed: 0` and `duration: 0` never
reach DashScope (its defaults apply: rewriting on, a random seed), `audio: false` does (a
pointer), and any key the structs lack (`ratio`, `shot_type`, `audio_setting`,
`reference_urls`...) is dropped whatever its value. Sources at the tag commits
(github.com/QuantumNous/new-api relay/channel/task/ali/adaptor.go; R = v1.0.0-rc.25 f1164142,
L = v0.10.0 ee53a7b6): AliVideoInput/AliVideoParameters (R :44-64, L :36-55),
convertToAliRequest (R :351-445, L :250-345), normalizeWan27I2VInput (R :308-349),
ProcessAliOtherRatios (R :202-262, L :192-248), EstimateBilling (R :449-473).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from mockserver.providers.newapi import gojson
from mockserver.providers.newapi.releases import Release
from mockserver.providers.newapi.taskreq import MAX_SECONDS, TaskRequest

# sizeToResolution's table (R :169-189, L :159-179).
SIZE_TIERS = {
    **dict.fromkeys(("832*480", "480*832", "624*624"), "480P"),
    **dict.fromkeys(("1280*720", "720*1280", "960*960", "1088*832", "832*1088"), "720P"),
    **dict.fromkeys(("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"), "1080P"),
}
# ProcessAliOtherRatios' price ratios; Go folds the constant quotients exactly (0.7/0.14 is 5).
_F = Fraction
_RATIOS: dict[str, dict[str, Fraction]] = {
    "wan2.5-t2v-preview": {"480P": _F(1), "720P": _F(2), "1080P": 1 / _F("0.3")},
    "wan2.2-t2v-plus": {"480P": _F(1), "1080P": _F("0.7") / _F("0.14")},
    "wan2.5-i2v-preview": {"480P": _F(1), "720P": _F(2), "1080P": 1 / _F("0.3")},
    "wan2.2-i2v-plus": {"480P": _F(1), "1080P": _F("0.7") / _F("0.14")},
    "wan2.2-kf2v-flash": {"480P": _F(1), "720P": _F(2), "1080P": _F("4.8")},
    "wan2.2-i2v-flash": {"480P": _F(1), "720P": _F(2)},
    "wan2.2-s2v": {"480P": _F(1), "720P": _F("0.9") / _F("0.5")},
}
_RATIOS_R = {"wan2.6-i2v": {"720P": _F(1), "1080P": 1 / _F("0.6")}, **_RATIOS}
# Go field order of the structs (the order json.Marshal writes them in).
_INPUT = ("prompt", "img_url", "first_frame_url", "last_frame_url", "audio_url", "media",
          "negative_prompt", "template")
_PARAMETERS = ("resolution", "size", "duration", "prompt_extend", "watermark", "audio", "seed")
_PARAM_TYPES = {"resolution": "string", "size": "string", "duration": "int",
                "prompt_extend": "bool", "watermark": "bool", "audio": "*bool", "seed": "int"}


class ConversionError(Exception):
    """convertToAliRequest failed; `str(err)` is its reason (errors.Wrap text included),
    `field` the request field it is about, `rule` the judgement's name for it."""

    def __init__(self, reason: str, field: str = "", rule: str = "build_request") -> None:
        super().__init__(reason)
        self.field, self.rule = field, rule


class Panic(Exception):
    """The Go code dereferenced a nil pointer (`metadata.parameters: null`): gin's recovery
    answers 500 new_api_panic."""


def first_image(req: TaskRequest, release: Release) -> str:
    """`input.img_url`: R firstTaskImage (image, then the stored images, then
    input_reference, each trimmed); L only `input_reference`, as sent."""
    if not release.image_is_generate:
        return req.input_reference
    for value in (req.image, *req.stored_images(release), req.input_reference):
        if value.strip():
            return value.strip()
    return ""


def _second_image(req: TaskRequest, release: Release) -> str:
    found = [image.strip() for image in req.stored_images(release) if image.strip()]
    return found[1] if len(found) > 1 else ""


def _defaults(model: str, release: Release) -> dict[str, str]:
    """The size or tier new-api picks when the request names none (R :384-407, L :279-300)."""
    if "t2v" in model:
        return {"size": "1920*1080" if model.startswith(("wan2.5", "wan2.2")) else "1280*720"}
    if release.wan26_1080p and model.startswith("wan2.6"):
        return {"resolution": "1080P"}
    if model.startswith(("wan2.5", "wan2.2-i2v-plus")):
        return {"resolution": "1080P"}
    return {"resolution": "720P"}


def _merge_input(target: dict[str, Any], raw: Any, release: Release) -> None:
    if raw is None:
        return  # null into a struct: no effect
    if not isinstance(raw, dict):
        raise gojson.GoTypeError(gojson.kind(raw), "AliVideoRequest", "input",
                                 "ali.AliVideoInput")
    first: gojson.GoTypeError | None = None
    for key in sorted(raw):
        name = key if key in _INPUT else gojson.fold(key)
        if name not in _INPUT or (name == "media" and not release.media):
            continue
        try:
            if name == "media":
                target["media"] = _media(raw[key])
            else:
                value = gojson.as_string(raw[key], "AliVideoInput", f"input.{name}")
                if value is not None:
                    target[name] = value
        except gojson.GoTypeError as err:
            first = first or err
    if first is not None:
        raise first


def _media(raw: Any) -> list[dict[str, str]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise gojson.GoTypeError(gojson.kind(raw), "AliVideoInput", "input.media",
                                 "[]ali.AliVideoMedia")
    items = []
    for item in raw:
        if item is None:
            items.append({"type": "", "url": ""})
            continue
        if not isinstance(item, dict):
            raise gojson.GoTypeError(gojson.kind(item), "AliVideoInput", "input.media",
                                     "ali.AliVideoMedia")
        entry = {"type": "", "url": ""}
        for key in sorted(item):
            name = key if key in entry else gojson.fold(key)
            if name in entry:
                value = gojson.as_string(item[key], "AliVideoMedia", f"input.media.{name}")
                if value is not None:
                    entry[name] = value
        items.append(entry)
    return items


def _merge_parameters(target: dict[str, Any], raw: Any) -> None:
    first: gojson.GoTypeError | None = None
    for key in sorted(raw):
        name = key if key in _PARAM_TYPES else gojson.fold(key)
        kind = _PARAM_TYPES.get(name)
        if kind is None:
            continue
        path, value = f"parameters.{name}", raw[key]
        try:
            if kind == "int":
                got: Any = gojson.as_int(value, "AliVideoParameters", path, via_float=True)
            elif kind == "string":
                got = gojson.as_string(value, "AliVideoParameters", path)
            else:
                got = gojson.as_bool(value, "AliVideoParameters", path, kind)
        except gojson.GoTypeError as err:
            first = first or err
            continue
        if got is not None or kind == "*bool":
            target[name] = got
    if first is not None:
        raise first


def _apply_metadata(ali: dict[str, Any], metadata: Mapping[str, Any], release: Release) -> None:
    """`json.Unmarshal(json.Marshal(metadata), aliReq)`: only `model`, `input` and
    `parameters` matter; keys go in sorted order and the earliest type error is reported."""
    first: gojson.GoTypeError | None = None
    for key in sorted(metadata):
        name = key if key in ("model", "input", "parameters") else gojson.fold(key)
        raw = metadata[key]
        try:
            if name == "model":
                value = gojson.as_string(raw, "AliVideoRequest", "model")
                if value is not None:
                    ali["model"] = value
            elif name == "input":
                _merge_input(ali["input"], raw, release)
            elif name == "parameters":
                if raw is None:
                    ali["parameters"] = None  # a nil *AliVideoParameters
                elif not isinstance(raw, dict):
                    raise gojson.GoTypeError(gojson.kind(raw), "AliVideoRequest", "parameters",
                                             "ali.AliVideoParameters")
                else:
                    if ali["parameters"] is None:
                        ali["parameters"] = _zero_parameters()
                    _merge_parameters(ali["parameters"], raw)
        except gojson.GoTypeError as err:
            first = first or err
    if first is not None:
        raise ConversionError(f"unmarshal metadata failed: {first}",
                              "metadata." + first.field, "schema:type")


def _zero_parameters() -> dict[str, Any]:
    return {"resolution": "", "size": "", "duration": 0, "prompt_extend": False,
            "watermark": False, "audio": None, "seed": 0}


def _wan27_media(ali: dict[str, Any], req: TaskRequest, release: Release) -> None:
    """normalizeWan27I2VInput (R :308-349): build `input.media` when metadata gave none."""
    given = ali["input"]
    if not given.get("media"):
        media = []
        first = _first_non_empty(given["first_frame_url"], given["img_url"],
                                 first_image(req, release))
        last = _first_non_empty(given["last_frame_url"], _second_image(req, release))
        if first:
            media.append({"type": "first_frame", "url": first})
        if last:
            media.append({"type": "last_frame", "url": last})
        if given["audio_url"]:
            media.append({"type": "driving_audio", "url": given["audio_url"]})
        given["media"] = media
    if not given["media"]:
        raise ConversionError("wan2.7-i2v requires image, images, input_reference, or "
                              "input.media", "image")
    for name in ("img_url", "first_frame_url", "last_frame_url", "audio_url"):
        given[name] = ""


def _first_non_empty(*values: str) -> str:
    for value in values:
        if value.strip():
            return value.strip()
    return ""


def ali_request(req: TaskRequest, release: Release) -> dict[str, Any]:
    """The DashScope request body new-api sends, or ConversionError / Panic."""
    model = req.model
    inputs: dict[str, Any] = dict.fromkeys(_INPUT, "")
    inputs["media"] = None
    inputs.update(prompt=req.prompt, img_url=first_image(req, release))
    params = _zero_parameters()
    params["prompt_extend"] = True  # 默认开启智能改写
    if req.size:
        if "t2v" in model and "*" not in req.size:
            raise ConversionError(f"invalid size: {req.size}, example: 1920*1080", "size")
        if "*" in req.size:
            params["size"] = req.size
        else:
            tier = req.size.upper()
            params["resolution"] = tier if tier.endswith("P") else tier + "P"
    else:
        params.update(_defaults(model, release))
    if req.duration > 0:
        params["duration"] = req.duration
    elif req.seconds:
        seconds, reason = gojson.atoi(req.seconds)
        if seconds is None:
            raise ConversionError(f'convert seconds to int failed: strconv.Atoi: parsing '
                                  f'"{req.seconds}": {reason}', "seconds")
        params["duration"] = seconds
    if params["duration"] <= 0 and (release.lenient_duration or not req.seconds):
        # R: anything not positive is 5; L: only a request without duration and seconds
        params["duration"] = 5
    ali: dict[str, Any] = {"model": model, "input": inputs, "parameters": params}
    if req.metadata is not None:
        _apply_metadata(ali, req.metadata, release)
    if ali["model"] != model:
        raise ConversionError("can't change model with metadata", "metadata.model")
    if release.media and ali["model"].startswith("wan2.7-i2v"):
        _wan27_media(ali, req, release)
    if ali["parameters"] is None:
        # L reads it in ProcessAliOtherRatios, R in EstimateBilling: a nil dereference.
        raise Panic("runtime error: invalid memory address or nil pointer dereference")
    size = ali["parameters"]["size"]
    if release.size_table_refuses and size and size not in SIZE_TIERS:
        raise ConversionError(f"invalid size: {size}",
                              "size" if size == req.size else "metadata.parameters.size")
    return marshal(ali)


def marshal(ali: Mapping[str, Any]) -> dict[str, Any]:
    """The struct as json.Marshal writes it (`omitempty`)."""
    out: dict[str, Any] = {"model": ali["model"]}
    out["input"] = {k: v for k, v in ali["input"].items() if v}
    params = ali["parameters"]
    if params is not None:
        out["parameters"] = {k: params[k] for k in _PARAMETERS
                             if params[k] or (k == "audio" and params[k] is not None)}
    return out


def other_ratios(upstream: Mapping[str, Any], release: Release) -> dict[str, float] | None:
    """EstimateBilling's ratios (R :449-473), or None when new-api has none (a nil
    `parameters`: the header is not reached)."""
    params = upstream.get("parameters")
    if params is None:
        return None
    seconds = min(int(params.get("duration", 0)), MAX_SECONDS)
    ratios: dict[str, float] = {"seconds": float(seconds)}
    size = params.get("size", "")
    if size:
        tier = SIZE_TIERS.get(size)
        if tier is None:
            return ratios
    else:
        tier = str(params.get("resolution", "")).upper()
        tier = tier if tier.endswith("P") else tier + "P"
    table = _RATIOS_R if release.media else _RATIOS
    found = table.get(str(upstream.get("model")), {}).get(tier)
    if found is not None:
        ratios[f"resolution-{tier}"] = float(found)
    return ratios


def ratios_header(ratios: Mapping[str, float]) -> str:
    """`X-New-Api-Other-Ratios`: compact JSON with sorted keys, Go's float64 text."""
    return "{" + ",".join(f'"{k}":{gojson.float_text(v)}' for k, v in sorted(ratios.items())) \
        + "}"


def norm_key(key: str) -> str:
    """new-api treats `sk-x` and `x` as one key (TokenAuth)."""
    return key.removeprefix("sk-")


def kf2v(model: str) -> bool:
    """A first-and-last-frame model name (new-api's adaptor posts it to video-generation)."""
    return "kf2v" in model
