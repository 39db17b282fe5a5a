"""Errors and violations.

Two families, as in Schemathesis: `MockServerError` for misuse of the toolkit (bad arguments, an
unknown family, a broken contract), and `ProviderError` for what a provider would answer. A
`ProviderError` is data: a family's handler renders it into that family's status and envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Timing = Literal["submit", "async"]


class MockServerError(Exception):
    """The toolkit was used wrongly: the message says what to change."""


class ContractError(MockServerError):
    """A contract or the catalogue is invalid, or names something that does not exist."""


class StoreUnavailable(Exception):  # noqa: N818 - it is a condition, as `ConnectionError` is
    """The store cannot be reached (or is restarting): families answer their own 503."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason a provider would refuse a request.

    `field` is the dotted path in the request body (or `header:Name`), `rule` the JSON Schema
    keyword (`schema:enum`) or catalogue rule (`size_allowed`) that failed, `status`, `code` and
    `message` what the provider answers, and `timing` whether it rejects at submit (`submit`) or
    accepts the task and fails it later (`async`).
    """

    field: str
    rule: str
    status: int
    code: str
    message: str
    timing: Timing = "submit"
    value: Any = None
    wrap: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form, for the journal and reports."""
        return {
            "field": self.field,
            "rule": self.rule,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "timing": self.timing,
        }


@dataclass(slots=True)
class ProviderError(Exception):
    """An error a provider answers with; rendered by the family into its own envelope.

    `envelope` selects one of the family's envelope templates (`default`, `auth`, `content`).
    """

    status: int
    code: str
    message: str
    envelope: str = "default"
    headers: dict[str, str] = field(default_factory=dict)
    violation: Violation | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.status} {self.code}: {self.message}")

    @classmethod
    def from_violation(cls, violation: Violation) -> ProviderError:
        """The submit-time error for a violation."""
        return cls(violation.status, violation.code, violation.message, violation=violation)
