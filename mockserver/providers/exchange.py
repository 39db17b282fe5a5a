"""One request as a family's handler receives it: the request, and what the pipeline decided.

The endpoint of `providers/pipeline.py` makes one `Exchange` per request and decides, once,
before the handler runs: who is calling (`api_key`, after authentication), which task the path
or query names (`task_id`), the journal entry, a job scenario the header asked for, and, for a
submit, the parsed body (`body`). The handler is called as `handler(exchange)` and reads them
from here; nothing is decided twice. Starlette-free (the request is only carried). The
exchange is not kept in the request's scope: nothing points back at it from the request, so a
request leaves no reference cycle for the garbage collector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mockserver.contracts import Operation
from mockserver.core.journal import Entry
from mockserver.core.scenarios import Scenario
from mockserver.jsonwire import InvalidUtf8, NotJSON, decode

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from mockserver.contracts import Contract
    from mockserver.core.backend import Backend
    from mockserver.core.scenarios import RequestInfo
    from mockserver.errors import ProviderError
    from mockserver.providers.policy import Policy

UNPARSED: Any = object()  # `Exchange.body` before anything parsed the body
NOT_JSON: Any = object()  # what `Exchange.json` gives for a body that is not JSON


@dataclass(slots=True, eq=False)
class Exchange:
    """One request's pipeline state: who asked for what, and what is known so far."""

    family: str
    operation: Operation
    request: Request
    headers: dict[str, str]  # lower-case names, first value wins; shared: never change it
    raw: bytes | None  # the body as read; None past the body limit (refused before a handler)
    entry: Entry
    api_key: str | None = None  # once authenticated (every handler runs after that)
    task_id: str | None = None  # the task the path (`{task_id}`, `{video_id}`) or query names
    job_scenario: Scenario | None = None  # a job scenario from X-Wanmock-Scenario
    job_picked: bool = False  # the submit's job scenario is chosen (header or rules)
    body: Any = UNPARSED  # a submit's request body as the family reads it (set before it)
    form: Any = None  # a form or multipart submit's parts, where the family reads forms
    decoded: Any = field(default=UNPARSED, repr=False)  # `json()`'s parse, made once

    def json(self, invalid_utf8: InvalidUtf8 = "replace") -> Any:
        """`raw` decoded as JSON the family's way (`mockserver.jsonwire`), or NOT_JSON;
        parsed at most once per exchange (scenario rules and the handler share it)."""
        found = self.decoded
        if found is UNPARSED:
            try:
                found = decode(self.raw or b"", invalid_utf8=invalid_utf8)
            except NotJSON:
                found = NOT_JSON
            self.decoded = found
        return found

    @property
    def path_params(self) -> dict[str, str]:
        """The operation's path parameters (`{task_id}`...)."""
        params: dict[str, str] = self.request.scope["path_params"]
        return params

    @property
    def method(self) -> str:
        method: str = self.request.scope["method"]
        return method


class Served(Protocol):
    """A family's HTTP class as the pipeline and replay see it (`providers.base.Family`)."""

    name: str
    backend: Backend
    policy: Policy
    contract: Contract

    @classmethod
    def handler_of(cls, op: Operation) -> str: ...

    def read_body(self, ex: Exchange) -> Any: ...

    def limit(self, ex: Exchange) -> None: ...

    def request_info(self, ex: Exchange) -> RequestInfo: ...

    def base_url(self, ex: Exchange) -> str: ...

    def error_response(self, err: ProviderError, op: Operation | None = None) -> Response: ...
