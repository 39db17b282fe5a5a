"""`wanmock proxy`: a validating, recording reverse proxy in front of a real provider.

Any client (any language, any HTTP library) points its base URL at the proxy. Each request is
matched to its contract operation by path, judged against the contract, forwarded to the target
with httpx (HTTPS or a loopback fake), and the answer judged too; every violation is printed as
it happens, kept in the journal (`GET /_wanmock/journal`, the dashboard when installed) and in
the exit report (Markdown and JSON). `--record FILE` writes a cassette (mockserver.cassette).

`guard=True`: a request the contract rejects is answered by an in-process fake in the family's
own envelope (and a task the contract says will fail later becomes a local task that fails)
and is never forwarded. `budget`: submits forwarded at most (default 0, as everywhere in
wanmock that can spend money; None is unlimited): every forwarded submit counts, whatever the
contract judge says, and is given back only on a non-2xx answer (`mockserver.proxy_budget`);
beyond it a submit gets the family's own 429 quota answer, made locally. Result URLs pass
through unchanged.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from mockserver.cassette import CassetteWriter
from mockserver.contracts import ContractSet, Operation, load
from mockserver.errors import MockServerError, ProviderError
from mockserver.jsonwire import ascii_int
from mockserver.providers.hotpath import read_body
from mockserver.proxy_budget import Budget, is_submit, refusal
from mockserver.proxy_headers import (
    answered_headers,
    end_to_end,
    forwarded_request,
    rewrite_links,
    with_key,
)
from mockserver.recorded import task_of_submit
from mockserver.recording import Echo, Recorder

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
STREAM_LIMIT = 8 * 1024 * 1024  # answers larger than this are streamed, not buffered


def parse_targets(values: Iterable[str]) -> dict[str | None, str]:
    """`URL` (every request) or `FAMILY=URL` (requests of that family), repeatable."""
    targets: dict[str | None, str] = {}
    for value in values:
        family, sep, url = value.partition("=")
        if not sep or "://" in family:
            family, url = "", value
        if not url.startswith(("http://", "https://")):
            raise MockServerError(f"--target {value!r}: expected URL or FAMILY=URL "
                                  "(http:// or https://)")
        targets[family or None] = url.rstrip("/")
    if not targets:
        raise MockServerError("wanmock proxy needs --target URL")
    return targets


# The largest request body forwarded: above every provider's own (DashScope takes 20 MB inline
# images as base64), far below what would strain the proxy; larger gets 413 and is not read.
BODY_LIMIT = 32 * 1024 * 1024


class Proxy:
    """The proxy's state: targets, contracts, the recorder, the local fake, budget counters."""

    def __init__(self, targets: Mapping[str | None, str] | str, *,
                 families: Iterable[str] | None = None, record: str | Path | None = None,
                 guard: bool = False, budget: int | None = 0, report: str | Path | None = None,
                 contracts: ContractSet | None = None, echo: Echo | None = None,
                 timeout: float = 60.0, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic, submits: Budget | None = None,
                 keys: Mapping[str, str] | None = None) -> None:
        """`submits`: a budget to share (the pytest plugin's session budget; default a new one
        of `budget`). `keys`: family -> the key sent upstream instead of the client's (the
        plugin's record mode: a test written against the fake records with the real key)."""
        from mockserver.app import create_app

        self.targets: dict[str | None, str] = (
            {None: targets} if isinstance(targets, str) else dict(targets))
        self.contracts = contracts or load()
        self.guard = guard
        self.budget = budget if submits is None else submits.limit
        self.submits = submits if submits is not None else Budget(budget)
        self.keys = dict(keys or {})
        self.report_path = Path(report) if report else None
        self.timeout = timeout
        self._transport = transport
        self.echo = echo
        self.clock = clock  # times since submit are read from it (a manual clock in tests)
        # The local fake answers guarded requests (in the family's envelope, a local task for a
        # job that would fail later) and holds the journal the control API and dashboard read.
        self.fake = create_app(list(families) if families else None, timing="fast",
                               contracts=self.contracts, journal_size=10000, webhooks="record")
        self.backend = self.fake.state.backend
        self.backend.proxy = self  # type: ignore[attr-defined]  # for the dashboard
        self.writer = CassetteWriter(record, clock=clock, target=self._target_names(),
                                     families=list(self.backend.options.families)
                                     ) if record else None
        self.recorder = Recorder(self.contracts, families=self.backend.options.families,
                                 writer=self.writer, journal=self.backend.journal, echo=echo)
        for key in self.keys.values():
            self.recorder.secret(key)
        self.local_tasks: set[str] = set()
        self.client: httpx.AsyncClient | None = None
        self.closed = False

    def record_to(self, path: str | Path | None) -> None:
        """Close the cassette being written and record into `path` from now on (None: stop
        recording); the pytest plugin gives each test its own."""
        if self.writer is not None:
            self.writer.close()
        self.writer = None
        if path is not None:
            self.writer = CassetteWriter(path, clock=self.clock, target=self._target_names(),
                                         families=list(self.backend.options.families))
        self.recorder.use_writer(self.writer)

    def _target_names(self) -> dict[str, str]:
        return {family or "*": url for family, url in self.targets.items()}

    def upstream_url(self, target: str, op: Operation | None, path: str) -> str:
        """Where a request goes upstream. A family's other hosts are served under a path prefix
        by the fake (`x-wanmock-mounts`, `/run.example` for `run.example`): when the target is
        one of the family's own provider hosts, a request under such a prefix goes to the
        mounted host, without the prefix (`/run.example/a/b` -> `https://run.example/a/b`);
        to a fake (any other target) it goes as sent, prefix included."""
        if op is not None:
            mounts = self.contracts[op.family].extensions.mounts
            hit = next((prefix for prefix in mounts
                        if path == prefix or path.startswith(prefix + "/")), None)
            if hit is not None and mounts[hit]:
                parts = urlsplit(target)
                if parts.scheme == "https" and (parts.hostname or "") in self.contracts.hosts(
                        op.family):
                    return f"https://{mounts[hit][0]}{path[len(hit):] or '/'}"
        return target + path

    def target_for(self, op: Operation | None) -> str | None:
        if op is not None and op.family in self.targets:
            return self.targets[op.family]
        return self.targets.get(None)

    # -- the app -----------------------------------------------------------------------------
    def app(self) -> Starlette:
        """The Starlette app (`uvicorn.run(proxy.app())`, `ThreadedMockServer(app=...)`)."""
        from mockserver.control import control_routes
        from mockserver.ui import ui_routes

        routes: list[BaseRoute] = [
            Route("/_wanmock/proxy", self.status_endpoint, methods=["GET"]),
            # The fake's control API and dashboard, over the proxy's journal and local tasks.
            *control_routes(self.backend),
            *ui_routes(self.backend),
            Route("/{path:path}", self.handle, methods=METHODS),
        ]
        app = Starlette(routes=routes, lifespan=self._lifespan)
        app.state.backend = self.backend
        app.state.proxy = self
        # The proxy appends its client to X-Forwarded-For: the server must not replace the
        # client with what that header claims (uvicorn does for loopback peers by default).
        app.state.uvicorn = {"proxy_headers": False}
        return app

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        from mockserver.ui import open_streams

        open_streams(self.backend)  # the dashboard's event streams (closed by a server's stop)
        self.client = httpx.AsyncClient(timeout=self.timeout, transport=self._transport,
                                        follow_redirects=False)
        try:
            yield
        finally:
            await self.client.aclose()
            self.close()

    def close(self) -> None:
        """Close the cassette and write the exit report (once)."""
        if self.closed:
            return
        self.closed = True
        if self.writer is not None:
            self.writer.close()
        stats = self.recorder.stats
        requests = sum(op.requests for op in stats.ops.values())
        self._say(f"wanmock proxy: {requests} request(s), {stats.violation_count} contract "
                  f"violation(s), {self.submits.line()}")
        if self.report_path is not None:
            from mockserver.proxy_report import write_report

            for written in write_report(self, self.report_path):
                self._say(f"wanmock proxy: report written to {written}")

    @property
    def spent(self) -> int:
        """Submits forwarded and not given back (what the budget counts)."""
        return self.submits.spent

    @property
    def refused(self) -> int:
        """Submits answered locally because the budget was spent."""
        return self.submits.refused

    def _say(self, line: str) -> None:
        if self.echo is not None:
            self.echo(line)

    async def status_endpoint(self, request: Request) -> Response:
        from mockserver.proxy_report import summary

        return JSONResponse(summary(self))

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        if path.startswith("/_wanmock/"):
            return JSONResponse({"error": f"no control route {path}", "type": "MockServerError"},
                                status_code=404)
        raw = await read_body(request, {k.lower(): v for k, v in request.headers.items()},
                              BODY_LIMIT)  # counted as it comes: a larger one is never held
        if raw is None:
            return JSONResponse({"error": f"wanmock proxy: request bodies are limited to "
                                 f"{BODY_LIMIT} bytes", "type": "MockServerError"},
                                status_code=413, headers={"connection": "close"})
        query = request.url.query
        method = request.method
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        lower = {k.lower(): v for k, v in reversed(headers)}
        op = self.recorder.operation(method, path)
        started = self.clock()
        violations = self.recorder.judge_request(op, path, query, lower, raw)
        blocking = [v for v in violations if v["rule"] != "unknown_operation"]
        task = self.recorder.task_for(op, path, query)
        if task is not None and task in self.local_tasks:
            return await self._local(request, op, raw, headers, started, violations, "guard")
        if self.guard and blocking:
            return await self._local(request, op, raw, headers, started, violations, "guard")
        target = self.target_for(op)
        if target is None:
            return self._answer(request, op, raw, headers, started, violations, 404, "proxy",
                                "WanmockNoTarget", f"no --target for {path}")
        billable = is_submit(op, method)
        family = op.family if op is not None else None
        if billable and not self.submits.take(family):
            return self._refuse(request, op, raw, headers, started, violations)
        try:
            return await self._forward(target, request, op, raw, headers, started, violations,
                                       billable)
        except httpx.HTTPError as exc:
            if billable and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                self.submits.refund(family)  # never reached the provider: nothing was created
            return self._answer(request, op, raw, headers, started, violations, 502,
                                "upstream-error", "WanmockUpstreamError",
                                f"wanmock proxy: the target did not answer: "
                                f"{type(exc).__name__}: {exc}")

    async def _forward(self, target: str, request: Request, op: Operation | None, raw: bytes,
                       headers: list[tuple[str, str]], started: float,
                       violations: list[dict[str, Any]], billable: bool) -> Response:
        assert self.client is not None, "the proxy app's lifespan did not run"
        # The path as sent (`%2F` stays `%2F`: the decoded path would name another resource).
        path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        url = self.upstream_url(target, op, path) + (
            f"?{request.url.query}" if request.url.query else "")
        sent = forwarded_request(headers, client=request.client.host if request.client else None,
                                 scheme=request.url.scheme, host=request.headers.get("host"))
        key = self.keys.get(op.family) if op is not None else None
        if key is not None:  # the real key instead of the test's placeholder
            sent = with_key(sent, self._provider(op, request.url.path), key)
        upstream = await self.client.send(
            self.client.build_request(request.method, url, headers=sent, content=raw),
            stream=True)
        status = upstream.status_code
        if billable and not 200 <= status < 300:
            self.submits.refund(op.family if op is not None else None)  # no job was created
        ctype = upstream.headers.get("content-type", "")
        length = upstream.headers.get("content-length", "")
        streamed = (op is None or op.role == "content" or not ("json" in ctype or "text" in ctype)
                    or (ascii_int(length) or 0) > STREAM_LIMIT)
        if streamed:
            return self._stream(upstream, request, op, raw, headers, started, violations)
        body = await upstream.aread()
        await upstream.aclose()
        # httpx decoded the body: its length and encoding are no longer the target's.
        out_headers = [(k, v) for k, v in self._answered(request, upstream)
                       if k.lower() != "content-encoding"]
        self.recorder.record(method=request.method, path=request.url.path,
                             query=request.url.query, headers=headers, raw=raw, status=status,
                             response_headers=out_headers, response_raw=body, op=op,
                             started=started, violations=violations)
        if "json" in ctype:  # self-links on a target lead back through the proxy
            body = rewrite_links(body, self.targets.values(), str(request.base_url)) or body
        response = Response(body, status_code=status)
        response.raw_headers = [*_raw(out_headers),
                                (b"content-length", str(len(body)).encode())]
        return response

    def _answered(self, request: Request, upstream: httpx.Response,
                  keep: Iterable[str] = ()) -> list[tuple[str, str]]:
        """The target's headers for the client (hop-by-hop dropped, Locations rewritten)."""
        return answered_headers(upstream.headers.multi_items(), self.targets.values(),
                                str(request.base_url), keep=keep)

    def _stream(self, upstream: httpx.Response, request: Request, op: Operation | None,
                raw: bytes, headers: list[tuple[str, str]], started: float,
                violations: list[dict[str, Any]]) -> Response:
        out_headers = self._answered(request, upstream, keep=("content-length",))
        recorder = self.recorder

        async def body() -> AsyncIterator[bytes]:
            size = 0
            try:
                async for chunk in upstream.aiter_raw():
                    size += len(chunk)
                    yield chunk
            finally:
                await upstream.aclose()
                recorder.record(method=request.method, path=request.url.path,
                                query=request.url.query, headers=headers, raw=raw,
                                status=upstream.status_code, response_headers=out_headers,
                                response_raw=None, response_size=size, op=op, started=started,
                                violations=violations)

        response = StreamingResponse(body(), status_code=upstream.status_code)
        response.raw_headers = _raw(out_headers)
        return response

    async def _local(self, request: Request, op: Operation | None, raw: bytes,
                     headers: list[tuple[str, str]], started: float,
                     violations: list[dict[str, Any]], origin: str) -> Response:
        """Answer from the in-process fake, as the provider would (never forwarded)."""
        transport = httpx.ASGITransport(app=self.fake)
        sent = end_to_end(headers)
        async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as c:
            answer = await c.request(request.method, request.url.path,
                                     params=request.url.query or None,
                                     headers=[*sent, ("x-wanmock-proxy", origin)], content=raw)
        body = answer.content
        if op is not None and op.role == "submit":
            try:
                task = task_of_submit(op, answer.status_code, json.loads(body))
            except ValueError:
                task = None
            if task is not None:
                self.local_tasks.add(task)
        out_headers = [(k, v) for k, v in end_to_end(answer.headers.multi_items())
                       if k.lower() != "content-encoding"]
        out_headers.append(("x-wanmock-proxy", origin))
        self.recorder.record(method=request.method, path=request.url.path,
                             query=request.url.query, headers=headers, raw=raw,
                             status=answer.status_code, response_headers=out_headers,
                             response_raw=body, op=op, started=started, violations=violations,
                             origin=origin)
        if violations:
            self._say(f"wanmock proxy: answered locally ({origin}), not forwarded: "
                      f"{request.method} {request.url.path}")
        response = Response(body, status_code=answer.status_code)
        response.raw_headers = [*_raw(out_headers), (b"content-length", str(len(body)).encode())]
        return response

    def _provider(self, op: Operation | None, path: str) -> Any:
        """The policy (the words) of the family of the proxy's own fake that owns this
        request."""
        from mockserver.families import owner

        providers = self.fake.state.providers
        family = op.family if op is not None else owner(path, providers)
        provider = providers.get(family) if family is not None else None
        return provider.policy if provider is not None else None

    def _refuse(self, request: Request, op: Operation | None, raw: bytes,
                headers: list[tuple[str, str]], started: float,
                violations: list[dict[str, Any]]) -> Response:
        self._say(f"wanmock proxy: budget of {self.budget} billable submit(s) spent; "
                  f"{request.method} {request.url.path} answered locally (--budget N)")
        provider = self._provider(op, request.url.path)
        if provider is None:
            return self._answer(request, op, raw, headers, started, violations, 429, "budget",
                                "WanmockBudgetExceeded",
                                f"wanmock proxy: the budget of {self.budget} billable "
                                "submit(s) is spent; this request was not forwarded "
                                "(raise --budget)")
        status, body, extra = refusal(provider, op, self.budget)
        return self._made(request, op, raw, headers, started, violations, status, body,
                          "budget", extra)

    def _answer(self, request: Request, op: Operation | None, raw: bytes,
                headers: list[tuple[str, str]], started: float,
                violations: list[dict[str, Any]], status: int, origin: str, code: str,
                message: str) -> Response:
        """A proxy-made answer in the family's error envelope (generic JSON off-contract)."""
        provider = self._provider(op, request.url.path)
        if provider is not None:
            body: Any = provider.error_body(ProviderError(status, code, message), op)
        else:
            body = {"code": code, "message": message}
        return self._made(request, op, raw, headers, started, violations, status, body, origin)

    def _made(self, request: Request, op: Operation | None, raw: bytes,
              headers: list[tuple[str, str]], started: float, violations: list[dict[str, Any]],
              status: int, body: Any, origin: str,
              extra: Mapping[str, str] | None = None) -> Response:
        """Record and send an answer the proxy made itself (marked `x-wanmock-proxy`)."""
        data = json.dumps(body, ensure_ascii=False).encode()
        out_headers = [("content-type", "application/json"), *(extra or {}).items(),
                       ("x-wanmock-proxy", origin)]
        self.recorder.record(method=request.method, path=request.url.path,
                             query=request.url.query, headers=headers, raw=raw, status=status,
                             response_headers=out_headers, response_raw=data, op=op,
                             started=started, violations=violations, origin=origin)
        response = Response(data, status_code=status)
        response.raw_headers = [*_raw(out_headers), (b"content-length", str(len(data)).encode())]
        return response


def _raw(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def stderr_echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
