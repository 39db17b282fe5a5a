"""`wanmock serve` configured by the environment: every flag also reads WANMOCK_<FLAG>, made
from the parser's own flags (the option table's and the few cli.py writes), the command line
wins, and a bad value is the same usage error a bad flag is."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver import families as registry
from mockserver.cli import build_parser, main, option_values
from mockserver.envconfig import env_name, subcommand, variables

ROOT = Path(__file__).resolve().parent.parent
TABLE = registry.option_table()
# Variables the package reads for other purposes: none may be a serve option's by accident.
OTHER_VARIABLES = {"WANMOCK_FAMILIES", "WANMOCK_APP_OPTIONS", "WANMOCK_NO_FAST_VALIDATION"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("WANMOCK_"):
            monkeypatch.delenv(name)


def _environment(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"WANMOCK_{name}", value)


def _serve(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *(argv or [])])


def _sample(name: str) -> tuple[str, Any]:
    """A valid string for an option and the value it parses to."""
    option = TABLE[name]
    if option.choices:
        choice = option.choices[-1]
        return str(choice), choice
    samples = {"int": ("3", 3), "float": ("2.5", 2.5), "bool": ("true", True)}
    if option.kind in samples:
        return samples[option.kind]
    if name == "timing":
        return "instant", "instant"
    return f"/tmp/wanmock-{name}", f"/tmp/wanmock-{name}"


def test_every_serve_flag_has_its_variable() -> None:
    found = {flag: name for name, flag, _ in variables(build_parser())}
    flags = {o.cli_flag for o in TABLE.values() if o.cli_flag}
    hand = {"--host", "--port", "--api-key", "--family", "--workers", "--allow-remote",
            "--allowed-host", "--tls", "--tls-dir", "--tls-name", "--tls-cert", "--tls-key"}
    assert set(found) == flags | hand
    for flag, name in found.items():
        assert name == "WANMOCK_" + flag[2:].replace("-", "_").upper()
    assert found["--public-url"] == "WANMOCK_PUBLIC_URL"
    assert found["--store"] == "WANMOCK_STORE" and found["--workers"] == "WANMOCK_WORKERS"
    assert found["--contracts"] == "WANMOCK_CONTRACTS"  # the variable contract loading reads
    assert not OTHER_VARIABLES & set(found.values())
    assert len(set(found.values())) == len(found)
    help_text = subcommand(build_parser(), "serve").format_help()
    assert "WANMOCK_<OPTION>" in help_text


@pytest.mark.parametrize("name", sorted(n for n, o in TABLE.items() if o.cli_flag))
def test_each_option_reads_its_variable_as_its_flag(name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    option = TABLE[name]
    raw, value = _sample(name)
    flagged = ([option.cli_flag] if option.kind == "bool" else [option.cli_flag, raw])
    expected = option_values(_serve(flagged))
    assert expected[name] == value
    monkeypatch.setenv(env_name(_action(option.cli_flag), "WANMOCK_") or "", raw)
    assert option_values(_serve()) == expected


def _action(flag: str) -> argparse.Action:
    return next(a for a in subcommand(build_parser(), "serve")._actions
                if flag in a.option_strings)


def test_the_hand_written_flags_read_theirs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch, HOST="0.0.0.0", PORT="9123", WORKERS="3", ALLOW_REMOTE="yes",
                 API_KEY="sk-one, sk-two", FAMILY="dashscope jiekou",
                 NEWAPI_USER_LANGUAGE="zh-CN")
    args = _serve()
    assert (args.host, args.port, args.workers, args.allow_remote) == ("0.0.0.0", 9123, 3, True)
    values = option_values(args)
    assert values["api_keys"] == frozenset({"sk-one", "sk-two"})
    assert values["families"] == ["dashscope", "jiekou"]
    assert values["newapi_user_language"] == "zh-CN"


def test_the_command_line_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch, STORE="redis://redis:6379/0", HOST="0.0.0.0", API_KEY="sk-env",
                 REPLAY_STRICT="true", ALLOW_REMOTE="true")
    args = _serve(["--store", "sqlite:///x.db", "--host", "127.0.0.1", "--api-key", "sk-flag",
                   "--no-replay-strict"])
    values = option_values(args)
    assert values["store"] == "sqlite:///x.db" and args.host == "127.0.0.1"
    assert values["api_keys"] == frozenset({"sk-flag"})  # replaced, not added to
    assert values["replay_strict"] is False
    assert args.allow_remote is True  # not on the command line: the environment's


def test_unset_and_empty_variables_keep_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = _serve()
    _environment(monkeypatch, SEED="", STORE="  ", API_KEY="")
    args = _serve()
    assert vars(args) == vars(defaults)
    assert (args.host, args.port, args.workers, args.allow_remote) == (
        "127.0.0.1", 8000, 1, False)
    assert option_values(args) == {"api_keys": frozenset()}  # any key, as without it


@pytest.mark.parametrize(("variable", "raw", "message"), [
    ("WANMOCK_WORKERS", "many", "invalid int value: 'many'"),
    ("WANMOCK_JIEKOU_URL_TTL", "forever", "invalid choice: 'forever' (choose from 'string', "
                                          "'countdown')"),
    ("WANMOCK_REPLAY_STRICT", "perhaps", "expected true or false"),
    ("WANMOCK_TIMING", "glacial", "'glacial' is neither fast, realistic, instant nor a timing "
                                  "profile file"),
    ("WANMOCK_FAMILY", "dashscope,nosuch", "invalid choice: 'nosuch'"),
])
def test_a_bad_value_is_a_usage_error_naming_the_variable(
        variable: str, raw: str, message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(SystemExit) as exited:
        _serve()
    assert exited.value.code == 2  # as for a bad flag
    err = capsys.readouterr().err
    assert err.startswith("usage: wanmock serve")
    assert f"wanmock serve: error: {variable}={raw!r}" in err and message in err


def test_a_value_the_options_refuse_gets_the_flags_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--body-limit", "10"]) == 2
    flag_error = capsys.readouterr().err
    monkeypatch.setenv("WANMOCK_BODY_LIMIT", "10")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == flag_error
    assert flag_error.startswith("wanmock: body_limit must be at least 1024 bytes")
    monkeypatch.setenv("WANMOCK_BODY_LIMIT", "2048")
    monkeypatch.setenv("WANMOCK_PUBLIC_URL", "ftp://wanmock")
    assert main(["serve"]) == 2
    assert "public_url must be an http:// or https:// URL" in capsys.readouterr().err
    monkeypatch.delenv("WANMOCK_PUBLIC_URL")
    monkeypatch.setenv("WANMOCK_HOST", "0.0.0.0")
    assert main(["serve"]) == 2
    assert "refusing to bind '0.0.0.0' without --allow-remote" in capsys.readouterr().err


def test_serve_configured_by_the_environment_alone(tmp_path: Path) -> None:
    """A real `wanmock serve` with no flags at all, as a container starts it."""
    from tests.test_cli import STARTUP_TIMEOUT, free_port, reader, wait_for_banner, wait_for_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANMOCK_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), WANMOCK_PORT=str(port),
               WANMOCK_SEED="11", WANMOCK_TIMING="instant", WANMOCK_FAMILY="dashscope",
               WANMOCK_STORE=f"sqlite:///{tmp_path}/env.db",
               WANMOCK_PUBLIC_URL="http://wanmock.internal:8000/")
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import time

        deadline = time.monotonic() + STARTUP_TIMEOUT
        banner = wait_for_banner(reader(proc.stdout), deadline)
        wait_for_port(port, deadline, proc)
        assert banner[0].startswith(f"wanmock {__import__('mockserver').__version__} serving "
                                    f"on http://127.0.0.1:{port}")
        for word in ("timing=instant", "seed=11", f"store=sqlite:///{tmp_path}/env.db",
                     "public_url=http://wanmock.internal:8000)"):
            assert word in banner[0], banner[0]
        assert [ln.split()[0] for ln in banner[1:4]] == ["dashscope", "control", "dashboard"]
        assert "http://wanmock.internal:8000/api/v1" in banner[1]
        headers = {"Authorization": "Bearer sk-env", "X-DashScope-Async": "enable"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers,
                          timeout=30) as client:
            r = client.post("/api/v1/services/aigc/video-generation/video-synthesis",
                            json={"model": "wan2.6-t2v", "input": {"prompt": "a fox"},
                                  "parameters": {"size": "1280*720", "duration": 5}})
            task_id = r.json()["output"]["task_id"]
            output = client.get(f"/api/v1/tasks/{task_id}").json()["output"]
            assert output["task_status"] == "SUCCEEDED"
            assert output["video_url"].startswith(
                f"http://wanmock.internal:8000/_wanmock/videos/{task_id}.mp4?")
            assert client.get("/v1/tasks").status_code == 404  # WANMOCK_FAMILY: no apiyi
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
