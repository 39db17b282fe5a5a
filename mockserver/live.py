"""Live target: let httpx traffic reach the real providers, validate every answer, guard spend.

Used by the pytest plugin under `--wanmock-target=live`. Requests to the providers' hosts are
forwarded unchanged through a real transport; each response is checked against the family's
contract (status listed, body matches the schema), and each submission of a billable job counts
against a budget (default 0): beyond it, the test is skipped before anything is sent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from mockserver.contracts import ContractSet, Operation
from mockserver.core.journal import redact_value
from mockserver.families import host_match
from mockserver.proxy_budget import Budget, is_submit
from mockserver.recorded import operation_patterns


def __getattr__(name: str) -> Any:
    # `HOST_FAMILIES` (host -> family) is read from the contracts' `servers:` when asked for.
    if name == "HOST_FAMILIES":
        from mockserver.contracts import load
        from mockserver.families import host_families

        return host_families(load())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Budget", "LiveRoutes", "available_keys", "describe_findings"]


def available_keys(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Each family's live key, from the first of its variables that is set
    (`FamilySpec.key_variables`: DASHSCOPE_API_KEY, JIEKOU_API_KEY or NOVITA_API_KEY...)."""
    from mockserver.families import families

    env = os.environ if environ is None else environ
    keys = {}
    for name, spec in families().items():
        found = next((env[var] for var in spec.key_variables if env.get(var)), None)
        if found:
            keys[name] = found
    return keys


@dataclass
class LiveFinding:
    method: str
    url: str
    status: int
    problem: str


@dataclass
class LiveRoutes:
    """respx routes that forward to the real hosts and validate what comes back."""

    contracts: ContractSet
    budget: Budget
    hosts: dict[str, str] = field(default_factory=dict)  # empty: the contracts' `servers:`
    findings: list[LiveFinding] = field(default_factory=list)

    def __post_init__(self) -> None:
        from mockserver.handle import host_route, router_class

        if not self.hosts:
            from mockserver.families import host_families

            self.hosts = host_families(self.contracts)
        self._sync = httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport()
        self._patterns = {fam: operation_patterns(c.operations.values())
                          for fam, c in self.contracts.contracts.items()}
        self.router = router_class()(assert_all_called=False, assert_all_mocked=False)
        for host in self.hosts:
            host_route(self.router, host).mock(side_effect=self._handle)
        self.router.route().pass_through()

    def operation(self, request: httpx.Request) -> Operation | None:
        family = host_match(self.hosts, request.url.host)
        for method, regex, op in self._patterns.get(family or "", []):
            if method == request.method and regex.match(request.url.path):
                return op
        return None

    def _handle(self, request: httpx.Request) -> Any:
        op = self.operation(request)
        # What the proxy counts (a synchronous call is billed too; so may be a write no
        # contract knows), given back when the provider created nothing (`check`).
        if is_submit(op, request.method) and not self.budget.take():
            import pytest

            pytest.skip(f"wanmock live: {request.method} {request.url.path} would submit a "
                        f"billable job beyond the budget ({self.budget.limit}); raise it with "
                        f"--wanmock-budget")
        from mockserver.handle import SYNC_CALL

        if not SYNC_CALL.get():  # httpx's ByteStream is both sync and async: ask the router
            return self._forward_async(request, op)
        response = self._sync.handle_request(request)
        response.read()
        self.check(request, response, op)
        return response

    async def _forward_async(self, request: httpx.Request, op: Operation | None) -> httpx.Response:
        response = await self._async.handle_async_request(request)
        await response.aread()
        self.check(request, response, op)
        return response

    def check(self, request: httpx.Request, response: httpx.Response, op: Operation | None) -> None:
        if is_submit(op, request.method) and not 200 <= response.status_code < 300:
            self.budget.refund()  # the provider's answer shows no job was created
        url = redact_value(str(request.url))
        if op is None:
            self.findings.append(LiveFinding(request.method, url, response.status_code,
                                             "no contract operation matches this request"))
            return
        status = str(response.status_code)
        listed = {str(s) for s in op.raw.get("responses", {})}
        if status not in listed and "default" not in listed:
            self.findings.append(LiveFinding(request.method, url, response.status_code,
                                             f"status {status} is not in the contract "
                                             f"({', '.join(sorted(listed))})"))
            return
        validator = op.response_validators.get(status)
        if validator is None or "json" not in response.headers.get("content-type", "json"):
            return
        try:
            body = json.loads(response.content)
        except ValueError:
            self.findings.append(LiveFinding(request.method, url, response.status_code,
                                             "body is not JSON"))
            return
        for err in validator.iter_errors(body):
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            self.findings.append(LiveFinding(
                request.method, url, response.status_code,
                f"{op.family}.{op.operation_id}: at {where}: {err.message}"))

    def start(self) -> LiveRoutes:
        self.router.start()
        return self

    def stop(self) -> None:
        self.router.stop(quiet=True)


def describe_findings(findings: list[LiveFinding]) -> str:
    lines = [f"{len(findings)} live response(s) differ from the contract:"]
    for f in findings:
        lines.append(f"  {f.method} {f.url} -> {f.status}: {f.problem}")
    return "\n".join(lines)
