"""What every family's routes share: the request pipeline, from the contract to the response.

A family subclasses `Family`, names its handlers after its contract's operationIds in snake_case
(`createVideoSynthesis` -> `create_video_synthesis`), and says how it words authentication and
body errors. `Family.routes()` builds one Starlette route per contract operation, so the contract
decides the paths. Every exchange goes into the journal; any `ProviderError` becomes the family's
own status and envelope; nothing a client sends can produce a traceback or an unplanned 500.
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver.catalogue import JobSpec
from mockserver.contracts import Contract, Operation, render_envelope
from mockserver.contracts.extensions import Fault
from mockserver.core.backend import Backend, Retention
from mockserver.core.clock import SystemClock
from mockserver.core.ids import Ids
from mockserver.core.journal import Entry
from mockserver.core.scenarios import (
    FAULT_KEYS,
    FaultRequested,
    RequestInfo,
    Scenario,
)
from mockserver.core.store import StoreUnavailable
from mockserver.core.tasks import Task
from mockserver.errors import ContractError, MockServerError, ProviderError, Violation
from mockserver.jsonwire import InvalidUtf8, NotJSON
from mockserver.jsonwire import decode as decode_json
from mockserver.jsonwire import verbatim as verbatim_json
from mockserver.providers.exchange import EXCHANGE, NOT_JSON, UNPARSED, Exchange, exchange_of
from mockserver.providers.hotpath import JSONResponse, path_and_query
from mockserver.providers.hotpath import base_url as _base_url

log = logging.getLogger("mockserver")
Handler = Callable[[Request, Operation, bytes], Awaitable[Response]]
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def handler_name(operation_id: str) -> str:
    """`createVideoSynthesis` -> `create_video_synthesis`."""
    return _CAMEL.sub("_", operation_id).lower()


_NO_QUERY: dict[str, str] = {}  # for operations that declare no query parameter


class Family(ABC):
    """One provider family. Subclasses set `name` and implement the handlers and error wording."""

    name: ClassVar[str]
    retention: ClassVar[Retention] = Retention(task_s=None, url_s=86400.0)
    # The code a request to no operation under the family's paths gets, by status (404/405).
    unrouted_codes: ClassVar[dict[int, str]] = {404: "NotFound", 405: "MethodNotAllowed"}
    # What the provider's JSON parser does with invalid UTF-8 inside strings: Go's
    # encoding/json replaces it with U+FFFD (`replace`); others refuse the body (`reject`).
    invalid_utf8: ClassVar[InvalidUtf8] = "replace"

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.contract: Contract = backend.contracts[self.name]
        backend.retention[self.name] = self.contract_retention()
        # A family that owes webhooks renders them with `_webhook_body(task, base_url)`; the
        # backend keeps it so any worker of a shared store can render any task's webhook.
        render = getattr(self, "_webhook_body", None)
        if render is not None:
            backend.webhook_renderers[self.name] = render

    def contract_retention(self) -> Retention:
        """How long the family keeps a task and its result URL: the contract's
        `x-wanmock-retention` (`task_s`, null for never; `url_s`), else the class default."""
        found = self.contract.extensions.retention
        if found is None:
            return self.retention
        return Retention(task_s=found.task_s,
                         url_s=self.retention.url_s if found.url_s is None else found.url_s)

    # -- routing -----------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        routes = []
        for op in self.contract.operations.values():
            method = getattr(self, handler_name(op.operation_id), None)
            if method is None:
                raise ContractError(
                    f"{self.name}: the contract's {op.operation_id} has no handler "
                    f"{handler_name(op.operation_id)}; is the contract newer than the fake?"
                )
            routes.append(Route(op.path, self._endpoint(op, method), methods=[op.method]))
        return routes

    def _endpoint(self, op: Operation,
                  handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        backend = self.backend

        async def endpoint(request: Request) -> Response:
            try:
                return await pipeline(request)
            except StoreUnavailable:  # read before the pipeline's own error handling
                return self.unavailable_response(op)

        defer = backend.state.shared and op.role == "submit"

        async def pipeline(request: Request) -> Response:
            scope = request.scope
            # The one carrier of this request's pipeline state (see providers/exchange.py).
            scope[EXCHANGE] = exchange = Exchange(request, self.name, op, _headers(scope))
            raw = await self._read_body(request)
            path, query = path_and_query(request)
            exchange.entry = entry = backend.journal.record(
                time=backend.now(), method=request.method, path=path,
                query=query, headers=exchange.headers.items(), body=raw,
                family=self.name, operation=op.operation_id,
            )
            if op.role in ("query", "cancel", "content"):
                # Known before the handler runs, so a faulted poll still counts as a poll of
                # its task (assert_poll_interval, assert_stopped_polling).
                params = request.path_params
                entry.task_id = params.get("task_id") or params.get("video_id") or (
                    request.query_params.get("task_id") if "task_id=" in query else None)
            # A shared store writes this request's new tasks in one batch with other
            # requests' (core/store/shared.py), awaited below before the answer.
            writes = backend.state.defer_writes() if defer else None
            try:
                fault = self.transport_scenario(request, op, raw)
                if fault is not None:
                    entry.scenario = fault.label()
                early = await self.apply_fault(fault, op) if fault is not None else None
                if early is not None:
                    response = early
                else:
                    self.preflight(request, op)
                    if raw is None:
                        raise self.flag(self.body_error("too_large", op), "body:too_large")
                    if backend.replay is None:
                        response = await handler(request, op, raw)
                    else:
                        response = await self._replaying(request, op, raw, entry, handler)
            except StoreUnavailable:  # the store is down or restarting: the family's 503
                response = self.unavailable_response(op)
            except FaultRequested as requested:
                entry.scenario = requested.scenario.label()
                response = self.error_response(self.fault_error(requested.scenario, op), op)
            except MockServerError as exc:  # a bad X-Wanmock-Scenario: toolkit misuse
                response = JSONResponse({"error": str(exc), "type": "MockServerError"},
                                        status_code=400)
            except ProviderError as err:
                if err.violation is not None:
                    entry.violations.append(err.violation.as_dict())
                response = self.error_response(err, op)
            except Exception:  # a bug in the fake: answer in the family's words, log it
                log.exception("wanmock: unhandled error in %s %s", self.name, op.operation_id)
                response = self.error_response(self.internal_error(), op)
            if writes:
                response = await self._commit(writes, op, response)
            backend.journal.complete(entry, response.status_code, _body_of(response))
            if backend.webhooks.has_pending():
                try:  # a poll may have ended a task that owes a webhook
                    backend.flush_webhooks()
                except Exception:  # a bug in rendering one must not cost this answer
                    log.exception("wanmock: rendering webhooks failed")
            return response

        endpoint.__name__ = op.operation_id
        return endpoint

    async def _commit(self, writes: list[Any], op: Operation, response: Response) -> Response:
        """Write the request's new tasks; the family's 503 if the store cannot take them."""
        try:
            await self.backend.state.commit(writes)
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

    async def _replaying(self, request: Request, op: Operation, raw: bytes, entry: Entry,
                         handler: Handler) -> Response:
        """The handler's answer under `Options.replay` (see `providers/replaying.py`)."""
        from mockserver.providers import replaying

        early = replaying.before(self, request, op, raw, entry)
        if early is not None:
            return early
        return replaying.after(self, request, op, entry, await handler(request, op, raw))

    async def _read_body(self, request: Request) -> bytes | None:
        limit = self.backend.options.body_limit
        headers = headers_of(request)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return None
        if (length is None and request.method == "GET"
                and "transfer-encoding" not in headers):
            return b""  # HTTP/1.1: no Content-Length, no Transfer-Encoding, no body
        # What `request.stream()` does, without an async generator per request.
        receive = request.receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            elif kind == "http.disconnect":
                raise ClientDisconnect()
        request._stream_consumed = True
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # -- pieces of the pipeline --------------------------------------------------------------
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
                exchange = exchange_of(request)
                if exchange is not None:
                    exchange.job_scenario = scenario
                scenario = None
        book = self.backend.scenarios
        if scenario is None and book:
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

    def fault_error(self, scenario: Scenario, op: Operation | None = None) -> ProviderError:
        """A transport fault in the family's words (`x-wanmock-faults`, per role if given)."""
        key = FAULT_KEYS[scenario.name]
        spec = (self.contract.extensions.faults.get(key) or DEFAULT_FAULTS[key]).for_role(
            op.role if op is not None else None)
        headers = {}
        # `throttle` always carries Retry-After (that is the scenario); the provider's own
        # limits carry it where its contract says the provider sends one.
        if scenario.name == "throttle" or "retry_after" in scenario.params or (
                scenario.name in ("rate-limit", "concurrency") and spec.retry_after):
            headers["Retry-After"] = str(int(scenario.params.get("retry_after", 1)))
        return ProviderError(spec.status, spec.code, spec.message, envelope=spec.envelope,
                             headers=headers)

    def job_scenario(self, request: Request, op: Operation, spec: JobSpec,
                     api_key: str | None) -> Scenario | None:
        exchange = exchange_of(request)
        if exchange is not None and exchange.job_scenario is not None:
            return exchange.job_scenario
        book = self.backend.scenarios
        if not book:
            return None
        info = RequestInfo(self.name, op.operation_id, op.role, spec.model, api_key, spec.prompt)
        return book.pick(info, job=True)

    def preflight(self, request: Request, op: Operation) -> None:
        """What every operation checks before its body: authentication, the family's own
        header rules, the request-rate limit, then the contract's query and header parameters."""
        key = self.authenticate(request)
        self.check_headers(request, op)
        if not self.backend.admit(self.name, key):
            raise FaultRequested("rate-limit")
        if not op.checks_parameters:
            return
        query = request.query_params if op.checks_query else _NO_QUERY
        violations = op.parameter_violations(query, headers_of(request))
        if violations:
            raise self.parameter_error(violations[0], op)

    def check_headers(self, request: Request, op: Operation) -> None:  # noqa: B027
        """Family-specific header rules checked right after authentication (none by default)."""

    def parameter_error(self, violation: Violation, op: Operation) -> ProviderError:
        return ProviderError.from_violation(violation)

    def authenticate(self, request: Request) -> str:
        """The API key of a request, or the family's 401 (checked once per request)."""
        exchange = exchange_of(request)
        if exchange is None:  # outside an endpoint: nothing to remember it in
            return self._authenticate(request)
        if exchange.api_key is None:
            exchange.api_key = self._authenticate(request)
        return exchange.api_key

    def _authenticate(self, request: Request) -> str:
        header = headers_of(request).get("authorization")
        if not header or not header.strip():
            raise self.flag(self.auth_error("missing"), "security:missing", "Authorization")
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise self.flag(self.auth_error("malformed"), "security:malformed", "Authorization")
        allowed = self.backend.options.api_keys
        if allowed and key not in allowed:
            raise self.auth_error("invalid")  # a well-formed request with the wrong key
        return key

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
        exchange = exchange_of(request)
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

    @staticmethod
    def flag(err: ProviderError, rule: str, field: str = "") -> ProviderError:
        """Mark an error as a contract violation by the client (the journal records it)."""
        if err.violation is None:
            err.violation = Violation(field, rule, err.status, err.code, err.message)
        return err

    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None
              ) -> tuple[JobSpec | None, list[Violation]]:
        """Judge a parsed body as this provider does: the job it would run and every violation,
        the first reported first; with `headers` (lower-case names) also the rules that read
        them (none by default). No side effects: `mockserver.checks` uses it too."""
        opts = self.backend.options
        return self.contract.judge(
            op.operation_id, body, rule_timing=self.backend.rule_timing(),
            strict_prompts=opts["dashscope_r2v_prompt_over"] == "reject",
        )

    def settle(self, op: Operation, spec: JobSpec | None, violations: list[Violation]
               ) -> tuple[JobSpec, Violation | None]:
        """Act on a judgement: raise the first submit-time violation, else return the job and
        the violation (if any) that will fail the task later."""
        for violation in violations:
            if violation.timing == "submit":
                raise self.violation_error(violation, op)
        if spec is None:  # cannot happen on a schema-valid body with a known model; be safe
            raise self.violation_error(violations[0], op)
        late = violations[0] if violations else None
        return spec, late

    def submit(
        self, request: Request, op: Operation, body: Any, spec: JobSpec, late: Violation | None,
        *, task_id: str, api_key: str | None, extra: dict[str, Any] | None = None,
        raw: bytes | None = None,
    ) -> Task:
        """Create the task; `raw` is the text `body` was parsed from, unchanged since."""
        if raw is not None and not verbatim_json(raw):
            raw = None  # decoding replaced something (U+FFFD): keep the value, not the text
        scenario = self.job_scenario(request, op, spec, api_key)
        task = self.backend.submit(
            family=self.name, operation=op.operation_id, spec=spec, request=body,
            task_id=task_id, api_key=api_key, failure=late, extra=extra, scenario=scenario,
            raw=raw,
        )
        exchange = exchange_of(request)
        entry = exchange.entry if exchange is not None else None
        if entry is not None:
            entry.task_id = task.id
            if scenario is not None:
                entry.scenario = scenario.label()
            if late is not None:
                entry.violations.append(late.as_dict())
        return task

    def note_task(self, request: Request, task: Task | None) -> None:
        exchange = exchange_of(request)
        entry = exchange.entry if exchange is not None else None
        if entry is not None and task is not None:
            entry.task_id = task.id

    def base_url(self, request: Request) -> str:
        return _base_url(request)

    # -- errors, worded by the family ---------------------------------------------------------
    def error_response(self, err: ProviderError, op: Operation | None = None) -> Response:
        own = op.envelope if op is not None else None
        if own is not None and err.envelope == "default":
            # An operation may word errors its own way (apiyi's task API).
            body = render_envelope(own, {"status": err.status, "code": err.code,
                                         "message": err.message})
        else:
            body = self.contract.render_error(
                err.status, err.code, err.message, envelope=err.envelope,
                request_id=self.backend.ids.uuid(),
            )
        return JSONResponse(body, status_code=err.status, headers=err.headers or None)

    def violation_error(self, violation: Violation, op: Operation) -> ProviderError:
        return ProviderError.from_violation(violation)

    @abstractmethod
    def auth_error(self, kind: str) -> ProviderError:
        """The family's 401; kind: `missing`, `malformed`, `invalid`."""

    @abstractmethod
    def body_error(self, kind: str, op: Operation) -> ProviderError:
        """The family's answer to a body that is `empty`, `not_json`, of the wrong
        `content_type` or `too_large`."""

    def internal_error(self) -> ProviderError:
        return ProviderError(500, "InternalError",
                             "An internal error has occured, please try again later.")


SCENARIO_HEADER = "x-wanmock-scenario"
_LOCAL_IDS = Ids(None)
_LOCAL_CLOCK = SystemClock()


def headers_of(request: Request) -> dict[str, str]:
    """The request's headers as one dict (lower-case names, first value wins), built once per
    request (the exchange keeps it): Starlette's `request.headers.get` scans the raw list on
    every call. Clients send the same headers again and again, so the dict is shared by
    requests with the same raw headers: read it, never change it."""
    scope = request.scope
    exchange: Exchange | None = scope.get(EXCHANGE)
    if exchange is not None:
        return exchange.headers
    return _headers(scope)


def _headers(scope: Any) -> dict[str, str]:
    raw = scope["headers"]
    backend = getattr(scope.get("app"), "backend", None)  # the memo is the app's own
    memo = backend.memo("headers", 1024) if backend is not None else None
    try:
        key: Any = tuple(raw)
        headers: dict[str, str] | None = memo.get(key) if memo is not None else None
    except TypeError:  # [name, value] lists: fine for ASGI, not hashable
        key = None
        headers = None
    if headers is None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(raw)}
        if key is not None and memo is not None:
            memo.put(key, headers)
    return headers


# Used when a contract has no x-wanmock-faults entry for a fault.
DEFAULT_FAULTS: dict[str, Fault] = {
    "throttle": Fault(429, "Throttling", "Requests throttling triggered."),
    "rate_limit": Fault(429, "Throttling.RateQuota",
                        "Requests rate limit exceeded, please try again later."),
    "concurrency": Fault(429, "Throttling", "Too many running tasks."),
    "server_error": Fault(500, "InternalError",
                          "An internal error has occured, please try again later."),
    "unavailable": Fault(503, "ServiceUnavailable", "The service is temporarily unavailable."),
}


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


def _body_of(response: Response) -> bytes | None:
    body = getattr(response, "body", None)
    return body if isinstance(body, bytes) else None


def json_response(content: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(content, status_code=status, headers=headers)
