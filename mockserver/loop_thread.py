"""An asyncio event loop in a daemon thread: sync code runs coroutines on it.

Used to drive an ASGI app from synchronous callers: sync httpx clients routed in process
(`handle.InProcessRoutes`) and `wanmock check`'s in-process video fetches (`conformance`).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class LoopThread:
    """An event loop running in its own thread until `close()`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wanmock-loop",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Stop the loop, join its thread, close it."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
