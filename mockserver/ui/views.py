"""What the dashboard's pages show, computed from a `Backend` through its public methods only
(`tasks()`, `view()`, `journal.entries()`, `webhooks.entries()`, `scenarios.rules()`), so the
same pages work on every store. No Starlette here: routes.py renders these into templates.

Every page is paged: a page costs its rows (about 50 task views), plus one pass over the tasks'
plain attributes to filter and count them. Only a `state` filter needs every task's view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from mockserver.core.backend import Backend
from mockserver.core.ids import KEY_DIGEST, key_digest
from mockserver.core.journal import Entry
from mockserver.core.tasks import State, Task
from mockserver.jsonwire import ascii_int

PER_PAGE = 50
MAX_PER_PAGE = 500
TASK_FILTERS = ("family", "state", "model", "mode", "key", "q")
JOURNAL_FILTERS = ("family", "operation", "status", "task")


def key_label(api_key: str | None) -> str:
    """A name for an API key that does not reveal it: `key:` and 8 hex digits of its SHA-256.
    Links filter by this label, so a shared URL never carries a secret."""
    if not api_key:
        return ""
    digest = key_digest(api_key) or ""  # tasks keep the digest; a raw key is digested here
    return "key:" + digest[len(KEY_DIGEST):][:8]


def _key_matches(wanted: str, api_key: str | None) -> bool:
    """A filter by label (`key:1a2b3c4d`) or by the key itself, against a task's digest."""
    return wanted == key_label(api_key) or (api_key is not None
                                            and key_digest(wanted) == key_digest(api_key))


@dataclass(slots=True)
class Page:
    """One page of a paged list, with the links to its neighbours."""

    items: list[Any]
    total: int
    number: int
    per_page: int
    query: dict[str, str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.number - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        return min(self.total, self.number * self.per_page)

    def link(self, number: int) -> str:
        query = {**self.query, "page": str(number)}
        if self.per_page != PER_PAGE:
            query["per_page"] = str(self.per_page)
        return "?" + urlencode(query)


def page_number(params: Mapping[str, str]) -> tuple[int, int]:
    """`page` (from 1) and `per_page` from a query string; nonsense reads as the defaults."""
    def number(name: str, default: int) -> int:
        return ascii_int(params.get(name, ""), 9) or default

    return number("page", 1), min(MAX_PER_PAGE, number("per_page", PER_PAGE))


def filters_of(params: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The non-empty filters among `names` in a query string."""
    return {name: params[name].strip() for name in names if params.get(name, "").strip()}


@dataclass(slots=True)
class TaskRow:
    """A task as the tasks page lists it."""

    id: str
    family: str
    operation: str
    model: str
    mode: str
    geometry: str
    duration: int
    audio: bool
    state: str
    progress: int
    submitted_at: float
    ended_at: float | None
    polls: int
    scenario: str | None
    key: str

    def fingerprint(self) -> tuple[Any, ...]:
        return (self.id, self.state, self.progress, self.polls, self.scenario)


def geometry(task: Task) -> str:
    """`1280×720` (and the resolution tier when the request named one)."""
    spec = task.spec
    shape = f"{spec.width}×{spec.height}"
    tier = getattr(spec, "resolution", None)
    return f"{shape} {tier}" if isinstance(tier, str) and tier else shape


def task_row(backend: Backend, task: Task) -> TaskRow:
    snap = backend.view(task)
    spec = task.spec
    return TaskRow(
        id=task.id, family=task.family, operation=task.operation, model=spec.model,
        mode=spec.mode, geometry=geometry(task), duration=spec.duration, audio=bool(spec.audio),
        state=snap.state.value, progress=snap.progress, submitted_at=snap.submitted_at,
        ended_at=snap.ended_at, polls=task.polls, scenario=task.extra.get("scenario"),
        key=key_label(task.api_key),
    )


def _plain_match(task: Task, filters: Mapping[str, str]) -> bool:
    """The filters a task's own attributes answer (everything but `state`)."""
    family = filters.get("family")
    if family is not None and task.family != family:
        return False
    model = filters.get("model")
    if model is not None and task.spec.model != model:
        return False
    mode = filters.get("mode")
    if mode is not None and task.spec.mode != mode:
        return False
    key = filters.get("key")
    if key is not None and not _key_matches(key, task.api_key):
        return False
    text = filters.get("q")
    return text is None or text in task.id


def task_page(backend: Backend, filters: Mapping[str, str], number: int = 1,
              per_page: int = PER_PAGE) -> Page:
    """Tasks matching `filters`, newest first, one page of them."""
    tasks = [t for t in backend.tasks() if _plain_match(t, filters)]
    tasks.reverse()
    state = filters.get("state")
    if state is not None:
        tasks = [t for t in tasks if backend.view(t).state.value == state]
    total = len(tasks)
    number = min(number, max(1, -(-total // per_page)))
    start = (number - 1) * per_page
    rows = [task_row(backend, t) for t in tasks[start:start + per_page]]
    return Page(rows, total, number, per_page, dict(filters))


@dataclass(slots=True)
class Facets:
    """The values the filter menus offer."""

    families: list[str]
    models: list[str]
    modes: list[str]
    states: list[str] = field(default_factory=lambda: [s.value for s in State])


def facets(backend: Backend) -> Facets:
    """Families served, and the models and modes the catalogue knows for them."""
    families = list(backend.options.families)
    models: set[str] = set()
    modes: set[str] = set()
    for raw in backend.contracts.catalogue.data.get("models", []):
        if set(raw.get("families", ())) & set(families):
            models.add(str(raw.get("model")))
            modes.add(str(raw.get("mode")))
    return Facets(families, sorted(models), sorted(modes or {"t2v", "i2v", "r2v"}))


def _status_matches(wanted: str, status: int) -> bool:
    if len(wanted) == 3 and wanted[0].isdigit() and wanted[1:].lower() == "xx":
        return str(status)[:1] == wanted[0]
    return wanted == str(status)


@dataclass(slots=True)
class OperationStats:
    """How often one operation was called and how it was answered."""

    family: str
    operation: str
    calls: int = 0
    by_class: dict[str, int] = field(default_factory=dict)  # "2xx" -> count
    scenario: int = 0  # answers a scenario shaped
    violations: int = 0  # requests that broke the contract

    def count(self, status_class: str) -> int:
        return self.by_class.get(status_class, 0)


def journal_stats(entries: list[Entry]) -> list[OperationStats]:
    """Per (family, operation): calls, answers by status class, scenario-shaped answers and
    contract violations, most called first."""
    found: dict[tuple[str, str], OperationStats] = {}
    for entry in entries:
        key = (entry.family or "", entry.operation or "(no operation)")
        stats = found.get(key)
        if stats is None:
            stats = found[key] = OperationStats(*key)
        stats.calls += 1
        cls = f"{entry.status // 100}xx" if entry.status else "none"
        stats.by_class[cls] = stats.by_class.get(cls, 0) + 1
        stats.scenario += bool(entry.scenario)
        stats.violations += bool(entry.violations)
    return sorted(found.values(), key=lambda s: (-s.calls, s.family, s.operation))


def journal_entries(backend: Backend, filters: Mapping[str, str]) -> list[Entry]:
    """Journal entries matching `filters` (family, operation, status `404` or `4xx`, task),
    oldest first."""
    match = {}
    if "family" in filters:
        match["family"] = filters["family"]
    if "operation" in filters:
        match["operation"] = filters["operation"]
    if "task" in filters:
        match["task_id"] = filters["task"]
    entries = backend.journal.entries(**match)
    status = filters.get("status")
    if status is not None:
        entries = [e for e in entries if _status_matches(status, e.status)]
    return entries


def journal_page(backend: Backend, filters: Mapping[str, str], number: int = 1,
                 per_page: int = PER_PAGE, entries: list[Entry] | None = None) -> Page:
    """Journal entries matching `filters`, newest first, one page of them."""
    entries = list(journal_entries(backend, filters) if entries is None else entries)
    entries.reverse()
    total = len(entries)
    number = min(number, max(1, -(-total // per_page)))
    start = (number - 1) * per_page
    return Page(entries[start:start + per_page], total, number, per_page, dict(filters))


def find_entry(backend: Backend, seq: int) -> Entry | None:
    for entry in backend.journal.entries():
        if entry.seq == seq:
            return entry
    return None


def why(entry: Entry) -> list[str]:
    """Why the fake answered an exchange as it did, one line per reason: the scenario (a rule
    or the `X-Wanmock-Scenario` header) and every contract violation recorded on it."""
    reasons = []
    if entry.scenario and entry.scenario.startswith("replay of"):
        reasons.append(f"{entry.scenario}: the recorded answer (wanmock serve --replay)")
    elif entry.scenario and entry.scenario.startswith("replay end"):
        reasons.append(f"{entry.scenario} (wanmock serve --replay)")
    elif entry.scenario:
        reasons.append(f"scenario {entry.scenario}")
    for v in entry.violations:
        where = f" at {v['field']}" if v.get("field") else ""
        code = v.get("code") or ""
        reasons.append(f"rule {v.get('rule', '?')}{where}: {v.get('status', '')} {code} "
                       f"{v.get('message', '')}".rstrip())
    return reasons


def operations(backend: Backend) -> list[tuple[str, str]]:
    """(family, operationId) of every served operation, for the journal's filter menu."""
    return sorted((c.family, op) for c in backend.contracts
                  if c.family in backend.options.families for op in c.operations)
