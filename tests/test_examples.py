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


def test_the_readme_loop_commands_parse_with_the_cli():
    text = (ROOT / "README.md").read_text()
    section = text.split("## The differential loop", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for block in re.findall(r"```\n(.*?)```", section, re.S)
             for line in block.splitlines() if line.strip().startswith("wanmock ")]
    commands = [build_parser().parse_args(shlex.split(line.split("#")[0])[1:]).command
                for line in lines]
    assert {"proxy", "diff", "calibrate", "serve"} <= set(commands)
