"""The wanmock pytest plugin (entry point `wanmock`).

Fixtures: `wanmock` (an in-process fake per test, reached through the providers' real hosts via
respx), `wanmock_server` (a live fake on 127.0.0.1 for clients that do not use httpx),
`wanmock_tls_server` (the same over HTTPS, with the CA to trust), `wanmock_config` (override it
to set defaults for a directory). The marker
`@pytest.mark.wanmock(...)` sets options per test. `--wanmock-target=live` runs the same tests
against the real providers; `record` does so through the recorder, writing a cassette per test
(`--wanmock-cassettes DIR`, default tests/cassettes); `replay` runs them against the fake
replaying those cassettes. This module imports nothing heavy at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}
MARKER_HELP = (
    "wanmock(families=None, timing='fast', mode='polls', clock='system', seed=None, "
    "hosts=(), unmocked='error', rule_timing='contract', api_keys=(), "
    "assert_conformance=True, billable=0, **options): configure the wanmock fixtures for this "
    "test. See docs/pytest-plugin.md."
)
TARGETS = ("fake", "live", "record", "replay")
# Option names the marker accepts besides the backend Options fields.
PLUGIN_KEYS = {"hosts", "unmocked", "assert_conformance", "billable"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wanmock", "wanmock: fake Wan video providers")
    group.addoption("--wanmock-target", dest="wanmock_target", default=None,
                    choices=list(TARGETS),
                    help="fake (default): in-process fake; live: the real providers (keys from "
                         f"{_key_variables()}); record: live, writing a cassette per test; "
                         "replay: the fake, replaying each test's cassette")
    group.addoption("--wanmock-cassettes", dest="wanmock_cassettes", default=None,
                    help="cassette directory for record/replay (default tests/cassettes)")
    group.addoption("--wanmock-cassette-max-age", dest="wanmock_cassette_max_age", type=float,
                    default=None,
                    help="replay: fail a test whose cassette was recorded more than this many "
                         "days ago (re-record it)")
    group.addoption("--wanmock-upstream", dest="wanmock_upstream", action="append",
                    default=None,
                    help="record mode: forward FAMILY's traffic to URL instead of the request's "
                         "host (FAMILY=URL, repeatable; e.g. a staging gateway)")
    group.addoption("--wanmock-budget", dest="wanmock_budget", type=int, default=None,
                    help="billable submissions allowed against live providers (default 0)")
    group.addoption("--wanmock-seed", dest="wanmock_seed", type=int, default=None,
                    help="seed for ids and timings")
    group.addoption("--wanmock-timing", dest="wanmock_timing", default=None,
                    help="task timing: fast, realistic, instant or a profile file "
                         "(wanmock calibrate)")
    group.addoption("--wanmock-host", dest="wanmock_hosts", action="append", default=None,
                    help="extra host to route into the fake (repeatable; e.g. your gateway)")
    group.addoption("--wanmock-store", dest="wanmock_store", default=None,
                    help="where the fakes keep their state: memory (default), "
                         "sqlite:///PATH.db or redis://HOST:PORT/DB")
    group.addoption("--wanmock-unmocked", dest="wanmock_unmocked", default=None,
                    choices=["error", "passthrough"],
                    help="requests to other hosts: error (default) or passthrough")
    group.addoption("--wanmock-tls-dir", dest="wanmock_tls_dir", default=None,
                    help="wanmock_tls_server: keep its CA in this directory (default: a new "
                         "one per session)")
    parser.addini("wanmock_target", "fake, live, record or replay", default="fake")
    parser.addini("wanmock_cassettes", "cassette directory for record/replay",
                  default="tests/cassettes")
    parser.addini("wanmock_cassette_max_age", "replay: days before a cassette is stale",
                  default="")
    parser.addini("wanmock_upstream", "record mode: FAMILY=URL upstreams", type="linelist",
                  default=[])
    parser.addini("wanmock_budget", "billable submissions allowed in live mode", default="0")
    parser.addini("wanmock_hosts", "extra hosts routed into the fake", type="linelist",
                  default=[])
    parser.addini("wanmock_unmocked", "error or passthrough", default="error")
    parser.addini("wanmock_tls_dir", "wanmock_tls_server: the CA's directory (default: a new "
                  "one per session)", default="")
    parser.addini("wanmock_tls_names", "wanmock_tls_server: names its certificate covers besides "
                  "localhost, 127.0.0.1 and ::1", type="linelist", default=[])
    parser.addini("wanmock_assert_conformance",
                  "fail tests whose client sent requests the contract forbids", type="bool",
                  default=True)
    for option in _option_table().values():  # every option of the fake: `wanmock_<name>`
        parser.addini(f"wanmock_{option.name}", f"{option.help} ({option.describe()})",
                      default="")


def _key_variables() -> str:
    from mockserver.families import key_variables

    return key_variables()


def _option_table() -> dict[str, Any]:
    """Every option of the fake (mockserver.options + each family's family.py)."""
    from mockserver.families import option_table

    return option_table()


def _ini_options(config: pytest.Config) -> dict[str, Any]:
    """The `wanmock_<option>` ini keys that are set, as option values."""
    from mockserver.errors import MockServerError

    out: dict[str, Any] = {}
    for name, option in _option_table().items():
        raw = config.getini(f"wanmock_{name}")
        if isinstance(raw, list):
            raw = " ".join(str(r) for r in raw)
        if not str(raw).strip():
            continue
        try:
            out[name] = option.parse(str(raw))
        except MockServerError as exc:
            raise pytest.UsageError(f"wanmock_{exc}") from None
    return out


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", "wanmock_live_only: run only with --wanmock-target=live")


def _choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str:
    value = config.getoption(f"wanmock_{name}") or config.getini(f"wanmock_{name}")
    if value not in choices:
        raise pytest.UsageError(
            f"wanmock_{name} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _target(config: pytest.Config) -> str:
    return _choice(config, "target", TARGETS)


def cassette_path(request: pytest.FixtureRequest) -> Any:
    """Where this test's cassette lives: <dir>/<test module path>/<test name>.jsonl."""
    import re
    from pathlib import Path

    config = request.config
    base = Path(config.getoption("wanmock_cassettes") or config.getini("wanmock_cassettes"))
    if not base.is_absolute():
        base = Path(config.rootpath) / base
    module = Path(request.node.path).with_suffix("")
    try:
        module = module.relative_to(config.rootpath)
    except ValueError:
        module = Path(module.name)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    return base / module / f"{name}.jsonl"


def _upstreams(config: pytest.Config) -> dict[str, str]:
    out = {}
    for item in [*config.getini("wanmock_upstream"), *(config.getoption("wanmock_upstream") or [])]:
        family, sep, url = str(item).partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise pytest.UsageError(f"wanmock_upstream: expected FAMILY=URL, not {item!r}")
        out[family.strip()] = url.strip()
    return out


def _replay_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    path = cassette_path(request)
    if not path.is_file():
        from mockserver.families import key_variables

        pytest.fail(f"wanmock replay: no cassette for this test at {path}; record it with "
                    f"`pytest '{request.node.nodeid}' --wanmock-target=record --wanmock-budget "
                    f"N` (N: the jobs it may pay for; keys from {key_variables()}; "
                    "--wanmock-upstream FAMILY=URL for a gateway)", pytrace=False)
    limit = request.config.getoption("wanmock_cassette_max_age")
    if limit is None and str(request.config.getini("wanmock_cassette_max_age")).strip():
        try:
            limit = float(request.config.getini("wanmock_cassette_max_age"))
        except ValueError:
            raise pytest.UsageError("wanmock_cassette_max_age must be a number of days") from None
    if limit is not None:
        age = _cassette_age_days(path)
        if age is None or age > limit:
            shown = "of unknown age" if age is None else f"{age:.1f} days old"
            pytest.fail(f"wanmock replay: the cassette {path} is {shown} (more than {limit:g}); "
                        "re-record it with --wanmock-target=record", pytrace=False)
    return {"replay": str(path)}


def _cassette_age_days(path: Any) -> float | None:
    """Days since the cassette's header says it was created (None when it does not say)."""
    import calendar
    import json
    import time

    try:
        with open(path, encoding="utf-8") as handle:
            created = json.loads(handle.readline()).get("created")
        then = calendar.timegm(time.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ"))
    except (OSError, ValueError, AttributeError):
        return None
    return (time.time() - then) / 86400


def _store(config: pytest.Config) -> str:
    return str(config.getoption("wanmock_store") or config.getini("wanmock_store") or "").strip()


def _int_ini(config: pytest.Config, name: str) -> int | None:
    value = config.getoption(f"wanmock_{name}")
    if value is not None:
        return int(value)
    raw = str(config.getini(f"wanmock_{name}")).strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"wanmock_{name} must be an integer, not {raw!r}") from None


@pytest.fixture
def wanmock_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Options for the wanmock fixtures (command line, ini); override it to set your defaults."""
    config = request.config
    options: dict[str, Any] = {"mode": "polls", "clock": "system", **_ini_options(config)}
    seed = _int_ini(config, "seed")
    if seed is not None:
        options["seed"] = seed
    timing = config.getoption("wanmock_timing") or config.getini("wanmock_timing")
    if timing:
        options["timing"] = timing
    store = _store(config)
    if store:
        options["store"] = store
    options["hosts"] = [*config.getini("wanmock_hosts"),
                        *(config.getoption("wanmock_hosts") or [])]
    options["unmocked"] = _choice(config, "unmocked", ("error", "passthrough"))
    options["assert_conformance"] = bool(config.getini("wanmock_assert_conformance"))
    return options


def _settings(request: pytest.FixtureRequest, base: dict[str, Any]) -> dict[str, Any]:
    from mockserver.core.backend import Options

    settings = dict(base)
    marker = request.node.get_closest_marker("wanmock")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.wanmock takes keyword arguments only")
        unknown = set(marker.kwargs) - set(Options.names()) - PLUGIN_KEYS
        if unknown:
            raise pytest.UsageError(
                f"@pytest.mark.wanmock: unknown argument(s) {sorted(unknown)}; valid: "
                f"{', '.join(sorted([*Options.names(), *PLUGIN_KEYS]))}")
        for key, value in marker.kwargs.items():
            if key == "hosts":
                settings["hosts"] = [*settings.get("hosts", []), *value]
            else:
                settings[key] = value
    return settings


def _split(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    plugin = {k: settings[k] for k in PLUGIN_KEYS if k in settings}
    options = {k: v for k, v in settings.items() if k not in PLUGIN_KEYS}
    return options, plugin


@pytest.fixture(scope="session")
def _wanmock_budget(pytestconfig: pytest.Config) -> Any:
    from mockserver.live import Budget

    return Budget(limit=_int_ini(pytestconfig, "budget") or 0)


@pytest.fixture
def wanmock(request: pytest.FixtureRequest, wanmock_config: dict[str, Any],
            _wanmock_budget: Any) -> Iterator[Any]:
    """An in-process fake for this test: httpx calls to the providers' hosts reach it."""
    __tracebackhide__ = True
    settings = _settings(request, wanmock_config)
    options, plugin = _split(settings)
    target = _target(request.config)
    if target in ("live", "record"):
        yield from _live(request, plugin, _wanmock_budget, record=target == "record")
        return
    if target == "replay":
        options = {**options, **_replay_options(request)}
    from mockserver.handle import InProcessRoutes, WanMock, app_hosts
    from mockserver.server import create_app

    try:
        app = create_app(**options)
    except Exception as exc:  # MockServerError: a bad option value
        raise pytest.UsageError(f"wanmock: {exc}") from exc
    hosts = app_hosts(app)
    handle = WanMock(app.state.backend, url=f"https://{hosts[0]}")
    handle.app = app  # type: ignore[attr-defined]
    routes = InProcessRoutes(app, [*hosts, *plugin.get("hosts", [])],
                             unmocked=plugin.get("unmocked", "error"))
    backend = app.state.backend
    if backend.state.shared:  # a store outlives a test: each test starts from a reset one
        backend.reset()
    try:
        with routes:
            yield handle
        if plugin.get("assert_conformance", True):
            handle.assert_all_requests_conform()
    finally:
        backend.state.close()


def _live(request: pytest.FixtureRequest, plugin: dict[str, Any], budget: Any,
          record: bool = False) -> Iterator[Any]:
    from mockserver.contracts import load
    from mockserver.families import host_families
    from mockserver.live import LiveRoutes, available_keys, describe_findings

    keys = available_keys()
    if not keys:
        from mockserver.families import key_variables

        pytest.skip(f"wanmock live: no provider key in the environment ({key_variables()})")
    billable = int(plugin.get("billable", 0))
    if billable and not budget.take(billable):
        pytest.skip(f"wanmock live: this test submits {billable} billable job(s); the budget "
                    f"({budget.limit}, {budget.spent} spent) does not allow it")
    if record:
        from mockserver.record_mode import RecordRoutes

        contracts = load()
        hosts = {**host_families(contracts), **{host: "newapi" for host in plugin.get("hosts", [])}}
        recording = RecordRoutes(contracts, budget, cassette_path(request), hosts=hosts,
                                 upstreams=_upstreams(request.config)).start()
        try:
            yield LiveHandle(keys, recording)
        finally:
            recording.stop()
        if recording.findings:
            pytest.fail("wanmock record: answers that differ from the contract:\n  "
                        + "\n  ".join(recording.findings), pytrace=False)
        return
    routes = LiveRoutes(load(), budget)
    for host in plugin.get("hosts", []):
        routes.hosts[host] = "newapi"
    routes.start()
    try:
        yield LiveHandle(keys, routes)
    finally:
        routes.stop()
    if routes.findings:
        pytest.fail(describe_findings(routes.findings), pytrace=False)


class LiveHandle:
    """What `wanmock` is in live mode: the keys; fake-only features skip the test."""

    def __init__(self, keys: dict[str, str], routes: Any) -> None:
        self.keys = keys
        self.routes = routes
        self.live = True

    def __getattr__(self, name: str) -> Any:
        pytest.skip(f"wanmock live: `wanmock.{name}` needs the fake (clock, tasks, journal); "
                    f"this test runs only with --wanmock-target=fake")


def _session_server(config: pytest.Config, **server: Any) -> Iterator[Any]:
    """A ThreadedMockServer for the session, with the command line's and ini file's options."""
    from mockserver.server import ThreadedMockServer

    seed = _int_ini(config, "seed")
    timing = config.getoption("wanmock_timing") or config.getini("wanmock_timing")
    options: dict[str, Any] = {"mode": "polls", **_ini_options(config)}
    if seed is not None:
        options["seed"] = seed
    if timing:
        options["timing"] = timing
    store = _store(config)
    if store:
        options["store"] = store
    instance = ThreadedMockServer(**server, **options).start()
    yield instance
    instance.stop()
    instance.backend.state.close()


@pytest.fixture(scope="session")
def _wanmock_server_session(pytestconfig: pytest.Config) -> Iterator[Any]:
    yield from _session_server(pytestconfig)


@pytest.fixture(scope="session")
def _wanmock_tls_server_session(pytestconfig: pytest.Config,
                                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory = (pytestconfig.getoption("wanmock_tls_dir")
                 or str(pytestconfig.getini("wanmock_tls_dir")).strip()
                 or tmp_path_factory.mktemp("wanmock-tls"))
    names = [str(n) for n in pytestconfig.getini("wanmock_tls_names")]
    try:
        yield from _session_server(pytestconfig, tls=directory, tls_names=names)
    except Exception as exc:  # MockServerError: a bad name or directory
        raise pytest.UsageError(f"wanmock_tls_server: {exc}") from exc


@pytest.fixture(scope="session")
def _wanmock_proxy_session(pytestconfig: pytest.Config, _wanmock_budget: Any) -> Iterator[Any]:
    """Live and record mode: one `wanmock proxy` for the session's `wanmock_server` tests, in
    front of the real providers (or --wanmock-upstream), on the session's budget."""
    from mockserver.contracts import load
    from mockserver.live import available_keys
    from mockserver.proxy import Proxy
    from mockserver.record_mode import real_targets
    from mockserver.server import ThreadedMockServer

    contracts = load()
    proxy = Proxy(real_targets(contracts, _upstreams(pytestconfig)), contracts=contracts,
                  submits=_wanmock_budget, keys=available_keys(), echo=None)
    server = ThreadedMockServer(app=proxy.app()).start()
    yield proxy, server
    server.stop()


@pytest.fixture
def wanmock_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A live fake on 127.0.0.1 (`.url`), shared by the session and reset for each test; under
    --wanmock-target=live|record, a proxy on 127.0.0.1 in front of the real providers that
    validates (and records) what the test's client does."""
    __tracebackhide__ = True
    target = _target(request.config)
    if target in ("live", "record"):
        yield from _proxied(request, record=target == "record")
        return
    yield from _server_handle(request, "_wanmock_server_session", "wanmock_server")


@pytest.fixture
def wanmock_tls_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """`wanmock_server` over HTTPS (`.url` is https://127.0.0.1:PORT): its certificate comes
    from a local CA; `.ca_bundle` is the file to trust, `.env()` an environment whose clients
    (Python, requests, Node, curl) trust it, `.ssl_context()` one for httpx's `verify=`."""
    __tracebackhide__ = True
    target = _target(request.config)
    if target in ("live", "record"):
        pytest.skip(f"wanmock {target}: wanmock_tls_server is the fake; this test runs only "
                    "against it (record through `wanmock_server` or `wanmock proxy --record`)")
    yield from _server_handle(request, "_wanmock_tls_server_session", "wanmock_tls_server")


def _server_handle(request: pytest.FixtureRequest, session: str, name: str) -> Iterator[Any]:
    """A session server's handle for one test: reset, this test's marker options applied and
    undone afterwards, its requests checked against the contracts at teardown."""
    __tracebackhide__ = True
    from mockserver.errors import MockServerError
    from mockserver.handle import WanMock

    target = _target(request.config)
    server = request.getfixturevalue(session)
    backend = server.backend
    session_options = backend.options
    settings = _settings(request, {})
    options, plugin = _split(settings)
    if target == "replay":
        options = {**options, **_replay_options(request)}
    if options:  # this test's marker: applied to the shared server, undone afterwards
        try:
            backend.configure(session_options.merged(**options))
        except MockServerError as exc:
            raise pytest.UsageError(f"{name}: {exc}") from exc
    else:
        backend.reset()
    handle = WanMock(backend, url=server.url, tls=server.tls)
    handle.server = server  # type: ignore[attr-defined]
    try:
        yield handle
        if plugin.get("assert_conformance", bool(request.config.getini(
                "wanmock_assert_conformance"))):
            handle.assert_all_requests_conform()
    finally:
        if options:
            backend.configure(session_options)


def _proxied(request: pytest.FixtureRequest, record: bool) -> Iterator[Any]:
    from mockserver.live import available_keys
    from mockserver.record_mode import ProxyHandle

    keys = available_keys()
    if not keys:
        from mockserver.families import key_variables

        pytest.skip(f"wanmock live: no provider key in the environment ({key_variables()})")
    budget = request.getfixturevalue("_wanmock_budget")
    settings = _settings(request, {})
    _, plugin = _split(settings)
    billable = int(plugin.get("billable", 0))
    if billable and budget.limit is not None and budget.spent + billable > budget.limit:
        pytest.skip(f"wanmock live: this test submits {billable} billable job(s); the budget "
                    f"({budget.limit}, {budget.spent} spent) does not allow it")
    proxy, server = request.getfixturevalue("_wanmock_proxy_session")
    proxy.record_to(cassette_path(request) if record else None)
    handle = ProxyHandle(proxy, server, keys)
    request.node.stash[_PROXY_HANDLE] = handle
    try:
        yield handle
    finally:
        proxy.record_to(None)
    findings = handle.findings()
    if findings:
        pytest.fail(f"wanmock {'record' if record else 'live'}: answers that differ from the "
                    "contract:\n  " + "\n  ".join(findings), pytrace=False)


_PROXY_HANDLE = pytest.StashKey[Any]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A `wanmock_server` test that failed because the proxy refused a submit beyond the
    budget is reported skipped, as a `wanmock` test beyond it is."""
    outcome = yield
    handle = item.stash.get(_PROXY_HANDLE, None)
    if handle is None or call.when != "call":
        return
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and handle.over_budget():
        budget = handle.proxy.submits
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"Skipped: wanmock {_target(item.config)}: the test submitted a "
                           f"billable job beyond the budget ({budget.limit}); raise it with "
                           "--wanmock-budget")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _target(config) in ("live", "record"):
        return
    skip = pytest.mark.skip(reason="wanmock_live_only: runs only with --wanmock-target=live")
    for item in items:
        if item.get_closest_marker("wanmock_live_only"):
            item.add_marker(skip)
