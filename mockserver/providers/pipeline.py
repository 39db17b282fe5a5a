"""The request pipeline every family's routes share, from the contract to the response.

`Pipeline(family).routes()` builds one Starlette route per contract operation of a family's
HTTP class (`providers.base.Family`; the contract decides the paths). Each route's endpoint
reads the body, journals the exchange, applies a transport scenario, runs the preflight
(authentication, the family's header rules, the rate limit, the contract's parameters), reads
a submit's body, calls the handler with the `Exchange` holding all of it (through replay when
a cassette is served) and turns any `ProviderError` into the family's own status and
envelope: nothing a client sends can produce a traceback or an unplanned 500. What the family
decides without HTTP (its wording, its judgement of a body) is its policy
(`providers/policy.py`), which the HTTP class holds.

What does not depend on the request is decided once per operation when the route is built
(which role it has, where it names a task, which parameters it checks), so the hot path does
only the request's own work.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver.contracts import Operation
from mockserver.core import faults
from mockserver.core.clock import SystemClock
from mockserver.core.ids import Ids
from mockserver.core.scenarios import FaultRequested, Scenario
from mockserver.core.store import StoreUnavailable
from mockserver.errors import ContractError, MockServerError, ProviderError
from mockserver.providers import replaying
from mockserver.providers.exchange import Exchange, Served
from mockserver.providers.hotpath import (
    JSONResponse,
    body_of,
    header_dict,
    path_and_query,
    read_body,
    slashed,
)

log = logging.getLogger("mockserver")
Handler = Callable[[Exchange], Awaitable[Response]]
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_PARAM = re.compile(r"{([^}:]+)")
SCENARIO_HEADER = "x-wanmock-scenario"
_NO_QUERY: dict[str, str] = {}  # for operations that declare no query parameter
# The roles whose path or query names a task: the journal knows it before the handler runs.
TASK_ROLES = frozenset({"query", "cancel", "content"})


def handler_name(operation_id: str) -> str:
    """`createVideoSynthesis` -> `create_video_synthesis`."""
    return _CAMEL.sub("_", operation_id).lower()


def task_parameter(op: Operation) -> str | None:
    """Where an operation names its task: the last path parameter (`/tasks/{task_id}`,
    `/videos/{video_id}/content`), else the query parameter `task_id` (`"?task_id"`); None
    for an operation that names none (a submit, a list)."""
    if op.role not in TASK_ROLES:
        return None
    params = _PARAM.findall(op.path)
    return params[-1] if params else "?task_id"


class Pipeline:
    """The request pipeline of one family's HTTP class (`providers.base.Family`)."""

    def __init__(self, family: Served) -> None:
        self.family = family
        self.policy = family.policy
        self.backend = family.backend
        self.name = family.name

    # -- routing -----------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """One Starlette route per contract operation, each to its handler's endpoint."""
        routes = []
        for op in self.family.contract.operations.values():
            name = self.family.handler_of(op)
            method = getattr(self.family, name, None)
            if method is None:
                raise ContractError(
                    f"{self.name}: the contract's {op.operation_id} has no handler "
                    f"{name}; is the contract newer than the fake?"
                )
            endpoint = self.endpoint(op, method)
            routes.append(Route(op.path, endpoint, methods=[op.method]))
            trailing_slash = self.policy.trailing_slash
            if trailing_slash() is not None:
                routes.append(Route(op.path + "/", slashed(endpoint, trailing_slash),
                                    methods=[op.method]))
        return routes

    def endpoint(self, op: Operation, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint of one operation; what does not depend on the request is decided
        here, once."""
        backend = self.backend
        family, policy = self.family, self.policy
        name, operation = self.name, op.operation_id
        task_param = task_parameter(op)
        in_query = task_param == "?task_id"
        reads_body = op.role == "submit"
        checks, checks_query = op.checks_parameters, op.checks_query
        headers_memo = backend.memo("headers", 1024)
        transport_scenario = self.transport_scenario
        error_response = family.error_response
        # A shared store writes a submit's new tasks in one batch with other requests'.
        state: Any = backend.state  # a SharedStore when `shared` (core/store/shared.py)
        defer = state.shared and op.role == "submit"

        async def endpoint(request: Request) -> Response:
            scope = request.scope
            try:
                headers = header_dict(scope["headers"], headers_memo)
                raw = await read_body(request, headers, backend.options.body_limit)
                path, query = path_and_query(request)
                entry = backend.journal.record(
                    time=backend.clock.now(), method=scope["method"], path=path,
                    query=query, headers=headers.items(), body=raw,
                    family=name, operation=operation,
                )
            except StoreUnavailable:  # read before the pipeline's own error handling
                return self.unavailable_response(op)
            except ClientDisconnect:  # gone (or timed out, serving.py) mid-body: no one to answer
                return Response(status_code=400)
            ex = Exchange(name, op, request, headers, raw, entry)
            if task_param is not None:
                # Found once, before the handler runs, so a faulted poll still counts as a
                # poll of its task (assert_poll_interval, assert_stopped_polling).
                ex.task_id = entry.task_id = (
                    scope["path_params"].get(task_param) if not in_query
                    else request.query_params.get("task_id") if "task_id=" in query else None)
            # A shared store writes this request's new tasks in one batch with other
            # requests' (core/store/shared.py), awaited below before the answer.
            writes = state.defer_writes() if defer else None
            try:
                fault = transport_scenario(ex)
                early = None
                if fault is not None:
                    entry.scenario = fault.label()
                    early = await self.apply_fault(fault, op)
                if early is not None:
                    response = early
                else:
                    # The preflight: who is calling, the family's header rules, the rate
                    # limit, the contract's query and header parameters.
                    ex.api_key = key = policy.authenticate(headers, op)
                    policy.check_headers(headers, op)
                    family.limit(ex)
                    if (backend.options.rate_limit_qps is not None
                            and not backend.admit(name, key)):
                        raise FaultRequested("rate-limit")
                    if checks:
                        violations = op.parameter_violations(
                            request.query_params if checks_query and scope.get("query_string")
                            else _NO_QUERY, headers)
                        if violations:
                            raise policy.parameter_error(violations[0], op)
                    if raw is None:
                        raise policy.flag(policy.body_error("too_large", op), "body:too_large")
                    if reads_body:
                        ex.body = family.read_body(ex)
                    if backend.replay is None:
                        response = await handler(ex)
                    else:
                        response = await self.replaying(ex, handler)
            except StoreUnavailable:  # the store is down or restarting: the family's 503
                response = self.unavailable_response(op)
            except FaultRequested as requested:
                entry.scenario = requested.scenario.label()
                response = error_response(policy.fault_error(requested.scenario, op), op)
            except MockServerError as exc:  # a bad X-Wanmock-Scenario: toolkit misuse
                response = JSONResponse({"error": str(exc), "type": "MockServerError"},
                                        status_code=400)
            except ProviderError as err:
                if err.violation is not None:
                    entry.violations.append(err.violation.as_dict())
                response = error_response(err, op)
            except Exception:  # a bug in the fake: answer in the family's words, log it
                log.exception("wanmock: unhandled error in %s %s", name, operation)
                response = error_response(policy.internal_error(), op)
            if raw is None:  # the rest of a body over the limit is not read: close after
                response.headers["connection"] = "close"
            if writes:
                response = await self.commit(writes, op, response)
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

    async def commit(self, writes: list[Any], op: Operation, response: Response) -> Response:
        """Write the request's new tasks; the family's 503 if the store cannot take them."""
        state: Any = self.backend.state  # a SharedStore (core/store/shared.py)
        try:
            await state.commit(writes)
        except StoreUnavailable:
            return self.unavailable_response(op)
        except Exception:  # a bug (or a task id taken meanwhile): the family's own words
            log.exception("wanmock: writing new tasks failed in %s %s", self.name,
                          op.operation_id)
            return self.family.error_response(self.policy.internal_error(), op)
        return response

    def unavailable_response(self, op: Operation | None = None) -> Response:
        """The family's 503 (`x-wanmock-faults` `unavailable`) while the store cannot be
        reached. Rendered with this process's clock and ids: the store's are out of reach."""
        backend = self.backend
        ids, clock = backend.ids, backend.clock
        backend.ids, backend.clock = LOCAL_IDS, LOCAL_CLOCK  # no await: no other request
        try:                                                 # sees the swap
            return self.family.error_response(
                self.policy.fault_error(Scenario("unavailable"), op), op)
        finally:
            backend.ids, backend.clock = ids, clock

    async def replaying(self, ex: Exchange, handler: Handler) -> Response:
        """The handler's answer under `Options.replay` (see `providers/replaying.py`)."""
        early = replaying.before(self.family, ex)
        if early is not None:
            return early
        return replaying.after(self.family, ex, await handler(ex))

    # -- scenarios ---------------------------------------------------------------------------
    def transport_scenario(self, ex: Exchange) -> Scenario | None:
        """The transport fault for this exchange (header first, then rules); a job scenario in
        the header is kept for the submit (`Exchange.job_scenario`)."""
        header = ex.headers.get(SCENARIO_HEADER)
        scenario = None
        if header:
            scenario = Scenario.parse(header)
            if scenario.is_job:
                ex.job_scenario = scenario
                scenario = None
        if scenario is None:
            book = self.backend.scenarios
            if book:
                scenario = book.pick(self.family.request_info(ex), job=False)
        return scenario

    async def apply_fault(self, scenario: Scenario, op: Operation) -> Response | None:
        """Carry out a transport fault (its kind's outcome, `mockserver.core.faults`): answer,
        or wait and return None to carry on normally."""
        kind = faults.kind(scenario.name)
        if kind is None:  # Scenario checks its name: only a kind unregistered since
            raise MockServerError(f"unknown transport scenario {scenario.name!r}")
        outcome = kind.outcome(scenario.params, self.backend.scenarios.uniform)
        if isinstance(outcome, faults.Wait):
            await asyncio.sleep(outcome.seconds)
            return None
        if isinstance(outcome, faults.Drop):
            if outcome.seconds:
                await asyncio.sleep(outcome.seconds)
            return DroppedResponse()
        if isinstance(outcome, faults.Reply):
            return Response(outcome.body, outcome.status, media_type=outcome.media_type)
        raise FaultRequested(scenario.name, scenario.params)  # the family's words


# The 503's request id and time while the store (and its ids and clock) is out of reach.
LOCAL_IDS = Ids(None)
LOCAL_CLOCK = SystemClock()


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
