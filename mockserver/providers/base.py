"""A family's HTTP class: its policy (`providers/policy.py`) over the request pipeline
(`providers/pipeline.py`).

A family subclasses `Family` (usually through its own policy: `class DashScope(DashScopePolicy,
Family)`), names its handlers after its contract's operationIds in snake_case
(`createVideoSynthesis` -> `create_video_synthesis`), and says how it words authentication and
body errors. `Family.routes()` builds one Starlette route per contract operation, so the contract
decides the paths. Every exchange goes into the journal; any `ProviderError` becomes the family's
own status and envelope; nothing a client sends can produce a traceback or an unplanned 500.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from mockserver.contracts import Operation
from mockserver.core.backend import Backend
from mockserver.errors import ProviderError
from mockserver.families import load_class, spec
from mockserver.providers.hotpath import headers_of, json_response
from mockserver.providers.pipeline import (
    SCENARIO_HEADER,
    ConnectionDropped,
    DroppedResponse,
    Handler,
    Pipeline,
    handler_name,
)
from mockserver.providers.policy import DEFAULT_FAULTS, Policy

__all__ = ["DEFAULT_FAULTS", "SCENARIO_HEADER", "ConnectionDropped", "DroppedResponse", "Family",
           "Handler", "handler_name", "headers_of", "json_response"]


class Family(Pipeline, Policy, ABC):
    """One provider family over HTTP: the pipeline, worded by the family's policy."""

    def __init__(self, backend: Backend) -> None:
        Policy.__init__(self, backend)
        self.backend = backend
        self._param_checks = {}
        backend.retention[self.name] = self.contract_retention()
        # A family that owes webhooks renders them with `_webhook_body(task, base_url)`; the
        # backend keeps it so any worker of a shared store can render any task's webhook.
        render = getattr(self, "_webhook_body", None)
        if render is not None:
            backend.webhook_renderers[self.name] = render

    @abstractmethod
    def auth_error(self, kind: str) -> ProviderError:
        """The family's 401; kind: `missing`, `malformed`, `invalid`."""

    @abstractmethod
    def body_error(self, kind: str, op: Operation) -> ProviderError:
        """The family's answer to a body that is `empty`, `not_json`, of the wrong
        `content_type` or `too_large`."""


def family_class(name: str) -> type[Family]:
    """The HTTP class serving the family `name` (its `FamilySpec.routes`)."""
    return load_class(spec(name).routes)  # type: ignore[no-any-return]
