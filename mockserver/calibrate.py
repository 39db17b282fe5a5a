"""`wanmock calibrate`: recorded queue and run times per model, as a timing profile.

Each recorded task that left the queue gives one queue time (to the first poll that was no
longer queued), and each that succeeded one run time (from there to the first terminal answer),
as `mockserver.replay.lifecycle` reads them: a figure nothing observed is left out (a model
whose tasks all failed has no `run_s`, and `wanmock serve` takes the next entry's or the
default's), and every figure says how many samples it rests on. The model, resolution and
duration come from the submit body through the contract and the catalogue (the job the fake
would run), so a profile has one entry per model and one per model, resolution and duration.
`wanmock serve --timing profile.yaml` then draws each task's times from the most specific
entry it has for the job (`mockserver.core.profiles`), seeded, so `realistic` can mean "like
my provider last week".
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from mockserver.cassette import FORM_ENCODINGS, Cassette
from mockserver.contracts import ContractSet, load
from mockserver.core.profiles import PROFILE_VERSION, QUANTILES, job_key
from mockserver.core.tasks import State
from mockserver.replay import RecordedLifecycle, lifecycles


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stats(values: list[float]) -> dict[str, float]:
    """Quantiles, mean and count of a sample (seconds, 3 decimals)."""
    out = {name: round(_quantile(values, q), 3) for name, q in QUANTILES}
    out["mean"] = round(statistics.fmean(values), 3)
    out["samples"] = len(values)
    return out


def keys_of(lc: RecordedLifecycle, contracts: ContractSet) -> list[str]:
    """The profile keys a recorded task counts for: its model and, when the catalogue can tell
    the job it ran, its model at that resolution and duration (`wan2.6-t2v/720P/5s`)."""
    body = lc.submit.request_body
    if lc.family and lc.submit.request_encoding in FORM_ENCODINGS and isinstance(body, dict):
        # A form: the request its fields stand for, as the family reads them.
        from mockserver.providers.policy import Judging, policy_class

        body = policy_class(lc.family)(Judging(contracts)).form_request(body.get("form") or {})
    if not (lc.family and lc.operation and isinstance(body, dict)):
        return ["unknown"]
    try:
        spec, _ = contracts[lc.family].check_request(lc.operation, body)
    except Exception:  # a cassette from a newer contract: fall back to the raw field
        spec = None
    if spec is not None:
        width, height = lc.geometry or (spec.width, spec.height)
        return [spec.model, job_key(spec.model, min(width, height), spec.duration)]
    model = body.get("model")
    return [model if isinstance(model, str) else "unknown"]


def calibrate(tape: Cassette, contracts: ContractSet | None = None) -> dict[str, Any]:
    """The timing profile of a cassette's finished tasks (see module docstring)."""
    contracts = contracts or load()
    samples: dict[str, tuple[list[float], list[float]]] = {}
    for lc in lifecycles(tape):
        if lc.queue_bounds is None or (lc.canceled_s is not None and lc.end_bounds is None):
            continue  # never left the queue while recorded: no queue time was observed
        # The first poll that saw each change (what the plan is built from, without its
        # millisecond of lead).
        queue = lc.queue_bounds[1]
        succeeded = lc.end_bounds is not None and lc.final is State.SUCCEEDED
        for key in (*keys_of(lc, contracts), "default"):
            q, r = samples.setdefault(key, ([], []))
            q.append(queue)
            if succeeded and lc.end_bounds is not None:  # a failure stops part-way through
                r.append(max(0.0, lc.end_bounds[1] - queue))
    models = {name: _entry(q, r) for name, (q, r) in sorted(samples.items())
              if name != "default"}
    profile: dict[str, Any] = {
        "wanmock_timing_profile": PROFILE_VERSION,
        "source": str(tape.path),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tasks": len(samples.get("default", ([], []))[0]),
        "models": models,
    }
    if "default" in samples:
        q, r = samples["default"]
        profile["default"] = _entry(q, r)
    return profile


def _entry(queue: list[float], run: list[float]) -> dict[str, Any]:
    """One profile entry: each figure only when observed (no succeeded task, no `run_s`)."""
    entry: dict[str, Any] = {"samples": len(queue), "queue_s": stats(queue)}
    if run:
        entry["run_s"] = stats(run)
    return entry


def write_profile(profile: dict[str, Any], path: Path | str) -> Path:
    """Write a profile as JSON (`.json`) or YAML (anything else)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
    return path
