"""Helpers shared by the HTTP tests (no fixtures: those live in conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx

from mockserver.contracts import load


def conforms(family: str, operation_id: str, response: httpx.Response) -> Any:
    """The JSON body, after checking it against the contract's schema for its status."""
    op = load().operation(family, operation_id)
    status = str(response.status_code)
    assert status in op.response_validators, f"{operation_id} does not document {status}"
    body = response.json()
    op.response_validators[status].validate(body)
    return body
