"""Retention is a component of the Backend, built from the contracts: a Backend made alone (no
app, no family classes) keeps each family's tasks as its contract says."""

from __future__ import annotations

from mockserver.catalogue import JobSpec
from mockserver.contracts import load
from mockserver.core.backend import Backend, Options
from mockserver.core.clock import ManualClock
from mockserver.core.retention import Keep, Retention
from mockserver.core.tasks import State

DAY = 86400.0


def _submit(backend: Backend, family: str, n: int) -> str:
    spec = JobSpec(family=family, model="wan2.6-t2v", mode="t2v", width=1280, height=720,
                   duration=5, audio=False)
    return backend.submit(family=family, operation="op", spec=spec, request={},
                          task_id=f"{family}-{n}").id


def test_a_backend_built_alone_applies_each_familys_retention() -> None:
    backend = Backend(Options(seed=1, timing="instant"), clock=ManualClock())
    contracts = load()
    for name in ("dashscope", "jiekou", "newapi", "apiyi"):
        stated = contracts[name].extensions.retention
        assert stated is not None
        assert backend.retention.keep[name] == Keep(stated.task_s, stated.url_s)
    ds, jk = _submit(backend, "dashscope", 1), _submit(backend, "jiekou", 1)
    backend.clock.advance(DAY + 60)
    assert backend.view(backend.store.get(ds)).state is State.EXPIRED  # 24 h (DashScope)
    assert backend.view(backend.store.get(jk)).state is State.SUCCEEDED  # kept (Novita)
    assert backend.url_ttl(backend.store.get(jk)) == 3600.0
    assert backend.sweep() == 1  # the expired one is forgotten; jiekou's stays
    assert backend.store.get(ds) is None and backend.store.get(jk) is not None


def test_max_tasks_sweeps_as_submits_come_in() -> None:
    backend = Backend(Options(seed=1, timing="instant", max_tasks=20), clock=ManualClock())
    for n in range(60):
        _submit(backend, "jiekou", n)
        backend.clock.advance(1)
    count = sum(1 for _ in backend.tasks())
    assert 20 <= count <= 21  # within one sweep interval (max_tasks // 20 submits) of the bound
    assert backend.store.get("jiekou-59") is not None and backend.store.get("jiekou-0") is None


def test_the_component_keeps_its_own_state() -> None:
    retention = Retention({"x": Keep(10.0, 5.0)}, max_tasks=None)
    assert retention.horizon == 10.0 and retention.submits == 0
    retention.submits, retention.swept_at = 3, 100.0
    retention.reset()
    assert retention.submits == 0 and retention.swept_at == float("-inf")
