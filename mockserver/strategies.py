"""Hypothesis strategies for your own property tests against the Wan APIs (and the fake).

Everything here is built from the contracts and the model catalogue when you call it
(`mockserver.contracts.load()`), so the strategies follow any change to `contracts/*.yaml` or
`contracts/catalogue.yaml`:

- `requests(family)` draws request bodies the family accepts with no violation at all, for any
  model the catalogue says it offers; `requests(family, valid=False)` draws bodies that break
  exactly one rule and says which.
- `lifecycles()` draws what a task can go through (queue time, run time, and success, failure
  with a provider code at some point of the run, or cancellation while queued);
  `apply_lifecycle()` makes a submitted task of the fake follow one.
- `poll_plans()` draws the pacing of the fake's poll-count mode.

The README's example (section "Strategies"): whatever lifecycle the provider shows, a small
polling client ends in the right state and stops polling::

    @pytest.mark.wanmock(mode="time", clock="manual")
    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(req=strategies.requests("dashscope"), lifecycle=strategies.lifecycles())
    def test_client_follows_any_lifecycle(wanmock, req, lifecycle):
        wanmock.reset()  # fresh for each example
        _, body = req
        with httpx.Client(base_url="https://dashscope.aliyuncs.com/api/v1", headers=H) as c:
            task_id = c.post("/services/aigc/video-generation/video-synthesis",
                             json=body).json()["output"]["task_id"]
            strategies.apply_lifecycle(wanmock, task_id, lifecycle)
            output = wait_for_video(c, task_id, sleep=wanmock.advance)  # your client
        assert output["task_status"] == lifecycle.final_state.value.upper()
        wanmock.assert_stopped_polling(task_id)

Arguments are keyword-only after the family and checked when the strategy is built: a wrong
one raises `hypothesis.errors.InvalidArgument` at once, not when the first example is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from jsonschema import Draft202012Validator
from jsonschema.exceptions import relevance

from mockserver.catalogue import Catalogue, ModelEntry, entry_task
from mockserver.contracts import Contract, Operation, load
from mockserver.core.tasks import Failure, Plan, State
from mockserver.images import SAMPLE_PNG_DATA_URI

__all__ = [
    "OUTCOMES",
    "PollPlan",
    "TaskLifecycle",
    "apply_lifecycle",
    "lifecycles",
    "poll_plans",
    "requests",
]

OUTCOMES = ("succeed", "fail", "cancel")
# Queue and run seconds per timing profile, in milliseconds (the fake's `timing` option names).
_TIMING_MS = {
    "instant": ((0, 0), (0, 0)),
    "fast": ((0, 2_000), (500, 8_000)),
    "realistic": ((5_000, 60_000), (90_000, 720_000)),
}
_FAILURE_CODES = ("InternalError", "DataInspectionFailed", "InvalidParameter")
_WORDS = ("a", "cat", "lighthouse", "at", "dusk", "camera", "slowly", "pushes", "in", "rain",
          "neon", "street", "波浪", "海边")
# No oss:// URL: a body alone cannot promise the X-DashScope-OssResourceResolve header that
# DashScope needs for one (audit F12); the inline image is a real 400x300 PNG (audit F23).
_IMAGES = ("https://example.com/frame.png", "http://example.com/a/b.jpg", SAMPLE_PNG_DATA_URI)
_VIDEOS = ("https://example.com/clip.mp4", "https://example.com/ref.mov")
_AUDIOS = ("https://example.com/voice.mp3", "https://example.com/waves.wav")
_MEDIA_URL = {"first_frame": _IMAGES[:2], "last_frame": _IMAGES[:2],
              "driving_audio": _AUDIOS, "first_clip": _VIDEOS}
_WRONG_TYPES: tuple[Any, ...] = (12345, "wrong", True, ["x"], {"x": 1})
_REFERENCE_FIELDS = ("reference_urls", "reference_images", "reference_videos")


# -- argument checks ------------------------------------------------------------------------------
def _check_type(value: Any, kind: type | tuple[type, ...], name: str) -> None:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidArgument(f"{name}={value!r} must be of type {getattr(kind, '__name__', kind)}")


def _check_subset(value: Any, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Collection):
        raise InvalidArgument(f"{name}={value!r} must be a collection of {allowed}")
    chosen = tuple(dict.fromkeys(value))
    if not chosen:
        raise InvalidArgument(f"{name} must not be empty; choose among {allowed}")
    bad = [v for v in chosen if v not in allowed]
    if bad:
        raise InvalidArgument(f"{name}: unknown {bad}; choose among {allowed}")
    return chosen


# -- the request schema, walked by dotted path ----------------------------------------------------
class _Schema:
    """One operation's request-body schema: sub-schemas, required-ness and checks by body path."""

    def __init__(self, contract: Contract, op: Operation) -> None:
        self.document = contract.document
        content = ((op.raw.get("requestBody") or {}).get("content") or {})
        self.root = self._deref((content.get("application/json") or {}).get("schema") or {})
        self._validators: dict[str, Draft202012Validator] = {}

    def _deref(self, node: Any) -> Any:
        while isinstance(node, Mapping) and str(node.get("$ref", "")).startswith("#/"):
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _deep(self, node: Any, depth: int = 0) -> Any:
        node = self._deref(node)
        if depth > 20:
            return {}
        if isinstance(node, Mapping):
            return {k: self._deep(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self._deep(v, depth + 1) for v in node]
        return node

    def at(self, path: str) -> Mapping[str, Any]:
        """The schema of the value at `path` ({} when the schema does not describe it)."""
        node: Any = self.root
        for part in path.split("."):
            node = self._deref(node)
            if not isinstance(node, Mapping):
                return {}
            if part.isdigit() and "items" in node:
                node = node["items"]
            else:
                node = (node.get("properties") or {}).get(part)
            if node is None:
                return {}
        return self._deref(node) or {}

    def required(self, path: str) -> bool:
        """Whether the schema requires `path` (every step of it) in the body."""
        node: Any = self.root
        for part in path.split("."):
            node = self._deref(node)
            if not isinstance(node, Mapping) or part not in (node.get("required") or []):
                return False
            node = (node.get("properties") or {}).get(part)
        return True

    def rejects(self, path: str, value: Any) -> str | None:
        """The JSON Schema keyword the value at `path` fails first, or None when it passes."""
        validator = self._validators.get(path)
        if validator is None:
            validator = self._validators[path] = Draft202012Validator(self._deep(self.at(path)))
        errors = sorted(validator.iter_errors(value), key=relevance)
        if not errors:
            return None
        err = errors[0]
        while err.context:
            err = sorted(err.context, key=relevance)[0]
        return str(err.validator)

    def label(self, path: str, value: Any, rule: str) -> str:
        """`rule` when the schema lets the value through to the catalogue, else `schema:<kw>`."""
        keyword = self.rejects(path, value)
        return rule if keyword is None else f"schema:{keyword}"

    def bounds(self, path: str, low: int, high: int) -> tuple[int, int]:
        sub = self.at(path)
        return int(sub.get("minimum", low)), int(sub.get("maximum", high))


# -- bodies ----------------------------------------------------------------------------------------
def _set(body: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = body
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if not isinstance(node.get(part), (dict, list)):
            node[part] = [] if nxt.isdigit() else {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        index = int(last)
        while len(node) <= index:
            node.append(None)
        node[index] = value
    else:
        node[last] = value


def _delete(body: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    if parts[-1].isdigit():  # `images.0`: the list itself carries the value
        parts = parts[:-1]
    node: Any = body
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(parts[-1], None)


@dataclass(frozen=True)
class _Target:
    """One (operation, model) pair and what a body for it may contain."""

    family: str
    op: Operation
    entry: ModelEntry
    catalogue: Catalogue
    schema: _Schema

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.op.spec_map

    def paths(self, name: str) -> list[str]:
        where = self.spec.get(name)
        return [str(p) for p in where] if isinstance(where, list) else []

    def has(self, name: str) -> bool:
        return bool(self.paths(name))

    def schema_ok(self, path: str, value: Any) -> bool:
        return self.schema.rejects(path, value) is None

    def adapt(self, path: str, value: Any) -> Any:
        """An integer where the contract wants a string (new-api's `seconds`) is sent as one."""
        kind = self.schema.at(path).get("type")
        if kind == "string" and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


def _choose_path(draw: Any, t: _Target, name: str, nested: bool) -> str:
    """Where to put a neutral field: where the schema requires it, else one of its wire paths
    in the body's shape (flat or nested under `metadata` for new-api)."""
    paths = t.paths(name)
    required = [p for p in paths if t.schema.required(p)]
    if required:
        return required[0]
    preferred = [p for p in paths if p.startswith("metadata.") == nested] or paths
    return str(draw(st.sampled_from(preferred)))


def _text(min_words: int = 1, max_words: int = 8) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(_WORDS), min_size=min_words, max_size=max_words).map(" ".join)


def _prompt_required(t: _Target) -> bool:
    rule = t.entry.get("prompt") or {}
    return bool(rule.get("required")) or any(t.schema.required(p) for p in t.paths("prompt"))


def _references(draw: Any, t: _Target, place: Callable[[str, Any], None]) -> None:
    limits = t.entry.get("references") or {}
    total_max = int(limits.get("max", 5))
    kinds = [k for k in _REFERENCE_FIELDS if t.has(k)]
    if t.entry.protocol == "wan27" and t.has("media"):
        kinds.append("media")
    kind = draw(st.sampled_from(kinds))
    img_max = 0 if kind == "reference_videos" else int(limits.get("images", total_max))
    vid_max = 0 if kind == "reference_images" else int(limits.get("videos", total_max))
    n_img = draw(st.integers(0, min(img_max, total_max)))
    low = 1 if n_img == 0 else 0
    n_vid = draw(st.integers(min(low, vid_max), min(vid_max, total_max - n_img)))
    if n_img + n_vid == 0:  # nothing fits the limits: one image (or video) anyway
        n_img, n_vid = (1, 0) if img_max else (0, 1)
    images = [f"https://example.com/ref{i}.png" for i in range(n_img)]
    videos = [f"https://example.com/ref{i}.mp4" for i in range(n_vid)]
    if kind == "media":
        items = ([{"type": "reference_image", "url": u} for u in images]
                 + [{"type": "reference_video", "url": u} for u in videos])
        place("media", items)
    else:
        place(kind, images + videos)


def _media(draw: Any, t: _Target) -> list[dict[str, str]]:
    combo = draw(st.sampled_from([list(c) for c in t.entry.get("media_combinations") or []]))
    return [{"type": kind, "url": draw(st.sampled_from(_MEDIA_URL[kind]))} for kind in combo]


@st.composite
def _valid(draw: Any, t: _Target) -> tuple[dict[str, Any], dict[str, str]]:
    """A body with no violation, and the wire path each neutral field was put at."""
    entry, cat = t.entry, t.catalogue
    body: dict[str, Any] = {}
    where: dict[str, str] = {}
    nested = t.family == "newapi" and draw(st.booleans())

    def place(name: str, value: Any) -> None:
        path = _choose_path(draw, t, name, nested)
        body_value = t.adapt(path, value)
        _set(body, path, body_value)
        where[name] = path

    def maybe(name: str, strategy: st.SearchStrategy[Any], always: bool = False) -> None:
        if t.has(name) and (always or draw(st.booleans())):
            place(name, draw(strategy))

    def allowed(name: str, values: list[Any]) -> list[Any]:
        paths = t.paths(name)
        return [v for v in values if paths and all(t.schema_ok(p, t.adapt(p, v)) for p in paths)]

    if t.has("model"):
        place("model", entry.model)
    maybe("prompt", _text(), always=_prompt_required(t))
    maybe("negative_prompt", _text())
    # Geometry: a width/height pair, a W*H size, or a resolution tier (and ratio).
    if entry.get("pairs") and t.has("width") and t.has("height") and draw(st.booleans()):
        pairs = [p for p in entry.get("pairs")
                 if allowed("width", [p[0]]) and allowed("height", [p[1]])]
        if pairs:
            w, h = draw(st.sampled_from(pairs))
            place("width", w)
            place("height", h)
    elif cat.sizes(entry):
        sizes = allowed("size", cat.sizes(entry))
        if sizes:
            maybe("size", st.sampled_from(sizes))
    else:
        tiers = allowed("resolution", cat.resolutions(entry))
        if tiers:
            maybe("resolution", st.sampled_from(tiers))
        ratios = allowed("ratio", list(entry.get("ratios") or []))
        if ratios:
            maybe("ratio", st.sampled_from(ratios))
    durations = allowed("duration", cat.durations(entry))
    if durations:
        maybe("duration", st.sampled_from(durations))
    if entry.audio:
        maybe("audio", st.booleans())
        maybe("audio_url", st.sampled_from(_AUDIOS))
    else:
        maybe("audio", st.just(False))
    requires = entry.get("requires") or []
    if "img_url" in requires:
        place("img_url", draw(st.sampled_from(_IMAGES)))
    if "media" in requires:
        place("media", _media(draw, t))
    if "references" in requires:
        _references(draw, t, place)
    for path in t.paths("seed")[:1]:
        low, high = t.schema.bounds(path, 0, 2**31 - 1)
        maybe("seed", st.integers(max(low, 0), high))
    maybe("prompt_extend", st.booleans())
    maybe("watermark", st.booleans())
    if entry.get("shot_type"):
        maybe("shot_type", st.sampled_from(["single", "multi"]))
    # Objects the schema requires (DashScope's `input`) are there even when empty.
    for name in t.schema.root.get("required") or []:
        if name not in body and t.schema.at(name).get("type") == "object":
            body[name] = {}
    return body, where


# -- one broken rule ------------------------------------------------------------------------------
Break = Callable[[Any, _Target, dict[str, Any], dict[str, str]], str]


def _clear(t: _Target, body: dict[str, Any], name: str) -> None:
    for path in t.paths(name):
        _delete(body, path)


def _put(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str], name: str,
         value: Any) -> str:
    """Replace a neutral field by `value` (at the path it had, else one of its paths)."""
    _clear(t, body, name)
    path = where.get(name) or _choose_path(draw, t, name, nested="metadata" in body)
    value = t.adapt(path, value)
    _set(body, path, value)
    where[name] = path
    return path


def _replace_with(name: str, rule: str, values: Callable[[_Target], list[Any]]) -> Break:
    def apply(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
        value = draw(st.sampled_from(values(t)))
        path = _put(draw, t, body, where, name, value)
        return t.schema.label(path, t.adapt(path, value), rule)

    return apply


def _remove(names: tuple[str, ...], rule: str) -> Break:
    def apply(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
        paths = [where[n] for n in names if n in where]
        for name in names:
            _clear(t, body, name)
        if any(t.schema.required(p) for p in paths):
            return "schema:required"
        return rule

    return apply


def _bad_sizes(t: _Target) -> list[str]:
    allowed = set(t.catalogue.sizes(t.entry))
    every = [s for tier in t.catalogue.size_tiers.values() for s in tier]
    return [s for s in dict.fromkeys([*every, "1000*1000"]) if s not in allowed]


def _bad_durations(t: _Target) -> list[int]:
    allowed = set(t.catalogue.durations(t.entry))
    return [d for d in range(1, 21) if d not in allowed]


def _pair_break(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
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


def _audio_break(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
    options = [n for n in ("audio", "audio_url") if t.has(n)]
    name = draw(st.sampled_from(options))
    value = True if name == "audio" else draw(st.sampled_from(_AUDIOS))
    path = _put(draw, t, body, where, name, value)
    return t.schema.label(path, value, "audio_supported")


def _image_format_break(draw: Any, t: _Target, body: dict[str, Any],
                        where: dict[str, str]) -> str:
    bad = draw(st.sampled_from(["not-a-url.png", "ftp://example.com/a.png", "example.com/a.png"]))
    if "media" in where:
        media = _media(draw, t)
        media[0]["url"] = bad
        path = _put(draw, t, body, where, "media", media)
        return t.schema.label(path, media, "image_url_format")
    path = _put(draw, t, body, where, "img_url", bad)
    return t.schema.label(path, t.adapt(path, bad), "image_url_format")


def _bad_combos(t: _Target) -> list[list[dict[str, str]]]:
    allowed = {tuple(sorted(c)) for c in t.entry.get("media_combinations") or []}
    candidates = [["last_frame"], ["driving_audio"], ["first_frame", "first_clip"],
                  ["first_frame", "first_frame"], ["last_frame", "driving_audio"]]
    return [[{"type": k, "url": _MEDIA_URL[k][0]} for k in c] for c in candidates
            if len(set(c)) != len(c) or tuple(sorted(c)) not in allowed]


def _blank_prompt(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
    value = draw(st.sampled_from([" ", "   ", "\n\t"]))
    path = _put(draw, t, body, where, "prompt", value)
    return t.schema.label(path, value, "prompt_required")


def _too_long(name: str, rule: str) -> Break:
    def apply(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
        limit = int((t.entry.get(name) or {})["max"])
        value = "x" * (limit + draw(st.integers(1, 10)))
        path = _put(draw, t, body, where, name, value)
        return t.schema.label(path, value, rule)

    return apply


def _too_many_references(draw: Any, t: _Target, body: dict[str, Any],
                         where: dict[str, str]) -> str:
    limits = t.entry.get("references") or {}
    for name in (*_REFERENCE_FIELDS, "media"):
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


def _typed_fields(t: _Target) -> list[tuple[str, str]]:
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


def _wrong_type(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
    name, path = draw(st.sampled_from(_typed_fields(t)))
    kind = t.schema.at(path).get("type")
    values = [v for v in _WRONG_TYPES if t.schema.rejects(path, v) == "type"
              and not (kind == "string" and isinstance(v, str))]
    value = draw(st.sampled_from(values))
    _clear(t, body, name)
    _set(body, path, value)
    return "schema:type"


def _seed_paths(t: _Target) -> list[str]:
    return [p for p in t.paths("seed")
            if "maximum" in t.schema.at(p) or "minimum" in t.schema.at(p)]


def _seed_break(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
    path = draw(st.sampled_from(_seed_paths(t)))
    sub = t.schema.at(path)
    sides = [k for k in ("maximum", "minimum") if k in sub]
    side = draw(st.sampled_from(sides))
    step = draw(st.integers(1, 1000))
    value = int(sub[side]) + step if side == "maximum" else int(sub[side]) - step
    _clear(t, body, "seed")
    _set(body, path, value)
    return f"schema:{side}"


def _enum_paths(t: _Target) -> list[tuple[str, str]]:
    out = []
    for name in ("shot_type", "size", "resolution", "ratio"):
        for path in t.paths(name):
            if "enum" in t.schema.at(path):
                out.append((name, path))
    return out


def _enum_break(draw: Any, t: _Target, body: dict[str, Any], where: dict[str, str]) -> str:
    name, path = draw(st.sampled_from(_enum_paths(t)))
    value = draw(st.sampled_from(["bogus", "HUGE", "none"]))
    _clear(t, body, name)
    _set(body, path, value)
    return "schema:enum"


def _breaks(t: _Target) -> list[tuple[str, Break]]:
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
            out.append(("ratio", _replace_with("ratio", "ratio_allowed",
                                               lambda _: ["21:9", "2:1"])))
    if t.has("duration") and _bad_durations(t):
        out.append(("duration", _replace_with("duration", "duration_allowed", _bad_durations)))
    if not entry.audio and (t.has("audio") or t.has("audio_url")):
        out.append(("audio", _audio_break))
    if "img_url" in requires and t.has("img_url"):
        out.append(("image_missing", _remove(("img_url",), "image_required")))
        out.append(("image_format", _image_format_break))
    if "media" in requires and t.has("media"):
        # new-api refuses a wan2.7-i2v body without any image while converting it (its own
        # `build_request` error), before DashScope's rule: not generated there.
        if t.family != "newapi":
            out.append(("media_missing", _remove(("media",), "image_required")))
        out.append(("image_format", _image_format_break))
        out.append(("media_combination", _replace_with("media", "media_combination",
                                                       _bad_combos)))
    if "references" in requires:
        out.append(("references_missing",
                    _remove((*_REFERENCE_FIELDS, "media"), "references_required")))
        if any(t.has(k) for k in ("reference_urls", "reference_images")):
            out.append(("references_count", _too_many_references))
    if _prompt_required(t) and t.has("prompt"):
        out.append(("prompt_missing", _remove(("prompt",), "prompt_required")))
    if t.has("prompt") and ((entry.get("prompt") or {}).get("required") or any(
            t.schema.required(p) and t.schema.rejects(p, " ") for p in t.paths("prompt"))):
        out.append(("prompt_blank", _blank_prompt))
    for name, rule in (("prompt", "prompt_length"), ("negative_prompt", "negative_prompt_length")):
        limit = entry.get(name) or {}
        if t.has(name) and "max" in limit and limit.get("over") == "reject":
            out.append((rule, _too_long(name, rule)))
    if t.has("model"):
        out.append(("model", _replace_with("model", "model_known",
                                           lambda _: ["wan9.9-t2v", "not-a-model"])))
    if _typed_fields(t):
        out.append(("type", _wrong_type))
    if _seed_paths(t):
        out.append(("seed", _seed_break))
    if _enum_paths(t):
        out.append(("enum", _enum_break))
    return out


@st.composite
def _invalid(draw: Any, t: _Target) -> tuple[dict[str, Any], str]:
    body, where = draw(_valid(t))
    _, apply = draw(st.sampled_from(_breaks(t)))
    broken = apply(draw, t, body, where)
    return body, broken


# -- requests() ------------------------------------------------------------------------------
def _targets(family: Any, operation: Any, model: Any) -> list[_Target]:
    contracts = load()
    _check_type(family, str, "family")
    if family not in contracts.contracts:
        raise InvalidArgument(
            f"family={family!r} is not a known family; choose one of {sorted(contracts.contracts)}")
    contract = contracts[family]
    catalogue = contract.catalogue
    submits = contract.by_role("submit")
    if operation is not None:
        _check_type(operation, str, "operation")
        submits = [op for op in submits if op.operation_id == operation]
        if not submits:
            raise InvalidArgument(
                f"operation={operation!r} is not a submit operation of {family}; choose one of "
                f"{[op.operation_id for op in contract.by_role('submit')]}")
    if model is not None:
        _check_type(model, str, "model")
        if catalogue.entry(family, model) is None:
            raise InvalidArgument(
                f"model={model!r} is not offered by {family}; choose one of "
                f"{sorted({e.model for e in catalogue.models(family)})}")
    targets = []
    for op in submits:
        fixed = op.spec_map.get("model")
        if isinstance(fixed, Mapping) and "const" in fixed:
            names = [fixed["const"]]
        else:
            names = list(dict.fromkeys(e.model for e in catalogue.models(family)))
        schema = _Schema(contract, op)
        for name in names:
            entry = catalogue.entry(family, name)
            if entry is not None and op.task is not None and entry_task(entry) != op.task:
                continue  # a model of another endpoint (kf2v vs video-generation)
            if entry is not None and (model is None or name == model):
                targets.append(_Target(family, op, entry, catalogue, schema))
    if not targets:
        raise InvalidArgument(
            f"model={model!r} cannot be sent to {family} operation {operation!r} "
            "(the endpoint fixes another model)")
    return targets


def requests(
    family: str,
    *,
    operation: str | None = None,
    model: str | None = None,
    valid: bool = True,
) -> st.SearchStrategy[tuple[Any, ...]]:
    """Request bodies for `family`'s submit operations, as its contract and the catalogue say.

    `operation` limits the draw to one submit operation (its operationId, e.g.
    `"createVideoSynthesis"`, `"createWanT2vTask"`); `model` to one catalogue model the family
    offers. Bodies use the family's wire shape: DashScope/apiyi `{model, input, parameters}`,
    new-api's flat TaskSubmitReq with or without `metadata`, jiekou's per-endpoint bodies; every
    field is put at one of its `x-wanmock-spec` paths, so the bodies follow the contracts.

    - `valid=True` draws `(operation_id, body)` pairs the family judges with no violation at
      all: sizes, tiers, ratios, durations, audio and required inputs are taken from the model's
      catalogue entry (and kept within the schema's enums and bounds).
    - `valid=False` draws `(operation_id, body, broken)` triples: a valid body with exactly one
      rule broken (a size, tier, ratio or duration the model does not offer, sound on a silent
      model, a missing or malformed image, a missing or blank prompt, too long a prompt, missing
      or too many references, a bad media combination, an unknown model, a wrong type, a seed out
      of range, a value outside an enum). `broken` names the rule as the family reports it: a
      catalogue rule (`"size_allowed"`, `"duration_allowed"`...) when the value passes the JSON
      Schema, else the schema keyword (`"schema:enum"`, `"schema:maximum"`, `"schema:required"`).
      Such a body is rejected at submit or accepted and then failed, as the contract says.

    Examples shrink towards the first operation and the first model in catalogue order, towards
    bodies with only the fields the model requires, short prompts and the first allowed values;
    invalid ones towards the first applicable broken rule.
    """
    targets = _targets(family, operation, model)
    _check_type(valid, bool, "valid")
    if valid:
        return st.sampled_from(targets).flatmap(
            lambda t: _valid(t).map(lambda pair: (t.op.operation_id, pair[0])))
    return st.sampled_from(targets).flatmap(
        lambda t: _invalid(t).map(lambda pair: (t.op.operation_id, pair[0], pair[1])))


# -- lifecycles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskLifecycle:
    """What one task goes through, in seconds after its submission.

    `outcome` is `"succeed"`, `"fail"` (with the provider's `code`/`message`, after `fail_at` of
    the run, 0..1) or `"cancel"` (canceled `cancel_at` seconds after submit, while still queued).
    """

    queue_s: float
    run_s: float
    outcome: str = "succeed"
    code: str | None = None
    message: str | None = None
    fail_at: float = 1.0
    cancel_at: float | None = None

    @property
    def final_state(self) -> State:
        return {"succeed": State.SUCCEEDED, "fail": State.FAILED,
                "cancel": State.CANCELED}[self.outcome]

    @property
    def end_s(self) -> float:
        """Seconds after submit when the task becomes terminal."""
        if self.outcome == "cancel":
            return float(self.cancel_at or 0.0)
        return self.plan().end_s

    def plan(self) -> Plan:
        """The core `Plan` (cancellation is not part of a plan: see `apply_lifecycle`)."""
        failure = None
        if self.outcome == "fail":
            failure = Failure(self.code or "InternalError", self.message or "Task failed.")
        return Plan(self.queue_s, self.run_s, failure, self.fail_at if failure else 1.0)


@dataclass(frozen=True)
class PollPlan:
    """The fake's poll-count pacing: queries that see a task queued, then running."""

    queued_polls: int
    running_polls: int

    def options(self) -> dict[str, Any]:
        """As `create_app(**...)`, `@pytest.mark.wanmock(**...)` (with `mode="polls"`) take it."""
        return {"mode": "polls", "queued_polls": self.queued_polls,
                "running_polls": self.running_polls}


@st.composite
def _lifecycle(draw: Any, timings: tuple[str, ...], outcomes: tuple[str, ...],
               codes: tuple[str, ...]) -> TaskLifecycle:
    (q_lo, q_hi), (r_lo, r_hi) = _TIMING_MS[draw(st.sampled_from(timings))]
    queue_ms = draw(st.integers(q_lo, q_hi))
    run_ms = draw(st.integers(r_lo, r_hi))
    outcome = draw(st.sampled_from(outcomes))
    if outcome == "fail":
        code = draw(st.sampled_from(codes))
        fail_at = draw(st.integers(0, 100)) / 100
        return TaskLifecycle(queue_ms / 1000, run_ms / 1000, "fail", code,
                             f"{code} (wanmock lifecycle)", fail_at)
    if outcome == "cancel":
        cancel_ms = draw(st.integers(0, max(0, queue_ms - 1)))
        return TaskLifecycle(queue_ms / 1000, run_ms / 1000, "cancel", cancel_at=cancel_ms / 1000)
    return TaskLifecycle(queue_ms / 1000, run_ms / 1000)


def lifecycles(
    *,
    timings: Collection[str] = ("instant", "fast", "realistic"),
    outcomes: Collection[str] = OUTCOMES,
    failure_codes: Collection[str] = _FAILURE_CODES,
) -> st.SearchStrategy[TaskLifecycle]:
    """`TaskLifecycle`s a provider can show: queue and run times, then the end.

    `timings` picks the time scales (the fake's `timing` names): `instant` (0 s), `fast` (queue
    0-2 s, run 0.5-8 s) and `realistic` (queue 5-60 s, run 1.5-12 min), in whole milliseconds.
    `outcomes` picks among `"succeed"`, `"fail"` (a code from `failure_codes`, failing after
    0-100 % of the run) and `"cancel"` (while queued). Feed one to a submitted task with
    `apply_lifecycle()`.

    Examples shrink towards the first timing and outcome given, the shortest queue and run, a
    failure at the very start of the run, and a cancellation right after submit.
    """
    chosen_timings = _check_subset(timings, tuple(_TIMING_MS), "timings")
    chosen_outcomes = _check_subset(outcomes, OUTCOMES, "outcomes")
    if isinstance(failure_codes, str) or not isinstance(failure_codes, Collection) or not (
        failure_codes and all(isinstance(c, str) and c for c in failure_codes)
    ):
        raise InvalidArgument(f"failure_codes={failure_codes!r} must be non-empty strings")
    return _lifecycle(chosen_timings, chosen_outcomes, tuple(failure_codes))


def poll_plans(*, max_queued: int = 3, max_running: int = 5) -> st.SearchStrategy[PollPlan]:
    """`PollPlan`s for the fake's poll-count mode (`mode="polls"`): 0..`max_queued` queries see
    a task queued, then 0..`max_running` see it running. Shrinks towards (0, 0)."""
    for name, value in (("max_queued", max_queued), ("max_running", max_running)):
        _check_type(value, int, name)
        if value < 0:
            raise InvalidArgument(f"{name}={value!r} must be >= 0")
    return st.builds(PollPlan, st.integers(0, max_queued), st.integers(0, max_running))


def apply_lifecycle(target: Any, task_id: str, lifecycle: TaskLifecycle) -> Any:
    """Make the task `task_id` follow `lifecycle` from its submission on; returns the task.

    `target` is a `Backend` or anything holding one as `.backend` (`mockserver.handle.WanMock`,
    the `wanmock` fixtures). The task's plan is replaced (a state forced earlier is dropped) and,
    for `"cancel"`, it is canceled `cancel_at` seconds after it was submitted. Times count from
    the submission, so apply the lifecycle before moving the clock.
    """
    from mockserver.core.backend import Backend
    from mockserver.errors import MockServerError

    backend = target if isinstance(target, Backend) else getattr(target, "backend", None)
    if not isinstance(backend, Backend):
        raise InvalidArgument(f"target={target!r} is neither a Backend nor holds one as .backend")
    if not isinstance(lifecycle, TaskLifecycle):
        raise InvalidArgument(f"lifecycle={lifecycle!r} must be a TaskLifecycle")
    task = backend.store.get(task_id)
    if task is None:
        task = next((t for t in backend.tasks() if t.extra.get("upstream_id") == task_id), None)
    if task is None:
        known = [t.id for t in backend.tasks()]
        raise MockServerError(f"no task {task_id!r}; the fake has {known}")
    task.plan = lifecycle.plan()
    task.forced = task.forced_at = None
    task.canceled_at = (task.submitted_at + float(lifecycle.cancel_at or 0.0)
                        if lifecycle.outcome == "cancel" else None)
    return task
