"""What tests hold: a handle on a fake (in process or live) and the assertions users need.

`WanMock` wraps a `Backend`: the clock, the tasks, the journal, forcing states, and checks on how
a client behaved (it stopped polling once a task was terminal, it never polled faster than an
interval, every request it sent conformed to the contract). `InProcessRoutes` routes httpx
traffic for the providers' real hosts into the app through respx, for sync and async clients.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import httpx

from mockserver.core.backend import Backend
from mockserver.core.journal import Entry
from mockserver.core.tasks import Snapshot, State, Task
from mockserver.core.webhooks import Webhook
from mockserver.errors import MockServerError
from mockserver.loop_thread import LoopThread
from mockserver.tls import TLS, Trusting


def default_hosts(contracts: Any = None, families: Iterable[str] | None = None) -> tuple[str, ...]:
    """The providers' real hosts (each family's contract `servers:`), the bundled families'
    by default; users add their gateways (seed 001/002 style) with `hosts=`."""
    from mockserver.contracts import load
    from mockserver.families import bundled_names, host_families

    return tuple(host_families(load() if contracts is None else contracts,
                               bundled_names() if families is None else families))


def app_hosts(app: Any) -> tuple[str, ...]:
    """The hosts to route into `app`: the bundled families' and those of each it serves."""
    from mockserver.families import bundled_names

    backend = getattr(getattr(app, "state", None), "backend", None)
    served = tuple(getattr(getattr(backend, "options", None), "families", ()) or ())
    return default_hosts(getattr(backend, "contracts", None),
                         dict.fromkeys((*bundled_names(), *served)))


def __getattr__(name: str) -> Any:
    # `DEFAULT_HOSTS` is read from the contracts when first asked for (kept for imports).
    if name == "DEFAULT_HOSTS":
        return default_hosts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ContractViolationError(AssertionError):
    """A client sent requests the contract forbids, or behaved in a way a check forbids."""


class WanMock(Trusting):
    """A handle on one fake: clock, tasks, journal, and assertions about the client.

    `url` is the base URL clients should use (the live server's, or a provider host in process).
    On a fake served over HTTPS (`tls`), `ca_bundle`, `env()` and `ssl_context()` make clients
    trust it.
    """

    def __init__(self, backend: Backend, url: str | None = None, tls: TLS | None = None) -> None:
        self.backend = backend
        self.url = url
        self.tls = tls
        self._expect_violations = 0

    # -- clock -------------------------------------------------------------------------------
    @property
    def clock(self) -> Any:
        return self.backend.clock

    def now(self) -> float:
        return self.backend.now()

    def advance(self, seconds: float) -> float:
        """Move the fake's clock forward (works on the manual and the system clock); webhooks
        of tasks that ended on the way become due."""
        now = self.backend.advance(seconds)  # under mode="polls", tasks move in whole polls
        self._webhooks_now()
        return now

    def _webhooks_now(self) -> None:
        self.backend.flush_webhooks()
        self.backend.webhooks.notify()

    def run_until_terminal(self, task_id: str | None = None) -> list[Snapshot]:
        """Advance the clock until the task (or every task) is terminal; returns final views."""
        tasks = [self.task(task_id)] if task_id else list(self.backend.tasks())
        for task in tasks:
            view = self.backend.view(task)
            if not view.state.terminal:
                self.advance(view.eta + 0.001)
        return [self.backend.view(t) for t in tasks]

    # -- webhooks ----------------------------------------------------------------------------
    def webhooks(self, task_id: str | None = None) -> list[Webhook]:
        """Webhooks the fake owes or has delivered (jiekou `extra.webhook.url`), oldest first;
        `body` is set once the task has ended. In process they are recorded, not sent."""
        self._webhooks_now()
        return self.backend.webhooks.entries(task_id)

    def on_webhook(self, callback: Callable[[Webhook], None]) -> None:
        """Call `callback(webhook)` as each webhook becomes due (until the next reset): hand
        `webhook.body` to your own webhook handler there. For jiekou/Novita the body is the
        provider's event, `{"event_type": "ASYNC_TASK_RESULT", "payload": <task-result body>}`
        (read `body["payload"]["task"]`), with the submit's `extra.webhook` in
        `payload.extra.webhook`."""
        self.backend.webhooks.listen(callback)

    # -- tasks -------------------------------------------------------------------------------
    def tasks(self, family: str | None = None) -> list[Task]:
        return list(self.backend.tasks(family))

    def task(self, task_id: str) -> Task:
        task = self.backend.store.get(task_id)
        if task is None:
            for candidate in self.backend.tasks():
                if candidate.extra.get("upstream_id") == task_id:
                    return candidate
            known = [t.id for t in self.backend.tasks()]
            raise MockServerError(f"no task {task_id!r}; the fake has {known}")
        return task

    def state(self, task_id: str) -> State:
        return self.backend.view(self.task(task_id)).state

    def force(self, task_id: str, state: State | str) -> None:
        """Pin a task to a state (`"failed"`, `State.SUCCEEDED`...) from now on."""
        try:
            state = State(state)
        except ValueError:
            raise MockServerError(
                f"state must be one of {', '.join(s.value for s in State)}") from None
        self.backend.force(self.task(task_id), state)
        self._webhooks_now()

    def reset(self) -> None:
        self.backend.reset()
        self._expect_violations = 0

    # -- scenarios ---------------------------------------------------------------------------
    def scenario(self, scenario: str, *, match: dict[str, Any] | None = None,
                 times: int | None = None, rate: float | None = None, **params: Any) -> str:
        """Add a scenario rule; returns its id. `wanmock.scenario("fail", kind="moderation",
        at=0.6, match={"family": "dashscope"}, times=1)`."""
        from mockserver.core.scenarios import Scenario

        base = Scenario.parse(scenario)
        rule = self.backend.scenarios.add(Scenario(base.name, {**base.params, **params}),
                                          match=match, times=times, rate=rate)
        return rule.id

    def scenarios(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.backend.scenarios.rules()]

    def clear_scenarios(self) -> None:
        self.backend.scenarios.reset()

    # -- journal -----------------------------------------------------------------------------
    def requests(self, family: str | None = None, operation: str | None = None,
                 task_id: str | None = None) -> list[Entry]:
        """The journal's entries, filtered; newest last."""
        match = {k: v for k, v in (("family", family), ("operation", operation),
                                   ("task_id", task_id)) if v is not None}
        return self.backend.journal.entries(**match)

    def polls(self, task_id: str) -> list[Entry]:
        return [e for e in self.requests(task_id=task_id) if self._is_query(e)]

    def _is_query(self, entry: Entry) -> bool:
        contract = self.backend.contracts.contracts.get(entry.family or "")
        op = contract.operations.get(entry.operation or "") if contract is not None else None
        return op is not None and op.role == "query"

    # -- assertions --------------------------------------------------------------------------
    def violations(self) -> list[Entry]:
        """Entries whose request broke the contract (schema, catalogue rule, body, unknown path)."""
        return [e for e in self.backend.journal.entries() if e.violations]

    @contextlib.contextmanager
    def expect_violations(self) -> Iterator[None]:
        """Inside this block, contract violations are expected and not reported at teardown."""
        before = len(self.violations())
        yield
        self._expect_violations += len(self.violations()) - before

    def assert_all_requests_conform(self) -> None:
        """Fail, listing each one, if any request broke the contract (outside expect_violations)."""
        __tracebackhide__ = True
        bad = self.violations()
        if len(bad) > self._expect_violations:
            raise ContractViolationError(describe_violations(bad))

    def assert_stopped_polling(self, task_id: str | None = None) -> None:
        """Fail if the client queried a task again after it had seen it terminal."""
        __tracebackhide__ = True
        ids = [task_id] if task_id else [t.id for t in self.backend.tasks()]
        for tid in ids:
            polls = self.polls(tid)
            seen_terminal = None
            for entry in polls:
                if seen_terminal is not None:
                    raise ContractViolationError(
                        f"task {tid}: the client polled again (#{entry.seq} {entry.method} "
                        f"{entry.path}) after it had seen the task terminal in #{seen_terminal}"
                    )
                if _is_terminal_response(entry):
                    seen_terminal = entry.seq
            if polls and seen_terminal is None:
                raise ContractViolationError(
                    f"task {tid}: the client stopped polling before the task was terminal "
                    f"({len(polls)} polls, last answer status {polls[-1].status})"
                )

    def assert_poll_interval(self, at_least: float, task_id: str | None = None) -> None:
        """Fail if two consecutive polls of one task were closer than `at_least` seconds."""
        __tracebackhide__ = True
        ids = [task_id] if task_id else [t.id for t in self.backend.tasks()]
        for tid in ids:
            polls = self.polls(tid)
            for prev, cur in zip(polls, polls[1:], strict=False):
                gap = cur.time - prev.time
                if gap + 1e-6 < at_least:
                    raise ContractViolationError(
                        f"task {tid}: polls #{prev.seq} and #{cur.seq} were {gap:.3f} s apart; "
                        f"expected at least {at_least} s"
                    )


def _is_terminal_response(entry: Entry) -> bool:
    if entry.status != 200:
        return entry.status in (400, 404)  # unknown/expired tasks are final answers too
    from mockserver.families import TERMINAL, families

    family = families().get(entry.family or "")
    if family is None or not entry.response_body:
        return False
    try:
        body = json.loads(entry.response_body)
    except ValueError:
        return False
    state, _ = family.status(body, entry.operation)
    return state in TERMINAL


def describe_violations(entries: Sequence[Entry]) -> str:
    lines = [f"{len(entries)} request(s) broke the provider contract:"]
    for entry in entries:
        lines.append(f"  #{entry.seq} {entry.method} {entry.path} -> {entry.status} "
                     f"({entry.family}.{entry.operation})")
        for v in entry.violations:
            lines.append(f"      {v.get('field') or '(body)'}: {v.get('rule')} -> "
                         f"{v.get('code')}: {v.get('message')}")
    lines.append(
        "If the test sends these on purpose, wrap the calls in `with wanmock.expect_violations():`"
        " or mark it @pytest.mark.wanmock(assert_conformance=False)."
    )
    return "\n".join(lines)


# Set while respx resolves a request from a sync httpx client: httpx's ByteStream is both sync
# and async, so the request itself cannot tell which side called.
SYNC_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("wanmock_sync", default=False)


def router_class() -> Any:
    import respx

    class Router(respx.MockRouter):  # type: ignore[misc]
        def handler(self, request: httpx.Request) -> httpx.Response:
            token = SYNC_CALL.set(True)
            try:
                return super().handler(request)  # type: ignore[no-any-return]
            finally:
                SYNC_CALL.reset(token)

    return Router


class InProcessRoutes:
    """Route httpx requests for `hosts` into an ASGI app through respx (sync and async clients).

    `unmocked`: `error` (respx's default: a request to any other host fails the test) or
    `passthrough` (other hosts reach the network as usual).
    """

    def __init__(self, app: Any, hosts: Iterable[str] | None = None,
                 unmocked: str = "error") -> None:
        if unmocked not in ("error", "passthrough"):
            raise MockServerError("unmocked must be 'error' or 'passthrough'")
        self.app = app
        if hosts is None:  # the bundled families' hosts and those of every family it serves
            hosts = app_hosts(app)
        self.hosts = tuple(dict.fromkeys(hosts))
        self.transport = httpx.ASGITransport(app=app)
        self.router = router_class()(assert_all_called=False,
                                      assert_all_mocked=unmocked == "error")
        self._loop: LoopThread | None = None
        for host in self.hosts:
            self.router.route(host=host).mock(side_effect=self._handle)
        if unmocked == "passthrough":
            self.router.route().pass_through()

    def _handle(self, request: httpx.Request) -> Any:
        if SYNC_CALL.get():
            return self._handle_sync(request)
        return self._handle_async_then_notify(request)

    async def _handle_async(self, request: httpx.Request) -> httpx.Response:
        from mockserver.providers.pipeline import ConnectionDropped

        try:
            return await self.transport.handle_async_request(request)
        except ConnectionDropped as exc:  # the `drop`/`hang` scenarios, as httpx reports them
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc

    async def _handle_async_then_notify(self, request: httpx.Request) -> httpx.Response:
        response = await self._handle_async(request)
        self._notify()
        return response

    def _notify(self) -> None:
        """Webhook listeners run here, after the app has answered (never inside it)."""
        backend = getattr(getattr(self.app, "state", None), "backend", None)
        if backend is not None:
            backend.webhooks.notify()

    def _handle_sync(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(request.method, request.url, headers=request.headers,
                                  content=body)

        async def call() -> httpx.Response:
            response = await self._handle_async(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=content)

        if self._loop is None:
            self._loop = LoopThread()
        response = self._loop.run(call())
        self._notify()  # in the caller's thread, with the app's loop free again
        return response  # type: ignore[no-any-return]

    def start(self) -> InProcessRoutes:
        self.router.start()
        return self

    def stop(self) -> None:
        self.router.stop(quiet=True)
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __enter__(self) -> InProcessRoutes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
