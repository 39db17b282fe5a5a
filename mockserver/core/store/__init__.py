"""Where the fake's state lives, chosen by URL: `memory` (default), SQLite or Redis.

`open_store(url)` picks the store for a URL: the memory store, or a `SharedStore` over the
driver its scheme names in `DRIVERS` (`"module:Class"`, loaded when first used). A driver
implements `base.Driver`; `register_driver` adds a scheme (a plugin's driver, the test suite's
toy driver). See base.py for the interfaces and ARCHITECTURE.md "Adding a store".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mockserver.core.store.base import Driver, Store, StoreUnavailable, store_label
from mockserver.errors import MockServerError

__all__ = ["DRIVERS", "Driver", "Store", "StoreUnavailable", "open_store", "register_driver",
           "store_label"]

MEMORY = ("memory", "memory://", "mem")
# URL scheme -> the driver class (`"module:Class"`, or a factory taking the URL).
DRIVERS: dict[str, str | Callable[[str], Driver]] = {
    "sqlite": "mockserver.core.store.sqlite:SqliteDriver",
    "redis": "mockserver.core.store.redis:RedisDriver",
    "rediss": "mockserver.core.store.redis:RedisDriver",
    "unix": "mockserver.core.store.redis:RedisDriver",
}


def register_driver(scheme: str, driver: str | Callable[[str], Driver]) -> None:
    """Serve `scheme://...` store URLs with `driver` (a factory taking the URL, or
    `"module:Class"`)."""
    DRIVERS[scheme] = driver


def open_store(url: str | None) -> Store:
    """The store for a URL: `memory` (default), `sqlite:///path.db`, `redis://host:port/db`, or
    a scheme `register_driver` added."""
    url = (url or "memory").strip()
    if url in MEMORY:
        from mockserver.core.store.memory import MemoryStore

        return MemoryStore()
    scheme = url.partition(":")[0]
    found = DRIVERS.get(scheme)
    if found is None:
        extra = [f"{s}://..." for s in DRIVERS if s not in ("sqlite", "redis", "rediss", "unix")]
        known = ", ".join(["memory", "sqlite:///PATH", "redis://HOST:PORT/DB", *extra])
        raise MockServerError(f"unknown store {url!r}; use one of: {known}")
    from mockserver.core.store.shared import SharedStore

    factory: Any = found
    if isinstance(found, str):
        import importlib

        module, _, name = found.partition(":")
        factory = getattr(importlib.import_module(module), name)
    return SharedStore(factory(url), url)
