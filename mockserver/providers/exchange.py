"""One request/response exchange as the request pipeline sees it, built once per request.

The endpoint of `providers/pipeline.py` makes one `Exchange` per request and keeps it in the
request's scope under `EXCHANGE` (the one scope slot wanmock uses): handlers keep their
`(request, op, raw)` signature and reach it with `exchange_of(request)`. What used to travel in
separate `scope["wanmock.*"]` keys (the journal entry, the API key, the job scenario, the header
dict) lives here, and so does the parsed body, so scenario matching and the handler share one
parse. Starlette-free. The exchange does not point back at the request: the request's scope
holds the exchange, and a way back would make every request a reference cycle that only the
garbage collector frees (a collection every few dozen requests on the hot path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mockserver.contracts import Operation
from mockserver.core.journal import Entry
from mockserver.core.scenarios import Scenario

EXCHANGE = "wanmock.exchange"  # the one scope key wanmock sets
UNPARSED: Any = object()  # `Exchange.body` before anything parsed the body
NOT_JSON: Any = object()  # `Exchange.body` when the body did not parse as JSON


@dataclass(slots=True, eq=False)
class Exchange:
    """One request's pipeline state: who asked for what, and what is known so far."""

    family: str
    operation: Operation | None
    headers: dict[str, str]  # lower-case names, first value wins; shared: never change it
    entry: Entry | None = None  # the journal entry, once recorded
    api_key: str | None = None  # once authenticated
    job_scenario: Scenario | None = None  # a job scenario from X-Wanmock-Scenario
    job_picked: bool = False  # the job scenario was chosen already (header or rules)
    body: Any = UNPARSED  # the parsed JSON body, NOT_JSON, or UNPARSED
    body_from: bytes | None = None  # the bytes `body` was parsed from

    def parsed(self, raw: bytes) -> Any:
        """The body parsed from exactly `raw`, else UNPARSED."""
        return self.body if self.body_from is raw else UNPARSED

    def keep_body(self, raw: bytes, body: Any) -> None:
        """Remember the parse of `raw` (a value or NOT_JSON) for the rest of the exchange."""
        self.body, self.body_from = body, raw


def exchange_of(request: Any) -> Exchange | None:
    """The exchange a request belongs to (None outside a family's endpoint)."""
    found: Exchange | None = request.scope.get(EXCHANGE)
    return found
