"""How the toy provider words its errors (no Starlette): what `mockserver.checks` judges with."""

from __future__ import annotations

from mockserver.contracts import Operation
from mockserver.errors import ProviderError
from mockserver.providers.policy import Policy


class ToyPolicy(Policy):
    """The toy's wording; the contract decides everything else."""

    name = "toy"

    def auth_error(self, kind: str) -> ProviderError:
        return ProviderError(401, "no_key", "a key is needed")

    def body_error(self, kind: str, op: Operation) -> ProviderError:
        return ProviderError(400, "bad_body", f"the body is {kind}")
