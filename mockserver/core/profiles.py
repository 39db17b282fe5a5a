"""Timing profiles from files: per-model queue and run time distributions (`wanmock calibrate`).

A profile is YAML or JSON:

    wanmock_timing_profile: 1
    default: {queue_s: {samples: 12, min: 4.1, p10: 5, p25: 8, p50: 12, p75: 20, p90: 31, max: 44,
                        mean: 15.2}, run_s: {...}}
    models:
      wan2.6-t2v: {samples: 7, queue_s: {...}, run_s: {...}}

      wan2.6-t2v/720P/5s: {samples: 4, queue_s: {...}, run_s: {...}}

A task's times are drawn from the most specific distribution the profile has for it (its model
at its resolution and duration, else its model, else `default`) by inverse transform over the
quantiles, with the fake's seeded random numbers: same seed, same times. Each figure is looked
up on its own: an entry without `run_s` (no task of it succeeded while recorded: its run time
was never observed) takes the next entry's, and a profile with no `run_s` at all the built-in
`realistic` run time (`mockserver.core.tasks.plan_times`).
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from mockserver import yamlio
from mockserver.errors import MockServerError

PROFILE_VERSION = 1
FIGURES = ("queue_s", "run_s")
QUANTILES = (("min", 0.0), ("p10", 0.1), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75),
             ("p90", 0.9), ("max", 1.0))


def is_profile(timing: str) -> bool:
    """Whether a timing value names a profile file (rather than fast/realistic/instant)."""
    return timing.endswith((".json", ".yaml", ".yml")) or os.path.isfile(timing)


def _check_stats(where: str, stats: Any) -> dict[str, float]:
    if not isinstance(stats, dict):
        raise MockServerError(f"{where}: expected a mapping of quantiles")
    out = {}
    for name, _ in QUANTILES:
        value = stats.get(name)
        if not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
            raise MockServerError(f"{where}.{name}: expected finite seconds >= 0, got {value!r}")
        out[name] = float(value)
    values = [out[name] for name, _ in QUANTILES]
    if values != sorted(values):
        raise MockServerError(f"{where}: quantiles must not decrease ({values})")
    return out


@lru_cache(maxsize=16)
def _load(path: str, mtime: float) -> dict[str, dict[str, dict[str, float]]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if path.endswith(".json") else yamlio.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise MockServerError(f"timing profile {path}: cannot read it: {exc}") from None
    if not isinstance(data, dict) or data.get("wanmock_timing_profile") != PROFILE_VERSION:
        raise MockServerError(f"timing profile {path}: not a version-{PROFILE_VERSION} "
                              "profile (wanmock calibrate writes them)")
    table: dict[str, dict[str, dict[str, float]]] = {}
    entries = {"default": data.get("default"), **(data.get("models") or {})}
    for name, entry in entries.items():
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise MockServerError(f"timing profile {path}: {name}: expected a mapping")
        table[str(name)] = {part: _check_stats(f"{path}: {name}.{part}", entry[part])
                            for part in FIGURES if entry.get(part) is not None}
    if "queue_s" not in table.get("default", {}):
        raise MockServerError(f"timing profile {path}: no `default` entry with `queue_s`")
    return table


def load_profile(path: str) -> dict[str, dict[str, dict[str, float]]]:
    """The profile at `path` (cached until the file changes); MockServerError if unusable."""
    try:
        mtime = os.path.getmtime(path)
    except OSError:
        raise MockServerError(f"timing profile {path!r}: no such file") from None
    return _load(path, mtime)


def _sample(stats: dict[str, float], u: float) -> float:
    points = [(q, stats[name]) for name, q in QUANTILES]
    for (q0, v0), (q1, v1) in zip(points, points[1:], strict=False):
        if u <= q1:
            return v0 if q1 == q0 else v0 + (v1 - v0) * (u - q0) / (q1 - q0)
    return points[-1][1]


def job_key(model: str, short_side: int, duration: int) -> str:
    """The profile key of a model at one resolution and duration: `wan2.6-t2v/720P/5s`."""
    return f"{model}/{short_side}P/{duration}s"


def _figure(path: str, keys: tuple[str, ...], part: str) -> dict[str, float] | None:
    """The first of `keys`' entries (else `default`'s) that has this figure; None: none has."""
    table = load_profile(path)
    for key in (*keys, "default"):
        found = table.get(key, {}).get(part)
        if found is not None:
            return found
    return None


def profile_times(path: str, keys: tuple[str, ...], u_queue: float,
                  u_run: float) -> tuple[float, float | None]:
    """Queue and run seconds for the first of `keys` that has each figure (else `default`),
    drawn at the given uniform numbers in [0, 1); run None when no entry has one."""
    queue = _figure(path, keys, "queue_s")
    run = _figure(path, keys, "run_s")
    assert queue is not None  # the loader insists on the default's
    return (round(_sample(queue, u_queue), 3),
            None if run is None else round(_sample(run, u_run), 3))


def profile_range(path: str, keys: tuple[str, ...]
                  ) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """(min, max) queue and run seconds the profile allows for the first of `keys` (run None
    when no entry has one)."""
    queue = _figure(path, keys, "queue_s")
    run = _figure(path, keys, "run_s")
    assert queue is not None
    return ((queue["min"], queue["max"]),
            None if run is None else (run["min"], run["max"]))
