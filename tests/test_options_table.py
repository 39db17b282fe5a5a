"""Every user-settable option is described once (mockserver.options.CORE and each
family's family.py) and reachable from `wanmock serve`, the marker and the ini file."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from mockserver import families as registry
from mockserver.cli import build_parser, option_values
from mockserver.core.backend import Options
from mockserver.errors import MockServerError
from mockserver.options import CORE
from mockserver.pytest_plugin import PLUGIN_KEYS, pytest_addoption

TABLE = registry.option_table()


class _Recorder:
    """A stand-in for pytest's parser: records the ini keys and options the plugin adds."""

    def __init__(self) -> None:
        self.ini: set[str] = set()

    def getgroup(self, *args: Any) -> _Recorder:
        return self

    def addoption(self, *args: Any, **kwargs: Any) -> None:
        pass

    def addini(self, name: str, *args: Any, **kwargs: Any) -> None:
        assert name not in self.ini, f"ini key {name} added twice"
        self.ini.add(name)


def _serve_dests() -> set[str]:
    return set(vars(build_parser().parse_args(["serve"])))


def test_every_option_is_reachable_from_serve_the_marker_and_ini():
    recorder = _Recorder()
    pytest_addoption(recorder)  # type: ignore[arg-type]
    dests = _serve_dests()
    marker = set(Options.names())
    assert len(TABLE) >= 35  # every core and family option
    for name in TABLE:
        assert name in dests, f"wanmock serve has no flag for {name}"
        assert name in marker, f"the marker does not accept {name}"
        assert f"wanmock_{name}" in recorder.ini, f"no ini key wanmock_{name}"
    assert not PLUGIN_KEYS & set(TABLE)


def test_the_table_is_options():
    """Core options are Options' fields with the same defaults; family options its
    family_options, owned by the family that declares them."""
    core = {f.name: f for f in fields(Options) if f.name != "family_options"}
    assert [o.name for o in CORE] == list(core)
    defaults = Options()
    for option in CORE:
        if option.name != "families":
            assert getattr(defaults, option.name) == option.default, option.name
    family = {n: o for n, o in TABLE.items() if o.family}
    assert set(defaults.family_options) == set(family)
    for name, option in family.items():
        assert name.startswith(f"{option.family}_") and option.family in registry.families()
        assert defaults.family_options[name] == option.default == getattr(defaults, name)
        assert name not in core  # family knobs left core Options


@pytest.mark.parametrize(("argv", "expected"), [
    (["--jiekou-bare-key", "reject"], {"jiekou_bare_key": "reject"}),
    (["--newapi-version", "legacy", "--newapi-poll-interval", "2.5"],
     {"newapi_version": "legacy", "newapi_poll_interval": 2.5}),
    (["--newapi-build-error-status", "400", "--newapi-user-language", "zh-TW"],
     {"newapi_build_error_status": 400, "newapi_user_language": "zh-TW"}),
    (["--newapi-version", "v0.10.0"], {"newapi_version": "v0.10.0"}),
    (["--dashscope-unknown-model-status", "404", "--dashscope-result-auth", "ignore"],
     {"dashscope_unknown_model_status": 404, "dashscope_result_auth": "ignore"}),
    (["--queued-polls", "3", "--running-polls", "0", "--replay-strict"],
     {"queued_polls": 3, "running_polls": 0, "replay_strict": True}),
    (["--contracts", "/x", "--seed", "7", "--timing", "instant", "--api-key", "k"],
     {"contracts_dir": "/x", "seed": 7, "timing": "instant", "api_keys": frozenset({"k"})}),
])
def test_serve_flags_keep_their_spellings(argv: list[str], expected: dict[str, Any]):
    values = option_values(build_parser().parse_args(["serve", *argv]))
    assert {k: values[k] for k in expected} == expected
    assert "jiekou_bare_key" not in option_values(build_parser().parse_args(["serve"]))


def test_serve_refuses_a_bad_choice(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--jiekou-url-ttl", "forever"])
    assert "invalid choice: 'forever'" in capsys.readouterr().err


def test_family_options_read_and_set_by_name():
    options = Options().merged(newapi_version="legacy", jiekou_bare_key="reject", seed=3)
    assert options.newapi_version == "legacy" and options["jiekou_bare_key"] == "reject"
    assert options["seed"] == 3 and options.as_dict()["newapi_version"] == "legacy"
    assert Options().merged(**options.as_dict()) == options  # what --workers hands on
    with pytest.raises(MockServerError, match="newapi_version must be one of latest, legacy, "
                                              "v1.0.0-rc.25, v0.10.0"):
        Options().merged(newapi_version="v2").check()
    with pytest.raises(MockServerError, match="unknown option"):
        Options().merged(newapi_nonsense=1)
    with pytest.raises(AttributeError):
        _ = Options().nonsense


@pytest.mark.parametrize(("name", "raw", "value"), [
    ("dashscope_usage_sr", "off", False), ("newapi_user_language", "zh-CN", "zh-CN"),
    ("newapi_poll_interval", "none", None), ("max_tasks", "12", 12),
    ("api_keys", "a, b", ["a", "b"]), ("jiekou_content_type", "required", "required"),
])
def test_ini_strings_become_values(name: str, raw: str, value: Any):
    assert TABLE[name].parse(raw) == value


def test_a_bad_ini_string_is_refused():
    with pytest.raises(MockServerError, match="max_tasks must be an integer"):
        TABLE["max_tasks"].parse("many")
    with pytest.raises(MockServerError, match="jiekou_url_ttl must be one of string, countdown"):
        TABLE["jiekou_url_ttl"].parse("forever")


def test_ini_keys_reach_the_fixture(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nwanmock_jiekou_bare_key = reject\nwanmock_max_tasks = 5\n"
                     "wanmock_newapi_user_language = zh-TW\n")
    pytester.makepyfile(
        """
        import pytest

        def test_ini(wanmock):
            opts = wanmock.backend.options
            assert opts.jiekou_bare_key == "reject" and opts.max_tasks == 5
            assert opts.newapi_user_language == "zh-TW"

        @pytest.mark.wanmock(jiekou_bare_key="accept", dashscope_usage_sr=False)
        def test_marker_wins(wanmock):
            opts = wanmock.backend.options
            assert opts.jiekou_bare_key == "accept" and opts.dashscope_usage_sr is False
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
