"""Shared fixtures: a fresh app on a manual clock, and a client into it."""

from __future__ import annotations

import httpx
import pytest

from mockserver.app import create_app
from mockserver.contracts import load
from mockserver.core.clock import ManualClock


@pytest.fixture(scope="session")
def contract_set():
    return load()


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def app():
    """All families, a manual clock, seed 1."""
    return create_app(clock=ManualClock(), seed=1)


@pytest.fixture
def backend(app):
    return app.state.backend


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    base = "https://dashscope.aliyuncs.com"
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        yield c
