"""pytest record and replay for `wanmock_server` tests: real clients (the dashscope SDK's
requests and aiohttp paths, novita-client, the openai SDK) record through the proxy on the
fixture's port, with the keys from the environment in place of the test's own, and replay
offline. The "real provider" is a live fake on 127.0.0.1 that accepts only the real keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mockserver.server import ThreadedMockServer

KEYS = {"DASHSCOPE_API_KEY": "sk-real-dashscope-0123456789",
        "NOVITA_API_KEY": "sk-real-novita-0123456789",
        "NEWAPI_API_KEY": "sk-real-newapi-0123456789"}

CLIENT_TESTS = '''
import asyncio

import dashscope
import openai
from dashscope import VideoSynthesis
from dashscope.aigc.video_synthesis import AioVideoSynthesis
from dashscope.api_entities.aio_session import close_shared_aio_session
from novita_client import NovitaClient
from novita_client.proto import V3TaskResponseStatus

KEY = "sk-placeholder-of-the-test"  # the fake takes any key; record mode sends the real one


def test_dashscope_sdk_sync_and_aio(wanmock_server, monkeypatch):
    monkeypatch.setattr(dashscope, "base_http_api_url", wanmock_server.url + "/api/v1")
    done = VideoSynthesis.call(model="wan2.6-t2v", prompt="a recorded fox", size="1280*720",
                               api_key=KEY)
    assert done.output.task_status == "SUCCEEDED", done

    async def aio():
        try:
            submitted = await AioVideoSynthesis.async_call(
                model="wan2.6-t2v", prompt="a recorded boat", size="1280*720", api_key=KEY)
            return await AioVideoSynthesis.wait(submitted, api_key=KEY)
        finally:
            await close_shared_aio_session()

    assert asyncio.run(aio()).output.task_status == "SUCCEEDED"


def test_novita_client(wanmock_server):
    client = NovitaClient(KEY, base_url=wanmock_server.url)
    task_id = client._post("/v3/async/wan-t2v", {"prompt": "a recorded comet", "width": 1280,
                                                  "height": 720})["task_id"]
    done = client.wait_for_task_v3(task_id, wait_for=3)
    assert done.task.status is V3TaskResponseStatus.TASK_STATUS_SUCCEED


def test_openai_sdk(wanmock_server):
    with openai.OpenAI(base_url=wanmock_server.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        video = sdk.videos.create_and_poll(model="wan2.6-t2v", prompt="a recorded lighthouse",
                                           seconds="5", size="1280*720", poll_interval_ms=1)
    assert video.status == "completed"
'''


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[ThreadedMockServer]:
    with ThreadedMockServer(timing="instant", seed=6, api_keys=list(KEYS.values()),
                            video_dir=str(tmp_path_factory.mktemp("record-server"))) as live:
        yield live


def _record(pytester, provider, *args: str):
    return pytester.runpytest(
        "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", "--wanmock-target=record",
        *(f"--wanmock-upstream={family}={provider.url}"
          for family in ("dashscope", "jiekou", "newapi")), *args)


@pytest.fixture
def environment(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def test_wanmock_server_tests_record_with_real_clients_then_replay(pytester, provider,
                                                                   environment):
    provider.backend.reset()
    pytester.makepyfile(test_clients=CLIENT_TESTS)
    recorded = _record(pytester, provider, "--wanmock-budget=4")
    recorded.assert_outcomes(passed=3)
    submits = [e for e in provider.backend.journal.entries()
               if e.operation in ("createVideoSynthesis", "createWanT2vTask", "createVideo")]
    assert len(submits) == 4 and {e.status for e in submits} == {200}  # the real keys
    tapes = pytester.path / "tests/cassettes/test_clients"
    assert sorted(p.name for p in tapes.iterdir()) == [
        "test_dashscope_sdk_sync_and_aio.jsonl", "test_novita_client.jsonl",
        "test_openai_sdk.jsonl"]
    text = "".join(p.read_text() for p in tapes.iterdir())
    assert "a recorded boat" in text and "/tasks/" in text
    assert not any(key in text for key in KEYS.values())
    provider.backend.reset()
    replayed = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
                                  "--wanmock-target=replay")
    replayed.assert_outcomes(passed=3)
    assert provider.backend.journal.entries() == []  # offline: the provider saw nothing
    (tapes / "test_novita_client.jsonl").unlink()  # never recorded: advice that works
    missing = pytester.runpytest("-p", "no:cacheprovider", "--wanmock-target=replay",
                                 "-k", "novita")
    missing.assert_outcomes(errors=1)
    missing.stdout.fnmatch_lines([
        "*no cassette for this test at *test_novita_client.jsonl; record it with `pytest "
        "'test_clients.py::test_novita_client' --wanmock-target=record --wanmock-budget N`*"])


def test_a_wanmock_server_test_beyond_the_budget_is_skipped(pytester, provider, environment):
    provider.backend.reset()
    pytester.makepyfile(test_clients=CLIENT_TESTS)
    result = _record(pytester, provider, "--wanmock-budget=1", "-rs",
                     "-k", "dashscope_sdk_sync_and_aio")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*beyond the budget (1)*--wanmock-budget*"])
    assert len(provider.backend.journal.entries(operation="createVideoSynthesis")) == 1
