"""The model catalogue and the rules JSON Schema cannot express.

`contracts/catalogue.yaml` is data; this module loads it and evaluates, for one family, a request
already reduced to neutral fields (`contracts.Operation.extract`). The result is a `JobSpec`
(the job the fake will run: output geometry, duration, audio, effective prompt) and the list of
`RuleFailure`s. How a provider *reports* a failure (at submit or as a failed task, code, message)
lives in each contract's `x-wanmock-rules`, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from mockserver import media, media_checks, yamlio
from mockserver.errors import ContractError
from mockserver.images import keep_aspect
from mockserver.media import AUDIO_TYPES, IMAGE_URL, Assumed, audio_url_ok

__all__ = ["AUDIO_TYPES", "IMAGE_URL", "Catalogue", "JobSpec", "ModelEntry", "RuleFailure",
           "audio_url_ok", "entry_task", "parse_size", "templates_for"]
RESOLUTION_SHORT = {"480P": 480, "720P": 720, "1080P": 1080}


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model as offered by a family."""

    model: str
    families: tuple[str, ...]
    mode: str
    protocol: str
    raw: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    @property
    def audio(self) -> bool:
        return bool(self.raw.get("audio", False))

    @property
    def generation(self) -> str:
        return str(self.raw.get("generation", "wan26"))


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A catalogue rule that failed: the neutral field, the value and what was allowed."""

    rule: str
    field: str
    value: Any
    allowed: Any = None
    model: str | None = None


@dataclass(slots=True)
class JobSpec:
    """The neutral job: what the fake generates, whatever family it came from."""

    family: str
    model: str
    mode: str
    width: int
    height: int
    duration: int
    audio: bool
    prompt: str | None = None
    negative_prompt: str | None = None
    actual_prompt: str | None = None
    resolution: str | None = None
    size: str | None = None
    ratio: str | None = None
    seed: int | None = None
    prompt_extend: bool | None = None
    generation: str = "wan26"
    inputs: dict[str, Any] = field(default_factory=dict)
    # Seconds of input video the task bills (r2v references, Wan 3.0 and videoedit inputs:
    # assumed lengths, media.Assumed) and how much faster than the timing profile it runs.
    input_video_s: float = 0.0
    speed: float = 1.0
    # The exact output seconds when not whole (s2v follows its audio, animate its video).
    output_s: float | None = None

    @property
    def sr(self) -> int:
        """DashScope's `usage.SR` (720, 1080...): the tier when the job has one (an i2v output
        keeps its image's aspect ratio at the tier's pixel count), else the short side."""
        tier = RESOLUTION_SHORT.get(self.resolution or "")
        return tier if tier is not None else min(self.width, self.height)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


class Catalogue:
    """The catalogue file, indexed by (family, model)."""

    def __init__(self, data: Mapping[str, Any], path: Path | None = None) -> None:
        self.path = path
        self.data = data
        try:
            self.size_tiers: dict[str, list[str]] = dict(data["size_tiers"])
            self.ratios: dict[str, dict[str, str]] = dict(data["ratios"])
            self.rules: dict[str, dict[str, Any]] = dict(data["rules"])
            self.image_limits: dict[str, dict[str, Any]] = dict(data.get("image_limits") or {})
            models = data["models"]
            self.effect_templates = _effect_templates(data.get("effect_templates") or {})
        except (KeyError, TypeError) as exc:
            raise ContractError(f"catalogue {path}: missing section {exc}") from exc
        self._index: dict[tuple[str, str], ModelEntry] = {}
        for raw in models:
            try:
                entry = ModelEntry(
                    model=raw["model"],
                    families=tuple(raw["families"]),
                    mode=raw["mode"],
                    protocol=raw["protocol"],
                    raw=raw,
                )
            except KeyError as exc:
                raise ContractError(f"catalogue {path}: model entry {raw!r} lacks {exc}") from exc
            for family in entry.families:
                # A later entry for the same (family, model) overrides an earlier one.
                self._index[(family, entry.model)] = entry

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        with open(path, encoding="utf-8") as fh:
            return cls(yamlio.safe_load(fh), path)

    def entry(self, family: str, model: str) -> ModelEntry | None:
        return self._index.get((family, model))

    def models(self, family: str | None = None) -> list[ModelEntry]:
        """Every entry, or those offered by one family, in file order."""
        return [e for (fam, _), e in self._index.items() if family is None or fam == family]

    @cached_property
    def families(self) -> set[str]:
        return {fam for fam, _ in self._index}

    # -- facts per entry ---------------------------------------------------------------------
    def sizes(self, entry: ModelEntry) -> list[str]:
        """Every W*H size the entry accepts (expanded from its tiers)."""
        out: list[str] = []
        for tier in entry.get("sizes") or []:
            out.extend(self.size_tiers[tier])
        return out

    def resolutions(self, entry: ModelEntry) -> list[str]:
        return list(entry.get("resolutions") or [])

    def durations(self, entry: ModelEntry) -> list[int]:
        """Every duration the entry takes: a list, or a range `{min, max}` with the values
        `also` outside it (Wan 3.0's -1)."""
        spec = entry.get("durations")
        if isinstance(spec, Mapping):
            return [*(int(d) for d in spec.get("also") or []),
                    *range(int(spec["min"]), int(spec["max"]) + 1)]
        return [int(d) for d in spec or []]

    def geometry(self, resolution: str, ratio: str = "16:9") -> tuple[int, int]:
        size = self.ratios.get(resolution, {}).get(ratio)
        if size is None:
            raise ContractError(f"no geometry for {resolution} {ratio}")
        return parse_size(size)

    def _facts(self, entry: ModelEntry) -> _Facts:
        """What `evaluate` reads from an entry, computed once per entry (read-only: callers that
        hand lists out pass copies)."""
        cache: dict[int, _Facts] = self.__dict__.setdefault("_facts_cache", {})
        found = cache.get(id(entry))
        if found is None or found.entry is not entry:
            found = cache[id(entry)] = _Facts(self, entry)
        return found

    # -- evaluation -------------------------------------------------------------------------
    def variant(self, entry: ModelEntry, alternatives: frozenset[str]) -> ModelEntry:
        """The entry with the chosen `alternatives` of its own applied (an entry's
        `alternatives: {name: {key: value}}` replaces those keys; null removes one): the
        option-selected readings where sources disagree."""
        own = entry.get("alternatives")
        if not alternatives or not own:
            return entry
        # The same (entry, alternatives) on every submit of a model: one lookup, no sorting.
        chosen_cache: dict[tuple[int, frozenset[str]], tuple[ModelEntry, ModelEntry]] = (
            self.__dict__.setdefault("_chosen", {}))
        known = chosen_cache.get((id(entry), alternatives))
        if known is not None and known[0] is entry:
            return known[1]
        found = self._variant(entry, own, alternatives)
        if len(chosen_cache) > 4096:
            chosen_cache.clear()
        chosen_cache[(id(entry), alternatives)] = (entry, found)
        return found

    def _variant(self, entry: ModelEntry, own: Mapping[str, Any],
                 alternatives: frozenset[str]) -> ModelEntry:
        chosen = tuple(sorted(a for a in alternatives if a in own))
        if not chosen:
            return entry
        cache: dict[tuple[int, tuple[str, ...]], ModelEntry] = self.__dict__.setdefault(
            "_variants", {})
        found = cache.get((id(entry), chosen))
        if found is None:
            raw = dict(entry.raw)
            for name in chosen:
                for key, value in own[name].items():
                    if value is None:
                        raw.pop(key, None)
                    else:
                        raw[key] = value
            found = cache[(id(entry), chosen)] = ModelEntry(entry.model, entry.families,
                                                            entry.mode, entry.protocol, raw)
        return found

    def evaluate(
        self, family: str, fields: Mapping[str, Any], *, task: str | None = None,
        strict_prompts: bool = False, alternatives: frozenset[str] = frozenset(),
        assume: Mapping[str, Any] | None = None,
    ) -> tuple[JobSpec | None, list[RuleFailure]]:
        """Apply every rule to a request reduced to neutral fields.

        Returns the job the provider would run (None when the model is unknown) and the rules that
        failed. A failed rule does not stop the others: the provider reports the first one, the
        journal and `Contract.judge` show them all. `task` is the endpoint's DashScope task
        (`x-wanmock-task`): a model of another task is unknown there. `strict_prompts`: a prompt
        over a limit whose `over_alternative` is `reject` is rejected (the
        `dashscope_r2v_prompt_over=reject` reading).
        `alternatives`: the entries' alternative readings chosen by options (`variant`);
        `assume`: what the fake takes to be true of inputs it never fetches
        (`media.Assumed`, from an `inputs` scenario).
        """
        model = fields.get("model")
        entry = self.entry(family, model) if isinstance(model, str) else None
        if entry is not None and task is not None and entry_task(entry) != task:
            entry = None
        if entry is None:
            return None, [RuleFailure("model_known", "model", model, None, model)]
        entry = self.variant(entry, alternatives)
        assumed = Assumed.of(assume)
        facts = self._facts(entry)
        failures: list[RuleFailure] = []

        def fail(rule: str, fld: str, value: Any, allowed: Any = None) -> None:
            failures.append(RuleFailure(rule, fld, value, allowed, entry.model))

        fixed = facts.fixed
        get = fields.get
        prompt = get("prompt")
        prompt_rule = facts.prompt_rule
        actual_prompt = prompt
        if prompt_rule.get("required") and not (isinstance(prompt, str) and prompt.strip()):
            fail("prompt_required", "prompt", prompt)
        if isinstance(prompt, str) and "max" in prompt_rule and len(prompt) > prompt_rule["max"]:
            if prompt_rule.get("over") == "reject" or (
                    strict_prompts and prompt_rule.get("over_alternative") == "reject"):
                fail("prompt_length", "prompt", len(prompt), prompt_rule["max"])
            else:
                actual_prompt = prompt[: prompt_rule["max"]]
        negative = get("negative_prompt")
        neg_rule = facts.negative_rule
        if isinstance(negative, str) and "max" in neg_rule and len(negative) > neg_rule["max"]:
            if neg_rule.get("over") == "reject":
                fail("negative_prompt_length", "negative_prompt", len(negative), neg_rule["max"])

        # Geometry: the size (t2v/r2v legacy), the tier (i2v, wan2.7) or a width/height pair.
        width = height = 0
        size = get("size")
        # A gateway alias fixes the tier in its name (seed 001): that wins over the request.
        resolution = fixed.get("resolution") or get("resolution")
        ratio = get("ratio")
        sizes = facts.sizes
        if facts.pairs:
            pairs = facts.pairs
            w, h = get("width"), get("height")
            if w is None or h is None:
                width, height = facts.default_pair
            elif (w, h) in pairs:
                width, height = int(w), int(h)
            else:
                fail("width_height_pair", "height", [w, h], [list(p) for p in pairs])
                width, height = facts.default_pair
        elif sizes:
            if size is not None and size not in sizes:
                fail("size_allowed", "size", size, list(sizes))
                size = None
            if size is None and fixed.get("resolution"):
                size = self.ratios[fixed["resolution"]]["16:9"]
            size = size or entry.get("default_size")
            width, height = parse_size(size)
        else:
            allowed = self.resolutions(entry)
            if resolution is not None and resolution not in allowed:
                fail("resolution_allowed", "resolution", resolution, allowed)
                resolution = None
            ratios = entry.get("ratios")
            if ratios and ratio is not None and ratio not in ratios:
                fail("ratio_allowed", "ratio", ratio, ratios)
                ratio = None
            resolution = resolution or entry.get("default_resolution")
            use_ratio = (ratio or entry.get("default_ratio") or "16:9") if ratios else "16:9"
            if use_ratio not in self.ratios.get(resolution, {}):
                use_ratio = "16:9"  # `adaptive`: a protocol's checker resolves it below
            width, height = self.geometry(resolution, use_ratio)

        durations = facts.durations
        duration = get("duration")
        if duration is not None and duration not in durations:
            fail("duration_allowed", "duration", duration, list(durations))
            duration = None
        duration = int(duration if duration is not None else facts.default_duration)

        audio_url = get("audio_url")
        audio_flag = get("audio", fixed.get("audio"))
        has_audio = facts.audio
        if not has_audio and (audio_url or audio_flag is True):
            fail("audio_supported", "audio_url" if audio_url else "audio", audio_url or audio_flag)
        # `audio_fixed`: the model always makes sound and ignores the switch (wan2.6-r2v).
        audio = has_audio and (bool(audio_url) or audio_flag is not False
                               or bool(entry.get("audio_fixed")))
        if isinstance(audio_url, str) and audio_url and not audio_url_ok(audio_url):
            fail("audio_url_format", "audio_url", audio_url, list(AUDIO_TYPES))

        requires = facts.requires
        if requires:
            img_url = get("img_url")
            if "img_url" in requires:
                if not img_url:
                    fail("image_required", "img_url", img_url)
                elif not (isinstance(img_url, str) and IMAGE_URL.match(img_url)):
                    fail("image_url_format", "img_url", img_url)
            if "media" in requires:
                media.check_combinations(entry, get("media"), fail)
            if "references" in requires:
                media.check_references(entry, fields, fail)
        # Inline (data:) images: decoded and measured here, never fetched.
        first = media.inline_images(self.image_limits.get(family), entry, fields, fail)
        if first is not None and not sizes and not facts.pairs and entry.mode == "i2v":
            # The output keeps the input image's aspect ratio at the tier's pixel count.
            width, height = keep_aspect(first.width, first.height, width, height)

        mode = entry.mode
        videos = media.reference_videos(fields) if entry.mode == "r2v" else 0
        input_video_s = media.reference_video_s(entry, videos, assumed)
        with_video = entry.get("durations_with_video")
        if with_video and videos and not with_video["min"] <= duration <= with_video["max"]:
            # wan2.7-r2v with a reference video: 2-10 s.
            fail("duration_with_video", "duration", duration, with_video["max"])
        output_s = None
        checker = media_checks.CHECKERS.get(entry.protocol)
        if checker is not None:
            found = checker(entry, fields, fail, assumed, duration)
            mode = found.mode or mode
            if found.duration is not None:
                duration = found.duration
            if found.size is not None:
                width, height = parse_size(found.size)
            elif found.ratio is not None and found.ratio in self.ratios.get(resolution or "", {}):
                ratio = found.ratio
                if first is not None and entry.mode == "i2v" and not entry.get("ratios"):
                    pass  # an inline image already set the geometry (its own aspect ratio)
                else:
                    width, height = self.geometry(resolution or "", ratio)
            output_s = found.output_s
            input_video_s = found.input_video_s or input_video_s
            if found.audio is not None:
                audio = found.audio

        template = get("template")
        templates = facts.templates
        if template not in (None, "") and templates:  # empty means no effect (seed 003)
            if not isinstance(template, str) or template not in templates:
                fail("template_known", "template", template, sorted(templates))

        seed = get("seed")
        inputs = {}
        for k in _INPUT_FIELDS:
            value = get(k)
            if value is not None:
                inputs[k] = value
        spec = JobSpec(
            family=family,
            model=entry.model,
            mode=mode,
            width=width,
            height=height,
            duration=duration,
            audio=audio,
            prompt=prompt if isinstance(prompt, str) else None,
            negative_prompt=negative if isinstance(negative, str) else None,
            actual_prompt=actual_prompt if isinstance(actual_prompt, str) else None,
            resolution=resolution if not sizes else f"{min(width, height)}P",
            size=f"{width}*{height}",
            ratio=ratio,
            seed=seed if isinstance(seed, int) else None,
            prompt_extend=get("prompt_extend"),
            generation=facts.generation,
            inputs=inputs,
            input_video_s=input_video_s,
            speed=float(entry.get("speed", 1.0)),
            output_s=output_s,
        )
        return spec, failures


def entry_task(entry: ModelEntry) -> str:
    """The DashScope task (endpoint) a model is served on: `image2video` for kf2v models
    (the SDK's rule, dashscope 2.0.2 aigc/video_synthesis.py;
    help.aliyun.com/zh/model-studio/text-to-video-api-reference), `video-generation` for the
    rest."""
    return str(entry.get("task", "video-generation"))


@lru_cache(maxsize=256)
def parse_size(size: str) -> tuple[int, int]:
    """`"1280*720"` -> (1280, 720)."""
    w, _, h = size.partition("*")
    return int(w), int(h)


def _effect_templates(section: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Template name -> the models the catalogue's `effect_templates` lists name for it."""
    out: dict[str, tuple[str, ...]] = {}
    for names in section.values():
        if isinstance(names, Mapping):  # `source` and other scalars are notes
            for name, models in names.items():
                out[str(name)] = out.get(str(name), ()) + tuple(_as_list(models))
    return out


def templates_for(effects: Mapping[str, tuple[str, ...]], model: str) -> frozenset[str]:
    """The template names a model accepts: those the lists name it for, or, for a model they
    never name, every documented name (decision `effect-templates`)."""
    own = frozenset(name for name, models in effects.items() if model in models)
    return own or frozenset(effects)


# What a job keeps of its inputs (`JobSpec.inputs`), in this order.
_INPUT_FIELDS = ("img_url", "last_frame_url", "audio_url", "media", "reference_urls",
                 "reference_images", "reference_videos", "template", "shot_type", "watermark",
                 "video_url", "ref_images", "mask_image_url", "mask_video_url", "first_clip_url",
                 "last_clip_url", "function", "animate_mode", "audio_setting")


class _Facts:
    """An entry's rules as `Catalogue.evaluate` reads them (built once per entry)."""

    __slots__ = ("entry", "fixed", "prompt_rule", "negative_rule", "sizes", "durations", "pairs",
                 "default_pair", "default_duration", "audio", "generation", "requires",
                 "templates")

    def __init__(self, catalogue: Catalogue, entry: ModelEntry) -> None:
        self.entry = entry
        self.fixed: Mapping[str, Any] = entry.get("fixed") or {}
        self.prompt_rule: Mapping[str, Any] = entry.get("prompt") or {}
        self.negative_rule: Mapping[str, Any] = entry.get("negative_prompt") or {}
        self.sizes = catalogue.sizes(entry)
        self.durations = catalogue.durations(entry)
        pairs = entry.get("pairs")
        self.pairs = [tuple(p) for p in pairs] if pairs else None
        self.default_pair = entry.get("default_pair")
        self.default_duration = entry.get("default_duration", 5)
        self.audio = entry.audio
        self.generation = entry.generation
        self.requires: list[str] = list(entry.get("requires") or [])
        self.templates = templates_for(catalogue.effect_templates, entry.model)

