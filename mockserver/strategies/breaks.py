"""Invalid request bodies: each breaks exactly one rule, and says which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from mockserver.strategies.bodies import (
    AUDIOS,
    FOLLOWS_INPUT,
    MEDIA_URL,
    REFERENCE_FIELDS,
    Target,
    choose_path,
    delete_path,
    media_items,
    prompt_required,
    set_path,
    valid_body,
)

_WRONG_TYPES: tuple[Any, ...] = (12345, "wrong", True, ["x"], {"x": 1})


# -- one broken rule ------------------------------------------------------------------------------
Break = Callable[[Any, Target, dict[str, Any], dict[str, str]], str]


def _clear(t: Target, body: dict[str, Any], name: str) -> None:
    for path in t.paths(name):
        delete_path(body, path)


def _put(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str], name: str,
         value: Any) -> str:
    """Replace a neutral field by `value` (at the path it had, else one of its paths)."""
    _clear(t, body, name)
    path = where.get(name) or choose_path(draw, t, name, nested="metadata" in body)
    value = t.adapt(path, value)
    set_path(body, path, value)
    where[name] = path
    return path


def _replace_with(name: str, rule: str, values: Callable[[Target], list[Any]]) -> Break:
    def apply(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
        value = draw(st.sampled_from(values(t)))
        path = _put(draw, t, body, where, name, value)
        return t.schema.label(path, t.adapt(path, value), rule)

    return apply


def _remove(names: tuple[str, ...], rule: str) -> Break:
    def apply(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
        paths = [where[n] for n in names if n in where]
        for name in names:
            _clear(t, body, name)
        if any(t.schema.required(p) for p in paths):
            return "schema:required"
        return rule

    return apply


def _bad_sizes(t: Target) -> list[str]:
    allowed = set(t.catalogue.sizes(t.entry))
    every = [s for tier in t.catalogue.size_tiers.values() for s in tier]
    return [s for s in dict.fromkeys([*every, "1000*1000"]) if s not in allowed]


def _bad_durations(t: Target) -> list[int]:
    allowed = set(t.catalogue.durations(t.entry))
    return [d for d in range(1, 21) if d not in allowed]


def _pair_break(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
    pairs = {tuple(p) for p in t.entry.get("pairs")}
    sides = sorted({v for p in pairs for v in p})
    bad = [(w, h) for w in sides for h in sides if (w, h) not in pairs]
    w, h = draw(st.sampled_from(bad))
    wp = _put(draw, t, body, where, "width", w)
    hp = _put(draw, t, body, where, "height", h)
    for path, value in ((wp, w), (hp, h)):
        keyword = t.schema.rejects(path, value)
        if keyword:
            return f"schema:{keyword}"
    return "width_height_pair"


def _audio_break(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
    options = [n for n in ("audio", "audio_url") if t.has(n)]
    name = draw(st.sampled_from(options))
    value = True if name == "audio" else draw(st.sampled_from(AUDIOS))
    path = _put(draw, t, body, where, name, value)
    return t.schema.label(path, value, "audio_supported")


def _image_format_break(draw: Any, t: Target, body: dict[str, Any],
                        where: dict[str, str]) -> str:
    bad = draw(st.sampled_from(["not-a-url.png", "ftp://example.com/a.png", "example.com/a.png"]))
    if "media" in where:
        media = media_items(draw, t)
        media[0]["url"] = bad
        path = _put(draw, t, body, where, "media", media)
        return t.schema.label(path, media, "image_url_format")
    path = _put(draw, t, body, where, "img_url", bad)
    return t.schema.label(path, t.adapt(path, bad), "image_url_format")


def _bad_combos(t: Target) -> list[list[dict[str, str]]]:
    allowed = {tuple(sorted(c)) for c in t.entry.get("media_combinations") or []}
    candidates = [["last_frame"], ["driving_audio"], ["first_frame", "first_clip"],
                  ["first_frame", "first_frame"], ["last_frame", "driving_audio"]]
    return [[{"type": k, "url": MEDIA_URL[k][0]} for k in c] for c in candidates
            if len(set(c)) != len(c) or tuple(sorted(c)) not in allowed]


def _blank_prompt(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
    value = draw(st.sampled_from([" ", "   ", "\n\t"]))
    path = _put(draw, t, body, where, "prompt", value)
    return t.schema.label(path, value, "prompt_required")


def _too_long(name: str, rule: str) -> Break:
    def apply(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
        limit = int((t.entry.get(name) or {})["max"])
        value = "x" * (limit + draw(st.integers(1, 10)))
        path = _put(draw, t, body, where, name, value)
        return t.schema.label(path, value, rule)

    return apply


def _too_many_references(draw: Any, t: Target, body: dict[str, Any],
                         where: dict[str, str]) -> str:
    limits = t.entry.get("references") or {}
    for name in (*REFERENCE_FIELDS, "media"):
        _clear(t, body, name)
    n = int(limits.get("max", 5)) + draw(st.integers(1, 3))
    images = [f"https://example.com/many{i}.png" for i in range(n)]
    kinds = [k for k in ("reference_urls", "reference_images") if t.has(k)]
    if t.entry.protocol == "wan27" and t.has("media"):
        kinds.append("media")
    kind = draw(st.sampled_from(kinds))
    value: Any = ([{"type": "reference_image", "url": u} for u in images] if kind == "media"
                  else images)
    path = _put(draw, t, body, where, kind, value)
    return t.schema.label(path, value, "references_count")


def _typed_fields(t: Target) -> list[tuple[str, str]]:
    out = []
    for name in ("duration", "seed", "prompt_extend", "watermark", "audio", "size",
                 "resolution", "negative_prompt"):
        for path in t.paths(name):
            sub = t.schema.at(path)
            kind = sub.get("type")
            # Outside an enum, so that the wrong type is the one thing the schema reports.
            if kind in ("integer", "boolean", "string") and "enum" not in sub:
                out.append((name, path))
                break
    return out


def _wrong_type(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
    name, path = draw(st.sampled_from(_typed_fields(t)))
    kind = t.schema.at(path).get("type")
    values = [v for v in _WRONG_TYPES if t.schema.rejects(path, v) == "type"
              and not (kind == "string" and isinstance(v, str))]
    value = draw(st.sampled_from(values))
    _clear(t, body, name)
    set_path(body, path, value)
    return "schema:type"


def _seed_paths(t: Target) -> list[str]:
    return [p for p in t.paths("seed")
            if "maximum" in t.schema.at(p) or "minimum" in t.schema.at(p)]


def _seed_break(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
    path = draw(st.sampled_from(_seed_paths(t)))
    sub = t.schema.at(path)
    sides = [k for k in ("maximum", "minimum") if k in sub]
    side = draw(st.sampled_from(sides))
    step = draw(st.integers(1, 1000))
    value = int(sub[side]) + step if side == "maximum" else int(sub[side]) - step
    _clear(t, body, "seed")
    set_path(body, path, value)
    return f"schema:{side}"


def _enum_paths(t: Target) -> list[tuple[str, str]]:
    out = []
    for name in ("shot_type", "size", "resolution", "ratio"):
        for path in t.paths(name):
            if "enum" in t.schema.at(path):
                out.append((name, path))
    return out


def _enum_break(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
    name, path = draw(st.sampled_from(_enum_paths(t)))
    value = draw(st.sampled_from(["bogus", "HUGE", "none"]))
    _clear(t, body, name)
    set_path(body, path, value)
    return "schema:enum"


def _unknown_model(draw: Any, t: Target, body: dict[str, Any], where: dict[str, str]) -> str:
    value = draw(st.sampled_from(["wan9.9-t2v", "not-a-model"]))
    path = _put(draw, t, body, where, "model", value)
    # Labelled by the schema without its per-model branches: a model no branch lists is judged
    # as the family sees it before it knows the model (an enum of models in the schema itself,
    # or the family's own unknown-model rule, as for a version that names no model).
    return t.schema.without_model().label(path, t.adapt(path, value), "model_known")


def _breaks(t: Target) -> list[tuple[str, Break]]:
    """Every rule a body for this target can break, as (name, how)."""
    entry, cat = t.entry, t.catalogue
    requires = entry.get("requires") or []
    out: list[tuple[str, Break]] = []
    if entry.get("pairs") and t.has("width") and t.has("height"):
        out.append(("pair", _pair_break))
    elif cat.sizes(entry) and t.has("size") and _bad_sizes(t):
        out.append(("size", _replace_with("size", "size_allowed", _bad_sizes)))
    elif not cat.sizes(entry) and not entry.get("pairs"):
        if t.has("resolution"):
            out.append(("resolution", _replace_with(
                "resolution", "resolution_allowed",
                lambda t: [r for r in ("480P", "720P", "1080P", "4K")
                           if r not in cat.resolutions(t.entry)])))
        if entry.get("ratios") and t.has("ratio"):
            out.append(("ratio", _replace_with(
                "ratio", "ratio_allowed",
                lambda t: [r for r in ("21:9", "2:1") if r not in t.entry.get("ratios")])))
    if t.has("duration") and _bad_durations(t) and entry.protocol not in FOLLOWS_INPUT:
        out.append(("duration", _replace_with("duration", "duration_allowed", _bad_durations)))
    if not entry.audio and (t.has("audio") or t.has("audio_url")):
        out.append(("audio", _audio_break))
    if "img_url" in requires and t.has("img_url"):
        out.append(("image_missing", _remove(("img_url",), "image_required")))
        out.append(("image_format", _image_format_break))
    if "media" in requires and t.has("media"):
        # new-api refuses a wan2.7-i2v body without any image while converting it (its own
        # `build_request` error), before DashScope's rule: not generated there.
        if "media_missing" not in t.family_spec.own_refusals:
            out.append(("media_missing", _remove(("media",), "image_required")))
        out.append(("image_format", _image_format_break))
        out.append(("media_combination", _replace_with("media", "media_combination",
                                                       _bad_combos)))
    if "references" in requires:
        out.append(("references_missing",
                    _remove((*REFERENCE_FIELDS, "media"), "references_required")))
        if any(t.has(k) for k in ("reference_urls", "reference_images")):
            out.append(("references_count", _too_many_references))
    if prompt_required(t) and t.has("prompt"):
        out.append(("prompt_missing", _remove(("prompt",), "prompt_required")))
    if t.has("prompt") and ((entry.get("prompt") or {}).get("required") or any(
            t.schema.required(p) and t.schema.rejects(p, " ") for p in t.paths("prompt"))):
        out.append(("prompt_blank", _blank_prompt))
    for name, rule in (("prompt", "prompt_length"), ("negative_prompt", "negative_prompt_length")):
        limit = entry.get(name) or {}
        if t.has(name) and "max" in limit and limit.get("over") == "reject":
            out.append((rule, _too_long(name, rule)))
    if entry.protocol == "wan3" and t.has("media"):
        out.append(("media_exclusive", _replace_with("media", "media_exclusive", lambda _: [[
            {"type": "first_frame", "url": MEDIA_URL["first_frame"][0]},
            {"type": "reference_image", "url": MEDIA_URL["reference_image"][0]}]])))
        out.append(("media_unlisted", _replace_with("media", "media_unlisted", lambda _: [
            [{"type": "last_frame", "url": MEDIA_URL["last_frame"][0]}],
            [{"type": "file", "url": MEDIA_URL["file"][0]},
             {"type": "link", "url": MEDIA_URL["link"][0]}]])))
        if t.has("prompt"):
            out.append(("input_missing", _remove(("prompt", "media"), "input_required")))
    if t.has("model"):
        out.append(("model", _unknown_model))
    if _typed_fields(t):
        out.append(("type", _wrong_type))
    if _seed_paths(t):
        out.append(("seed", _seed_break))
    if _enum_paths(t):
        out.append(("enum", _enum_break))
    return out


@st.composite
def invalid_body(draw: Any, t: Target) -> tuple[dict[str, Any], str]:
    body, where = draw(valid_body(t))
    _, apply = draw(st.sampled_from(_breaks(t)))
    broken = apply(draw, t, body, where)
    return body, broken
