"""The pytest plugin, exercised the way users meet it: through pytester."""

from __future__ import annotations

import pytest


def test_sync_and_async_clients_complete_jobs_on_real_hosts(pytester):
    pytester.makepyfile(
        """
        import httpx, pytest

        H = {"Authorization": "Bearer sk-test", "X-DashScope-Async": "enable"}
        BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a cat"},
                "parameters": {"size": "1280*720"}}

        def test_sync(wanmock):
            with httpx.Client(base_url="https://dashscope.aliyuncs.com/api/v1", headers=H) as c:
                tid = c.post("/services/aigc/video-generation/video-synthesis",
                             json=BODY).json()["output"]["task_id"]
                seen = []
                while not seen or seen[-1] not in ("SUCCEEDED", "FAILED"):
                    seen.append(c.get(f"/tasks/{tid}").json()["output"]["task_status"])
                url = c.get(f"/tasks/{tid}").json()["output"]["video_url"]
                video = httpx.get(url)  # a signed link: no API key
            assert seen == ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"]
            assert video.status_code == 200 and video.content[4:8] == b"ftyp"
            assert wanmock.state(tid) == "succeeded"
            assert len(wanmock.requests(family="dashscope", operation="getTask")) == 5

        @pytest.mark.anyio
        async def test_async_novita(wanmock):
            async with httpx.AsyncClient(base_url="https://api.novita.ai",
                                         headers={"Authorization": "Bearer sk_x"}) as c:
                r = await c.post("/v3/async/wan-t2v", json={"prompt": "a dog"})
                tid = r.json()["task_id"]
                status = None
                while status not in ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"):
                    r = await c.get("/v3/async/task-result", params={"task_id": tid})
                    status = r.json()["task"]["status"]
            assert status == "TASK_STATUS_SUCCEED"
            assert r.json()["videos"][0]["video_url"].startswith("https://api.novita.ai/")
            wanmock.assert_stopped_polling(tid)

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_teardown_fails_a_test_whose_client_sent_an_invalid_body(pytester):
    pytester.makepyfile(
        """
        import httpx

        def test_bad_client(wanmock):
            with httpx.Client(base_url="https://api.jiekou.ai") as c:
                r = c.post("/v3/async/wan-t2v", json={"prompt": "x", "steps": 41},
                           headers={"Authorization": "Bearer k"})
            assert r.status_code == 400  # the test itself passes...

        def test_expected(wanmock):
            with wanmock.expect_violations():
                with httpx.Client(base_url="https://api.jiekou.ai") as c:
                    c.post("/v3/async/wan-t2v", json={"steps": 41},
                           headers={"Authorization": "Bearer k"})

        import pytest

        @pytest.mark.wanmock(assert_conformance=False)
        def test_opted_out(wanmock):
            with httpx.Client(base_url="https://api.jiekou.ai") as c:
                c.post("/v3/async/wan-t2v", content=b"not json",
                       headers={"Authorization": "Bearer k"})
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*1 request(s) broke the provider contract*",
        "*POST /v3/async/wan-t2v -> 400 (jiekou.createWanT2vTask)*",
        "*steps: schema:maximum -> INVALID_REQUEST_BODY*",
        "*expect_violations*",
    ])


def test_marker_options_and_unrouted_hosts(pytester):
    pytester.makepyfile(
        """
        import httpx, pytest

        @pytest.mark.wanmock(mode="time", clock="manual", timing="fast", seed=5,
                             hosts=["gw.example.com"])
        def test_manual_clock_and_gateway(wanmock):
            with httpx.Client(base_url="https://gw.example.com",
                              headers={"Authorization": "Bearer k"}) as c:
                r = c.post("/v1/video/generations", json={"model": "wan2.6-t2v", "prompt": "a"})
                vid = r.json()["id"]
                assert c.get(f"/v1/videos/{vid}").json()["status"] == "queued"
                wanmock.advance(60)
                assert c.get(f"/v1/videos/{vid}").json()["status"] == "completed"
            assert vid.startswith("task_")

        def test_other_hosts_fail(wanmock):
            with pytest.raises(Exception, match="not mocked"):
                httpx.get("https://example.org/")

        @pytest.mark.wanmock(nonsense=1)
        def test_bad_marker(wanmock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*unknown argument(s)*nonsense*"])


def test_marker_and_fixtures_are_documented(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.wanmock(families=None*"])
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines([
        "wanmock*",
        "*in-process fake for this test*",
        "wanmock_server*",
        "*live fake on 127.0.0.1*",
    ])
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--wanmock-target*", "*--wanmock-budget*"])


def test_bad_ini_value_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nwanmock_unmocked = sometimes\n")
    pytester.makepyfile("def test_x(wanmock):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*wanmock_unmocked must be one of error, passthrough*"])


def test_live_mode_without_keys_skips_cleanly(pytester, monkeypatch):
    for var in ("DASHSCOPE_API_KEY", "JIEKOU_API_KEY", "NOVITA_API_KEY", "NEWAPI_API_KEY",
                "APIYI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    pytester.makepyfile(
        """
        import pytest

        def test_uses_fake(wanmock):
            raise AssertionError("must not run")

        def test_uses_server(wanmock_server):
            raise AssertionError("must not run")

        @pytest.mark.wanmock_live_only
        def test_only_live():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=live", "-rs")
    result.assert_outcomes(skipped=2, passed=1)
    result.stdout.fnmatch_lines(["*no provider key in the environment*"])


def test_live_only_tests_skip_on_the_fake(pytester):
    pytester.makepyfile(
        "import pytest\n@pytest.mark.wanmock_live_only\ndef test_x():\n    raise AssertionError\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)


def test_live_budget_skips_billable_tests(pytester, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-not-used")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wanmock(billable=1)
        def test_costs_money(wanmock):
            raise AssertionError("must not run with budget 0")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=live", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*submits 1 billable job(s); the budget (0*"])


@pytest.mark.clients
def test_wanmock_server_with_the_dashscope_sdk(pytester):
    pytester.makepyfile(
        """
        import dashscope
        from dashscope import VideoSynthesis

        def test_sdk(wanmock_server, monkeypatch):
            monkeypatch.setattr(dashscope, "base_http_api_url", wanmock_server.url + "/api/v1")
            rsp = VideoSynthesis.async_call(api_key="sk-test", model="wan2.6-t2v",
                                            prompt="a cat", size="1280*720")
            assert rsp.status_code == 200
            tid = rsp.output.task_id
            for _ in range(4):
                rsp = VideoSynthesis.fetch(tid, api_key="sk-test")
            assert rsp.output.task_status == "SUCCEEDED"
            assert rsp.output.video_url.startswith(wanmock_server.url)
            wanmock_server.assert_all_requests_conform()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_shared_server_applies_each_tests_marker_and_restores_the_session(pytester):
    pytester.makepyfile(
        """
        import httpx, pytest

        H = {"Authorization": "Bearer sk-test", "X-DashScope-Async": "enable"}
        CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
        BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a cat"}}

        def status(server, tid):
            r = httpx.get(f"{server.url}/api/v1/tasks/{tid}", headers=H)
            return r.json()["output"]["task_status"]

        @pytest.mark.wanmock(mode="time", clock="manual", timing="fast")
        def test_manual_clock(wanmock_server):
            tid = httpx.post(wanmock_server.url + CREATE, json=BODY,
                             headers=H).json()["output"]["task_id"]
            assert [status(wanmock_server, tid) for _ in range(3)] == ["PENDING"] * 3
            wanmock_server.advance(60)
            assert status(wanmock_server, tid) == "SUCCEEDED"

        @pytest.mark.wanmock(api_keys=["sk-only"])
        def test_keys(wanmock_server):
            r = httpx.post(wanmock_server.url + CREATE, json=BODY, headers=H)
            assert r.status_code == 401
            assert wanmock_server.backend.options.api_keys == frozenset({"sk-only"})

        def test_session_options_are_back(wanmock_server):
            options = wanmock_server.backend.options
            assert (options.mode, options.clock, options.api_keys) == ("polls", "system",
                                                                       frozenset())
            tid = httpx.post(wanmock_server.url + CREATE, json=BODY,
                             headers=H).json()["output"]["task_id"]
            seen = [status(wanmock_server, tid) for _ in range(4)]
            assert seen[-1] == "SUCCEEDED"  # poll-count mode again

        @pytest.mark.wanmock(families=["jiekou"])
        def test_families_cannot_change(wanmock_server):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*families cannot change on a running fake*"])
