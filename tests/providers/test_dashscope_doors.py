"""Every door to DashScope: the regional hosts and the per-workspace hosts reach the fake through
the pytest plugin (respx) and are recognised by the live target; resellers' prefixes through
`mounts` (the subprocess `wanmock serve --mount` run is in tests/test_cli.py).

Hosts: contracts/dashscope.yaml `servers:` (Beijing dashscope.aliyuncs.com, Singapore
dashscope-intl, Virginia dashscope-us, and `https://{WorkspaceId}.{region}.maas.aliyuncs.com`
for the six regions of the Wan 3.0 API reference).
"""

from __future__ import annotations

import httpx
import pytest

from mockserver.contracts import load
from mockserver.live import Budget, LiveRoutes

REGIONS = ("cn-beijing", "ap-southeast-1", "ap-northeast-1", "eu-central-1", "us-east-1",
           "cn-hongkong")
HOSTS = ("dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com", "dashscope-us.aliyuncs.com",
         *(f"ws-7f3a9c.{region}.maas.aliyuncs.com" for region in REGIONS),
         "llm_abc123.cn-beijing.maas.aliyuncs.com")  # ids may hold "_" (SDK env.py)
HEADERS = {"Authorization": "Bearer sk-doors-0123456789", "X-DashScope-Async": "enable"}
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"


@pytest.mark.wanmock(timing="instant")
def test_every_regional_and_workspace_host_reaches_the_fake(wanmock) -> None:
    done = {}
    with httpx.Client(headers={"X-DashScope-Async": "enable"}) as client:
        for n, host in enumerate(HOSTS):
            # one account per host: a key's wan3.0 submits are limited per second (N01)
            client.headers["Authorization"] = f"Bearer sk-doors-{n:02d}-0123456789"
            created = client.post(f"https://{host}{CREATE}", json={
                "model": "wan3.0-video", "input": {"prompt": f"a cat at {host}"}})
            assert created.status_code == 200, (host, created.text)
            task_id = created.json()["output"]["task_id"]
            polled = client.get(f"https://{host}/api/v1/tasks/{task_id}").json()
            done[host] = polled["output"]["task_status"]
    assert done == dict.fromkeys(HOSTS, "SUCCEEDED")
    assert {e.operation for e in wanmock.requests(family="dashscope")} == {
        "createVideoSynthesis", "getTask"}


def test_hosts_that_are_not_dashscopes_are_not_routed(wanmock) -> None:
    # A workspace id is one DNS label, and only the documented regions are routed.
    for url in ("https://a.b.cn-beijing.maas.aliyuncs.com/api/v1/tasks/x",
                "https://ws-1.eu-west-9.maas.aliyuncs.com/api/v1/tasks/x",
                "https://maas.aliyuncs.com/api/v1/tasks/x"):
        with pytest.raises(Exception, match="not mocked|RESPX"):
            httpx.get(url, headers=HEADERS)
    assert wanmock.requests() == []


def test_the_live_target_knows_the_workspace_hosts() -> None:
    routes = LiveRoutes(load(), Budget())
    for host in ("ws-1.us-east-1.maas.aliyuncs.com", "dashscope-us.aliyuncs.com"):
        op = routes.operation(httpx.Request("GET", f"https://{host}/api/v1/tasks/abc"))
        assert op is not None and (op.family, op.operation_id) == ("dashscope", "getTask")
    op = routes.operation(httpx.Request("POST", f"https://ws-2.cn-hongkong.maas.aliyuncs.com"
                                                f"{CREATE}"))
    assert op is not None and op.role == "submit"  # counted against the spend budget
    assert routes.operation(httpx.Request("GET", "https://a.b.us-east-1.maas.aliyuncs.com"
                                                 "/api/v1/tasks/abc")) is None


# (the refusals below are on purpose: the plugin would report them at teardown)
@pytest.mark.wanmock(timing="instant", mounts=["dashscope=/apis-prefix", "comfyui"],
                     assert_conformance=False)
def test_mounted_prefixes_in_process(wanmock) -> None:
    with httpx.Client(base_url="https://dashscope.aliyuncs.com") as client:
        created = client.post("/apis-prefix" + CREATE, headers=HEADERS,
                              json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"}})
        assert created.status_code == 200, created.text
        # comfy.org's proxy: no async header from the client, its key in X-API-KEY
        comfy = client.post("/proxy/wan" + CREATE, headers={"X-API-KEY": "comfy-0123"},
                            json={"model": "wan2.6-t2v", "input": {"prompt": "a dog"}})
        assert comfy.status_code == 200, comfy.text
        # a plain mount keeps DashScope's own rules: no async header, DashScope's 403
        refused = client.post("/apis-prefix" + CREATE, headers={"Authorization": "Bearer sk-x"},
                              json={"model": "wan2.6-t2v", "input": {"prompt": "a cat"}})
        assert refused.status_code == 403 and refused.json()["code"] == "AccessDenied"
        # without any credential the mount answers DashScope's 401
        anonymous = client.post("/proxy/wan" + CREATE, json={"model": "wan2.6-t2v",
                                                             "input": {"prompt": "a dog"}})
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "InvalidApiKey"
        task_id = comfy.json()["output"]["task_id"]
        polled = client.get(f"/proxy/wan/api/v1/tasks/{task_id}",
                            headers={"X-API-KEY": "comfy-0123"}).json()
        assert polled["output"]["task_status"] == "SUCCEEDED"


@pytest.mark.parametrize("bad", ["dashscope", "dashscope=proxy", "dashscope=/_wanmock/x",
                                 "nosuch=/x", "dashscope=/a b"])
def test_a_bad_mount_is_a_toolkit_error(bad: str) -> None:
    from mockserver.errors import MockServerError
    from mockserver.server import create_app

    with pytest.raises(MockServerError, match="mount"):
        create_app(mounts=[bad]).state.backend.options.check()


def _create(client: httpx.Client, url: str, body: dict, key: str) -> httpx.Response:
    return client.post(url, json=body, headers={**HEADERS, "Authorization": f"Bearer {key}"})


@pytest.mark.wanmock(timing="instant", assert_conformance=False)
def test_each_region_sells_its_own_models(wanmock) -> None:
    us_model = {"model": "wan2.6-t2v-us", "input": {"prompt": "a cat"}}
    s2v = {"model": "wan2.2-s2v", "input": {"image_url": "https://example.com/face.png",
                                            "audio_url": "https://example.com/speech.mp3"}}
    s2v_path = "/api/v1/services/aigc/image2video/video-synthesis"
    cases = [  # (host, path, body, sold there)
        ("dashscope-us.aliyuncs.com", CREATE, us_model, True),
        ("llm-9.cn-beijing.maas.aliyuncs.com", CREATE, us_model, False),  # the US deployment's
        ("dashscope.aliyuncs.com", CREATE, us_model, True),  # the SDKs' default: lenient
        ("ws-1.us-east-1.maas.aliyuncs.com", CREATE, us_model, True),
        ("dashscope.aliyuncs.com", s2v_path, s2v, True),
        ("dashscope-intl.aliyuncs.com", s2v_path, s2v, False),  # s2v is Beijing's only
        ("ws-1.ap-northeast-1.maas.aliyuncs.com", CREATE,
         {"model": "wan2.6-t2v", "input": {"prompt": "a cat"}}, False),  # Tokyo: Wan 3.0 only
        ("ws-1.eu-central-1.maas.aliyuncs.com", CREATE,
         {"model": "wan2.6-t2v", "input": {"prompt": "a cat"}}, True),
    ]
    with httpx.Client() as client:
        for n, (host, path, body, sold) in enumerate(cases):
            answer = _create(client, f"https://{host}{path}", body, f"sk-region-{n:02d}-0123456")
            if sold:
                assert answer.status_code == 200, (host, body["model"], answer.text)
            else:
                assert answer.status_code == 400, (host, body["model"], answer.text)
                assert answer.json()["code"] == "InvalidParameter"
                assert answer.json()["message"] == "Model not exist."


@pytest.mark.wanmock(timing="instant", dashscope_regions="strict", assert_conformance=False)
def test_regions_strict_holds_the_default_host_to_beijings_list(wanmock) -> None:
    with httpx.Client() as client:
        answer = _create(client, f"https://dashscope.aliyuncs.com{CREATE}",
                         {"model": "wan2.6-t2v-us", "input": {"prompt": "a cat"}}, "sk-st-01234")
    assert (answer.status_code, answer.json()["message"]) == (400, "Model not exist.")


@pytest.mark.wanmock(timing="instant", dashscope_regions="off")
def test_regions_off_every_host_sells_every_model(wanmock) -> None:
    with httpx.Client() as client:
        answer = _create(client, f"https://ws-3.cn-hongkong.maas.aliyuncs.com{CREATE}",
                         {"model": "wan2.6-t2v-us", "input": {"prompt": "a cat"}}, "sk-off-01234")
    assert answer.status_code == 200, answer.text


def test_loopback_sells_every_model() -> None:
    from mockserver.server import create_app
    from tests.helpers import SyncASGITransport

    app = create_app(timing="instant")
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://127.0.0.1:8000") as c:
        answer = _create(c, CREATE, {"model": "wan2.6-t2v-us", "input": {"prompt": "a cat"}},
                         "sk-loopback-0123")
    assert answer.status_code == 200, answer.text


@pytest.mark.wanmock(timing="instant", assert_conformance=False)
def test_virginia_and_frankfurt_sell_the_global_wan26_r2v(wanmock) -> None:
    def r2v(refs: list[str], duration: int) -> dict:
        return {"model": "wan2.6-r2v", "input": {"prompt": "character1 waves",
                                                 "reference_urls": refs},
                "parameters": {"duration": duration}}

    video, image = "https://example.com/dancer.mp4", "https://example.com/face.png"
    with httpx.Client() as client:
        def create(host: str, body: dict, n: int) -> httpx.Response:
            return _create(client, f"https://{host}{CREATE}", body, f"sk-global-{n:02d}-012345")

        for n, host in enumerate(("dashscope-us.aliyuncs.com",
                                  "ws-5.eu-central-1.maas.aliyuncs.com")):
            assert create(host, r2v([video], 10), n).status_code == 200
            odd = create(host, r2v([video], 7), n).json()  # only 5 or 10 s there
            assert odd["message"] == ("The duration 7 is not supported by model wan2.6-r2v, "
                                      "allowed: 5, 10")
            images = create(host, r2v([image], 5), n).json()  # text and videos only
            assert images["message"].startswith("Too many references for model wan2.6-r2v")
        # Beijing's wan2.6-r2v takes images and any duration in 2-10
        assert create("ws-5.cn-beijing.maas.aliyuncs.com", r2v([image], 7), 9).status_code == 200
