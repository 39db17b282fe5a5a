"""The contract layer: load the OpenAPI contracts and the catalogue, and judge requests.

No HTTP here. One module per concept:

- `loading`: `load()` reads `contracts/<family>.yaml` and `contracts/catalogue.yaml` once per
  directory, validates each document with openapi-spec-validator, indexes operations by
  `operationId` and compiles their JSON Schema validators once.
- `model`: `ContractSet`, `Contract`, `Operation`.
- `judging`: `Contract.judge()` returns the structured `Violation`s a provider would raise
  for a request body: JSON Schema first (reported through the operation's `x-wanmock-errors`),
  then the catalogue rules (reported through its `x-wanmock-rules`).
- `spec`: neutral job fields read from a body by `x-wanmock-spec`.
- `compiled`: the compiled (jsonschema_rs) fast path of body validation.
- `templates`: error mappings and envelope templates.
- `schema`: JSON Schema helpers (references, inlining).

See docs/contract-conventions.md for the extensions. Every public name is importable from
`mockserver.contracts`.
"""

from mockserver.contracts.compiled import PY_SPACES, strict_pattern
from mockserver.contracts.loading import (
    HTTP_METHODS,
    contracts_dir,
    load,
    load_contract,
    validate_document,
)
from mockserver.contracts.model import Contract, ContractSet, Operation
from mockserver.contracts.schema import Cyclic, deref, inline, leaves
from mockserver.contracts.spec import MISSING, get_path, normalise
from mockserver.contracts.templates import DEFAULT_MAPPING, ErrorMapping, fill, render_envelope

__all__ = [
    "DEFAULT_MAPPING", "HTTP_METHODS", "PY_SPACES", "Contract", "ContractSet",
    "ErrorMapping", "Operation", "MISSING", "Cyclic", "deref", "inline", "leaves",
    "normalise", "contracts_dir", "fill", "get_path", "load", "load_contract",
    "render_envelope", "strict_pattern", "validate_document",
]
