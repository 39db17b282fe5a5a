"""Failing fast, in one line and exit status 2: nothing listens at a `wanmock check` target, a
proxy target or a store URL. And reports go where the user said, or next to the cassette,
never unasked into the current directory."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mockserver.cli import main
from mockserver.server import ThreadedMockServer


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("argv", "url"), [
    (["serve", "--store", "redis://127.0.0.1:{port}/0", "--port", "0"],
     "redis://127.0.0.1:{port}/0"),
    (["serve", "--store", "redis://:hunter2@127.0.0.1:{port}/0", "--port", "0"],
     "redis://***@127.0.0.1:{port}/0"),  # never the password
    (["proxy", "--target", "http://127.0.0.1:{port}", "--port", "0"], "http://127.0.0.1:{port}"),
    (["proxy", "--target", "dashscope=http://127.0.0.1:{port}", "--port", "0"],
     "http://127.0.0.1:{port}"),
    (["check", "http://127.0.0.1:{port}", "--family", "dashscope"], "http://127.0.0.1:{port}"),
], ids=["store", "store-password", "proxy", "proxy-family", "check"])
def test_nothing_listening_is_one_line_and_exit_2(argv, url, closed_port, capsys, tmp_path,
                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main([part.format(port=closed_port) for part in argv])
    out, err = capsys.readouterr()
    assert code == 2
    assert err == f"wanmock: cannot connect to {url.format(port=closed_port)}: connection refused\n"
    assert out == ""  # no verdict, no banner
    assert list(tmp_path.iterdir()) == []  # and nothing written


def test_a_bad_wanmock_port_is_one_line_for_the_commands_that_read_it(monkeypatch, capsys):
    monkeypatch.setenv("WANMOCK_PORT", "eighty")
    assert main(["contracts", "list"]) == 0  # a command that does not read it never notices
    capsys.readouterr()
    for command in (["proxy", "--target", "http://127.0.0.1:9"], ["serve"]):
        with pytest.raises(SystemExit) as exited:
            main(command)
        assert exited.value.code == 2
        assert capsys.readouterr().err == (
            f"wanmock {command[0]}: error: WANMOCK_PORT='eighty' (the environment's --port): "
            "invalid int value: 'eighty'\n")
    monkeypatch.setenv("WANMOCK_PORT", "8123")
    from mockserver.cli import build_parser

    assert build_parser().parse_args(["proxy", "--target", "http://x"]).port == 8123
    assert build_parser().parse_args(["proxy", "--target", "http://x", "--port", "1"]).port == 1


def test_calibrate_writes_its_profile_next_to_the_cassette(tmp_path, monkeypatch, capsys):
    from tests.recording_helpers import dashscope_job, record

    monkeypatch.chdir(tmp_path)
    with ThreadedMockServer(families=["dashscope"], timing="fast", clock="manual") as upstream:
        clock = upstream.backend.clock
        path = record(tmp_path / "tapes" / "one.jsonl", upstream.url, clock,
                      lambda c: dashscope_job(c, clock))
    assert main(["calibrate", str(path)]) == 0
    assert (tmp_path / "tapes" / "one.timing-profile.yaml").is_file()
    assert "tapes/one.timing-profile.yaml" in capsys.readouterr().out
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["tapes"]
