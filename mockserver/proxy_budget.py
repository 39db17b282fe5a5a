"""The proxy's spend guard: what counts against `--budget`, and the answer beyond it.

A submit costs money when the provider creates a job, and the provider decides that, not the
contract: so every submit the proxy forwards counts, whatever the contract judge thought of its
body (a body the judge refuses may still be accepted upstream: a multipart form the judge
misread, a size the catalogue says fails later). It is given back only when the provider's
answer shows that no job was created: a non-2xx answer, or a connection that was never made.
A request to no contract operation that could create something (POST, PUT, PATCH) counts too:
the contracts do not know every billable endpoint; so does a synchronous call billed per call
(role `sync`). Polls, downloads, cancels and lists never count.

Beyond the budget a submit is answered by the proxy itself, in the family's own quota envelope
(its `x-wanmock-faults` `rate_limit`: DashScope's 429 `Throttling.RateQuota` with a request id,
Novita's `RATE_LIMIT_EXCEEDED`...), worded by the family's policy exactly as the fake words it,
so the answer passes the family's contract and a client handles it as the provider's own.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from mockserver.contracts import Operation

UNKNOWN = "-"  # the family label of a request no contract operation matches
_WRITES = ("POST", "PUT", "PATCH")
# The contract roles (`x-wanmock-role`) that cost money: a submit, and a synchronous call,
# billed per call (DashScope's wan2.2-s2v-detect).
BILLABLE_ROLES = frozenset({"submit", "sync"})


@dataclass
class Counts:
    """One family's submits: forwarded upstream, given back, answered locally."""

    forwarded: int = 0
    refunded: int = 0
    refused: int = 0

    @property
    def spent(self) -> int:
        return self.forwarded - self.refunded


def is_submit(op: Operation | None, method: str) -> bool:
    """Whether forwarding this request may create a billable job upstream: an operation whose
    contract role bills (`BILLABLE_ROLES`), or a write no contract knows."""
    if op is None:
        return method.upper() in _WRITES
    return op.role in BILLABLE_ROLES


class Budget:
    """Billable submits per family against one limit (None: unlimited)."""

    def __init__(self, limit: int | None = 0) -> None:
        self.limit = limit
        self.families: dict[str, Counts] = {}
        self._lock = threading.Lock()

    def _of(self, family: str | None) -> Counts:
        return self.families.setdefault(family or UNKNOWN, Counts())

    @property
    def spent(self) -> int:
        return sum(c.spent for c in self.families.values())

    @property
    def refused(self) -> int:
        return sum(c.refused for c in self.families.values())

    def take(self, family: str | None = None, n: int = 1) -> bool:
        """Count `n` submits about to be forwarded; False (and counted as refused) beyond the
        limit. One budget may serve a session's threads (the pytest plugin's recording proxy
        and its in-process routes), so the check and the count are one step."""
        with self._lock:
            counts = self._of(family)
            if self.limit is not None and self.spent + n > self.limit:
                counts.refused += n
                return False
            counts.forwarded += n
            return True

    def refund(self, family: str | None = None) -> None:
        """The provider's answer shows no job was created: the submit costs nothing."""
        with self._lock:
            self._of(family).refunded += 1

    def summary(self) -> dict[str, Any]:
        """The numbers of the status endpoint and the exit report."""
        totals = Counts()
        for counts in self.families.values():
            totals.forwarded += counts.forwarded
            totals.refunded += counts.refunded
            totals.refused += counts.refused
        return {"limit": self.limit, "spent": totals.spent, **asdict(totals),
                "families": {name: {**asdict(c), "spent": c.spent}
                             for name, c in sorted(self.families.items())}}

    def line(self) -> str:
        """`2 of 3 billable submit(s) spent: forwarded 3, refunded 1, refused 4`."""
        data = self.summary()
        limit = "unlimited" if self.limit is None else self.limit
        return (f"{data['spent']} billable submit(s) of {limit} spent (forwarded "
                f"{data['forwarded']}, refunded {data['refunded']}, refused {data['refused']})")


def refusal(provider: Any, op: Operation | None, limit: int | None
            ) -> tuple[int, Any, dict[str, str]]:
    """The over-budget answer for `op`, in its family's words: (status, body, headers).
    `provider` is the family's policy in the proxy's own fake (its ids make the request id)."""
    from mockserver.core.scenarios import Scenario

    err = provider.fault_error(Scenario("rate-limit"), op)
    err.message = (f"wanmock proxy: the budget of {limit} billable submit(s) is spent; this "
                   "submit was not forwarded (raise --budget)")
    return err.status, provider.error_body(err, op), dict(err.headers or {})
