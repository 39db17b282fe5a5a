"""The fake checked against its own contracts, `wanmock check`, and mutants that must be caught.

Small profile by default (a few examples per operation, every phase); the thorough profile is
`HYPOTHESIS_PROFILE=thorough` or `wanmock check URL --profile thorough`.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from mockserver.app import create_app
from mockserver.cli import main
from mockserver.conformance import PHASES, check
from mockserver.families import bundled_names
from mockserver.server import ThreadedMockServer
from tests.contract.mutants import KEY, MUTANTS

FAMILIES = bundled_names()

pytestmark = pytest.mark.contract

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
EXAMPLES = 100 if THOROUGH else 6
# A mutant must be caught whatever order the generated cases come in (it varies with the
# process: Schemathesis iterates some collections in memory order), so mutants get more cases.
MUTANT_EXAMPLES = 100 if THOROUGH else 12

def fake(**options):
    # Poll mode with short pacing so stateful runs see tasks run and succeed.
    return create_app(seed=11, mode="polls", queued_polls=0, running_polls=1,
                      api_keys={KEY}, **options)


@pytest.mark.thorough
@pytest.mark.parametrize("family", FAMILIES)
def test_fake_conforms_to_its_contract_in_every_phase(family):
    report = check(fake(), families=[family], api_key=KEY, max_examples=EXAMPLES)
    result = report.results[0]
    print(f"{family}: {result.cases} cases, checks run: {sorted(result.checks)}")
    assert report.findings == [], report.summary() + "\n" + "\n".join(
        f"{f.operation} {f.check}: {f.message}\n{f.curl}" for f in report.findings)
    assert report.errors == []
    assert report.ok
    # every operation was exercised, and wanmock's own checks really ran
    assert set(result.operations) == set(report_operations(family))
    for name in ("lifecycle_moves_forward", "video_url_iff_succeeded",
                 "error_uses_family_envelope", "rejection_carries_provider_code",
                 "valid_submission_accepted", "response_schema_conformance"):
        assert result.checks.get(name, 0) > 0, name
    assert result.cases > 50


def report_operations(family):
    from mockserver.contracts import load

    return load()[family].operations


def test_stateful_phase_follows_links_to_finished_tasks():
    from mockserver import checks

    app = fake(timing="instant")  # every poll after submit sees the task finished
    # 12 cases, not 6: with two submit paths (kf2v) and the input checks (audio_url type,
    # inline images) fewer generated submits are accepted, and Schemathesis's case order varies
    # with the process, so 6 sometimes accept none.
    check(app, families=["dashscope"], api_key=KEY, max_examples=max(EXAMPLES, 12),
          phases=("stateful",))
    states = {state for _, _, state in checks.STATE.history.values()}
    assert "succeeded" in states  # submit -> poll -> poll reached the end through the links
    assert any(checks.STATE.downloaded.values())  # and the video URL downloaded as an MP4


def test_budget_zero_submits_nothing_billable_but_still_checks():
    server = ThreadedMockServer(fake()).start()
    try:
        report = check(server.url, families=["dashscope"], api_key=KEY, budget=0,
                       max_examples=EXAMPLES)
        created = list(server.backend.tasks())
    finally:
        server.stop()
    assert created == []  # no job was accepted, so nothing would be billed
    assert report.cases > 20
    assert report.results[0].checks.get("negative_data_rejection", 0) > 0
    assert report.findings == []


def test_budget_caps_billable_submissions():
    app = fake()
    # Under a budget the check draws bodies the contract layer accepts first (besides
    # Schemathesis's own): the budget is spent on real jobs, and never overspent.
    report = check(app, families=["dashscope"], api_key=KEY, budget=3, max_examples=6,
                   phases=("examples", "fuzzing"))
    accepted = [t for t in app.state.backend.tasks() if t.plan.failure is None]
    assert len(accepted) == 3 == report.results[0].billable
    assert len(list(app.state.backend.tasks())) <= 3


@pytest.mark.thorough
def test_wanmock_check_cli_against_the_live_fake(tmp_path, capsys):
    junit, markdown = tmp_path / "junit.xml", tmp_path / "drift.md"
    with ThreadedMockServer(fake()) as server:
        code = main(["check", server.url, "--api-key", KEY, "--unlimited", "--family",
                     "jiekou", "--family", "apiyi", "--max-examples", str(EXAMPLES),
                     "--junit", str(junit), "--report", str(markdown)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "CONFORMS" in out and "[jiekou]" in out
    assert KEY not in out and KEY not in markdown.read_text() and KEY not in junit.read_text()
    suites = ET.parse(junit).getroot()
    assert {s.get("name") for s in suites} == {"jiekou", "apiyi"}
    assert all(s.get("failures") == "0" for s in suites)
    assert "Verdict: **conforms**" in markdown.read_text()


def test_wanmock_check_reports_an_auth_gap_when_any_key_is_accepted(capsys):
    # The fake accepts any key by default; real providers reject invalid keys, which the
    # contract's security scheme says. `wanmock check` reports the difference.
    with ThreadedMockServer(create_app(seed=1, families=["dashscope"])) as server:
        code = main(["check", server.url, "--family", "dashscope", "--unlimited",
                     "--max-examples", "3", "--phase", "examples", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "ignored_auth" in out


@pytest.mark.thorough
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_provider_is_caught(name, tmp_path):
    factory, family, words = MUTANTS[name]
    report = check(factory(), families=[family], api_key=KEY, max_examples=MUTANT_EXAMPLES,
                   phases=PHASES)
    assert not report.ok, f"mutant {name} passed the checks"
    text = report.write_markdown(tmp_path / "drift.md").read_text()
    for word in words:
        assert word in text, f"{name}: the report does not mention {word!r}:\n{text[:3000]}"
