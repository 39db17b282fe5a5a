"""The contract layer's typed accessors: the one reader of `x-wanmock-*` keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mockserver
from mockserver.contracts import load
from mockserver.contracts.extensions import ContractExtensions, Fault
from mockserver.families import bundled_names

FAMILIES = bundled_names()

PACKAGE = Path(mockserver.__file__).parent
# HTTP headers of the fake share the prefix; they are not contract keys.
HEADERS = ("x-wanmock-proxy", "x-wanmock-scenario", "x-wanmock-token")
KEY = re.compile(r"""["']x-wanmock-[a-z0-9-]+""")


def test_no_module_outside_the_contract_layer_reads_an_extension():
    offenders = []
    for path in sorted(PACKAGE.rglob("*")):
        inside = path.relative_to(PACKAGE).parts[:1] == ("contracts",)
        if path.suffix not in (".py", ".html") or inside:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for hit in KEY.findall(line):
                if hit[1:] not in HEADERS:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{n}: {hit[1:]}")
    assert offenders == []


@pytest.mark.parametrize("family", FAMILIES)
def test_accessors_read_what_the_document_says(family):
    contract = load()[family]
    doc = contract.document
    ext = contract.extensions
    assert ext.family == family
    assert [d.topic for d in ext.decisions] == [d["topic"] for d in doc["x-wanmock-decisions"]]
    assert set(ext.failures) == set(doc["x-wanmock-failures"])
    assert set(ext.faults) == set(doc["x-wanmock-faults"])
    for key, raw in doc["x-wanmock-faults"].items():
        assert (ext.faults[key].status, ext.faults[key].code) == (raw["status"], raw["code"])
    assert ext.limits.concurrency_policy == doc["x-wanmock-limits"]["concurrency_policy"]
    assert ext.poll_guidance is not None
    assert ext.poll_guidance.min_interval_s == doc["x-wanmock-poll-guidance"]["min_interval_s"]
    assert ext.client_5xx == frozenset(doc.get("x-wanmock-client-5xx") or [])
    retention = doc["x-wanmock-retention"]
    assert ext.retention is not None and ext.retention.task_s == retention["task_s"]


def test_fault_by_role_overrides_only_its_keys():
    query = {"code": "rate_limit_exceeded", "message": "poll less"}
    fault = Fault.read({"status": 429, "code": "Throttling", "message": "slow down",
                        "by_role": {"query": query}})
    assert fault is not None
    assert fault.for_role("submit") is fault
    queried = fault.for_role("query")
    assert (queried.status, queried.code, queried.message) == (429, "rate_limit_exceeded",
                                                               "poll less")


def test_absent_or_malformed_keys_read_as_not_given():
    ext = ContractExtensions.read({"x-wanmock-retention": "soon", "x-wanmock-faults": {
        "throttle": {"code": "x"}}, "x-wanmock-poll-guidance": {"min_interval_s": "1"}})
    assert ext.retention is None and ext.faults == {} and ext.poll_guidance is None
    assert ext.family is None and ext.decisions == () and ext.envelopes == {"default": {}}
    assert ext.limits.concurrency_policy is None and ext.webhooks is None


def test_operation_accessors():
    contracts = load()
    jiekou = [op for op in contracts["jiekou"].by_role("submit") if op.task_type]
    assert jiekou and all(op.task_type == op.raw["x-wanmock-task-type"] for op in jiekou)
    own = [op for c in contracts for op in c.operations.values() if op.envelope is not None]
    assert own and all(op.envelope == op.raw["x-wanmock-envelope"] for op in own)
    kinds = {op.envelope_kind for op in contracts["newapi"].operations.values()}
    assert "content" in kinds
