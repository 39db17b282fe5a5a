"""Run the contracts against a server with Schemathesis: the fake in process, or any base URL.

`check()` runs every phase Schemathesis offers (examples, coverage, fuzzing, stateful through
the contracts' OpenAPI links) with its default checks and wanmock's (`mockserver.checks`), family
by family, and returns a `Report`: cases run, each failure with what the contract says, what the
server did and a curl line to reproduce it (keys redacted). `Report.write_junit()` and
`Report.write_markdown()` produce the CI artefacts.

A spend budget guards real providers: every submission the contract layer would *accept* is a
billable job; once the budget (default 0) is spent, such bodies are no longer generated. Negative
checks and read-only operations run whatever the budget, since rejected requests cost nothing.
"""

from __future__ import annotations

import copy
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mockserver.contracts import ContractSet, load
from mockserver.core.journal import redact_value
from mockserver.errors import MockServerError
from mockserver.families import bundled_names
from mockserver.families import spec as registry_spec

PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Built-in checks replaced by wanmock's catalogue-aware ones, or not applicable to these APIs.
DISABLED_BUILTIN = {
    # The catalogue rejects schema-valid bodies (a size a model does not offer): wanmock's
    # `valid_submission_accepted` judges acceptance with the catalogue instead.
    "positive_data_acceptance",
}
PROFILES = {
    # name: (max examples per operation, phases)
    "ci": (8, PHASES),
    "thorough": (200, PHASES),
}


@dataclass
class Finding:
    """One deviation: which check, what the contract says, what the server did, how to replay."""

    family: str
    operation: str
    check: str
    title: str
    message: str
    curl: str
    code: str = ""  # the failure's stable code (Schemathesis `ST...`, or wanmock's own)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.family, self.operation, self.check, self.title)


@dataclass
class FamilyResult:
    family: str
    cases: int = 0
    operations: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    billable: int = 0
    checks: dict[str, int] = field(default_factory=dict)  # check name -> times it ran


@dataclass
class Report:
    """The outcome of a `check()` run."""

    target: str
    results: list[FamilyResult] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(r.cases for r in self.results)

    @property
    def findings(self) -> list[Finding]:
        unique: dict[tuple[str, str, str, str], Finding] = {}
        for result in self.results:
            for finding in result.findings:
                unique.setdefault(finding.key, finding)
        return list(unique.values())

    @property
    def checks(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for result in self.results:
            for name, n in result.checks.items():
                totals[name] = totals.get(name, 0) + n
        return totals

    @property
    def errors(self) -> list[str]:
        return [e for r in self.results for e in r.errors]

    @property
    def ok(self) -> bool:
        return not self.findings and not self.errors and self.cases > 0

    def summary(self) -> str:
        lines = [f"{'family':<10} {'operation':<28} {'cases':>6} {'findings':>9}"]
        for result in self.results:
            for op, n in sorted(result.operations.items()):
                count = sum(1 for f in result.findings if f.operation == op)
                lines.append(f"{result.family:<10} {op:<28} {n:>6} {count:>9}")
        lines.append(f"total: {self.cases} cases, {len(self.findings)} findings, "
                     f"{len(self.errors)} errors -> {'CONFORMS' if self.ok else 'DRIFT'}")
        return "\n".join(lines)

    def write_junit(self, path: Path | str) -> Path:
        path = Path(path)
        suites = ET.Element("testsuites", name="wanmock check", tests=str(self.cases))
        for result in self.results:
            suite = ET.SubElement(suites, "testsuite", name=result.family,
                                  tests=str(len(result.operations)),
                                  failures=str(len({f.operation for f in result.findings})),
                                  errors=str(len(result.errors)), time=f"{result.seconds:.3f}")
            for op, n in sorted(result.operations.items()):
                case = ET.SubElement(suite, "testcase", classname=result.family, name=op)
                ET.SubElement(case, "system-out").text = f"{n} generated cases"
                for f in (x for x in result.findings if x.operation == op):
                    failure = ET.SubElement(case, "failure", type=f.check, message=f.title)
                    failure.text = f"{f.message}\n\n{f.curl}"
            for err in result.errors:
                case = ET.SubElement(suite, "testcase", classname=result.family, name="(run)")
                ET.SubElement(case, "error", message=err[:200]).text = err
        path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
        return path

    def write_markdown(self, path: Path | str) -> Path:
        path = Path(path)
        lines = [f"# wanmock drift report: {self.target}", "",
                 f"{self.cases} generated cases; {len(self.findings)} deviation(s); "
                 f"{len(self.errors)} error(s). Verdict: **{'conforms' if self.ok else 'drift'}**.",
                 "", "| family | operation | cases | deviations |", "|---|---|---|---|"]
        for result in self.results:
            for op, n in sorted(result.operations.items()):
                count = sum(1 for f in result.findings if f.operation == op)
                lines.append(f"| {result.family} | {op} | {n} | {count} |")
        for i, f in enumerate(self.findings, 1):
            lines += ["", f"## {i}. {f.family} `{f.operation}`: {f.title}", "",
                      f"- check: `{f.check}`" + (f" (code `{f.code}`)" if f.code else ""),
                      f"- what the contract says vs what the server did: "
                      f"{f.message.strip()}", "", "Reproduce:", "", "```", f.curl, "```"]
        for err in self.errors:
            lines += ["", "## Error", "", "```", err, "```"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def _config(*, base_url: str | None, api_key: str, max_examples: int, phases: Iterable[str],
            seed: int | None, rate_limit: str | None, client_5xx: Iterable[int] = (),
            submit_operations: Iterable[str] = (), workers: int = 1,
            wrong_method_status: int = 405, key_header: str = "Bearer {key}",
            validation: str = "submit") -> Any:
    from schemathesis.config import SchemathesisConfig

    chosen = set(phases)
    unknown = chosen - set(PHASES)
    if unknown:
        raise MockServerError(f"unknown phase(s) {sorted(unknown)}; choose from {PHASES}")
    data: dict[str, Any] = {
        "headers": {"Authorization": key_header.replace("{key}", api_key)},
        # No example database: a run depends only on its seed, not on earlier runs.
        "generation": {"max-examples": max_examples, "mode": "all", "database": "none"},
        "phases": {name: {"enabled": name in chosen} for name in PHASES},
        "checks": {name: {"enabled": False} for name in DISABLED_BUILTIN},
        "workers": workers,
        "suppress-health-check": ["all"],
        "output": {"sanitization": {"enabled": True}},
    }
    if validation == "runner":
        # The provider queues any JSON object and refuses a bad input in the runner
        # (x-wanmock-validation: runner): a 200 to invalid data is its documented answer.
        data["checks"]["negative_data_rejection"] = {"enabled": False}
    if wrong_method_status != 405:
        # The provider answers another method on a known path as it answers an unknown path
        # (x-wanmock-unrouted: new-api's gin has no 405), which Schemathesis's check forbids.
        data["checks"]["unsupported_method"] = {"enabled": False}
    extra = [str(s) for s in client_5xx]
    if extra:
        # A family's documented answers to client input (x-wanmock-client-5xx) are not faults.
        data["checks"]["not_a_server_error"] = {"expected-statuses": ["2xx", "3xx", "4xx",
                                                                      *extra]}
    submits = list(submit_operations)
    if submits:
        # Under a budget, submissions go only through generated phases, where the budget filter
        # applies; Schemathesis sends explicit examples unfiltered.
        data["operations"] = [{"include-operation-id": op_id,
                               "phases": {"examples": {"enabled": False}}} for op_id in submits]
    if seed is not None:
        data["seed"] = seed
    if base_url:
        data["base-url"] = base_url
    if rate_limit:
        data["rate-limit"] = rate_limit
    return SchemathesisConfig.from_dict(data)


def _budget_filter(contracts: ContractSet, family: str, budget: list[int]) -> Callable[..., bool]:
    lock = threading.Lock()

    def filter_case(context: Any, case: Any) -> bool:
        op_id = (getattr(case.operation.definition, "raw", {}) or {}).get("operationId")
        op = contracts[family].operations.get(str(op_id))
        if op is None or op.role != "submit":
            return True
        body = case.body
        if type(body).__name__ == "NotSet" or not isinstance(body, dict):
            return True
        _, violations = contracts[family].judge(op.operation_id, body)
        if any(v.timing == "submit" for v in violations):
            return True  # rejected at submit: free
        with lock:
            if budget[0] <= 0:
                return False
            budget[0] -= 1
            return True

    return filter_case


def _valid_submits(contracts: ContractSet, family: str) -> Callable[[Any, Any], Any]:
    """Under a budget: each submit operation's generated bodies mixed with bodies the contract
    layer accepts (`mockserver.strategies`). Schemathesis's own seldom pass every catalogue
    rule (a `model` the schema leaves a free string, checked against the provider's own list),
    so a budget would buy no job to follow to its end; the budget filter still caps what is
    sent."""
    from hypothesis import strategies as st

    from mockserver import strategies as ws

    def before_generate_body(context: Any, strategy: Any) -> Any:
        operation = getattr(context, "operation", None)
        raw = getattr(getattr(operation, "definition", None), "raw", None) or {}
        op = contracts[family].operations.get(str(raw.get("operationId")))
        if op is None or op.role != "submit":
            return strategy
        try:
            valid = ws.requests(family, operation=op.operation_id, valid=True)
        except (MockServerError, ValueError):  # an operation the strategies cannot fill
            return strategy
        return st.one_of(valid.map(lambda pair: pair[1]), strategy)  # valid first: spent early

    return before_generate_body


def check(
    target: str | Any,
    *,
    families: Iterable[str] | None = None,
    api_key: str = "sk-wanmock",
    budget: int | None = None,
    max_examples: int = 8,
    phases: Iterable[str] = PHASES,
    seed: int | None = 0,
    rate_limit: str | None = None,
    progress: Callable[[str], None] | None = None,
    fetch: Callable[[str], tuple[int, bytes, str]] | None = None,
    contracts: ContractSet | None = None,
) -> Report:
    """Check a server against the contracts.

    `target` is a base URL (`http://127.0.0.1:8000`, `https://dashscope.aliyuncs.com`) or an
    ASGI app (the fake, in process). `budget=None` means unlimited (the fake); a number caps the
    billable submissions. `fetch(url) -> (status, first bytes, content type)` downloads result
    videos for `video_url_iff_succeeded`; by default URLs are fetched over HTTP (or through the
    app in process).
    """
    import schemathesis
    from schemathesis.engine import from_schema

    from mockserver import checks as wanmock_checks

    contracts = contracts or load()
    chosen = list(families or bundled_names())
    for fam in chosen:
        contracts[fam]  # raises ContractError for an unknown family
    is_url = isinstance(target, str)
    label = target if is_url else "in-process app"
    fetcher = fetch or (_http_fetch if is_url else _app_fetch(target))
    wanmock_checks.STATE.reset(contracts, fetcher)
    report = Report(target=redact_value(str(label)))
    remaining = [budget if budget is not None else 10**9]
    for family in chosen:
        result = FamilyResult(family)
        report.results.append(result)
        started = time.perf_counter()
        config = _config(base_url=target.rstrip("/") if is_url else None, api_key=api_key,
                         max_examples=max_examples, phases=phases, seed=seed,
                         rate_limit=rate_limit,
                         client_5xx=sorted(contracts[family].extensions.client_5xx),
                         wrong_method_status=contracts[family].extensions.wrong_method_status,
                         key_header=registry_spec(family).key_header,
                         validation=contracts[family].extensions.validation,
                         submit_operations=[] if budget is None else [
                             op.operation_id for op in contracts[family].by_role("submit")])
        document = contracts[family].document
        if is_url:
            schema = schemathesis.openapi.from_dict(_for_server(document), config=config)
        else:
            schema = schemathesis.openapi.from_asgi(f"/_wanmock/contracts/{family}.json", target,
                                                    config=config)
        schema.hook("filter_case")(_budget_filter(contracts, family, remaining))
        if budget is not None and budget > 0:
            schema.hook("before_generate_body")(_valid_submits(contracts, family))
        if progress:
            progress(f"[{family}] running {', '.join(phases)}")
        before = remaining[0]
        for event in from_schema(schema).execute():
            _consume(event, result, family, progress)
        result.billable = before - remaining[0] if budget is not None else 0
        result.seconds = time.perf_counter() - started
        if progress:
            progress(f"[{family}] {result.cases} cases, {len(result.findings)} findings, "
                     f"{result.seconds:.1f} s")
    return report


def _for_server(document: Any) -> Any:
    # A deep copy: Schemathesis annotates the schema it loads, and the contract set is shared.
    doc = copy.deepcopy(dict(document))
    doc.pop("servers", None)  # the base URL comes from the command line
    return doc


def _consume(event: Any, result: FamilyResult, family: str,
             progress: Callable[[str], None] | None) -> None:
    name = type(event).__name__
    if name == "ScenarioFinished":
        recorder = event.recorder
        for node in recorder.cases.values():
            op = _label_to_op(node.value)
            result.operations[op] = result.operations.get(op, 0) + 1
            result.cases += 1
        for case_id, nodes in recorder.checks.items():
            for node in nodes:
                result.checks[node.name] = result.checks.get(node.name, 0) + 1
                if node.status.name != "FAILURE" or node.failure_info is None:
                    continue
                info = node.failure_info
                case = recorder.cases.get(case_id)
                op = _label_to_op(case.value) if case else recorder.label
                result.findings.append(Finding(
                    family=family, operation=op, check=node.name,
                    title=info.failure.title, message=info.failure.message or "",
                    curl=redact_value(info.code_sample),
                    code=str(getattr(info.failure, "code", "") or ""),
                ))
    elif name in ("NonFatalError", "FatalError"):
        info = getattr(event, "info", None)
        text = getattr(info, "message", None) or str(getattr(event, "value", "") or
                                                      getattr(event, "exception", ""))
        result.errors.append(f"{name}: {text}")
        if progress:
            progress(f"[{family}] {name}: {text[:200]}")


def _label_to_op(case: Any) -> str:
    raw = getattr(case.operation.definition, "raw", None) or {}
    return str(raw.get("operationId") or case.operation.label)


def _http_fetch(url: str) -> tuple[int, bytes, str]:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=30, headers={"Range": "bytes=0-63"}) as r:
            head = next(r.iter_bytes(), b"")
            status = 200 if r.status_code in (200, 206) else r.status_code
            return status, head, r.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        return 0, b"", str(exc)


def _app_fetch(app: Any) -> Callable[[str], tuple[int, bytes, str]]:
    import httpx

    from mockserver.loop_thread import LoopThread

    loop: list[LoopThread] = []

    def fetch(url: str) -> tuple[int, bytes, str]:
        async def get() -> tuple[int, bytes, str]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport) as client:
                r = await client.get(url, headers={"Range": "bytes=0-63"})
                status = 200 if r.status_code in (200, 206) else r.status_code
                return status, r.content[:64], r.headers.get("content-type", "")

        if not loop:
            loop.append(LoopThread())
        return loop[0].run(get())  # type: ignore[no-any-return]

    return fetch
