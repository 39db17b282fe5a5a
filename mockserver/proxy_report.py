"""The proxy's report: what it forwarded, answered itself, and every contract violation it saw.

`summary(proxy)` is the JSON (`GET /_wanmock/proxy`, `<report>.json`); `write_report()` writes it
and a Markdown page in the style of `wanmock check`'s drift report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def summary(proxy: Any) -> dict[str, Any]:
    """Counts per family and operation, the budget, and each distinct violation with its
    count (keys never appear: the recorder redacted every message)."""
    stats = proxy.recorder.stats
    operations = []
    for (family, operation), op in sorted(stats.ops.items()):
        operations.append({
            "family": family, "operation": operation, "requests": op.requests,
            "statuses": {str(k): v for k, v in sorted(op.statuses.items())},
            "origins": dict(op.origins),
            "violations": [{"side": side, "rule": rule, "field": where, "message": message,
                            "count": count}
                           for (side, rule, where, message), count in op.violations.items()],
        })
    return {
        "targets": proxy._target_names(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stats.started)),
        "guard": proxy.guard,
        "budget": proxy.submits.summary(),
        "cassette": str(proxy.writer.path) if proxy.writer is not None else None,
        "requests": sum(o["requests"] for o in operations),
        "violations": stats.violation_count,
        "operations": operations,
    }


def markdown(data: dict[str, Any]) -> str:
    budget = data["budget"]
    limit = "unlimited" if budget["limit"] is None else budget["limit"]
    per_family = "; ".join(
        f"{name}: forwarded {c['forwarded']}, refunded {c['refunded']}, refused {c['refused']}"
        for name, c in budget["families"].items())
    lines = [
        "# wanmock proxy report", "",
        f"- targets: {', '.join(f'{k} -> {v}' for k, v in data['targets'].items())}",
        f"- started: {data['started']}; guard: {'on' if data['guard'] else 'off'}; "
        f"billable submits: {budget['spent']} of {limit} spent (forwarded {budget['forwarded']}, "
        f"refunded {budget['refunded']}, refused {budget['refused']})"
        + (f" - {per_family}" if per_family else ""),
        f"- cassette: {data['cassette'] or '(not recording)'}",
        f"- {data['requests']} requests, {data['violations']} contract violations "
        f"-> {'CONFORMS' if not data['violations'] else 'VIOLATIONS'}", "",
        "| family | operation | requests | statuses | answered by | violations |",
        "|---|---|---:|---|---|---:|",
    ]
    for op in data["operations"]:
        statuses = ", ".join(f"{k}x{v}" for k, v in op["statuses"].items())
        origins = ", ".join(f"{k} {v}" for k, v in op["origins"].items())
        count = sum(v["count"] for v in op["violations"])
        lines.append(f"| {op['family']} | {op['operation']} | {op['requests']} | {statuses} | "
                     f"{origins} | {count} |")
    for op in data["operations"]:
        if not op["violations"]:
            continue
        lines += ["", f"## {op['family']}.{op['operation']}", "",
                  "| side | rule | field | message | times |", "|---|---|---|---|---:|"]
        for v in op["violations"]:
            message = str(v["message"]).replace("|", "\\|").replace("\n", " ")[:300]
            lines.append(f"| {v['side']} | `{v['rule']}` | `{v['field']}` | {message} | "
                         f"{v['count']} |")
    return "\n".join(lines) + "\n"


def write_report(proxy: Any, path: Path | str) -> list[Path]:
    """Write `<path>.md` and `<path>.json` (a `.md`/`.json` suffix on `path` is replaced)."""
    base = Path(path)
    if base.suffix in (".md", ".json"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    data = summary(proxy)
    # Appended, not swapped: `nightly.report` gives nightly.report.md, not nightly.md.
    md, js = base.with_name(base.name + ".md"), base.with_name(base.name + ".json")
    md.write_text(markdown(data), encoding="utf-8")
    js.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [md, js]
