"""The control plane's guard (mockserver/guard.py): Host, token, cross-origin and content-type
checks, on the rules and on a live server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockserver.guard import ControlGuard, cookie_name, host_name
from mockserver.server import ThreadedMockServer
from tests.helpers import SyncASGITransport


def scope(path: str = "/_wanmock/reset", method: str = "POST", query: bytes = b"",
          server: Any = ("127.0.0.1", 8000), **headers: str) -> dict[str, Any]:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "path": path, "method": method, "query_string": query,
            "headers": raw, "server": server}


def status(guard: ControlGuard, **kw: Any) -> int | None:
    refusal = guard.check(scope(**kw))
    return None if refusal is None else refusal.status


@pytest.mark.parametrize(("host", "name"), [
    ("127.0.0.1:8000", "127.0.0.1"), ("[::1]:8000", "::1"), ("LocalHost.:80", "localhost"),
    ("example.com", "example.com")])
def test_host_names(host: str, name: str) -> None:
    assert host_name(host) == name


def test_dns_rebinding_hosts_are_refused_and_loopback_and_allowed_ones_pass() -> None:
    guard = ControlGuard(allowed_hosts=["wanmock", ".corp.example"],
                         public_url="https://fake.example.net:8443/base")
    for ok in ("127.0.0.1:8000", "[::1]:8000", "10.1.2.3", "localhost:8000", "app.localhost",
               "wanmock:8000", "a.corp.example", "corp.example", "fake.example.net"):
        assert status(guard, method="GET", path="/_wanmock/tasks", host=ok) is None, ok
    for bad in ("attacker.example:8000", "corp.example.evil", "localhost.evil.com"):
        assert status(guard, method="GET", path="/_wanmock/ui", host=bad) == 403, bad
    # the name the server reports for itself (in process: the test client's base URL)
    assert status(guard, method="GET", host="fake", server=("fake", 80)) is None
    # provider routes and signed result URLs answer any host
    assert status(guard, path="/api/v1/tasks/x", host="dashscope.aliyuncs.com") is None
    assert status(guard, method="GET", path="/_wanmock/videos/x.mp4", host="cdn.x") is None
    assert status(ControlGuard(allowed_hosts=["*"]), host="anything.example") is None


def test_cross_origin_requests_are_refused_as_go_refuses_them() -> None:
    guard = ControlGuard()
    host = "127.0.0.1:8000"
    json_type = {"content_type": "application/json", "content_length": "2"}
    assert status(guard, host=host, sec_fetch_site="cross-site", **json_type) == 403
    assert status(guard, host=host, sec_fetch_site="same-site", **json_type) == 403
    assert status(guard, host=host, sec_fetch_site="same-origin", **json_type) is None
    assert status(guard, host=host, sec_fetch_site="none", **json_type) is None
    assert status(guard, host=host, origin="http://evil.example", **json_type) == 403
    assert status(guard, host=host, origin="null", **json_type) == 403
    assert status(guard, host=host, origin="http://127.0.0.1:8000", **json_type) is None
    assert status(guard, host=host, **json_type) is None  # curl, httpx: no Origin
    # reading is not refused (a page cannot read the answer without CORS anyway)
    assert status(guard, method="GET", host=host, origin="http://evil.example") is None


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", "TEXT/PLAIN;charset=utf-8"])
def test_simple_request_types_are_refused_even_empty(kind: str) -> None:
    assert status(ControlGuard(), host="localhost", content_type=kind) == 415


def test_a_body_must_be_json_and_no_body_needs_no_type() -> None:
    guard = ControlGuard()
    assert status(guard, host="localhost", content_length="2") == 415
    assert status(guard, host="localhost", transfer_encoding="chunked") == 415
    assert status(guard, host="localhost", content_type="application/yaml",
                  content_length="9") == 415
    assert status(guard, host="localhost", content_type="application/merge-patch+json",
                  content_length="2") is None
    assert status(guard, host="localhost") is None
    assert status(guard, host="localhost", content_length="0") is None
    assert status(guard, method="DELETE", path="/_wanmock/scenarios", host="localhost") is None


def test_the_token_is_required_and_an_api_key_is_no_token() -> None:
    guard = ControlGuard(token="t" * 24)
    host = "127.0.0.1:9000"
    assert status(guard, method="GET", path="/_wanmock/tasks", host=host) == 401
    assert status(guard, method="GET", path="/_wanmock/ui", host=host,
                  authorization="Bearer " + "t" * 24) == 401
    assert status(guard, method="GET", path="/_wanmock/tasks", host=host,
                  x_wanmock_token="t" * 23 + "u") == 401
    assert status(guard, method="GET", path="/_wanmock/tasks", host=host,
                  x_wanmock_token="t" * 24) is None
    assert status(guard, method="GET", path="/_wanmock/ui", host=host,
                  cookie=f"other=1; {cookie_name(host)}={'t' * 24}") is None
    assert status(guard, method="GET", path="/_wanmock/ui", host=host,
                  cookie=f"wanmock_token_1={'t' * 24}") == 401  # another port's cookie
    # the link printed at start: cookie set, token out of the URL
    refusal = guard.check(scope(method="GET", path="/_wanmock/ui/journal", host=host,
                                query=b"family=jiekou&token=" + b"t" * 24))
    assert refusal is not None and refusal.status == 303
    headers = dict(refusal.headers)
    assert headers["location"] == "/_wanmock/ui/journal?family=jiekou"
    assert headers["set-cookie"].startswith(f"{cookie_name(host)}={'t' * 24}; Path=/_wanmock")
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    assert status(guard, method="GET", path="/_wanmock/ui", host=host,
                  query=b"token=wrong") == 401
    # the health probe needs no token (a HEALTHCHECK cannot know one), but a good Host
    assert status(guard, method="GET", path="/_wanmock/health", host=host) is None
    assert status(guard, method="HEAD", path="/_wanmock/health", host=host) is None
    assert status(guard, method="POST", path="/_wanmock/health", host=host) == 401
    assert status(guard, method="GET", path="/_wanmock/health/x", host=host) == 401
    assert status(guard, method="GET", path="/_wanmock/health", host="evil.example") == 403
    # a state-changing request with the token still has to be same-origin
    assert status(guard, host=host, x_wanmock_token="t" * 24, origin="http://evil.example") == 403


@pytest.fixture(scope="module")
def live():
    with ThreadedMockServer(clock="manual") as server:
        yield server


def test_a_rebinding_host_is_refused_by_a_live_server(live: ThreadedMockServer) -> None:
    with httpx.Client(base_url=live.url, trust_env=False) as c:
        assert c.get("/_wanmock/clock").status_code == 200
        r = c.post("/_wanmock/clock/advance", json={"seconds": 5},
                   headers={"Host": "attacker.example:80"})
        assert r.status_code == 403 and r.json()["type"] == "MockServerError"
        assert "--allowed-host attacker.example" in r.json()["error"]
        assert c.get("/_wanmock/ui", headers={"Host": "attacker.example"}).status_code == 403
        r = c.post("/_wanmock/clock/advance", content=b'{"seconds": 5}',
                   headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        assert live.backend.now() == 1767225600.0  # nothing moved the clock
        # the fake's own clients are unaffected: provider routes answer any host
        r = c.get("/api/v1/tasks/nope", headers={"Host": "attacker.example",
                                                 "Authorization": "Bearer sk-x"})
        assert r.status_code == 200 and r.json()["output"]["task_status"] == "UNKNOWN"


def test_allow_remote_requires_the_token_whatever_api_key_is_set() -> None:
    with ThreadedMockServer(allow_remote=True, api_keys=["sk-good"]) as server:
        token = server.control_token
        assert token is not None and len(token) >= 16
        with httpx.Client(base_url=server.url, trust_env=False) as c:
            assert c.get("/_wanmock/tasks").status_code == 401
            assert c.post("/_wanmock/reset",
                          headers={"Authorization": "Bearer sk-good"}).status_code == 401
            assert c.get("/_wanmock/ui").status_code == 401
            r = c.get("/_wanmock/tasks", headers={"X-Wanmock-Token": token})
            assert r.status_code == 200 and r.json()["count"] == 0
            # the dashboard link: a cookie, then every page and form works with it
            r = c.get(f"/_wanmock/ui?token={token}", follow_redirects=True)
            assert r.status_code == 200 and "wanmock" in r.text
            assert c.post("/_wanmock/reset").status_code == 200
        # the provider routes still take API keys, not the token
        r = httpx.get(server.url + "/api/v1/tasks/x", headers={"Authorization": "Bearer sk-good"},
                      trust_env=False)
        assert r.status_code == 200


def test_wanmock_serve_allow_remote_generates_prints_and_requires_a_token(capsys) -> None:
    """The command's own path: `wanmock serve --allow-remote --api-key K` makes a new token
    each start (else takes --control-token), prints it with the dashboard's link, and the
    control plane it builds wants that token, never the API key."""
    from mockserver.cli import build_parser, serve_app
    from mockserver.cli_args import print_control

    argv = ["serve", "--host", "0.0.0.0", "--allow-remote", "--api-key", "sk-good"]
    apps = [serve_app(build_parser().parse_args(argv)) for _ in range(2)]
    tokens = [app.state.backend.options["control_token"] for app in apps]
    assert all(t and len(t) >= 16 for t in tokens) and tokens[0] != tokens[1]
    print_control("http://0.0.0.0:8000", tokens[0])
    out = capsys.readouterr().out
    assert f"/_wanmock/ui?token={tokens[0]}" in out and f"X-Wanmock-Token: {tokens[0]}" in out
    with httpx.Client(transport=SyncASGITransport(apps[0]), base_url="http://127.0.0.1") as c:
        assert c.get("/_wanmock/tasks").status_code == 401
        assert c.get("/_wanmock/tasks",
                     headers={"Authorization": "Bearer sk-good"}).status_code == 401
        assert c.get("/_wanmock/tasks", headers={"X-Wanmock-Token": tokens[1]}).status_code == 401
        assert c.get("/_wanmock/tasks", headers={"X-Wanmock-Token": tokens[0]}).status_code == 200
    given = serve_app(build_parser().parse_args([*argv, "--control-token", "t" * 20]))
    assert given.state.backend.options["control_token"] == "t" * 20
    # Without --allow-remote there is no token (loopback only, guarded by Host and Origin).
    local = serve_app(build_parser().parse_args(["serve"]))
    assert local.state.backend.options["control_token"] is None
