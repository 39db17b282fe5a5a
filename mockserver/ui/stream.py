"""Server-sent events for the dashboard: each open page learns when what it shows has changed.

A stream compares a cheap version of its page (a hash of the rows it shows) every half second
(less often when computing it costs more than a tenth of a second) and sends `event: version`
when it changes; the page then fetches its live regions again. State is derived from the clock,
so tasks move without any request: polling the version is what makes "live" work on every
store.

A stream must never keep a server from stopping: uvicorn waits for open responses before it
runs the app's shutdown, so a stream ends by itself when `close_streams(backend)` is called
(`ThreadedMockServer.stop()` and `server.serve_forever`, under `wanmock serve` and `wanmock
proxy`, do before they stop), when the client goes
away, and in any case after `MAX_LIFE_S` (the browser's EventSource reconnects at once).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable

from mockserver.core.backend import Backend
from mockserver.core.store import StoreUnavailable

TICK_S = 0.5
MAX_LIFE_S = 30.0
KEEPALIVE_S = 10.0
RETRY_MS = 500
MAX_PAUSE_S = 5.0


class Hub:
    """The open streams of one backend and the switch that ends them."""

    def __init__(self) -> None:
        self.closing = threading.Event()
        self.open = 0


_HUBS: weakref.WeakKeyDictionary[Backend, Hub] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def hub(backend: Backend) -> Hub:
    with _LOCK:
        found = _HUBS.get(backend)
        if found is None:
            found = _HUBS[backend] = Hub()
        return found


def close_streams(backend: Backend) -> None:
    """End every dashboard stream of this backend within one tick (call before a server stops);
    new streams end at once until `open_streams`."""
    hub(backend).closing.set()


def open_streams(backend: Backend) -> None:
    """Allow streams again (a server starting on this backend)."""
    hub(backend).closing.clear()


def event(name: str, data: object) -> str:
    """One SSE event (`event:` and a one-line JSON `data:`)."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _version(version: Callable[[], str]) -> str:
    """The page's version; while the store cannot be reached, a version of its own (the page
    reloads into the dashboard's 503, and again once the store is back)."""
    try:
        return version()
    except StoreUnavailable:
        return "store-unavailable"


async def events(
    backend: Backend,
    version: Callable[[], str],
    disconnected: Callable[[], object],
    *,
    tick: float = TICK_S,
    max_life: float = MAX_LIFE_S,
) -> AsyncIterator[str]:
    """The event stream of one page: its version now, then each time it changes."""
    state = hub(backend)
    state.open += 1
    try:
        yield f"retry: {RETRY_MS}\n\n"
        started = time.perf_counter()
        last = _version(version)
        cost = time.perf_counter() - started
        yield event("version", {"version": last})
        waited = quiet = 0.0
        while waited < max_life and not state.closing.is_set():
            # A page that is costly to version (a state filter over many tasks, a remote
            # store) is looked at less often: the stream spends at most a fifth of its time.
            pause = min(MAX_PAUSE_S, max(tick, 4 * cost))
            slept = 0.0
            while slept < pause and not state.closing.is_set():  # stays quick to close
                await asyncio.sleep(tick)
                slept += tick
            waited += slept
            quiet += slept
            if state.closing.is_set() or await disconnected():  # type: ignore[misc]
                return
            started = time.perf_counter()
            now = _version(version)
            cost = time.perf_counter() - started
            if now != last:
                last, quiet = now, 0.0
                yield event("version", {"version": now})
            elif quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"
    finally:
        state.open -= 1
