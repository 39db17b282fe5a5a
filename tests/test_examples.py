"""Shipped examples stay usable: the CI workflow's command line parses with today's CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from mockserver.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def test_live_check_workflow_runs_a_valid_wanmock_check_command():
    workflow = yaml.safe_load((ROOT / "examples/ci/live-contract-check.yml").read_text())
    job = workflow["jobs"]["check"]
    families = {item["family"] for item in job["strategy"]["matrix"]["include"]}
    assert families == {"dashscope", "jiekou", "apiyi", "newapi"}
    step = next(s for s in job["steps"] if str(s.get("run", "")).startswith("wanmock check"))
    for item in job["strategy"]["matrix"]["include"]:
        line = step["run"]
        line = line.replace("${{ matrix.base_url }}", "https://example.test")
        line = line.replace("${{ matrix.family }}", item["family"])
        line = re.sub(r"\$\{\{[^}]*\}\}", "0", line)
        args = build_parser().parse_args(shlex.split(line)[1:])
        assert args.command == "check" and args.families == [item["family"]]
        assert args.budget == 0 and args.junit and args.report
        # each family's key comes from a secret of the documented name
        assert item["key"] in step["env"]


def test_record_diff_replay_workflow_commands_parse_with_the_cli():
    workflow = yaml.safe_load((ROOT / "examples/ci/record-diff-replay.yml").read_text())
    parsed = {}
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                line = line.strip().removesuffix("&").strip()
                if line.startswith("wanmock "):
                    args = build_parser().parse_args(shlex.split(line)[1:])
                    parsed[args.command] = args
    assert set(parsed) == {"proxy", "diff", "calibrate", "serve"}
    assert parsed["proxy"].record == parsed["diff"].cassette == parsed["serve"].replay
    assert parsed["proxy"].budget > 0 and not parsed["proxy"].unlimited  # a stated budget
    assert parsed["diff"].junit and parsed["diff"].report
    assert parsed["calibrate"].output == parsed["serve"].timing


E2E_JOB = """
import os
from dashscope import VideoSynthesis

done = VideoSynthesis.call(api_key=os.environ["DASHSCOPE_API_KEY"], model="wan2.6-t2v",
                           prompt="a nightly lighthouse", size="1280*720")
assert done.output.task_status == "SUCCEEDED", done
"""


def test_the_record_and_replay_jobs_send_traffic_through_the_proxy(tmp_path, monkeypatch):
    """The workflow's own shell steps, run by the docs' harness (tests/docs_harness.py) with a
    stand-in for the real provider and the sentinel: the nightly job reaches the provider only
    through the proxy, and the push job replays without reaching it at all."""
    from tests.docs_harness import Harness

    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-ci-example-0123456789")
    workflow = yaml.safe_load((ROOT / "examples/ci/record-diff-replay.yml").read_text())
    record = next(s for s in workflow["jobs"]["record"]["steps"]
                  if "wanmock proxy" in str(s.get("run")))
    replay = next(s for s in workflow["jobs"]["replay"]["steps"]
                  if "wanmock serve --replay" in str(s.get("run")))
    (tmp_path / "your_e2e_job.py").write_text(E2E_JOB)
    harness = Harness(tmp_path).__enter__()
    try:
        assert harness.checked(lambda: harness.shell.run(record["run"])) is None
        recorded = harness.stand_in.requests()
        assert recorded >= 2  # the submit and a poll, through the proxy
        assert (tmp_path / "reports/proxy.json").is_file()
        harness.shell.run("wanmock calibrate cassettes/nightly.jsonl -o "
                          "cassettes/timing-profile.yaml")
        assert harness.checked(lambda: harness.shell.run(replay["run"])) is None
        assert harness.stand_in.requests() == recorded  # the replay never reached it
    finally:
        harness.close()
