"""The request pipeline every family's routes share, from the contract to the response.

`Pipeline.routes()` builds one Starlette route per contract operation (the contract decides the
paths); each route's endpoint reads the body, journals the exchange, applies a transport
scenario, runs the preflight (authentication, the family's header rules, the rate limit, the
contract's parameters), calls the handler (through replay when a cassette is served) and turns
any `ProviderError` into the family's own status and envelope: nothing a client sends can
produce a traceback or an unplanned 500. What each family decides (its wording, its judgement
of a body) is its policy (`providers/policy.py`); `providers.base.Family` joins the two.

What does not depend on the request is decided once per operation when the route is built
(which role it has, whether it names a task, which parameters it checks), so the hot path does
only the request's own work.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver.catalogue import JobSpec
from mockserver.contracts import Operation
from mockserver.core.clock import SystemClock
from mockserver.core.ids import Ids
from mockserver.core.scenarios import FaultRequested, RequestInfo, Scenario
from mockserver.core.store import StoreUnavailable
from mockserver.core.tasks import Task
from mockserver.errors import ContractError, MockServerError, ProviderError, Violation
from mockserver.jsonwire import NotJSON
from mockserver.jsonwire import decode as decode_json
from mockserver.jsonwire import verbatim as verbatim_json
from mockserver.providers.exchange import EXCHANGE, NOT_JSON, UNPARSED, Exchange
from mockserver.providers.hotpath import (
    JSONResponse,
    body_of,
    header_dict,
    headers_of,
    path_and_query,
    read_body,
    slashed,
)
from mockserver.providers.hotpath import public_base as _public_base

if TYPE_CHECKING:
    from mockserver.contracts import Contract
    from mockserver.core.backend import Backend

log = logging.getLogger("mockserver")
Handler = Callable[[Request, Operation, bytes], Awaitable[Response]]
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
SCENARIO_HEADER = "x-wanmock-scenario"
_NO_QUERY: dict[str, str] = {}  # for operations that declare no query parameter
# The roles whose path or query names a task: the journal knows it before the handler runs.
_TASK_ROLES = frozenset({"query", "cancel", "content"})


def handler_name(operation_id: str) -> str:
    """`createVideoSynthesis` -> `create_video_synthesis`."""
    return _CAMEL.sub("_", operation_id).lower()


class Pipeline:
    """The request pipeline of one family, over its policy's wording (see `providers.base`)."""

    # Provided by the family's policy (providers/policy.py) and `Family.__init__`.
    name: str
    backend: Backend
    contract: Contract
    # operationId -> (checks parameters at all, checks query parameters): the contract's
    # declared parameters, fixed for the life of the routes.
    _param_checks: dict[str, tuple[bool, bool]]

    # -- routing -----------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """One Starlette route per contract operation, each to its handler's endpoint."""
        routes = []
        for op in self.contract.operations.values():
            method = getattr(self, handler_name(op.operation_id), None)
            if method is None:
                raise ContractError(
                    f"{self.name}: the contract's {op.operation_id} has no handler "
                    f"{handler_name(op.operation_id)}; is the contract newer than the fake?"
                )
            endpoint = self._endpoint(op, method)
            routes.append(Route(op.path, endpoint, methods=[op.method]))
            if self.trailing_slash() is not None:
                routes.append(Route(op.path + "/", slashed(endpoint, self.trailing_slash),
                                    methods=[op.method]))
        return routes

    def _endpoint(self, op: Operation,
                  handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        backend = self.backend
        name, operation = self.name, op.operation_id
        names_task = op.role in _TASK_ROLES
        self._param_checks[operation] = (op.checks_parameters, op.checks_query)
        headers_memo = backend.memo("headers", 1024)
        transport_scenario = self.transport_scenario
        preflight = self.preflight
        error_response = self.error_response
        # A shared store writes a submit's new tasks in one batch with other requests'.
        state: Any = backend.state  # a SharedStore when `shared` (core/store/shared.py)
        defer = state.shared and op.role == "submit"

        async def endpoint(request: Request) -> Response:
            scope = request.scope
            try:
                # The one carrier of this request's pipeline state (see providers/exchange.py).
                scope[EXCHANGE] = exchange = Exchange(
                    name, op, header_dict(scope["headers"], headers_memo))
                raw = await read_body(request, exchange.headers, backend.options.body_limit)
                path, query = path_and_query(request)
                exchange.entry = entry = backend.journal.record(
                    time=backend.clock.now(), method=scope["method"], path=path,
                    query=query, headers=exchange.headers.items(), body=raw,
                    family=name, operation=operation,
                )
            except StoreUnavailable:  # read before the pipeline's own error handling
                return self.unavailable_response(op)
            if names_task:
                # Known before the handler runs, so a faulted poll still counts as a poll of
                # its task (assert_poll_interval, assert_stopped_polling).
                params = scope["path_params"]
                entry.task_id = params.get("task_id") or params.get("video_id") or (
                    request.query_params.get("task_id") if "task_id=" in query else None)
            # A shared store writes this request's new tasks in one batch with other
            # requests' (core/store/shared.py), awaited below before the answer.
            writes = state.defer_writes() if defer else None
            try:
                fault = transport_scenario(request, op, raw)
                if fault is not None:
                    entry.scenario = fault.label()
                    early = await self.apply_fault(fault, op)
                else:
                    early = None
                if early is not None:
                    response = early
                else:
                    preflight(request, op)
                    if raw is None:
                        raise self.flag(self.body_error("too_large", op), "body:too_large")
                    if backend.replay is None:
                        response = await handler(request, op, raw)
                    else:
                        response = await self._replaying(request, op, raw, handler)
            except StoreUnavailable:  # the store is down or restarting: the family's 503
                response = self.unavailable_response(op)
            except FaultRequested as requested:
                entry.scenario = requested.scenario.label()
                response = error_response(self.fault_error(requested.scenario, op), op)
            except MockServerError as exc:  # a bad X-Wanmock-Scenario: toolkit misuse
                response = JSONResponse({"error": str(exc), "type": "MockServerError"},
                                        status_code=400)
            except ProviderError as err:
                if err.violation is not None:
                    entry.violations.append(err.violation.as_dict())
                response = error_response(err, op)
            except Exception:  # a bug in the fake: answer in the family's words, log it
                log.exception("wanmock: unhandled error in %s %s", name, operation)
                response = error_response(self.internal_error(), op)
            if writes:
                response = await self._commit(writes, op, response)
            try:
                backend.journal.complete(entry, response.status_code, body_of(response))
                if backend.webhooks.has_pending():
                    try:  # a poll may have ended a task that owes a webhook
                        backend.flush_webhooks()
                    except Exception:  # a bug in rendering one must not cost this answer
                        log.exception("wanmock: rendering webhooks failed")
            except StoreUnavailable:
                return self.unavailable_response(op)
            return response

        endpoint.__name__ = operation
        return endpoint

    async def _commit(self, writes: list[Any], op: Operation, response: Response) -> Response:
        """Write the request's new tasks; the family's 503 if the store cannot take them."""
        state: Any = self.backend.state  # a SharedStore (core/store/shared.py)
        try:
            await state.commit(writes)
        except StoreUnavailable:
            return self.unavailable_response(op)
        except Exception:  # a bug (or a task id taken meanwhile): the family's own words
            log.exception("wanmock: writing new tasks failed in %s %s", self.name,
                          op.operation_id)
            return self.error_response(self.internal_error(), op)
        return response

    def unavailable_response(self, op: Operation | None = None) -> Response:
        """The family's 503 (`x-wanmock-faults` `unavailable`) while the store cannot be
        reached. Rendered with this process's clock and ids: the store's are out of reach."""
        backend = self.backend
        ids, clock = backend.ids, backend.clock
        backend.ids, backend.clock = _LOCAL_IDS, _LOCAL_CLOCK  # no await: no other request
        try:                                                   # sees the swap
            return self.error_response(self.fault_error(Scenario("unavailable"), op), op)
        finally:
            backend.ids, backend.clock = ids, clock

    async def _replaying(self, request: Request, op: Operation, raw: bytes,
                         handler: Handler) -> Response:
        """The handler's answer under `Options.replay` (see `providers/replaying.py`)."""
        from mockserver.providers import replaying

        entry = request.scope[EXCHANGE].entry
        early = replaying.before(self, request, op, raw, entry)  # type: ignore[arg-type]
        if early is not None:
            return early
        return replaying.after(self, request, op, entry,  # type: ignore[arg-type]
                               await handler(request, op, raw))

    # -- scenarios ---------------------------------------------------------------------------
    def transport_scenario(self, request: Request, op: Operation, raw: bytes | None
                           ) -> Scenario | None:
        """The transport fault for this exchange (header first, then rules); a job scenario in
        the header is kept for `submit()`."""
        header = headers_of(request).get(SCENARIO_HEADER)
        scenario = None
        if header:
            scenario = Scenario.parse(header)
            if scenario.is_job:
                exchange = request.scope.get(EXCHANGE)
                if exchange is not None:
                    exchange.job_scenario = scenario
                scenario = None
        if scenario is None:
            book = self.backend.scenarios
            if book:
                scenario = book.pick(self.request_info(request, op, raw), job=False)
        return scenario

    def request_info(self, request: Request, op: Operation, raw: bytes | None) -> RequestInfo:
        """What scenario rules match on; the body is read only when it is a small JSON object."""
        model = prompt = None
        if raw and len(raw) < 65536:
            body = self._decode_once(request, raw)  # the handler reuses this parse
            if isinstance(body, dict) and op.role == "submit":
                fields, _ = op.extract(body)
                model = fields.get("model") if isinstance(fields.get("model"), str) else None
                prompt = fields.get("prompt") if isinstance(fields.get("prompt"), str) else None
        header = headers_of(request).get("authorization", "")
        key = header.partition(" ")[2].strip() or None
        return RequestInfo(self.name, op.operation_id, op.role, model, key, prompt)

    async def apply_fault(self, scenario: Scenario, op: Operation) -> Response | None:
        """Answer with the fault, or wait (latency) and return None to carry on normally."""
        p = scenario.params
        if scenario.name == "latency":
            if "ms" in p:
                delay = float(p["ms"])
            else:
                delay = self.backend.scenarios.uniform(float(p.get("min_ms", 0)),
                                                       float(p.get("max_ms", 1000)))
            await asyncio.sleep(delay / 1000)
            return None
        if scenario.name == "drop":
            return DroppedResponse()
        if scenario.name == "hang":
            await asyncio.sleep(min(float(p.get("seconds", 30)), 300.0))
            return DroppedResponse()
        if scenario.name == "malformed":
            return Response(b'{"request_id": "wanmock", "output": {"task_id": ', 200,
                            media_type="application/json")
        raise FaultRequested(scenario.name, p)

    def job_scenario(self, request: Request, op: Operation, spec: JobSpec,
                     api_key: str | None) -> Scenario | None:
        """The job scenario of a submit: the header's, else the first job rule that fits."""
        exchange = request.scope.get(EXCHANGE)
        if exchange is not None and exchange.job_scenario is not None:
            return exchange.job_scenario  # type: ignore[no-any-return]
        book = self.backend.scenarios
        if not book:
            return None
        info = RequestInfo(self.name, op.operation_id, op.role, spec.model, api_key, spec.prompt)
        return book.pick(info, job=True)

    # -- before the handler ------------------------------------------------------------------
    def preflight(self, request: Request, op: Operation) -> None:
        """What every operation checks before its body: authentication, the family's own
        header rules, the request-rate limit, then the contract's query and header parameters."""
        key = self.authenticate(request)
        self.check_headers(request, op)
        backend = self.backend
        if backend.options.rate_limit_qps is not None and not backend.admit(self.name, key):
            raise FaultRequested("rate-limit")
        # Decided when the route was built (and on first use for an operation built otherwise).
        checks = self._param_checks.get(op.operation_id)
        if checks is None:
            checks = self._param_checks[op.operation_id] = (op.checks_parameters,
                                                            op.checks_query)
        if not checks[0]:
            return
        query = request.query_params if checks[1] else _NO_QUERY
        violations = op.parameter_violations(query, headers_of(request))
        if violations:
            raise self.parameter_error(violations[0], op)

    def check_headers(self, request: Request, op: Operation) -> None:
        """Family-specific header rules checked right after authentication (none by default)."""

    def authenticate(self, request: Request) -> str:
        """The API key of a request, or the family's 401 (checked once per request)."""
        exchange = request.scope.get(EXCHANGE)
        if exchange is None:  # outside an endpoint: nothing to remember it in
            return self.read_key(header_dict(request.scope["headers"], None))
        key = exchange.api_key
        if key is None:
            key = exchange.api_key = self.read_key(exchange.headers)
        return key  # type: ignore[no-any-return]

    def parse_json(self, request: Request, op: Operation, raw: bytes) -> Any:
        """The JSON body, or the family's error for a wrong content type, empty or bad body."""
        ctype = headers_of(request).get("content-type", "")
        if not raw.strip():
            raise self.flag(self.body_error("empty", op), "body:empty")
        if ctype and "json" not in ctype.lower():
            raise self.flag(self.body_error("content_type", op), "body:content_type")
        body = self._decode_once(request, raw)
        if body is NOT_JSON:  # NaN, Infinity, a BOM, too deep...: not JSON to the provider either
            raise self.flag(self.body_error("not_json", op), "body:not_json")
        return body

    def _decode_once(self, request: Request, raw: bytes) -> Any:
        """The body decoded the family's way (or NOT_JSON), parsed at most once per exchange:
        scenario matching and the handler share it."""
        exchange: Exchange | None = request.scope.get(EXCHANGE)
        if exchange is not None:
            body = exchange.parsed(raw)
            if body is not UNPARSED:
                return body
        try:
            body = decode_json(raw, invalid_utf8=self.invalid_utf8)
        except NotJSON:
            body = NOT_JSON
        if exchange is not None:
            exchange.keep_body(raw, body)
        return body

    # -- what handlers call ------------------------------------------------------------------
    def submit(
        self, request: Request, op: Operation, body: Any, spec: JobSpec, late: Violation | None,
        *, task_id: str, api_key: str | None, extra: dict[str, Any] | None = None,
        raw: bytes | None = None, model_concurrency: int | None = None,
    ) -> Task:
        """Create the task; `raw` is the text `body` was parsed from, unchanged since;
        `model_concurrency` the provider's limit of tasks in progress per key for this model
        (`Backend.submit`)."""
        if raw is not None and not verbatim_json(raw):
            raw = None  # decoding replaced something (U+FFFD): keep the value, not the text
        scenario = self.job_scenario(request, op, spec, api_key)
        task = self.backend.submit(
            family=self.name, operation=op.operation_id, spec=spec, request=body,
            task_id=task_id, api_key=api_key, failure=late, extra=extra, scenario=scenario,
            raw=raw, model_concurrency=model_concurrency,
        )
        exchange: Exchange | None = request.scope.get(EXCHANGE)
        entry = exchange.entry if exchange is not None else None
        if entry is not None:
            entry.task_id = task.id
            if scenario is not None:
                entry.scenario = scenario.label()
            if late is not None:
                entry.violations.append(late.as_dict())
        return task

    def note_task(self, request: Request, task: Task | None) -> None:
        """Journal the task an answer is about."""
        if task is not None:
            exchange: Exchange | None = request.scope.get(EXCHANGE)
            if exchange is not None and exchange.entry is not None:
                exchange.entry.task_id = task.id

    def base_url(self, request: Request) -> str:
        """Where self-links start: the `public_url` option, else the request's own base URL
        (remembered; providers/hotpath.py). Every result URL and webhook payload is built
        from it."""
        return _public_base(request, self.backend.options.public_url)

    def error_response(self, err: ProviderError, op: Operation | None = None) -> Response:
        """An error as the family answers it: its status, headers and `error_body`."""
        return JSONResponse(self.error_body(err, op), status_code=err.status,
                            headers=err.headers or None)

    # Provided by the policy (providers/policy.py).
    invalid_utf8: Any
    read_key: Callable[[Any], str]
    flag: Callable[..., ProviderError]
    body_error: Callable[[str, Operation], ProviderError]
    internal_error: Callable[[], ProviderError]
    parameter_error: Callable[[Violation, Operation], ProviderError]
    fault_error: Callable[..., ProviderError]
    trailing_slash: Callable[[], str | None]
    error_body: Callable[..., Any]


_LOCAL_IDS = Ids(None)
_LOCAL_CLOCK = SystemClock()


class DroppedResponse(Response):
    """Start a response, send part of it, then fail: the client sees the connection drop."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200, media_type="application/json")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"output": {', "more_body": True})
        raise ConnectionDropped("wanmock: connection dropped (scenario 'drop')")


class ConnectionDropped(ConnectionError):
    """Raised inside the app to cut a response short (uvicorn closes the connection)."""
