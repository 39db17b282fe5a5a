"""Fault kinds are one registry (`mockserver.core.faults`): a test adds toy kinds, one entry each
(plus, for a worded one, its contract wording), and every family answers them through the
pipeline as it is; nothing under mockserver/ names them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import mockserver
from mockserver.app import create_app
from mockserver.contracts import contracts_dir
from mockserver.contracts.extensions import Fault
from mockserver.core import faults
from mockserver.core.clock import ManualClock
from mockserver.errors import MockServerError
from tests.helpers import SyncASGITransport

HEADERS = {"Authorization": "Bearer sk-faults", "X-DashScope-Async": "enable"}
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a cat"},
        "parameters": {"size": "1280*720", "duration": 5}}
TOYS = (
    faults.FaultKind("teapot", "418 in the family's envelope",
                     words=Fault(418, "Teapot", "I am a teapot.")),
    faults.FaultKind("toy-pause", "answer after pause_ms=, then as normal",
                     act=lambda p, uniform: faults.Wait(float(p.get("pause_ms", 0)) / 1000),
                     params=("pause_ms",)),
    faults.FaultKind("toy-gone", "410 with an empty body",
                     act=lambda p, uniform: faults.Reply(410, b"", "text/plain")),
)


@pytest.fixture
def toy_kinds() -> Iterator[None]:
    for kind in TOYS:
        faults.register(kind)
    yield
    for kind in TOYS:
        faults.unregister(kind.name)


def _client(**options: Any) -> httpx.Client:
    app = create_app(["dashscope", "jiekou"], seed=1, clock=ManualClock(), **options)
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://fake.test")


def test_a_worded_kind_in_each_familys_envelope(toy_kinds: None) -> None:
    with _client() as client:
        ds = client.post(CREATE, json=BODY, headers={**HEADERS, "X-Wanmock-Scenario": "teapot"})
        jk = client.post("/v3/async/wan-t2v", json={"prompt": "a cat"},
                         headers={"Authorization": "Bearer sk_faults",
                                  "X-Wanmock-Scenario": "teapot; retry_after=7"})
    assert ds.status_code == 418 and "retry-after" not in ds.headers
    assert ds.json()["code"] == "Teapot" and ds.json()["message"] == "I am a teapot."
    assert jk.status_code == 418 and jk.headers["retry-after"] == "7"
    assert jk.json()["message"] == "I am a teapot." and jk.json()["metadata"] == {}  # Novita's


def test_the_contracts_wording_wins(toy_kinds: None, tmp_path: Path) -> None:
    """One `x-wanmock-faults` entry in a contract words the kind that family's way."""
    shutil.copytree(contracts_dir(), tmp_path, dirs_exist_ok=True)
    path = tmp_path / "dashscope.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["x-wanmock-faults"]["teapot"] = {
        "status": 418, "code": "Teapot.Brewing", "message": "Brewing, try later.",
        "retry_after": False, "source": "a test's toy fault kind"}
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with _client(contracts_dir=str(tmp_path)) as client:
        answer = client.post(CREATE, json=BODY,
                             headers={**HEADERS, "X-Wanmock-Scenario": "teapot"})
    assert (answer.status_code, answer.json()["code"]) == (418, "Teapot.Brewing")


def test_acting_kinds_and_rules(toy_kinds: None) -> None:
    with _client() as client:
        started = time.monotonic()
        paused = client.post(CREATE, json=BODY,
                             headers={**HEADERS, "X-Wanmock-Scenario": "toy-pause; pause_ms=150"})
        assert paused.status_code == 200 and time.monotonic() - started >= 0.15
        client.post("/_wanmock/scenarios", json={"scenario": "toy-gone",
                                                 "match": {"family": "dashscope"}, "times": 1})
        gone = client.post(CREATE, json=BODY, headers=HEADERS)
        after = client.post(CREATE, json=BODY, headers=HEADERS)
        listed = client.get("/_wanmock/scenarios").json()["transport"]
    assert (gone.status_code, gone.content) == (410, b"") and after.status_code == 200
    assert listed["toy-gone"] == "410 with an empty body" and "teapot" in listed


def test_kinds_are_checked(toy_kinds: None) -> None:
    with pytest.raises(MockServerError, match="registered already"):
        faults.register(TOYS[0])
    with pytest.raises(MockServerError, match="needs words"):
        faults.register(faults.FaultKind("wordless", "answers with nothing to say"))
    from mockserver.core.scenarios import Scenario

    assert Scenario("toy-gone").name == "toy-gone"
    faults.unregister("toy-gone")
    with pytest.raises(MockServerError, match="unknown scenario 'toy-gone'"):
        Scenario("toy-gone")


def test_the_pipeline_and_the_policies_branch_on_no_kind() -> None:
    """What a kind does is its registry entry; the modules that carry faults out compare no
    scenario name (the if-chains they had)."""
    root = Path(mockserver.__file__).parent
    for path in (root / "providers" / "pipeline.py", root / "providers" / "policy.py"):
        text = path.read_text(encoding="utf-8")
        assert "scenario.name ==" not in text and "scenario.name in" not in text, path


@pytest.mark.parametrize(("name", "status"), [("payment-required", 402), ("blocked", 403),
                                              ("request-timeout", 408), ("bad-gateway", 502)])
def test_the_provider_refusals_every_family_can_word(name: str, status: int) -> None:
    """Out of credit, blocked at submit, timed out, a failed upstream: registered kinds a
    family's contract words (its `x-wanmock-faults` entry), the kind's own words otherwise."""
    kind = faults.kind(name)
    assert kind is not None and kind.words is not None and kind.words.status == status
    with _client() as client:
        answer = client.post(CREATE, json=BODY,
                             headers={**HEADERS, "X-Wanmock-Scenario": name})
        listed = client.get("/_wanmock/scenarios").json()["transport"]
    assert answer.status_code == status
    assert (answer.json()["code"], answer.json()["message"]) == (kind.words.code,
                                                                 kind.words.message)
    assert name in listed
