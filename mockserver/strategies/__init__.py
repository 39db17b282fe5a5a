"""Hypothesis strategies for your own property tests against the Wan APIs (and the fake).

Everything here is built from the contracts and the model catalogue when you call it
(`mockserver.contracts.load()`), so the strategies follow any change to `contracts/*.yaml` or
`contracts/catalogue.yaml`:

- `requests(family)` draws request bodies the family accepts with no violation at all, for any
  model the catalogue says it offers; `requests(family, valid=False)` draws bodies that break
  exactly one rule and says which.
- `lifecycles()` draws what a task can go through (queue time, run time, and success, failure
  with a provider code at some point of the run, or cancellation while queued);
  `apply_lifecycle()` makes a submitted task of the fake follow one.
- `poll_plans()` draws the pacing of the fake's poll-count mode.

The documentation's example (docs/strategies.md): whatever lifecycle the provider shows, a small
polling client ends in the right state and stops polling::

    @pytest.mark.wanmock(mode="time", clock="manual")
    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(req=strategies.requests("dashscope"), lifecycle=strategies.lifecycles())
    def test_client_follows_any_lifecycle(wanmock, req, lifecycle):
        wanmock.reset()  # fresh for each example
        _, body = req
        with httpx.Client(base_url="https://dashscope.aliyuncs.com/api/v1", headers=H) as c:
            task_id = c.post("/services/aigc/video-generation/video-synthesis",
                             json=body).json()["output"]["task_id"]
            strategies.apply_lifecycle(wanmock, task_id, lifecycle)
            output = wait_for_video(c, task_id, sleep=wanmock.advance)  # your client
        assert output["task_status"] == lifecycle.final_state.value.upper()
        wanmock.assert_stopped_polling(task_id)

Arguments are keyword-only after the family and checked when the strategy is built: a wrong
one raises `hypothesis.errors.InvalidArgument` at once, not when the first example is drawn.

The package splits along these lines (`schema`, `bodies`, `breaks`, `request_bodies`,
`lifecycles`); this module is the public facade.
"""

from mockserver.strategies.lifecycles import (
    OUTCOMES,
    PollPlan,
    TaskLifecycle,
    apply_lifecycle,
    lifecycles,
    poll_plans,
)
from mockserver.strategies.request_bodies import requests

__all__ = [
    "OUTCOMES",
    "PollPlan",
    "TaskLifecycle",
    "apply_lifecycle",
    "lifecycles",
    "poll_plans",
    "requests",
]
