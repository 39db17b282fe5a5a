"""The dashboard at `/_wanmock/ui`: tasks, a task's timeline with its polls, the journal,
controls and contracts, server-rendered from a `Backend` and live over server-sent events.

    from mockserver.ui import ui_routes
    app = Starlette(routes=[*ui_routes(backend), ...])

`close_streams(backend)` ends its open event streams (call it before stopping a server, so an
open page never holds the shutdown).
"""

from mockserver.ui.routes import PREFIX, ui_routes
from mockserver.ui.stream import close_streams, open_streams

__all__ = ["PREFIX", "close_streams", "open_streams", "ui_routes"]
