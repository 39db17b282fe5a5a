"""wanmock: contract tests and a stateful fake provider for the Wan video-generation APIs.

The public surface is re-exported here; everything else is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mockserver.version import __version__

__all__ = [
    "ContractError",
    "MockServerError",
    "ProviderError",
    "ThreadedMockServer",
    "Violation",
    "__version__",
    "create_app",
]

from mockserver.errors import ContractError, MockServerError, ProviderError, Violation

if TYPE_CHECKING:
    from mockserver.server import ThreadedMockServer, create_app


def __getattr__(name: str) -> Any:
    # Starlette, uvicorn and PyAV are imported only when the app or the server is asked for, so
    # that the pytest plugin and the contract layer stay light to import.
    if name == "create_app":  # mockserver.app.create_app with the cassette reader for replay=
        from mockserver.server import create_app

        return create_app
    if name == "ThreadedMockServer":
        from mockserver.server import ThreadedMockServer

        return ThreadedMockServer
    raise AttributeError(f"module 'mockserver' has no attribute {name!r}")
