"""The drift report of `wanmock diff`: Markdown and JUnit XML, grouped by family, operation and
kind of difference, the recorded and the fake's answer side by side."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

from mockserver.diff import KINDS, DiffResult, Drift


def grouped(result: DiffResult) -> dict[tuple[str, str], dict[str, list[Drift]]]:
    """family, operation -> kind -> drifts (kinds in `KINDS` order)."""
    out: dict[tuple[str, str], dict[str, list[Drift]]] = defaultdict(dict)
    for drift in result.drifts:
        out[(drift.family, drift.operation)].setdefault(drift.kind, []).append(drift)
    for kinds in out.values():
        ordered = {k: kinds[k] for k in KINDS if k in kinds}
        kinds.clear()
        kinds.update(ordered)
    return dict(sorted(out.items()))


def _show(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def summary(result: DiffResult) -> str:
    """A few lines for the terminal."""
    lines = [f"{'family':<10} {'operation':<28} {'checked':>8} {'drift':>6}"]
    groups = grouped(result)
    for (family, operation), n in sorted(result.checked.items()):
        count = sum(len(v) for v in groups.get((family, operation), {}).values())
        lines.append(f"{family:<10} {operation:<28} {n:>8} {count:>6}")
    for (family, operation), kinds in groups.items():
        for kind, drifts in kinds.items():
            first = drifts[0]
            lines.append(f"- {family}.{operation} [{kind}] {first.where}: recorded "
                         f"{_show(first.recorded, 60)}, fake {_show(first.fake, 60)}"
                         + (f" (+{len(drifts) - 1} more)" if len(drifts) > 1 else ""))
    lines.append(f"total: {result.exchanges} exchanges, {result.tasks} tasks, "
                 f"{len(result.drifts)} differences -> {'NO DRIFT' if result.ok else 'DRIFT'}")
    return "\n".join(lines)


def write_markdown(result: DiffResult, path: Path | str) -> Path:
    path = Path(path)
    lines = [f"# wanmock diff: {result.cassette}", "",
             f"{result.exchanges} recorded exchanges replayed against the fake (timing "
             f"`{result.timing}`), {result.tasks} tasks; {len(result.drifts)} difference(s). "
             f"Verdict: **{'no drift' if result.ok else 'drift'}**.", "",
             "| family | operation | checked | differences |", "|---|---|---:|---:|"]
    groups = grouped(result)
    for (family, operation), n in sorted(result.checked.items()):
        count = sum(len(v) for v in groups.get((family, operation), {}).values())
        lines.append(f"| {family} | {operation} | {n} | {count} |")
    for (family, operation), kinds in groups.items():
        lines += ["", f"## {family} `{operation}`"]
        for kind, drifts in kinds.items():
            lines += ["", f"### {kind} ({len(drifts)})", "",
                      "| where | recorded (provider) | fake | cassette line | task |",
                      "|---|---|---|---:|---|"]
            for d in drifts[:50]:
                lines.append(f"| `{d.where}` | {_show(d.recorded)} | {_show(d.fake)} | "
                             f"{d.line or ''} | {d.task or ''} |")
            if len(drifts) > 50:
                lines.append(f"| … {len(drifts) - 50} more | | | | |")
    if result.skipped or result.problems:
        lines += ["", "## Not compared", ""]
        lines += [f"- {item}" for item in [*result.problems, *result.skipped]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_junit(result: DiffResult, path: Path | str) -> Path:
    """One testsuite per family, one testcase per operation, one failure per kind."""
    path = Path(path)
    groups = grouped(result)
    families = sorted({f for f, _ in result.checked} | {f for f, _ in groups})
    suites = ET.Element("testsuites", name="wanmock diff", tests=str(len(result.checked)),
                        failures=str(len(groups)))
    for family in families:
        ops = sorted({o for f, o in result.checked if f == family}
                     | {o for f, o in groups if f == family})
        suite = ET.SubElement(suites, "testsuite", name=family, tests=str(len(ops)),
                              failures=str(sum(1 for o in ops if (family, o) in groups)))
        for op in ops:
            case = ET.SubElement(suite, "testcase", classname=family, name=op)
            ET.SubElement(case, "system-out").text = (
                f"{result.checked.get((family, op), 0)} recorded exchanges compared")
            for kind, drifts in groups.get((family, op), {}).items():
                failure = ET.SubElement(case, "failure", type=kind,
                                        message=f"{len(drifts)} {kind} difference(s)")
                failure.text = "\n".join(
                    f"{d.where}: recorded {_show(d.recorded, 400)} | fake {_show(d.fake, 400)}"
                    f" (line {d.line}, task {d.task})" for d in drifts)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path
