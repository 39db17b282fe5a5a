"""What the engine and the request pipeline need from a replayed cassette (`Options.replay`).

Replay is not a second engine: a recorded job's plan goes into an ordinary task, and every
state derives from it as for any task. The engine only asks a `Replay` for that plan
(`take`, `apply`); the family pipeline (`providers/replaying.py`) asks it for the recorded
answers. The cassette format and its reading belong to the differential loop
(`mockserver.replay.ReplayBook` implements this interface and `mockserver.replay.open_replay`
opens one); a `Backend` is handed that opener (`open_replay=`), so core never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mockserver.core.tasks import Snapshot, Task


class RecordedAnswer(Protocol):
    """A recorded answer: its status and body (`response_encoding` `json` or another)."""

    status: int
    response_encoding: str
    response_body: Any


class Replay(Protocol):
    """The recorded jobs of one cassette."""

    def take(self, family: str, operation: str, body: Any) -> Any | None:
        """The next recorded job for this submission (an opaque handle), or None."""
        ...

    def apply(self, job: Any, task: Task) -> None:
        """Give a fresh task the recorded job's plan (and what else it recorded)."""
        ...

    def reset(self) -> None:
        """Start again from the first recorded job of each submission."""
        ...

    def knows(self, family: str, operation: str, body: Any) -> bool:
        """Whether the cassette has this submission, answered or refused."""
        ...

    def rejection(self, family: str, operation: str, body: Any) -> RecordedAnswer | None:
        """A recorded refusal of this submission, or None."""
        ...

    def answer(self, task: Task, operation: str, role: str, snap: Snapshot, fake: Any,
               video_url: str | None) -> tuple[int, Any] | None:
        """The recorded answer (status, body) for a replayed task at this moment, or None to
        keep the fake's own."""
        ...


# Opens the cassette at a path (`mockserver.replay.open_replay`).
ReplayOpener = Callable[[str], Replay]
