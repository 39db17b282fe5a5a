"""`requests(family)`: valid bodies, or bodies breaking one rule, for any offered model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from mockserver.catalogue import entry_task
from mockserver.contracts import load
from mockserver.strategies.bodies import Target, valid_body
from mockserver.strategies.breaks import invalid_body
from mockserver.strategies.schema import Schema, check_type

# (contract id, operation, model) -> (the contract, kept alive so its id stays its own; schema)
_SCHEMAS: dict[tuple[int, str, str], tuple[Any, Schema]] = {}


def _schema(contract: Any, op: Any, model: str) -> Schema:
    """One `Schema` per (contract, operation, model), made once."""
    key = (id(contract), op.operation_id, model)
    found = _SCHEMAS.get(key)
    if found is None:
        found = _SCHEMAS[key] = (contract, Schema(contract, op, model))
    return found[1]


# -- requests() ------------------------------------------------------------------------------
def targets_of(family: Any, operation: Any, model: Any) -> list[Target]:
    contracts = load()
    check_type(family, str, "family")
    if family not in contracts.contracts:
        raise InvalidArgument(
            f"family={family!r} is not a known family; choose one of {sorted(contracts.contracts)}")
    contract = contracts[family]
    catalogue = contract.catalogue
    # A submit whose path names a task (new-api's remix) needs that task first: drawn only
    # when asked for by name (the caller fills the path).
    submits = [op for op in contract.by_role("submit")
               if "{" not in op.path or op.operation_id == operation]
    if operation is not None:
        check_type(operation, str, "operation")
        submits = [op for op in submits if op.operation_id == operation]
        if not submits:
            raise InvalidArgument(
                f"operation={operation!r} is not a submit operation of {family}; choose one of "
                f"{[op.operation_id for op in contract.by_role('submit')]}")
    if model is not None:
        check_type(model, str, "model")
        if catalogue.entry(family, model) is None:
            raise InvalidArgument(
                f"model={model!r} is not offered by {family}; choose one of "
                f"{sorted({e.model for e in catalogue.models(family)})}")
    targets = []
    for op in submits:
        fixed = op.spec_map.get("model")
        if isinstance(fixed, Mapping) and "const" in fixed:
            names = [fixed["const"]]
        else:
            names = list(dict.fromkeys(e.model for e in catalogue.models(family)))
        for name in names:
            entry = catalogue.entry(family, name)
            if entry is not None and op.task is not None and entry_task(entry) != op.task:
                continue  # a model of another endpoint (kf2v vs video-generation)
            if entry is not None and (model is None or name == model):
                # The schema as it reads for this model (its allOf branches on `model`).
                targets.append(Target(family, op, entry, catalogue, _schema(contract, op, name)))
    if not targets:
        raise InvalidArgument(
            f"model={model!r} cannot be sent to {family} operation {operation!r} "
            "(the endpoint fixes another model)")
    return targets


def requests(
    family: str,
    *,
    operation: str | None = None,
    model: str | None = None,
    valid: bool = True,
) -> st.SearchStrategy[tuple[Any, ...]]:
    """Request bodies for `family`'s submit operations, as its contract and the catalogue say.

    `operation` limits the draw to one submit operation (its operationId, e.g.
    `"createVideoSynthesis"`, `"createWanT2vTask"`); `model` to one catalogue model the family
    offers. Bodies use the family's wire shape: DashScope/apiyi `{model, input, parameters}`,
    new-api's flat TaskSubmitReq with or without `metadata`, jiekou's per-endpoint bodies; every
    field is put at one of its `x-wanmock-spec` paths, so the bodies follow the contracts.

    - `valid=True` draws `(operation_id, body)` pairs the family judges with no violation at
      all: sizes, tiers, ratios, durations, audio and required inputs are taken from the model's
      catalogue entry (and kept within the schema's enums and bounds).
    - `valid=False` draws `(operation_id, body, broken)` triples: a valid body with exactly one
      rule broken (a size, tier, ratio or duration the model does not offer, sound on a silent
      model, a missing or malformed image, a missing or blank prompt, too long a prompt, missing
      or too many references, a bad media combination, an unknown model, a wrong type, a seed out
      of range, a value outside an enum). `broken` names the rule as the family reports it: a
      catalogue rule (`"size_allowed"`, `"duration_allowed"`...) when the value passes the JSON
      Schema, else the schema keyword (`"schema:enum"`, `"schema:maximum"`, `"schema:required"`).
      Such a body is rejected at submit or accepted and then failed, as the contract says.

    Examples shrink towards the first operation and the first model in catalogue order, towards
    bodies with only the fields the model requires, short prompts and the first allowed values;
    invalid ones towards the first applicable broken rule.
    """
    targets = targets_of(family, operation, model)
    check_type(valid, bool, "valid")
    if valid:
        return st.sampled_from(targets).flatmap(
            lambda t: valid_body(t).map(lambda pair: (t.op.operation_id, pair[0])))
    return st.sampled_from(targets).flatmap(
        lambda t: invalid_body(t).map(lambda pair: (t.op.operation_id, pair[0], pair[1])))
