"""new-api's task row: what its background poller last wrote, not the upstream task now.

new-api answers every query from its own database row (relay/relay_task.go
`videoFetchByIDRespBodyBuilder`; only Gemini/Vertex fetch upstream in real time). The row is
written twice: `InitTask` at submit (status NOT_START, progress "0%", `data` = DashScope's
submit answer) and by the poller (v1.0.0-rc.25 service/task_polling.go, a system task every
15 s; v0.10.0 controller/task_video.go after time.Sleep(15 s)), which polls every unfinished
task upstream and stores what it saw (QUEUED "20%", IN_PROGRESS "30%" and `start_time`,
SUCCESS/FAILURE "100%" and `finish_time`; the Ali adaptor never reports SUBMITTED "10%"). So a
client sees the upstream state up to one interval late. Every poll rewrites the row (the
stored body's request_id changes), so `UpdatedAt` is the last poll until the task ended.

The fake puts the poller's ticks on a grid of `interval` seconds of the fake's clock; the row
at time `now` is the upstream task as it was at the last tick after its submission. An interval
of 0 turns the lag off (the row always equals the upstream task). No Starlette here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mockserver.core.tasks import Snapshot, State

# new-api's poller interval (service/task_polling.go TaskPollingLoop: time.Sleep(15 s)); the
# fake's short timings keep the lag short too (a 5 s `fast` job must not wait 15 s).
INTERVAL_BY_TIMING = {"realistic": 15.0, "fast": 1.0, "instant": 0.0}


@dataclass(frozen=True, slots=True)
class Row:
    """new-api's row for one task. `snap` is the upstream task as last fetched (at the last tick;
    None while NOT_START); times are Unix seconds, 0 when not set."""

    not_started: bool
    snap: Snapshot
    start_time: int
    finish_time: int
    updated_at: int


def interval(timing: str, mode: str, configured: float | None) -> float:
    """Seconds between poller ticks (0 = no lag). Poll-count mode has no clock to lag behind."""
    if mode == "polls":
        return 0.0
    if configured is not None:
        return max(0.0, configured)
    return INTERVAL_BY_TIMING.get(timing, 1.0)


def row(now: Snapshot, view_at: Callable[[float], Snapshot], every: float) -> Row:
    """The row at `now.now`: `view_at(t)` is the upstream task at time `t`."""
    if every <= 0:  # polled continuously: updated at every moment until it ended
        ended = now.ended_at if now.state.terminal else None
        updated = ended if ended is not None else now.now
        return Row(False, now, int(now.started_at or 0), int(ended or 0), int(updated))
    first = (math.floor(now.submitted_at / every) + 1) * every
    if now.now < first:
        return Row(True, now, 0, 0, int(now.submitted_at))
    last = math.floor(now.now / every) * every
    seen = view_at(last)

    def tick(t: float) -> float:
        """The first poll at or after `t` (never after the last one)."""
        return min(last, max(first, math.ceil(t / every) * every))

    start = 0.0
    if seen.state is not State.QUEUED and seen.started_at is not None:
        t = tick(seen.started_at)
        if seen.ended_at is None or t < seen.ended_at or not seen.state.terminal:
            start = t  # some poll saw it running; one that saw it done at once sets none
    finish = tick(seen.ended_at) if seen.state.terminal and seen.ended_at is not None else 0.0
    # Every poll rewrites the row (the stored body's request_id changes), and an ended task is
    # no longer polled: UpdatedAt is the last poll, frozen at the one that saw it end.
    updated = finish if finish else last
    return Row(False, seen, int(start), int(finish), int(updated))
