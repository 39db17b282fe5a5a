"""`Backend.admit(window_s=)`: a limit counted in a sliding window longer than a second
(Replicate's per-minute limits), on every store."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.app import create_app


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_per_minute_limit_counts_a_sliding_minute(store: str, tmp_path: Any) -> None:
    url = "memory" if store == "memory" else f"sqlite:///{tmp_path}/s.db"
    backend = create_app(clock="manual", seed=1, store=url).state.backend

    def admit(key: str = "k") -> bool:
        return bool(backend.admit("fam", key, qps=3, bucket="create", window_s=60.0))

    assert [admit() for _ in range(4)] == [True, True, True, False]
    assert admit("other")  # per key
    backend.clock.advance(30)
    assert not admit()  # still the same minute
    backend.clock.advance(31)
    assert admit()  # the first three left the window
    # the one-second window is unchanged
    assert [backend.admit("fam", "k", qps=1, bucket="s") for _ in range(2)] == [True, False]
