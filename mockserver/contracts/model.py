"""The contract model: a family's `Contract`, its `Operation`s, and the `ContractSet`.

An `Operation` holds one operation's data and compiled validators; judging a request is its
`RequestJudging` part (judging.py), reading neutral fields its `SpecExtraction` part (spec.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from mockserver.catalogue import Catalogue, JobSpec
from mockserver.contracts.extensions import RELAY, TASK, ContractExtensions, Decision
from mockserver.contracts.judging import RequestJudging
from mockserver.contracts.spec import SpecExtraction, SpecNode
from mockserver.contracts.templates import ErrorMapping, render_envelope
from mockserver.errors import ContractError, Timing, Violation


@dataclass(slots=True)
class Operation(SpecExtraction, RequestJudging):
    """One operation of a contract, with its compiled validators."""

    family: str
    operation_id: str
    method: str
    path: str
    role: str
    raw: Mapping[str, Any]
    body_validator: Draft202012Validator | None
    parameters: list[Mapping[str, Any]]
    errors: list[ErrorMapping]
    rules: dict[str, Mapping[str, Any]]
    spec_map: dict[str, Any]
    response_validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    # A compiled (jsonschema_rs) validator at least as strict as `body_validator`: when it
    # accepts a body, so would `body_validator`; otherwise `body_validator` decides and words
    # the errors. None when jsonschema_rs is missing or cannot take the schema.
    fast_validator: Any = None
    # (parameter, where, name, schema, validator) for the query and header parameters.
    _checked_params: list[tuple[Mapping[str, Any], str, str, Any, Any]] | None = None
    # `spec_map` compiled once: its rows in order and the trie of its paths.
    _extract_plan: tuple[list[tuple[str, Any, bool]], SpecNode] | None = None
    # Per header/query parameter: values already found valid (most clients send the same ones).
    _valid_params: dict[str, set[Any]] = field(default_factory=dict)
    # The contract document (to find the schema node of a compiled-validator error) and a
    # jsonschema validator per such node, built on first use.
    document: Mapping[str, Any] | None = None
    _node_validators: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    # Violations already worded for a scalar at a place (see `_single_error`).
    _seen_errors: dict[tuple[Any, ...], Violation] = field(default_factory=dict)
    # The operation's own `x-wanmock-envelope` template (apiyi's task API), or None; its
    # `x-wanmock-envelope-kind` (new-api's video proxy: `content`); `x-wanmock-task-type`.
    envelope: Any = None
    envelope_kind: str = "default"
    task_type: str = ""

    @property
    def task(self) -> str | None:
        """The DashScope task this submit operation serves (`x-wanmock-task`: `video-generation`,
        `image2video`), or None when it takes every model of its family."""
        task = self.raw.get(TASK)
        return str(task) if task else None

    @property
    def relay(self) -> tuple[str, str] | None:
        """`x-wanmock-relay` of a submit: the (family, operationId) whose judgement of the
        request the gateway builds decides (new-api relays DashScope's), or None."""
        raw = self.raw.get(RELAY)
        if isinstance(raw, Mapping) and raw.get("family") and raw.get("operation"):
            return str(raw["family"]), str(raw["operation"])
        return None


@dataclass(slots=True)
class Contract:
    """One family's OpenAPI document, indexed."""

    family: str
    path: Path
    document: Mapping[str, Any]
    operations: dict[str, Operation]
    catalogue: Catalogue
    # The root `x-wanmock-*` keys, typed (extensions.py), read once.
    extensions: ContractExtensions = field(init=False)

    def __post_init__(self) -> None:
        self.extensions = ContractExtensions.read(self.document)

    @property
    def envelopes(self) -> dict[str, Any]:
        """`x-wanmock-envelope` by kind (`default`, and e.g. new-api's `auth`, `content`)."""
        return dict(self.extensions.envelopes)

    @property
    def decisions(self) -> list[Decision]:
        """`x-wanmock-decisions`, typed."""
        return list(self.extensions.decisions)

    def operation(self, operation_id: str) -> Operation:
        try:
            return self.operations[operation_id]
        except KeyError:
            raise ContractError(
                f"{self.family} has no operation {operation_id!r}; "
                f"it has {sorted(self.operations)}"
            ) from None

    def by_role(self, role: str) -> list[Operation]:
        return [op for op in self.operations.values() if op.role == role]

    def render_error(
        self, status: int, code: str, message: str, *, envelope: str = "default",
        request_id: str | None = None,
    ) -> Any:
        envelopes = self.envelopes
        template = envelopes.get(envelope) or envelopes["default"]
        return render_envelope(
            template,
            {"status": status, "code": code, "message": message, "request_id": request_id},
        )

    def judge(
        self,
        operation_id: str,
        body: Any,
        *,
        rule_timing: Timing | None = None,
        strict_prompts: bool = False,
        alternatives: frozenset[str] = frozenset(),
        assume: Mapping[str, Any] | None = None,
    ) -> tuple[JobSpec | None, list[Violation]]:
        """Judge a request body: the job it would run, and every violation, first reported first.

        Schema violations come first (the provider parses before it checks models); catalogue
        rules are evaluated only on a schema-valid body. `rule_timing` overrides the contract's
        submit/async choice for every catalogue rule; `strict_prompts` rejects prompts over a
        limit whose catalogue alternative is `reject` (`over_alternative`); `alternatives` and
        `assume` are `Catalogue.evaluate`'s (option-chosen readings, facts of unfetched inputs).
        """
        op = self.operation(operation_id)
        violations = op.schema_violations(body)
        if violations or op.role != "submit":
            return None, violations
        fields, sources = op.extract(body)
        spec, failures = self.catalogue.evaluate(self.family, fields, task=op.task,
                                                 strict_prompts=strict_prompts,
                                                 alternatives=alternatives, assume=assume)
        violations = [op.rule_violation(f, sources, rule_timing) for f in failures]
        # Submit-time rejections are reported before anything that would only fail later.
        violations.sort(key=lambda v: v.timing != "submit")
        return spec, violations

    # Its name before the contract layer had one verb: kept so code written against it runs.
    check_request = judge


@dataclass(slots=True)
class ContractSet:
    """Every family's contract and the shared catalogue."""

    directory: Path
    contracts: dict[str, Contract]
    catalogue: Catalogue

    def __getitem__(self, family: str) -> Contract:
        try:
            return self.contracts[family]
        except KeyError:
            raise ContractError(
                f"unknown family {family!r}; known: {sorted(self.contracts)}"
            ) from None

    def __iter__(self) -> Iterator[Contract]:
        return iter(self.contracts.values())

    def operation(self, family: str, operation_id: str) -> Operation:
        return self[family].operation(operation_id)

    def hosts(self, family: str) -> tuple[str, ...]:
        """The hosts of a family's contract's https `servers:` and its mounted hosts
        (`x-wanmock-mounts`; empty for a family without a contract here)."""
        contract = self.contracts.get(family)
        if contract is None:
            return ()
        out = []
        for server in contract.document.get("servers") or []:
            url = str(server.get("url", "")) if isinstance(server, Mapping) else ""
            if url.startswith("https://"):
                out.append(url.removeprefix("https://").split("/", 1)[0])
        for hosts in contract.extensions.mounts.values():  # the family's other hosts
            out.extend(hosts)
        return tuple(dict.fromkeys(out))

    def mounts(self, families: Iterable[str] | None = None) -> dict[str, str]:
        """Each mounted host -> its path prefix (`x-wanmock-mounts`) of the named families'
        contracts (every contract's by default)."""
        names = self.contracts if families is None else families
        return {host: prefix for name in names if name in self.contracts
                for prefix, hosts in self.contracts[name].extensions.mounts.items()
                for host in hosts}
