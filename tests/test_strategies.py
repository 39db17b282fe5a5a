"""mockserver.strategies: generated requests as the families judge them, and lifecycles the fake
follows. Every property runs under the repo's `ci` Hypothesis profile."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from mockserver import strategies as ws
from mockserver.app import create_app
from mockserver.catalogue import parse_size
from mockserver.contracts import load
from mockserver.core.backend import Backend, Options
from mockserver.core.clock import ManualClock
from mockserver.core.tasks import ORDER, State
from mockserver.errors import MockServerError
from mockserver.families import bundled_names
from mockserver.families import spec as registry_spec
from mockserver.handle import DEFAULT_HOSTS, InProcessRoutes, WanMock
from mockserver.images import is_data_uri
from mockserver.providers.base import family_class
from mockserver.strategies.request_bodies import targets_of

FAMILIES = bundled_names()

NEWAPI_HOST = "newapi.example.com"
HEADERS = {"Authorization": "Bearer sk-test", "X-DashScope-Async": "enable"}
HOST = {"dashscope": "dashscope.aliyuncs.com", "apiyi": "api.apiyi.com",
        "jiekou": "api.jiekou.ai", "newapi": NEWAPI_HOST, "replicate": "api.replicate.com",
        "openrouter": "openrouter.ai", "fal": "queue.fal.run"}
# fal reads `Authorization: Key <key>` (contracts/fal.yaml decision authorization).
KEY_HEADERS = {"fal": {"Authorization": "Key sk-test"}}


@cache
def judge(family: str) -> Any:
    return family_class(family)(Backend()).policy


@cache
def requests_of(family: str, valid: bool) -> Any:
    return ws.requests(family, valid=valid)


def asked(family: str, operation_id: str, body: Any) -> dict[str, Any]:
    """The neutral fields the body asks for, read by the contract's x-wanmock-spec."""
    fields, _ = load()[family].operation(operation_id).extract(body)
    return fields


# -- valid requests ----------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data())
def test_valid_requests_have_no_violation_and_get_the_job_they_ask_for(family, data):
    operation_id, body = data.draw(requests_of(family, True))
    fam = judge(family)
    op = fam.contract.operation(operation_id)
    assert op.role == "submit"
    spec, violations = fam.judge(op, body)
    assert violations == [], [v.as_dict() for v in violations]
    assert spec is not None
    fields = asked(family, operation_id, body)
    assert spec.model == fields["model"]
    geometry = (spec.width, spec.height)
    if "size" in fields:
        assert geometry == parse_size(fields["size"])
    if "width" in fields or "height" in fields:
        assert geometry == (fields["width"], fields["height"])
    if "resolution" in fields:
        tier = int(fields["resolution"].rstrip("P"))
        media = fields.get("media") if isinstance(fields.get("media"), list) else []
        frames = [fields.get("img_url")] + [
            m.get("url") for m in media if isinstance(m, dict) and m.get("type") == "first_frame"]
        if spec.mode == "i2v" and any(is_data_uri(f) for f in frames):
            # An inline first frame (4:3) keeps its aspect ratio at the tier (audit F22).
            assert spec.sr == tier and abs(spec.width / spec.height - 4 / 3) < 0.05, geometry
        elif "ratio" not in fields:  # a ratio's own geometry is checked below (1:1 is 960*960)
            assert min(geometry) == tier
    if "ratio" in fields:
        ratios = fam.contract.catalogue.ratios
        # `adaptive` (Wan 3.0) resolves to a listed ratio the job reports (decision
        # inputs-not-fetched): the geometry is that ratio's.
        ratio = spec.ratio if fields["ratio"] == "adaptive" else fields["ratio"]
        assert f"{spec.width}*{spec.height}" == ratios[spec.resolution][ratio]
    if "duration" in fields:
        if fields["duration"] in (0, -1):  # the input's length / smart duration: assumed
            assert spec.duration >= 2
        else:
            assert spec.duration == fields["duration"]


@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data())
def test_requests_keep_to_the_model_and_operation_asked_for(family, data):
    contract = load()[family]
    operation = data.draw(st.sampled_from(contract.by_role("submit"))).operation_id
    strategy = ws.requests(family, operation=operation)
    op_id, body = data.draw(strategy)
    model = asked(family, op_id, body)["model"]
    assert op_id == operation
    op_id, body = data.draw(ws.requests(family, operation=operation, model=model))
    assert (op_id, asked(family, op_id, body)["model"]) == (operation, model)
    assert judge(family).judge(contract.operation(op_id), body)[1] == []


@pytest.mark.parametrize("family", FAMILIES)
def test_every_model_of_the_family_can_be_requested(family):
    catalogue = load().catalogue
    for entry in catalogue.models(family):
        ws.requests(family, model=entry.model)  # raises InvalidArgument if unreachable


# -- invalid requests --------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data())
def test_invalid_requests_break_exactly_the_rule_they_name(family, data):
    operation_id, body, broken = data.draw(requests_of(family, False))
    fam = judge(family)
    _, violations = fam.judge(fam.contract.operation(operation_id), body)
    rules = [v.rule for v in violations]
    assert rules, f"{operation_id} {body} should break {broken}"
    assert rules[0] == broken
    assert set(rules) == {broken}
    catalogue_rules = set(load().catalogue.rules)
    assert broken.startswith("schema:") or broken in catalogue_rules


@pytest.mark.parametrize("family", ["dashscope", "newapi"])
def test_invalid_requests_cover_catalogue_and_schema_rules(family):
    seen: set[str] = set()

    @given(requests_of(family, False))
    def collect(request):
        seen.add(request[2])

    collect()
    assert {"duration_allowed", "resolution_allowed", "size_allowed"} & seen
    assert any(rule.startswith("schema:") for rule in seen)


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[WanMock, Callable[[str], httpx.Client]]]:
    """One in-process fake on a manual clock, reset by each example."""
    app = create_app(clock=ManualClock(), mode="time", seed=1)
    handle = WanMock(app.state.backend)
    with InProcessRoutes(app, [*DEFAULT_HOSTS, NEWAPI_HOST]):
        yield handle, lambda family: httpx.Client(
            base_url=f"https://{HOST[family]}", headers={**HEADERS, **KEY_HEADERS.get(family, {})})


def submit(client: httpx.Client, family: str, operation_id: str, body: Any) -> httpx.Response:
    path = load()[family].operation(operation_id).path
    return client.post(path, json=body)


def task_id_of(family: str, response: httpx.Response) -> str:
    data = response.json()
    if family in ("dashscope", "apiyi"):
        return str(data["output"]["task_id"])
    if family in ("newapi", "replicate", "openrouter"):
        return str(data["id"])
    found = registry_spec(family).task_id(data)
    return str(found if found is not None else data["task_id"])


# Through the HTTP fake, per family: 12 examples in the normal suite (the bodies themselves are
# checked with 40 above, without HTTP), 80 under `-m thorough` (.ci/run runs both).
QUICK = settings(max_examples=12)
MANY = settings(max_examples=80)


def check_invalid_request(fake, family, data):
    wanmock, client_for = fake
    wanmock.reset()
    operation_id, body, broken = data.draw(requests_of(family, False))
    with client_for(family) as client:
        response = submit(client, family, operation_id, body)
    if response.is_success:  # accepted: the rule is reported when the task fails
        task_id = task_id_of(family, response)
        [final] = wanmock.run_until_terminal(task_id)
        assert final.state is State.FAILED, broken
    else:
        assert 400 <= response.status_code < 600
    [entry] = wanmock.requests(family=family, operation=operation_id)
    assert broken in [v["rule"] for v in entry.violations]


def check_valid_request(fake, family, data):
    wanmock, client_for = fake
    wanmock.reset()
    operation_id, body = data.draw(requests_of(family, True))
    with client_for(family) as client:
        response = submit(client, family, operation_id, body)
    assert response.is_success, response.text  # 200, Replicate's 201, OpenRouter's 202
    [final] = wanmock.run_until_terminal(task_id_of(family, response))
    assert final.state is State.SUCCEEDED
    wanmock.assert_all_requests_conform()


@pytest.mark.parametrize("family", FAMILIES)
@QUICK
@given(data=st.data())
def test_invalid_requests_are_rejected_or_their_task_fails(fake, family, data):
    check_invalid_request(fake, family, data)


@pytest.mark.parametrize("family", FAMILIES)
@QUICK
@given(data=st.data())
def test_valid_requests_are_accepted_and_succeed(fake, family, data):
    check_valid_request(fake, family, data)


@pytest.mark.thorough
@pytest.mark.parametrize("family", FAMILIES)
@MANY
@given(data=st.data())
def test_many_invalid_requests_are_rejected_or_their_task_fails(fake, family, data):
    check_invalid_request(fake, family, data)


@pytest.mark.thorough
@pytest.mark.parametrize("family", FAMILIES)
@MANY
@given(data=st.data())
def test_many_valid_requests_are_accepted_and_succeed(fake, family, data):
    check_valid_request(fake, family, data)


# -- argument validation -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("nosuch",), {}),
        ((42,), {}),
        (("dashscope",), {"model": "wan9.9-t2v"}),
        (("jiekou",), {"model": "wan2.6-t2v-us"}),  # a DashScope model jiekou does not offer
        (("dashscope",), {"operation": "getTask"}),  # not a submit operation
        (("dashscope",), {"operation": "nosuchOperation"}),
        (("jiekou",), {"operation": "createWanT2vTask", "model": "wan2.6-i2v"}),
        (("dashscope",), {"valid": "yes"}),
        (("dashscope",), {"model": 3}),
    ],
)
def test_requests_validates_its_arguments_up_front(args, kwargs):
    with pytest.raises(InvalidArgument):
        ws.requests(*args, **kwargs)


def test_requests_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        ws.requests("dashscope", "createVideoSynthesis")  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [{"timings": ["slow"]}, {"timings": []}, {"timings": "fast"}, {"outcomes": ["explode"]},
     {"outcomes": ()}, {"failure_codes": []}, {"failure_codes": [""]}],
)
def test_lifecycles_validates_its_arguments_up_front(kwargs):
    with pytest.raises(InvalidArgument):
        ws.lifecycles(**kwargs)


@pytest.mark.parametrize("kwargs", [{"max_queued": -1}, {"max_running": 1.5}, {"max_queued": True}])
def test_poll_plans_validates_its_arguments_up_front(kwargs):
    with pytest.raises(InvalidArgument):
        ws.poll_plans(**kwargs)


def test_apply_lifecycle_validates_its_arguments():
    backend = Backend(clock=ManualClock())
    lifecycle = ws.TaskLifecycle(1.0, 2.0)
    with pytest.raises(InvalidArgument):
        ws.apply_lifecycle(object(), "x", lifecycle)
    with pytest.raises(InvalidArgument):
        ws.apply_lifecycle(backend, "x", {"queue_s": 1})  # type: ignore[arg-type]
    with pytest.raises(MockServerError):
        ws.apply_lifecycle(backend, "no-such-task", lifecycle)


# -- lifecycles --------------------------------------------------------------------------------
def new_task(backend: Backend) -> str:
    fam = judge("dashscope")
    op = fam.contract.operation("createVideoSynthesis")
    spec, _ = fam.judge(op, {"model": "wan2.6-t2v", "input": {"prompt": "a cat"}})
    assert spec is not None
    return backend.submit(family="dashscope", operation=op.operation_id, spec=spec, request={},
                          task_id=f"t{len(list(backend.tasks()))}").id


@given(lifecycle=ws.lifecycles())
def test_a_task_follows_the_lifecycle_applied_to_it(lifecycle):
    backend = Backend(Options(timing="fast"), clock=ManualClock())
    wanmock = WanMock(backend)
    task_id = new_task(backend)
    task = ws.apply_lifecycle(wanmock, task_id, lifecycle)
    assert task is wanmock.task(task_id)
    first = wanmock.state(task_id)
    if lifecycle.outcome == "cancel" and lifecycle.cancel_at == 0:
        assert first is State.CANCELED
    elif lifecycle.queue_s > 0:
        assert first is State.QUEUED
    if lifecycle.end_s >= 0.002:
        wanmock.advance(lifecycle.end_s - 0.001)
        assert not wanmock.state(task_id).terminal
    wanmock.advance(0.002 if lifecycle.end_s >= 0.002 else lifecycle.end_s + 0.001)
    assert wanmock.state(task_id) is lifecycle.final_state
    if lifecycle.outcome == "fail":
        assert task.plan.failure is not None and task.plan.failure.code == lifecycle.code
    wanmock.advance(3600.0)
    assert wanmock.state(task_id) is lifecycle.final_state  # terminal states stay


@given(lifecycle=ws.lifecycles(timings=["realistic"], outcomes=["fail"],
                               failure_codes=["DataInspectionFailed"]))
def test_lifecycles_keeps_to_the_timings_and_outcomes_asked_for(lifecycle):
    assert 5.0 <= lifecycle.queue_s <= 60.0 and 90.0 <= lifecycle.run_s <= 720.0
    assert lifecycle.outcome == "fail" and lifecycle.code == "DataInspectionFailed"
    assert 0.0 <= lifecycle.fail_at <= 1.0
    assert lifecycle.end_s == pytest.approx(lifecycle.queue_s + lifecycle.run_s * lifecycle.fail_at)


@given(plan=ws.poll_plans(), lifecycle=ws.lifecycles(outcomes=["succeed", "fail"]))
def test_in_poll_count_mode_a_task_ends_after_the_planned_polls(plan, lifecycle):
    backend = Backend(Options(timing="fast").merged(**plan.options()), clock=ManualClock())
    task = ws.apply_lifecycle(backend, new_task(backend), lifecycle)
    seen = [backend.view(task, poll=True).state
            for _ in range(plan.queued_polls + plan.running_polls + 1)]
    assert seen[-1] is lifecycle.final_state
    assert [ORDER[s] for s in seen] == sorted(ORDER[s] for s in seen)


# -- the module docstring's example: a user's polling client -----------------------------------
def wait_for_video(client: httpx.Client, task_id: str, sleep: Callable[[float], Any]) -> dict:
    """A user's own client: poll every 5 s until the task is done, then return its output."""
    while True:
        response = client.get(f"/api/v1/tasks/{task_id}")
        response.raise_for_status()
        output = response.json()["output"]
        if output["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            return dict(output)
        sleep(5)


@given(req=ws.requests("dashscope"), lifecycle=ws.lifecycles())
def test_a_polling_client_ends_in_the_right_state_and_stops_polling(fake, req, lifecycle):
    wanmock, client_for = fake
    wanmock.reset()
    operation_id, body = req
    with client_for("dashscope") as client:
        created = submit(client, "dashscope", operation_id, body)
        task_id = task_id_of("dashscope", created)
        ws.apply_lifecycle(wanmock, task_id, lifecycle)
        output = wait_for_video(client, task_id, sleep=wanmock.advance)
    assert output["task_status"] == lifecycle.final_state.value.upper()
    if lifecycle.outcome == "succeed":
        assert output["video_url"].startswith("https://dashscope.aliyuncs.com/")
    if lifecycle.outcome == "fail":
        assert output["code"] == lifecycle.code
    wanmock.assert_stopped_polling(task_id)
    wanmock.assert_poll_interval(at_least=5.0)
    wanmock.assert_all_requests_conform()
    # One poll every 5 s while the task runs, and the one that sees it end.
    assert len(wanmock.polls(task_id)) == math.ceil(round(lifecycle.end_s, 6) / 5) + 1


@pytest.mark.parametrize("family", FAMILIES)
def test_what_the_catalogue_offers_the_contract_accepts(family):
    """The valid strategy keeps to values both layers accept; here they must be the same values,
    or a model's offer (or default) drifted from its contract."""
    for target in targets_of(family, None, None):
        cat, entry = target.catalogue, target.entry
        offers = {
            "size": [*cat.sizes(entry), entry.get("default_size")],
            "resolution": [*cat.resolutions(entry), entry.get("default_resolution")],
            "duration": [*cat.durations(entry), entry.get("default_duration")],
            "ratio": [*(entry.get("ratios") or []), entry.get("default_ratio")],
        }
        if cat.sizes(entry):
            offers["resolution"] = []
        else:
            offers["size"] = []
        for name, values in offers.items():
            for path in target.paths(name):
                refused = [v for v in values if v is not None
                           and target.schema.rejects(path, target.adapt(path, v))]
                assert not refused, (family, target.op.operation_id, entry.model, path, refused)


def test_a_schema_narrows_to_the_model_a_version_names():
    """A body that names its model elsewhere than `model` (`x-wanmock-spec` model: [version])
    and an `anyOf` with one branch per model: the strategies read the model's own branch."""
    from types import SimpleNamespace

    from mockserver.strategies.schema import Schema

    schema = {"type": "object", "required": ["version", "input"], "anyOf": [
        {"properties": {"version": {"enum": ["acme/a", "1" * 64]},
                        "input": {"$ref": "#/components/schemas/A"}}},
        {"properties": {"version": {"enum": ["acme/b"]},
                        "input": {"$ref": "#/components/schemas/B"}}}]}
    document = {"components": {"schemas": {
        "A": {"type": "object", "required": ["prompt"], "properties": {"prompt": {}}},
        "B": {"type": "object", "required": ["image"], "properties": {"image": {}}}}}}
    op = SimpleNamespace(raw={"requestBody": {"content": {"application/json": {
        "schema": schema}}}}, spec_map={"model": ["version"]})
    contract = SimpleNamespace(document=document)
    a, b = Schema(contract, op, "acme/a"), Schema(contract, op, "acme/b")
    assert a.required("input.prompt") and not a.required("input.image")
    assert b.required("input.image") and not b.required("input.prompt")
