"""Valid request bodies: where each neutral field goes (`x-wanmock-spec`) and what it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from mockserver.catalogue import Catalogue, ModelEntry
from mockserver.contracts import Operation
from mockserver.families import FamilySpec
from mockserver.families import spec as family_spec
from mockserver.images import SAMPLE_PNG_DATA_URI
from mockserver.strategies.schema import Schema

_WORDS = ("a", "cat", "lighthouse", "at", "dusk", "camera", "slowly", "pushes", "in", "rain",
          "neon", "street", "波浪", "海边")
# No oss:// URL: a body alone cannot promise the X-DashScope-OssResourceResolve header that
# DashScope needs for one; the inline image is a real 400x300 PNG.
_IMAGES = ("https://example.com/frame.png", "http://example.com/a/b.jpg", SAMPLE_PNG_DATA_URI)
_VIDEOS = ("https://example.com/clip.mp4", "https://example.com/ref.mov")
AUDIOS = ("https://example.com/voice.mp3", "https://example.com/waves.wav")
_DOCUMENTS = ("https://example.com/brief.pdf", "https://example.com/deck.pptx")
MEDIA_URL = {"first_frame": _IMAGES[:2], "last_frame": _IMAGES[:2],
              "driving_audio": AUDIOS, "first_clip": _VIDEOS, "reference_image": _IMAGES[:2],
              "reference_video": _VIDEOS, "reference_audio": AUDIOS, "file": _DOCUMENTS,
              "link": ("https://example.com/news/article",)}
REFERENCE_FIELDS = ("reference_urls", "reference_images", "reference_videos")
# Protocols whose video lasts as long as an input (s2v its audio, animate its video): no
# duration parameter is documented for them, so none is drawn or broken.
FOLLOWS_INPUT = ("s2v", "animate")


# -- bodies ----------------------------------------------------------------------------------------
def set_path(body: dict[str, Any], path: str, value: Any) -> None:
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


def delete_path(body: dict[str, Any], path: str) -> None:
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
class Target:
    """One (operation, model) pair and what a body for it may contain."""

    family: str
    op: Operation
    entry: ModelEntry
    catalogue: Catalogue
    schema: Schema

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.op.spec_map

    @property
    def family_spec(self) -> FamilySpec:
        """What the registry knows of the family (its bodies' shapes, its own refusals)."""
        return family_spec(self.family)

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


def choose_path(draw: Any, t: Target, name: str, nested: bool) -> str:
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


def prompt_required(t: Target) -> bool:
    rule = t.entry.get("prompt") or {}
    return bool(rule.get("required")) or any(t.schema.required(p) for p in t.paths("prompt"))


def _references(draw: Any, t: Target, place: Callable[[str, Any], None]) -> int:
    limits = t.entry.get("references") or {}
    total_max = int(limits.get("max", 5))
    kinds = [k for k in REFERENCE_FIELDS if t.has(k)]
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
    return n_vid


def media_items(draw: Any, t: Target) -> list[dict[str, str]]:
    combo = draw(st.sampled_from([list(c) for c in t.entry.get("media_combinations") or []]))
    return [{"type": kind, "url": draw(st.sampled_from(MEDIA_URL[kind]))} for kind in combo]


def _wan3_media(draw: Any, t: Target) -> list[dict[str, str]]:
    """Wan 3.0 media in one of its listed combinations (W3 素材组合), within its counts and its
    15 s of reference video or audio at the fake's assumed 5 s each; [] for text to video."""
    kind = draw(st.sampled_from(["text", "first", "first_last", "references", "document"]))
    if kind == "text":
        return []
    if kind in ("first", "first_last"):
        types = ["first_frame"] + (["last_frame"] if kind == "first_last" else [])
    else:
        types = [draw(st.sampled_from(["file", "link"]))] if kind == "document" else []
        types += ["reference_image"] * draw(st.integers(0, 3))
        types += ["reference_video"] * draw(st.integers(0, 3))
        types += ["reference_audio"] * draw(st.integers(0, 2))
        if not types:
            types = ["reference_image"]
        types = draw(st.permutations(types))
    return [{"type": k, "url": draw(st.sampled_from(MEDIA_URL[k]))} for k in types]


def _protocol_inputs(draw: Any, t: Target, place: Callable[[str, Any], None],
                     allowed: Callable[[str, list[Any]], list[Any]],
                     where: dict[str, str]) -> None:
    """The inputs the newer models need (their media rules, `mockserver.media_checks`), as
    the fake assumes unfetched inputs (5 s videos and audios)."""
    protocol = t.entry.protocol
    if protocol == "videoedit" and (t.has("media") or t.has("video_url")):
        if t.has("media"):
            refs = draw(st.integers(0, int((t.entry.get("media") or {}).get("reference_image", 0))))
            place("media", [{"type": "video", "url": draw(st.sampled_from(_VIDEOS))}]
                  + [{"type": "reference_image", "url": _IMAGES[0]}] * refs)
        else:  # a flat body (jiekou/Novita)
            place("video_url", draw(st.sampled_from(_VIDEOS)))
        if "duration" in where:  # 0 keeps the input; else at most its 5 s
            place("duration", draw(st.sampled_from(allowed("duration", [0, 2, 3, 4, 5]))))
    elif protocol == "vace" and t.has("function"):
        function = draw(st.sampled_from(list(t.entry.get("functions"))))
        place("function", function)
        if function == "image_reference":
            place("ref_images", [_IMAGES[0]] * draw(st.integers(1, 3)))
        elif function == "video_extension":
            place("first_clip_url", _VIDEOS[0])
        else:
            place("video_url", _VIDEOS[0])
        if function == "video_repainting":
            place("control_condition", draw(st.sampled_from(["posebodyface", "depth"])))
        if function == "video_edit":
            place("mask_image_url", _IMAGES[0])
    elif protocol == "s2v" and t.has("audio_url"):
        place("audio_url", draw(st.sampled_from(AUDIOS)))
    elif protocol == "animate" and t.has("video_url"):
        place("video_url", _VIDEOS[0])
        place("animate_mode", draw(st.sampled_from(["wan-std", "wan-pro"])))


@st.composite
def valid_body(draw: Any, t: Target) -> tuple[dict[str, Any], dict[str, str]]:
    """A body with no violation, and the wire path each neutral field was put at."""
    entry, cat = t.entry, t.catalogue
    body: dict[str, Any] = {}
    where: dict[str, str] = {}
    shape = t.family_spec.metadata_fields
    nested = shape == "nested" or (bool(shape) and draw(st.booleans()))

    def place(name: str, value: Any) -> None:
        path = choose_path(draw, t, name, nested)
        body_value = t.adapt(path, value)
        set_path(body, path, body_value)
        where[name] = path

    def maybe(name: str, strategy: st.SearchStrategy[Any], always: bool = False) -> None:
        if t.has(name) and (always or draw(st.booleans())):
            place(name, draw(strategy))

    def allowed(name: str, values: list[Any]) -> list[Any]:
        paths = t.paths(name)
        return [v for v in values if paths and all(t.schema_ok(p, t.adapt(p, v)) for p in paths)]

    if t.has("model"):
        place("model", entry.model)
    maybe("prompt", _text(), always=prompt_required(t))
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
    if durations and entry.protocol not in FOLLOWS_INPUT:
        maybe("duration", st.sampled_from(durations))
    if entry.audio:
        maybe("audio", st.booleans())
        maybe("audio_url", st.sampled_from(AUDIOS))
    else:
        maybe("audio", st.just(False))
    requires = entry.get("requires") or []
    if "img_url" in requires:
        # The inline sample is 480x360: not for a model with narrower sides (s2v: 400 px).
        images = _IMAGES if not entry.get("image_sides") else _IMAGES[:2]
        place("img_url", draw(st.sampled_from(images)))
    if "audio_url" in requires and "audio_url" not in where:  # a driving audio (speech to video)
        place("audio_url", draw(st.sampled_from(AUDIOS)))
    if "last_frame_url" in requires:  # a last frame the schema requires (first-last frame)
        place("last_frame_url", draw(st.sampled_from(_IMAGES)))
    if "media" in requires:
        place("media", media_items(draw, t))
    if "references" in requires:
        videos = _references(draw, t, place)
        with_video = entry.get("durations_with_video")
        if videos and with_video and "duration" in where:
            # With a reference video the model takes a shorter range (wan2.7-r2v: 2-10 s).
            fits = allowed("duration", list(range(int(with_video["min"]),
                                                  int(with_video["max"]) + 1)))
            if fits:
                place("duration", draw(st.sampled_from(fits)))
    documents = False
    if entry.protocol == "wan3" and t.has("media"):
        items = _wan3_media(draw, t)
        if items:
            place("media", items)
        elif "prompt" not in where:  # text to video: the prompt is the one input
            place("prompt", draw(_text()))
        documents = any(i["type"] in ("file", "link") for i in items)
        video_s = 5 * sum(1 for i in items if i["type"] == "reference_video")
        if video_s and "duration" in where:  # input video + output at most 30 s
            place("duration", draw(st.sampled_from(
                allowed("duration", [d for d in cat.durations(entry) if d <= 30 - video_s]))))
    _protocol_inputs(draw, t, place, allowed, where)
    for path in t.paths("seed")[:1]:
        low, high = t.schema.bounds(path, 0, 2**31 - 1)
        maybe("seed", st.integers(max(low, 0), high))
    if documents:  # a file or link needs prompt rewriting on (W3)
        maybe("prompt_extend", st.just(True))
    else:
        maybe("prompt_extend", st.booleans())
    maybe("watermark", st.booleans())
    if entry.get("shot_type"):
        maybe("shot_type", st.sampled_from(["single", "multi"]))
    # Objects the schema requires (DashScope's `input`) are there even when empty.
    for name in t.schema.root.get("required") or []:
        if name not in body and t.schema.at(name).get("type") == "object":
            body[name] = {}
    return body, where
