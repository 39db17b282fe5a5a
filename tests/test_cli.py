"""The `wanmock` command line: `contracts` in process, `serve` as a real subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from mockserver import __version__
from mockserver.cli import main
from mockserver.contracts import load
from mockserver.families import bundled_names
from tests.helpers import free_port

FAMILIES = bundled_names()

STARTUP_TIMEOUT = 20.0


def test_contracts_validate_checks_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "validate"]) == 0
    out = capsys.readouterr().out
    contracts = load()
    for family in FAMILIES:
        n = len(contracts[family].operations)
        assert f"ok   {family}: {n} operations" in out
    assert "FAIL" not in out
    assert "catalogue:" in out


def test_contracts_list_prints_every_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "list"]) == 0
    out = capsys.readouterr().out
    for contract in load():
        assert contract.family in out
        for op in contract.operations.values():
            line = next(ln for ln in out.splitlines() if f" {op.operation_id} " in ln
                        and op.path in ln)
            assert line.split()[0] == op.method
    assert main(["contracts"]) == 0  # `list` is the default action
    assert capsys.readouterr().out == out


def test_contracts_show_json_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "show", "dashscope", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == json.loads(json.dumps(load()["dashscope"].document))
    assert document["openapi"].startswith("3.")
    assert "/api/v1/tasks/{task_id}" in document["paths"]


def test_contracts_show_yaml_is_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "show", "jiekou"]) == 0
    assert capsys.readouterr().out == load()["jiekou"].path.read_text(encoding="utf-8")


def test_contracts_show_an_unknown_family_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "show", "nosuchfamily"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "wanmock:" in captured.err and "nosuchfamily" in captured.err
    assert "dashscope" in captured.err  # the message lists the known families


def test_contracts_show_without_a_family_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "show"]) == 2
    assert "FAMILY" in capsys.readouterr().err


def test_serve_refuses_a_remote_host_without_allow_remote(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "0.0.0.0" in err and "--allow-remote" in err


def test_unknown_command_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_python_dash_m_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "mockserver", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wanmock {__version__}"


# -- serve as a subprocess -------------------------------------------------------------------
def reader(stream) -> queue.Queue[str | None]:  # type: ignore[no-untyped-def]
    """Lines of a pipe in a queue (None at EOF), so the test can wait with a deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_banner(lines: queue.Queue[str | None], deadline: float) -> list[str]:
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            raise AssertionError(f"serve exited before its banner: {seen}")
        seen.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            return seen
    raise AssertionError(f"no banner within {STARTUP_TIMEOUT} s: {seen}")


def wait_for_port(port: int, deadline: float, proc: subprocess.Popen[str]) -> None:
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited while starting"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling the port, bounded by the deadline
    raise AssertionError(f"port {port} did not accept connections within {STARTUP_TIMEOUT} s")


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WANMOCK_PORT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--seed", "1",
         "--timing", "instant"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        banner = wait_for_banner(reader(proc.stdout), deadline)
        wait_for_port(port, deadline, proc)
        yield proc, port, banner
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_serve_runs_a_job_and_stops_cleanly_on_sigint(served) -> None:
    proc, port, banner = served
    url = f"http://127.0.0.1:{port}"
    assert banner[0].startswith(f"wanmock {__version__} serving on {url}")
    assert "timing=instant" in banner[0] and "seed=1" in banner[0]
    expected = {
        "dashscope": f"{url}/api/v1 ",
        "newapi": f"{url}/v1 ",
        "jiekou": f"{url} ",
        "apiyi": f"{url}/wan/api/v1 ",
        "control": f"{url}/_wanmock/ ",
    }
    for name, base in expected.items():
        line = next((ln for ln in banner if ln.split()[:1] == [name]), None)
        assert line is not None, (name, banner)
        assert line.split()[1] + " " == base, line

    headers = {"Authorization": "Bearer sk-test-key-123", "X-DashScope-Async": "enable"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        r = client.post("/api/v1/services/aigc/video-generation/video-synthesis",
                        json={"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse"},
                              "parameters": {"size": "1280*720", "duration": 2}})
        assert r.status_code == 200, r.text
        task_id = r.json()["output"]["task_id"]
        body = client.get(f"/api/v1/tasks/{task_id}").json()
        assert body["output"]["task_status"] == "SUCCEEDED"  # --timing instant
        assert body["output"]["video_url"].startswith(f"{url}/_wanmock/videos/{task_id}.mp4?")
        clock = client.get("/_wanmock/clock").json()
        assert (clock["timing"], clock["kind"]) == ("instant", "system")

    # An open dashboard page (its event stream) must not hold the shutdown.
    opened = threading.Event()

    def listen() -> None:
        with contextlib.suppress(httpx.HTTPError), httpx.stream(
                "GET", f"{url}/_wanmock/ui/events", timeout=30) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    opened.set()

    threading.Thread(target=listen, daemon=True).start()
    assert opened.wait(10)
    assert "dashboard" in " ".join(banner)

    proc.send_signal(signal.SIGINT)
    stopping = time.monotonic()
    # serve handles SIGINT: it ends the dashboard's streams, shuts down, swallows the re-raised
    # KeyboardInterrupt and returns, so `wanmock serve` returns 0 without a traceback.
    assert proc.wait(timeout=15) == 0
    assert time.monotonic() - stopping < 5  # a stream would otherwise hold it for 30 s
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "Traceback" not in err, err
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_wanmock/clock", timeout=5)
