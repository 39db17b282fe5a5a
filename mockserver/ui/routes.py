"""The dashboard's routes under `/_wanmock/ui`: server-rendered pages (Jinja2, autoescaped), the
bundled static files and the live event stream. `ui_routes(backend)` needs nothing but a
`Backend`, so any app that serves one (the fake, `wanmock proxy`) can mount it.

    GET /_wanmock/ui                          tasks (?family=&state=&model=&mode=&key=&q=&page=)
    GET /_wanmock/ui/tasks/{id}               one task: timeline, polls, webhooks, video
    GET /_wanmock/ui/tasks/{id}/request.json  the request as submitted, whole
    GET /_wanmock/ui/journal                  exchanges (?family=&operation=&status=&task=&page=)
    GET /_wanmock/ui/journal/{seq}            one exchange, bodies and why it was answered so
    GET /_wanmock/ui/journal/{seq}.json       the same entry as the journal keeps it
    GET /_wanmock/ui/controls                 forms over the control API
    GET /_wanmock/ui/contracts                each family's operations and parameters
    GET /_wanmock/ui/events?view=...          server-sent events: the page's version
    GET /_wanmock/ui/static/...               the bundled CSS and JS

Each page marks its live regions (`data-live`, with a `data-version`); when the stream says the
page's version changed, the page's script fetches the page again and swaps the regions whose
version differs (a playing video is not restarted by a new poll).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from html import escape as html_escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mockserver.core.backend import Backend
from mockserver.core.store import StoreUnavailable
from mockserver.core.tasks import State, Task
from mockserver.jsonwire import ascii_int
from mockserver.ui import views
from mockserver.ui.contracts_view import family_operations
from mockserver.ui.preview import preview_body, preview_value
from mockserver.ui.stream import events
from mockserver.ui.timeline import attempts, plan_of, task_entries, ticks, timeline

PREFIX = "/_wanmock/ui"
HERE = Path(__file__).parent
# The pages run only the bundled script; nothing may load from elsewhere.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["ago"] = _seconds
    env.filters["clock"] = _clock
    env.filters["size"] = lambda n: f"{n:,}"
    env.filters["g"] = lambda n: f"{n:g}"
    env.globals["prefix"] = PREFIX
    return env


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f} s" if abs(value) < 10 else f"{value:.1f} s"


def _clock(value: float | None) -> str:
    """A clock reading as UTC wall time when it looks like one, else as seconds."""
    if value is None:
        return "–"
    if value > 1e9:
        return time.strftime("%H:%M:%S", time.gmtime(value)) + f".{int(value * 1000) % 1000:03d}"
    return f"t={value:.3f}"


def _version(*parts: Any) -> str:
    return hashlib.sha1(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _journal_full(backend: Backend) -> int | None:
    """The journal's size when it is full (older exchanges have been dropped), else None."""
    journal = backend.journal
    maxlen = getattr(journal, "maxlen", None)
    try:
        return maxlen if isinstance(maxlen, int) and len(journal) >= maxlen else None
    except TypeError:  # a journal without a length
        return None


class Dashboard:
    """The pages of one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.env = _environment()

    # -- rendering ---------------------------------------------------------------------------
    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        backend = self.backend
        context.update(
            request=request, families=list(backend.options.families),
            clock_now=backend.now(), clock_kind=backend.clock.kind, path=request.url.path,
            query=request.url.query,
        )
        html = self.env.get_template(name).render(**context)
        try:
            body = html.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate a client sent (`\ud800`): shown as U+FFFD
            body = html.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
        return HTMLResponse(body, status_code=status, headers={
            "Content-Security-Policy": CSP, "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    def not_found(self, request: Request, what: str) -> Response:
        return self.render(request, "missing.html", status=404, what=what)

    # -- versions (what the event stream compares) -------------------------------------------
    def tasks_version(self, params: Any) -> str:
        number, per_page = views.page_number(params)
        page = views.task_page(self.backend, views.filters_of(params, views.TASK_FILTERS),
                               number, per_page)
        return _version(page.total, page.number, [r.fingerprint() for r in page.items])

    def task_version(self, task: Task) -> str:
        snap = self.backend.view(task)
        hooks = self.backend.webhooks.entries(task.id)
        entries = task_entries(self.backend, task)
        return _version(snap.state, snap.progress, snap.ended_at, task.polls, len(entries),
                        entries[-1].seq if entries else 0,
                        [(h.seq, h.state, len(attempts(h))) for h in hooks],
                        task.forced)

    def journal_version(self, params: Any) -> str:
        number, per_page = views.page_number(params)
        page = views.journal_page(self.backend, views.filters_of(params, views.JOURNAL_FILTERS),
                                  number, per_page)
        return _version(page.total, [(e.seq, e.status) for e in page.items])

    def controls_version(self) -> str:
        rules = [(r.id, r.matched, r.applied) for r in self.backend.scenarios.rules()]
        return _version(rules, round(self.backend.now(), 1), sum(1 for _ in self.backend.tasks()))

    # -- pages -------------------------------------------------------------------------------
    async def tasks(self, request: Request) -> Response:
        params = request.query_params
        filters = views.filters_of(params, views.TASK_FILTERS)
        number, per_page = views.page_number(params)
        page = views.task_page(self.backend, filters, number, per_page)
        version = _version(page.total, page.number, [r.fingerprint() for r in page.items])
        return self.render(request, "tasks.html", page=page, filters=filters,
                           facets=views.facets(self.backend), version=version,
                           events=f"{PREFIX}/events?view=tasks&{request.url.query}")

    def _task(self, request: Request) -> Task | None:
        return self.find_task(request.path_params["task_id"])

    def find_task(self, task_id: str | None) -> Task | None:
        if not task_id:
            return None
        store = getattr(self.backend, "store", None)
        if store is not None and hasattr(store, "get"):
            return store.get(task_id)  # type: ignore[no-any-return]
        return next((t for t in self.backend.tasks() if t.id == task_id), None)

    async def task(self, request: Request) -> Response:
        task = self._task(request)
        if task is None:
            return self.not_found(request, f"task {request.path_params['task_id']}")
        backend = self.backend
        backend.flush_webhooks()  # as GET /_wanmock/webhooks does: a task that ended owes them
        snap = backend.view(task)
        entries = task_entries(backend, task)
        hooks = backend.webhooks.entries(task.id)
        line = timeline(backend, task, snap, entries, hooks)
        video = None
        if snap.state is State.SUCCEEDED:
            video = backend.video_url("", task, snap)
        responses = [(e, views.why(e), preview_body(e.response_body, 1024)) for e in entries]
        return self.render(
            request, "task.html", task=task, row=views.task_row(backend, task), snap=snap,
            line=line, axis=ticks(line), video=video, responses=responses,
            request_preview=preview_value(task.request),  # type: ignore[attr-defined]
            plan=plan_of(task),
            hooks=[(h, preview_value(h.body, 1024) if h.body is not None else None)
                   for h in hooks],
            states=[s.value for s in State], version=self.task_version(task), attempts=attempts,
            journal_full=_journal_full(backend),
            events=f"{PREFIX}/events?" + urlencode({"view": "task", "id": task.id}),
        )

    async def task_request(self, request: Request) -> Response:
        task = self._task(request)
        if task is None:
            return JSONResponse({"error": "no such task"}, status_code=404)
        body = task.request  # type: ignore[attr-defined]  # a property (see Task)
        try:
            text = json.dumps(body, ensure_ascii=False, indent=1)
        except (TypeError, ValueError):
            text = json.dumps(repr(body))
        from mockserver.core.journal import redact_value

        return Response(redact_value(text), media_type="application/json")

    async def journal(self, request: Request) -> Response:
        params = request.query_params
        filters = views.filters_of(params, views.JOURNAL_FILTERS)
        number, per_page = views.page_number(params)
        entries = views.journal_entries(self.backend, filters)
        page = views.journal_page(self.backend, filters, number, per_page, entries)
        rows = [(e, views.why(e), preview_body(e.request_body, 512),
                 preview_body(e.response_body, 512)) for e in page.items]
        return self.render(request, "journal.html", page=page, rows=rows, filters=filters,
                           stats=views.journal_stats(entries),
                           maxlen=getattr(self.backend.journal, "maxlen", None),
                           operations=views.operations(self.backend),
                           version=_version(page.total, [(e.seq, e.status) for e in page.items]),
                           events=f"{PREFIX}/events?view=journal&{request.url.query}")

    async def entry(self, request: Request) -> Response:
        name = request.path_params["seq"]
        want_json = name.endswith(".json")
        seq = name.removesuffix(".json")
        number = ascii_int(seq)
        entry = views.find_entry(self.backend, number) if number is not None else None
        if entry is None:
            if want_json:
                return JSONResponse({"error": f"no journal entry {seq}"}, status_code=404)
            return self.not_found(request, f"journal entry {seq}")
        if want_json:
            return JSONResponse(entry.as_dict())
        return self.render(request, "entry.html", entry=entry, why=views.why(entry),
                           request_preview=preview_body(entry.request_body),
                           response_preview=preview_body(entry.response_body))

    async def controls(self, request: Request) -> Response:
        from mockserver.core.faults import descriptions
        from mockserver.core.scenarios import JOB

        backend = self.backend
        return self.render(request, "controls.html", rules=backend.scenarios.rules(),
                           job=JOB, transport=descriptions(), states=[s.value for s in State],
                           task_id=request.query_params.get("task", ""),
                           options=backend.options, version=self.controls_version(),
                           operations=views.operations(backend),
                           events=f"{PREFIX}/events?view=controls")

    async def contracts(self, request: Request) -> Response:
        wanted = request.query_params.get("family")
        shown = [c for c in self.backend.contracts
                 if c.family in self.backend.options.families and wanted in (None, c.family)]
        return self.render(request, "contracts.html", wanted=wanted,
                           contracts=[(c, family_operations(c)) for c in shown])

    async def stream(self, request: Request) -> Response:
        params = request.query_params
        view = params.get("view", "tasks")
        if view == "task":
            found = self.find_task(params.get("id"))
            if found is None:
                return JSONResponse({"error": "no such task"}, status_code=404)
            task = found

            def version() -> str:
                return self.task_version(task)
        elif view == "journal":
            def version() -> str:
                return self.journal_version(params)
        elif view == "controls":
            version = self.controls_version
        else:
            def version() -> str:
                return self.tasks_version(params)

        return StreamingResponse(
            events(self.backend, version, request.is_disconnected),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _unavailable(page: Callable[[Request], Awaitable[Response]]) -> Any:
    """A page that answers 503 while the store cannot be reached (the family routes' 503)."""
    async def endpoint(request: Request) -> Response:
        try:
            return await page(request)
        except StoreUnavailable as exc:
            return HTMLResponse(
                "<!doctype html><title>wanmock: store unavailable</title><h1>The store is "
                f"unavailable</h1><p>{html_escape(str(exc))}</p><p>This page works again as "
                "soon as the store is back.</p>", status_code=503,
                headers={"Retry-After": "1", "Cache-Control": "no-store"})

    endpoint.__name__ = getattr(page, "__name__", "page")
    return endpoint


def ui_routes(backend: Backend) -> list[BaseRoute]:
    """The dashboard's routes for one backend (mount them in any Starlette app); each page
    answers 503 while the store cannot be reached."""
    board = Dashboard(backend)
    page = _unavailable
    return [
        Route(PREFIX, page(board.tasks), methods=["GET"], name="ui_tasks"),
        Route(PREFIX + "/", page(board.tasks), methods=["GET"]),
        Route(PREFIX + "/tasks/{task_id}/request.json", page(board.task_request), methods=["GET"]),
        Route(PREFIX + "/tasks/{task_id}", page(board.task), methods=["GET"]),
        Route(PREFIX + "/journal", page(board.journal), methods=["GET"]),
        Route(PREFIX + "/journal/{seq}", page(board.entry), methods=["GET"]),
        Route(PREFIX + "/controls", page(board.controls), methods=["GET"]),
        Route(PREFIX + "/contracts", page(board.contracts), methods=["GET"]),
        Route(PREFIX + "/events", page(board.stream), methods=["GET"]),
        Mount(PREFIX + "/static", app=StaticFiles(directory=str(HERE / "static")),
              name="ui_static"),
    ]
