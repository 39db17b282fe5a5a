"""`pytest --wanmock-target=record`: live tests through the recorder, one cassette per test.

`wanmock` tests: httpx traffic to the providers' hosts is caught with respx (as in live mode),
judged and recorded by `mockserver.recording.Recorder` (the proxy's own), forwarded to the
real host (or to `--wanmock-upstream FAMILY=URL`, e.g. a staging gateway), and written to the
test's cassette. `wanmock_server` tests (any client: requests, aiohttp, another language) talk
to a `wanmock proxy` on the fixture's port, started once per session in front of the same
hosts; it records each test into the test's cassette (`ProxyHandle`). Every submit counts
against the session's one live budget (a `wanmock` test beyond it is skipped before anything
is sent; a `wanmock_server` test gets the family's 429 from the proxy and is reported
skipped); answers that break the contract fail the test, as in live mode.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from mockserver.cassette import HOP_BY_HOP, CassetteWriter
from mockserver.contracts import ContractSet
from mockserver.live import Budget
from mockserver.proxy_budget import is_submit
from mockserver.recording import Recorder

_DROP = HOP_BY_HOP | {"content-encoding"}


class RecordRoutes:
    """respx routes that forward, validate and record (`start()`/`stop()`)."""

    def __init__(self, contracts: ContractSet, budget: Budget, cassette: Path | str, *,
                 hosts: Mapping[str, str] | None = None,
                 upstreams: Mapping[str, str] | None = None) -> None:
        from mockserver.handle import router_class

        self.budget = budget
        if not hosts:  # the providers' hosts, from the contracts' `servers:`
            from mockserver.families import host_families

            hosts = host_families(contracts)
        self.hosts = dict(hosts)
        self.upstreams = {k: v.rstrip("/") for k, v in (upstreams or {}).items()}
        self.writer = CassetteWriter(cassette, target=self.upstreams or {"*": "(request host)"},
                                     families=sorted(set(self.hosts.values())))
        self.recorder = Recorder(contracts, writer=self.writer)
        self._sync = httpx.HTTPTransport()
        self.router = router_class()(assert_all_called=False, assert_all_mocked=False)
        for host in self.hosts:
            self.router.route(host=host).mock(side_effect=self._handle)
        self.router.route().pass_through()

    @property
    def findings(self) -> list[str]:
        """Every response that broke the contract, one line each."""
        return [f"{line} (x{n})" for line, n in response_findings(self.recorder).items()]

    def _prepare(self, request: httpx.Request) -> tuple[Any, httpx.Request, list[Any], float]:
        body = request.read()
        path, query = request.url.path, request.url.query.decode()
        headers = list(request.headers.multi_items())
        lower = {k.lower(): v for k, v in reversed(headers)}
        op = self.recorder.operation(request.method, path)
        violations = self.recorder.judge_request(op, path, query, lower, body)
        # Every submit sent counts, whatever the judge says (mockserver.proxy_budget).
        if is_submit(op, request.method) and not self.budget.take():
            import pytest

            pytest.skip(f"wanmock record: {request.method} {path} would submit a billable job "
                        f"beyond the budget ({self.budget.limit}); raise it with --wanmock-budget")
        family = op.family if op is not None else self.hosts.get(request.url.host)
        url = str(request.url)
        if family in self.upstreams:
            url = self.upstreams[family] + path + (f"?{query}" if query else "")
        sent = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        forward = httpx.Request(request.method, url, headers=sent, content=body)
        return op, forward, violations, time.monotonic()

    def _finish(self, request: httpx.Request, op: Any, violations: list[Any], started: float,
                response: httpx.Response) -> httpx.Response:
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROP]
        if is_submit(op, request.method) and not 200 <= response.status_code < 300:
            self.budget.refund()  # the provider created no job
        self.recorder.record(method=request.method, path=request.url.path,
                             query=request.url.query.decode(),
                             headers=list(request.headers.multi_items()), raw=request.content,
                             status=response.status_code, response_headers=headers,
                             response_raw=response.content, op=op, started=started,
                             violations=violations)
        return httpx.Response(response.status_code, headers=headers, content=response.content)

    def _handle(self, request: httpx.Request) -> Any:
        from mockserver.handle import SYNC_CALL

        if not SYNC_CALL.get():  # httpx's ByteStream is both sync and async: ask the router
            return self._handle_async(request)
        op, forward, violations, started = self._prepare(request)
        response = self._sync.handle_request(forward)
        response.read()
        response.close()
        return self._finish(request, op, violations, started, response)

    async def _handle_async(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        op, forward, violations, started = self._prepare(request)
        # One transport per call: an async pool cannot be closed from `stop()` (sync).
        async with httpx.AsyncHTTPTransport() as transport:
            response = await transport.handle_async_request(forward)
            await response.aread()
            await response.aclose()
        return self._finish(request, op, violations, started, response)

    def start(self) -> RecordRoutes:
        self.router.start()
        return self

    def stop(self) -> None:
        self.router.stop(quiet=True)
        self._sync.close()
        self.writer.close()


# -- `wanmock_server` under --wanmock-target=live|record: a proxy on the fixture's port --------
def real_targets(contracts: ContractSet, upstreams: Mapping[str, str]) -> dict[str | None, str]:
    """Where the session's proxy forwards each family: `--wanmock-upstream FAMILY=URL`, else
    the first host of its contract's https `servers:` (a gateway family has none: without an
    upstream its requests get the proxy's 404)."""
    from mockserver.families import families

    targets: dict[str | None, str] = {}
    for name, spec in families().items():
        if name not in contracts.contracts:
            continue
        hosts = spec.hosts(contracts)
        if name in upstreams:
            targets[name] = upstreams[name].rstrip("/")
        elif hosts:
            targets[name] = f"https://{hosts[0]}"
    return targets


def response_findings(recorder: Recorder) -> Counter[str]:
    """Every answer that broke the contract so far, one line each, with its count."""
    out: Counter[str] = Counter()
    for (family, op), stats in recorder.stats.ops.items():
        for (side, rule, where, message), n in stats.violations.items():
            if side == "response":
                out[f"{family}.{op}: [{rule}] {where} {message}"] += n
    return out


class ProxyHandle:
    """`wanmock_server` in live and record mode: the URL of a proxy in front of the real
    providers (keys from the environment replace the test's own), recording each test into
    its cassette under record mode. What only the fake has (clock, tasks, journal) skips the
    test, as the live `wanmock` fixture does."""

    live = True

    def __init__(self, proxy: Any, server: Any, keys: Mapping[str, str]) -> None:
        self.proxy = proxy
        self.server = server
        self.url = server.url
        self.keys = dict(keys)
        self._findings = response_findings(proxy.recorder)
        self.refused = proxy.submits.refused

    def findings(self) -> list[str]:
        """This test's answers that broke the contract."""
        now = response_findings(self.proxy.recorder)
        return [f"{line} (x{now[line] - self._findings[line]})" for line in now
                if now[line] > self._findings[line]]

    def over_budget(self) -> bool:
        """Whether the proxy refused a submit of this test (the budget is spent)."""
        return bool(self.proxy.submits.refused > self.refused)

    def __getattr__(self, name: str) -> Any:
        import pytest

        pytest.skip(f"wanmock live: `wanmock_server.{name}` needs the fake (clock, tasks, "
                    "journal); this test runs only with --wanmock-target=fake")
