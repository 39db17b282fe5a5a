"""apiyi's policy (no Starlette): DashScope's wording for the create it passes through, and its
own task API's (a new-api deployment: new-api's OpenAI-shaped 401, a plain 404)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockserver.contracts import Operation
from mockserver.errors import ProviderError
from mockserver.providers.apiyi import render
from mockserver.providers.dashscope.policy import DashScopePolicy


class ApiyiPolicy(DashScopePolicy):
    """DashScope's policy under `/wan`, and apiyi's task API."""

    name = "apiyi"

    @staticmethod
    def task_not_found() -> ProviderError:
        """The task API's answer for a task it does not know (or no longer keeps)."""
        return ProviderError(404, "task_not_found", "task not found")

    def authenticate(self, headers: Mapping[str, str], op: Operation) -> str:
        """apiyi's task API is a new-api deployment: its 401 is new-api's OpenAI-shaped one."""
        try:
            return super().authenticate(headers, op)
        except ProviderError as err:
            if op.role == "query":
                raise self.task_auth_error() from err
            raise

    def task_auth_error(self) -> ProviderError:
        """The task API's 401: new-api's, with a request id in the message."""
        rid = self.context.ids.token(24)
        return ProviderError(401, "invalid_token", f"Invalid token (request id: {rid})",
                             envelope="task_auth")

    def error_body(self, err: ProviderError, op: Operation | None = None) -> Any:
        if err.envelope == "task_auth":
            return render.task_auth_error(err.message, err.code)
        return super().error_body(err, op)
