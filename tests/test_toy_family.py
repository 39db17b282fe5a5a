"""A fifth family is one folder and one contract: the toy family (tests/families/toy/) is
registered as a plugin's would be and served, validated, journaled and checked, with no file
under mockserver/ naming it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver import families as registry
from mockserver.app import create_app
from mockserver.checks import read_task
from mockserver.cli import build_parser
from mockserver.contracts import contracts_dir
from mockserver.core.backend import Options
from mockserver.core.tasks import State
from mockserver.handle import InProcessRoutes, WanMock
from mockserver.recorded import state_of

TOY = Path(__file__).parent / "families" / "toy"
MODULE = "tests.families.toy.family"
KEY = {"Authorization": "Bearer sk-toy"}


@pytest.fixture(scope="module")
def toy_contracts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A contracts directory holding the catalogue and the toy contract; the family
    registered for the module's tests and forgotten afterwards."""
    directory = tmp_path_factory.mktemp("contracts")
    # the catalogue says which families sell a model: the toy sells one
    catalogue = (contracts_dir() / "catalogue.yaml").read_text(encoding="utf-8")
    entry = "  - model: wan2.6-t2v-us\n    families: [dashscope, apiyi, newapi]\n"
    assert entry in catalogue
    (directory / "catalogue.yaml").write_text(
        catalogue.replace(entry, entry.replace("newapi]", "newapi, toy]")), encoding="utf-8")
    shutil.copy(TOY / "toy.yaml", directory)
    registry.register(MODULE)
    yield directory
    registry.unregister(MODULE)


@pytest.fixture
def toy(toy_contracts: Path) -> WanMock:
    app = create_app(["toy"], contracts_dir=str(toy_contracts), seed=1, timing="instant",
                     clock="manual", toy_greeting="hi")
    handle = WanMock(app.state.backend)
    handle.app = app  # type: ignore[attr-defined]
    return handle


def test_the_registry_knows_it(toy_contracts: Path):
    spec = registry.spec("toy")
    assert "toy" in registry.family_names() and "toy" not in registry.bundled_names()
    assert spec.terminal_words == {"READY", "BROKEN", "GONE"}
    assert "toy_greeting" in Options.names()
    assert "toy_greeting" in registry.option_table()
    flags = build_parser().parse_args(["serve", "--family", "toy", "--toy-greeting", "hi"])
    assert flags.families == ["toy"] and flags.toy_greeting == "hi"


def test_served_validated_journaled_checked(toy: WanMock):
    app = toy.app  # type: ignore[attr-defined]
    with InProcessRoutes(app) as routes:
        assert "api.toy.example" in routes.hosts  # from the contract's servers:
        with httpx.Client(base_url="https://api.toy.example/toy/v1", headers=KEY) as client:
            created = client.post("/jobs", json={"model": "wan2.6-t2v-us", "prompt": "a cat",
                                                 "seconds": 5})
            assert created.status_code == 200, created.text
            assert created.json()["greeting"] == "hi"  # the family's own option
            job_id = created.json()["job"]["id"]
            first = client.get(f"/jobs/{job_id}").json()
            assert first["job"]["state"] == "READY" and first["job"]["video"]
            # the contract judges: a schema violation and a catalogue rule, in toy words
            missing = client.post("/jobs", json={"prompt": "a cat"})
            assert missing.status_code == 400
            assert missing.json() == {"error": {"code": "no_model",
                                                "message": "model is required"}}
            with toy.expect_violations():
                bad = client.post("/jobs", json={"model": "wan2.6-t2v-us", "prompt": "a cat",
                                                 "seconds": 7})
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_seconds"
            # a path under the family's prefix that no operation has: its 404
            unknown = client.get("/nothing")
            assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"
    entries = toy.requests(family="toy")
    assert [e.operation for e in entries] == ["createJob", "getJob", "createJob", "createJob"]
    assert entries[-1].violations[0]["rule"] == "duration_allowed"
    assert toy.polls(job_id) == [entries[1]]
    toy.assert_stopped_polling(job_id)  # READY is terminal in the toy's words
    assert read_task("toy", "getJob", first, None).state == "succeeded"
    assert state_of("toy", first) == (State.SUCCEEDED, "READY")


def test_poll_count_mode(toy_contracts: Path):
    """`--mode polls`: each poll of the toy's job moves it on (1 queued, 2 running answers),
    whatever the clock says; the journal counts the polls."""
    app = create_app(["toy"], contracts_dir=str(toy_contracts), seed=1, clock="manual",
                     mode="polls", queued_polls=1, running_polls=2)
    handle = WanMock(app.state.backend)
    with InProcessRoutes(app), httpx.Client(base_url="https://api.toy.example/toy/v1",
                                            headers=KEY) as client:
        job_id = client.post("/jobs", json={"model": "wan2.6-t2v-us", "prompt": "a cat",
                                            "seconds": 5}).json()["job"]["id"]
        states = [client.get(f"/jobs/{job_id}").json()["job"]["state"] for _ in range(5)]
        other = client.get(f"/jobs/{job_id}", headers={"Authorization": "Bearer sk-other"})
    assert states == ["WAITING", "BUSY", "BUSY", "READY", "READY"]
    assert other.status_code == 404  # another key's job is not there (and no poll of it)
    assert len(handle.polls(job_id)) == 6  # the journal knew the job id before the handler


def test_webhooks(toy_contracts: Path):
    """A job submitted with `callback_url` owes a webhook: pending while it runs, then its
    final state in the toy's words (recorded in process; a server would POST it)."""
    app = create_app(["toy"], contracts_dir=str(toy_contracts), seed=1, clock="manual",
                     timing="fast")
    handle = WanMock(app.state.backend)
    heard: list[Any] = []
    handle.on_webhook(heard.append)
    with InProcessRoutes(app), httpx.Client(base_url="https://api.toy.example/toy/v1",
                                            headers=KEY) as client:
        job_id = client.post("/jobs", json={
            "model": "wan2.6-t2v-us", "prompt": "a cat", "seconds": 5,
            "callback_url": "http://127.0.0.1:9/hook"}).json()["job"]["id"]
        plain = client.post("/jobs", json={"model": "wan2.6-t2v-us", "prompt": "a dog",
                                           "seconds": 5}).json()["job"]["id"]
        (hook,) = handle.webhooks()
        assert (hook.task_id, hook.url, hook.state) == (job_id, "http://127.0.0.1:9/hook",
                                                        "pending")
        handle.advance(3600)
        (hook,) = handle.webhooks()
        polled = client.get(f"/jobs/{job_id}").json()
    assert hook.state == "recorded" and hook.family == "toy"
    assert hook.body == polled  # the same words as a poll at that moment
    assert hook.body["job"]["state"] == "READY" and hook.body["job"]["video"]
    assert [h.task_id for h in heard] == [job_id] and plain != job_id


def test_its_policy_judges_without_an_app(toy_contracts: Path):
    """What `mockserver.checks` does: the family's policy judges a body, no Backend built."""
    from mockserver.contracts import load
    from mockserver.providers.policy import Judging, policy_class

    policy = policy_class("toy")(Judging(load(toy_contracts)))
    op = policy.contract.operation("createJob")
    assert [v.code for v in policy.judge(op, {"prompt": "a cat"})[1]] == ["no_model"]
    spec, violations = policy.judge(op, {"model": "wan2.6-t2v-us", "prompt": "a cat"})
    assert spec is not None and spec.model == "wan2.6-t2v-us" and violations == []


def test_a_bad_family_option_is_refused(toy_contracts: Path):
    with pytest.raises(Exception, match="toy_greeting must be one of hello, hi"):
        create_app(["toy"], contracts_dir=str(toy_contracts), toy_greeting="yo")


def test_wanmock_check_passes_it(toy_contracts: Path):
    """`wanmock check` (Schemathesis and wanmock's own checks) finds the toy fake conformant."""
    from mockserver.conformance import check

    app = create_app(["toy"], contracts_dir=str(toy_contracts), seed=1, timing="instant",
                     api_keys=["sk-wanmock"])
    report = check(app, families=["toy"], api_key="sk-wanmock",
                   contracts=app.state.backend.contracts, max_examples=3,
                   phases=("examples", "coverage", "stateful"))
    assert report.results[0].family == "toy" and report.results[0].cases > 0
    assert report.ok, report.summary() + "\n" + "\n".join(
        f"{f.operation} {f.check}: {f.message[:300]}" for f in report.findings)


def test_the_loop_finds_its_task_where_the_pipeline_does(toy_contracts: Path):
    """Recording (`recorded.task_of_request`) and `wanmock check` (`checks`) read the task a
    request names as the pipeline does: the last path parameter (the toy's `{job_id}`, a name
    no other family uses), else `?task_id=`."""
    from types import SimpleNamespace

    from mockserver import checks
    from mockserver.contracts import load
    from mockserver.recorded import task_of_request

    op = load(toy_contracts)["toy"].operation("getJob")
    assert task_of_request(op, "/toy/v1/jobs/job-7", {}) == "job-7"
    case = SimpleNamespace(path_parameters={"job_id": "job-7"}, query={})
    assert checks._task_id_param(case) == "job-7"
    query = SimpleNamespace(path_parameters={}, query={"task_id": "t-1"})
    assert checks._task_id_param(query) == "t-1"
