"""new-api as one coherent release per `newapi_version`: the round-3 audit rows N07-N15 and what
else differs between v1.0.0-rc.25 (`latest`) and v0.10.0 (`legacy`). Sources: the Go files at
the tag commits cited in contracts/newapi.yaml.

Every answer is checked against the contract and for the release's global headers
(`Fake.conforms`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mockserver.core.tasks import State
from mockserver.providers.newapi import conversion, releases
from tests.providers.test_newapi_http import KEY, VERSIONS, Fake, fake_with, serving

T2V = {"model": "wan2.6-t2v", "prompt": "a lighthouse at dusk"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=VERSIONS)
async def each(request: pytest.FixtureRequest) -> Any:
    async with serving(newapi_version=request.param) as served:
        yield served


def message(body: Any) -> str:
    """A middleware message without its " (request id: …)" suffix."""
    text, _, rest = body["error"]["message"].rpartition(" (request id: ")
    assert rest.endswith(")")
    return text


# -- N07: no channel for the model ------------------------------------------------------------
@pytest.mark.anyio
async def test_N07_no_channel_latest_english_with_distributor_suffix() -> None:
    fake, client = await fake_with(newapi_version="latest")
    async with client:
        err = await fake.submit({"model": "wan9", "prompt": "a"}, status=503)
        assert err["error"]["code"] == "model_not_found"
        assert err["error"]["type"] == "new_api_error"
        assert message(err) == "No available channel for model wan9 under group default " \
                               "(distributor)"
        err = await fake.submit({"model": "wan9", "prompt": "a"}, status=503,
                                headers={**KEY, "Accept-Language": "zh-CN"})
        assert message(err) == "分组 default 下模型 wan9 无可用渠道（distributor）"
        err = await fake.submit({"model": "   ", "prompt": "a"}, status=503,
                                headers={**KEY, "Accept-Language": "zh-TW"})
        assert message(err) == "分組 default 下模型     無可用管道（distributor）"
        # the suffix is the request id the header carries
        response = await fake.client.post("/v1/videos", headers=KEY,
                                          json={"model": "wan9", "prompt": "a"})
        assert response.json()["error"]["message"].endswith(
            f"(request id: {response.headers['x-oneapi-request-id']})")


@pytest.mark.anyio
async def test_N07_no_channel_legacy_hard_coded_chinese() -> None:
    fake, client = await fake_with(newapi_version="legacy")
    async with client:
        for lang in ("en", "zh-TW"):
            err = await fake.submit({"model": "wan9", "prompt": "a"}, status=503,
                                    headers={**KEY, "Accept-Language": lang})
            assert err["error"]["code"] == "model_not_found"
            assert message(err) == "分组 default 下模型 wan9 无可用渠道（distributor）"


@pytest.mark.anyio
async def test_N07_every_dashscope_model_has_a_channel(each: Fake) -> None:
    """The fake's gateway lists every model DashScope knows: wan2.6-r2v has a channel (no 503)
    and DashScope refuses it, since new-api cannot send reference_urls."""
    err = await each.submit({"model": "wan2.6-r2v", "prompt": "two cats",
                             "images": ["https://x.test/a.png"]}, status=400)
    assert err["code"] == "fail_to_fetch_task"
    assert "reference_urls" in json.loads(err["message"])["message"]


# -- N08: no list, delete or cancel; 404 Invalid URL, never 405 --------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/videos"), ("DELETE", "/v1/videos/task_x"), ("GET", "/v1/video/generations"),
    ("PUT", "/v1/videos/task_x/content"), ("POST", "/v1/videos/task_x/cancel"),
    ("GET", "/v1/nothing?x=1"), ("HEAD", "/v1/videos/task_x"),
])
async def test_N08_unknown_route_or_method_is_404_invalid_url(each: Fake, method: str,
                                                               path: str) -> None:
    response = await each.client.request(method, path, headers=KEY)
    assert response.status_code == 404
    each.stamped(response)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["cache-control"] == "max-age=604800"
    assert ("cache-version" in response.headers) is (each.version == "latest")
    if method == "HEAD":
        return
    body = response.json()
    assert body == {"error": {"message": f"Invalid URL ({method} {path.split('?')[0]})",
                              "type": "invalid_request_error", "param": "", "code": ""}}
    schema = each.contract.document["components"]["schemas"]["InvalidURLError"]
    Draft202012Validator(schema).validate(body)  # the contract's InvalidURL answer
    [entry] = each.backend.journal.entries()[-1:]
    assert entry.violations[0]["rule"] == "unknown_operation"


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
async def test_N08_openai_sdk_list_and_delete_raise_not_found(each: Fake) -> None:
    openai = pytest.importorskip("openai")
    import httpx2

    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=each.app))
    async with openai.AsyncOpenAI(base_url="https://gw.example.com/v1", api_key="sk-test",
                                  http_client=http, max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError):
            await sdk.videos.list()
        with pytest.raises(openai.NotFoundError):
            await sdk.videos.delete("task_x")


@pytest.mark.anyio
async def test_N08_trailing_slash_is_gins_redirect(each: Fake) -> None:
    post = await each.client.post("/v1/videos/?a=1", headers=KEY, json=T2V)
    assert (post.status_code, post.headers["location"]) == (307, "/v1/videos?a=1")
    assert "x-oneapi-request-id" not in post.headers  # before any middleware
    get = await each.client.get("/v1/videos/task_x/", headers=KEY)
    assert (get.status_code, get.headers["location"]) == (301, "/v1/videos/task_x")


# -- N09/N10: the TaskDto and where the video URL sits ------------------------------------------
RC25_FIELDS = ["id", "created_at", "updated_at", "task_id", "platform", "user_id", "group",
               "channel_id", "quota", "action", "status", "fail_reason", "result_url",
               "submit_time", "start_time", "finish_time", "progress", "properties", "data"]
V0100_FIELDS = ["task_id", "action", "status", "fail_reason", "submit_time", "start_time",
                "finish_time", "progress", "data"]


@pytest.mark.anyio
async def test_N09_N10_latest_taskdto_has_20_fields_and_result_url() -> None:
    fake, client = await fake_with(newapi_version="latest")
    async with client:
        sub = await fake.submit({**T2V, "model": "wan2.5-t2v-preview"})
        queued = (await fake.task(sub["id"]))["data"]
        assert list(queued) == [f for f in RC25_FIELDS if f != "result_url"]
        assert (queued["platform"], queued["group"], queued["channel_id"]) == ("17", "default", 1)
        # 0.1 x 500000 x seconds 5 x resolution-1080P 10/3 (the Other-Ratios header's)
        assert queued["quota"] == int(0.1 * 500000 * 5 * (1 / 0.3))
        assert queued["properties"] == {"input": "", "upstream_model_name": "wan2.5-t2v-preview",
                                        "origin_model_name": "wan2.5-t2v-preview"}
        fake.advance(60)
        done = (await fake.task(sub["id"]))["data"]
        assert list(done) == RC25_FIELDS
        assert done["fail_reason"] == ""
        assert done["result_url"] == done["data"]["output"]["video_url"]
        assert done["updated_at"] == done["finish_time"]


@pytest.mark.anyio
async def test_N09_N10_legacy_taskdto_has_9_fields_and_url_in_fail_reason() -> None:
    fake, client = await fake_with(newapi_version="legacy")
    async with client:
        sub = await fake.submit(T2V)
        assert list((await fake.task(sub["id"]))["data"]) == V0100_FIELDS
        fake.advance(60)
        done = (await fake.task(sub["id"]))["data"]
        assert list(done) == V0100_FIELDS
        assert done["fail_reason"] == done["data"]["output"]["video_url"]  # seed 002


# -- N11: falsy metadata values never reach DashScope ------------------------------------------
@pytest.mark.anyio
async def test_N11_false_prompt_extend_zero_seed_false_watermark_are_omitted(each: Fake) -> None:
    sub = await each.submit({"model": "wan2.5-t2v-preview", "prompt": "a cat", "metadata": {
        "parameters": {"prompt_extend": False, "seed": 0, "watermark": False, "audio": False}}})
    params = each.upstream(sub["id"])["parameters"]
    assert params == {"size": "1920*1080", "duration": 5, "audio": False}  # a *bool is sent
    each.advance(60)
    output = (await each.task(sub["id"]))["data"]["data"]["output"]
    assert output["actual_prompt"]  # DashScope's default applies: the prompt is rewritten
    kept = await each.submit({"model": "wan2.5-t2v-preview", "prompt": "a cat", "metadata": {
        "parameters": {"seed": 42, "watermark": True}}})
    assert each.upstream(kept["id"])["parameters"] == {
        "size": "1920*1080", "duration": 5, "prompt_extend": True, "watermark": True,
        "seed": 42}


# -- N12: ratio, shot_type, audio_setting are dropped (and never judged) -------------------------
@pytest.mark.anyio
async def test_N12_ratio_shot_type_and_unknown_keys_are_dropped(each: Fake) -> None:
    sub = await each.submit({"model": "wan2.7-t2v", "prompt": "a cat", "metadata": {
        "input": {"reference_urls": ["https://x.test/a.png"]},
        "parameters": {"ratio": "9:16", "resolution": "720P", "shot_type": "many",
                       "audio_setting": {"nested": True}},
        "negative_prompt": "flat keys are ignored", "seed": 7}})
    upstream = each.upstream(sub["id"])
    # (the t2v default size stays beside metadata's resolution: both are sent)
    assert upstream == {"model": "wan2.7-t2v", "input": {"prompt": "a cat"},
                        "parameters": {"resolution": "720P", "size": "1280*720", "duration": 5,
                                       "prompt_extend": True}}
    each.advance(60)
    done = (await each.task(sub["id"]))["data"]
    assert done["status"] == "SUCCESS"
    assert done["data"]["usage"].get("ratio", "16:9") == "16:9"  # portrait was lost
    task = each.backend.store.get(sub["id"])
    assert (task.spec.width, task.spec.height) == (1280, 720)


# -- N13: headers, request ids, Content-Type ---------------------------------------------------
@pytest.mark.anyio
async def test_N13_latest_headers() -> None:
    fake, client = await fake_with(newapi_version="latest")
    async with client:
        response = await fake.client.post("/v1/video/generations", headers=KEY,
                                          json={**T2V, "model": "wan2.5-t2v-preview"})
        fake.conforms("createVideoGeneration", response)
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.headers["x-new-api-other-ratios"] == (
            '{"resolution-1080P":3.3333333333333335,"seconds":5}')
        request_id = response.headers["x-oneapi-request-id"]
        assert len(request_id) == 39 and request_id[23:31] == "8268d9d6"
        other = await fake.client.post("/v1/videos", headers=KEY, json={
            "model": "wan2.2-i2v-plus", "prompt": "a", "input_reference": "https://x.test/a.png"})
        # Go folds 0.7/0.14 exactly: 5, not 4.999999999999999
        assert other.headers["x-new-api-other-ratios"] == '{"resolution-1080P":5,"seconds":5}'
        plain = await fake.client.post("/v1/videos", headers=KEY, json=T2V)
        assert plain.headers["x-new-api-other-ratios"] == '{"seconds":5}'
        fetched = await fake.client.get(f"/v1/videos/{plain.json()['id']}", headers=KEY)
        assert fetched.headers["content-type"] == "application/json"  # the fetch routes' own
        error = await fake.client.get("/v1/videos/task_nope", headers=KEY)
        assert error.headers["content-type"] == "application/json; charset=utf-8"
        refused = await fake.client.post("/v1/videos", headers=KEY, json={**T2V, "duration": 99})
        assert refused.status_code == 400 and "x-new-api-other-ratios" not in refused.headers


@pytest.mark.anyio
async def test_N13_legacy_headers() -> None:
    fake, client = await fake_with(newapi_version="legacy")
    async with client:
        response = await fake.client.post("/v1/videos", headers=KEY, json=T2V)
        fake.conforms("createVideo", response)
        assert "x-new-api-other-ratios" not in response.headers
        assert "x-new-api-version" not in response.headers
        request_id = response.headers["x-oneapi-request-id"]
        # local time (Asia/Shanghai in the official compose file): 8 hours ahead of UTC
        assert request_id[:10] == "2026010108"
        err = await fake.client.post("/v1/videos", headers={}, json=T2V)
        assert err.json()["error"]["message"] == (
            f"未提供令牌 (request id: {err.headers['x-oneapi-request-id']})")


def test_N13_request_id_formats() -> None:
    """UTC + 9-digit nanoseconds + tag (R); local time + unpadded nanoseconds (L)."""
    from mockserver.app import create_app
    from mockserver.core.clock import ManualClock
    from mockserver.providers.policy import policy_class

    start = 1767225600 + 2**-10  # 976562.5 ns, exact in a float
    for version, expected in (("latest", "20260101000000" + "000976562" + "8268d9d6"),
                              ("legacy", "20260101080000" + "976562")):
        app = create_app(families=["newapi"], clock=ManualClock(start=start), seed=1,
                         newapi_version=version)
        rid = policy_class("newapi")(app.state.backend).request_id()
        assert rid.startswith(expected) and len(rid) == len(expected) + 8, rid


# -- N14: image sources and wan2.7 media per release -----------------------------------------
@pytest.mark.anyio
async def test_N14_latest_reads_image_images_and_input_reference() -> None:
    fake, client = await fake_with(newapi_version="latest")
    async with client:
        for source in ({"image": " https://x.test/a.png "}, {"images": ["", "https://x.test/a.png"]},
                       {"input_reference": "https://x.test/a.png"}):
            sub = await fake.submit({"model": "wan2.6-i2v", "prompt": "a cat", **source})
            assert fake.upstream(sub["id"])["input"]["img_url"] == "https://x.test/a.png"
            assert fake.upstream(sub["id"])["parameters"]["resolution"] == "1080P"
            assert (await fake.task(sub["id"]))["data"]["action"] == "generate"
        # wan2.7-i2v: media built from images (first, last frame) and the legacy fields cleared
        sub = await fake.submit({"model": "wan2.7-i2v", "prompt": "a", "images": [
            "https://x.test/first.png", "https://x.test/last.png"]})
        assert fake.upstream(sub["id"])["input"] == {"prompt": "a", "media": [
            {"type": "first_frame", "url": "https://x.test/first.png"},
            {"type": "last_frame", "url": "https://x.test/last.png"}]}
        err = await fake.submit({"model": "wan2.7-i2v", "prompt": "a"}, status=500)
        assert err == {"code": "build_request_failed", "data": None, "message":
                       "convert_to_ali_request_failed: wan2.7-i2v requires image, images, "
                       "input_reference, or input.media"}


@pytest.mark.anyio
async def test_N14_legacy_reads_input_reference_only_and_no_media() -> None:
    fake, client = await fake_with(newapi_version="legacy")
    async with client:
        sub = await fake.submit({"model": "wan2.6-i2v", "prompt": "a cat",
                                 "image": "https://x.test/a.png"})
        assert "img_url" not in fake.upstream(sub["id"])["input"]
        assert fake.upstream(sub["id"])["parameters"]["resolution"] == "720P"  # no wan2.6 branch
        fake.advance(60)
        dto = (await fake.task(sub["id"]))["data"]
        # seed 002's failure: an image the gateway ignored, action textGenerate
        assert (dto["action"], dto["status"]) == ("textGenerate", "FAILURE")
        assert dto["fail_reason"] == (
            "task failed, code: InvalidParameter , message: image_url must provided")
        sub = await fake.submit({"model": "wan2.6-i2v", "prompt": "a cat",
                                 "images": ["https://x.test/a.png"]})
        assert (await fake.task(sub["id"]))["data"]["action"] == "generate"
        assert "img_url" not in fake.upstream(sub["id"])["input"]
        ok = await fake.submit({"model": "wan2.6-i2v", "prompt": "a cat",
                                "input_reference": "https://x.test/a.png"})
        assert fake.upstream(ok["id"])["input"]["img_url"] == "https://x.test/a.png"
        # no media field: wan2.7-i2v gets the generic body, without the frame it needs
        media = {"input": {"media": [{"type": "first_frame", "url": "https://x.test/a.png"}]}}
        sub = await fake.submit({"model": "wan2.7-i2v", "prompt": "a", "metadata": media})
        assert fake.upstream(sub["id"])["input"] == {"prompt": "a"}
        fake.advance(60)
        assert (await fake.task(sub["id"]))["data"]["status"] == "FAILURE"


# -- N15: the language of middleware messages -------------------------------------------------
@pytest.mark.anyio
async def test_N15_latest_is_english_by_default_and_follows_accept_language() -> None:
    fake, client = await fake_with(newapi_version="latest")
    async with client:
        err = await fake.submit(T2V, status=401, headers={})
        assert message(err) == "Invalid token"  # missing key: token.invalid too
        for lang, text in (("zh-CN,zh;q=0.9", "无效的令牌"), ("zh-TW", "無效的令牌"),
                           ("de-DE", "Invalid token")):
            err = await fake.submit(T2V, status=401, headers={"Accept-Language": lang})
            assert message(err) == text
    saved, client = await fake_with(newapi_version="latest", newapi_user_language="zh-TW")
    async with client:
        # the user's saved language wins for the distributor; the token check knows no user
        err = await saved.submit({"prompt": "a"}, status=400,
                                 headers={**KEY, "Accept-Language": "en"})
        assert message(err) == "未指定模型名稱，模型名稱不能為空"
        err = await saved.submit(T2V, status=401, headers={"Accept-Language": "en"})
        assert message(err) == "Invalid token"


@pytest.mark.anyio
async def test_N15_legacy_is_chinese_whatever_is_asked() -> None:
    fake, client = await fake_with(newapi_version="legacy", newapi_user_language="en",
                                   api_keys=["sk-good"])
    async with client:
        english = {"Accept-Language": "en"}
        assert message(await fake.submit(T2V, status=401, headers=english)) == "未提供令牌"
        assert message(await fake.submit(T2V, status=401, headers={
            **english, "Authorization": "Bearer sk-bad"})) == "无效的令牌"
        assert message(await fake.submit({"prompt": "a"}, status=400, headers={
            **english, "Authorization": "Bearer sk-good"})) == "未指定模型名称，模型名称不能为空"


# -- TokenAuth -----------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_token_spellings_per_release(each: Fake) -> None:
    lower = await each.client.post("/v1/videos", json=T2V,
                                   headers={"Authorization": "bearer sk-test"})
    # R strips `bearer ` too; L looks up "bearer sk-test", which is no token
    assert lower.status_code == (200 if each.version == "latest" else 401)
    keyed, client = await fake_with(newapi_version=each.version, api_keys=["sk-good"])
    async with client:
        await keyed.submit(T2V, headers={"Authorization": "Bearer good"})
        err = await keyed.submit(T2V, status=403, headers={"Authorization": "Bearer sk-good-3"})
        assert message(err) == "普通用户不支持指定渠道"


# -- the relay's checks and their order ------------------------------------------------------
@pytest.mark.anyio
async def test_conversion_error_before_the_prompt_only_in_legacy(each: Fake) -> None:
    bad = {"model": "wan2.6-t2v", "size": "720P"}  # no prompt and a t2v size without "*"
    err = await each.submit(bad, status=500 if each.version == "legacy" else 400)
    if each.version == "legacy":
        assert err == {"code": "convert_to_ali_request_failed", "data": None,
                       "message": "invalid size: 720P, example: 1920*1080"}
    else:
        assert err == {"code": "invalid_request", "data": None, "message": "prompt is required"}


@pytest.mark.anyio
async def test_invalid_seconds_only_in_latest(each: Fake) -> None:
    for body in ({**T2V, "duration": -1}, {**T2V, "seconds": "3601"}):
        if each.version == "latest":
            err = await each.submit(body, status=400)
            assert err == {"code": "invalid_seconds", "data": None,
                           "message": "seconds must be between 1 and 3600"}
        else:  # L: a negative duration is the default 5 s; 3601 s goes to DashScope
            answer = await each.client.post("/v1/videos", headers=KEY, json=body)
            assert answer.status_code in (200, 400)
            if answer.status_code == 400:
                assert answer.json()["code"] == "fail_to_fetch_task"


@pytest.mark.anyio
async def test_seconds_that_atoi_refuses(each: Fake) -> None:
    err = await each.submit({**T2V, "seconds": "ten"}, status=500)
    reason = 'convert seconds to int failed: strconv.Atoi: parsing "ten": invalid syntax'
    assert err["message"] == releases.RELEASES[each.version].build_prefix + reason


@pytest.mark.anyio
async def test_duration_types_per_release(each: Fake) -> None:
    if each.version == "latest":
        sub = await each.submit({**T2V, "duration": "8"})
        assert each.upstream(sub["id"])["parameters"]["duration"] == 8
        sub = await each.submit({**T2V, "duration": 5.5})  # ignored: the default 5 s
        assert each.upstream(sub["id"])["parameters"]["duration"] == 5
    else:
        for value, what in (("8", "string"), (5.5, "number 5.5")):
            err = await each.submit({**T2V, "duration": value}, status=400)
            assert err == {"code": "unmarshal_task_request_failed", "data": None, "message":
                           f"json: cannot unmarshal {what} into Go struct field .Alias.duration "
                           "of type int"}


@pytest.mark.anyio
async def test_legacy_refuses_a_size_outside_its_table(each: Fake) -> None:
    body = {**T2V, "metadata": {"parameters": {"size": "1000*1000"}}}
    if each.version == "legacy":
        err = await each.submit(body, status=500)
        assert err == {"code": "convert_to_ali_request_failed", "data": None,
                       "message": "invalid size: 1000*1000"}
    else:  # forwarded; DashScope's refusal is relayed
        err = await each.submit(body, status=400)
        assert err["code"] == "fail_to_fetch_task"
        assert "The size is not match" in json.loads(err["message"])["message"]


@pytest.mark.anyio
async def test_metadata_of_the_wrong_go_type(each: Fake) -> None:
    err = await each.submit({**T2V, "metadata": {"parameters": {"duration": "5", "seed": "x"}}},
                            status=500)
    reason = ("unmarshal metadata failed: json: cannot unmarshal string into Go struct field "
              "AliVideoParameters.parameters.duration of type int")
    assert err["message"] == releases.RELEASES[each.version].build_prefix + reason
    # metadata that is no object (nor a string holding one) is dropped without a word
    sub = await each.submit({**T2V, "metadata": [1, 2]})
    assert each.upstream(sub["id"])["parameters"]["duration"] == 5
    sub = await each.submit({**T2V, "metadata": json.dumps({"parameters": {"duration": 8}})})
    assert each.upstream(sub["id"])["parameters"]["duration"] == 8


@pytest.mark.anyio
async def test_null_parameters_panic_the_adaptor(each: Fake) -> None:
    response = await each.client.post("/v1/videos", headers=KEY,
                                      json={**T2V, "metadata": {"parameters": None}})
    assert response.status_code == 500
    each.conforms("createVideo", response)
    assert response.json() == {"error": {
        "message": "Panic detected, error: runtime error: invalid memory address or nil pointer "
                   "dereference. Please submit a issue here: https://github.com/Calcium-Ion/new-api",
        "type": "new_api_panic"}}


# -- task ids, the OpenAI video object, SUSPENDED ------------------------------------------------
@pytest.mark.anyio
async def test_suspended_upstream_reads_queued_20_and_unknown(each: Fake) -> None:
    sub = await each.submit(T2V, path="/v1/videos")
    each.advance(1.5)
    each.backend.force(each.backend.store.get(sub["id"]), State.SUSPENDED)
    dto = (await each.task(sub["id"]))["data"]
    assert (dto["status"], dto["progress"]) == ("QUEUED", "20%")
    assert dto["data"]["output"]["task_status"] == "SUSPENDED"
    video = await each.video(sub["id"])
    assert (video["status"], video["progress"]) == ("unknown", 20)


@pytest.mark.anyio
async def test_the_video_object_never_has_task_id(each: Fake) -> None:
    sub = await each.submit(T2V, path="/v1/videos")
    assert ("task_id" in sub) is (each.version == "latest")
    for seconds in (0, 1.5, 60):
        each.advance(seconds)
        video = await each.video(sub["id"])
        assert "task_id" not in video and video["completed_at"] > 0


# -- remix ---------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_remix_resolves_the_origin_then_submits(each: Fake) -> None:
    origin = await each.submit({**T2V, "model": "wan2.5-t2v-preview"}, path="/v1/videos")
    remix = await each.call("remixVideo", "POST", f"/v1/videos/{origin['id']}/remix",
                            json={"model": "wan2.6-t2v", "prompt": "faster"}, status=200)
    assert remix["id"] != origin["id"] and remix["model"] == "wan2.5-t2v-preview"
    assert each.upstream(remix["id"])["model"] == "wan2.6-t2v"  # DashScope gets the body's
    each.advance(60)
    assert (await each.task(remix["id"]))["data"]["status"] == "SUCCESS"
    missing = await each.call("remixVideo", "POST", "/v1/videos/task_nope/remix",
                              json={"model": "wan2.6-t2v", "prompt": "a"}, status=400)
    assert missing == {"code": "task_not_exist", "message": "task_origin_not_exist",
                       "data": None}
    other = {"Authorization": "Bearer sk-other"}
    await each.call("remixVideo", "POST", f"/v1/videos/{origin['id']}/remix", headers=other,
                    json={"model": "wan2.6-t2v", "prompt": "a"}, status=400)
    # no distributor here: the relay asks for the model itself
    no_model = await each.call("remixVideo", "POST", f"/v1/videos/{origin['id']}/remix",
                               json={"prompt": "a"}, status=400)
    assert no_model == {"code": "missing_model", "message": "model field is required",
                        "data": None}


# -- the content proxy ---------------------------------------------------------------------------
@pytest.mark.anyio
async def test_content_after_the_upstream_url_expired_is_502(each: Fake) -> None:
    sub = await each.submit(T2V)
    each.advance(60)
    await each.content(sub["id"])
    each.advance(86400)
    expired = await each.content(sub["id"], status=502)
    assert expired.json() == {"error": {"message": "Upstream service returned status 403",
                                        "type": "server_error"}}


def test_other_ratios_follow_the_adaptors_table() -> None:
    latest, legacy = releases.LATEST, releases.LEGACY
    body = {"model": "wan2.6-i2v", "parameters": {"resolution": "1080P", "duration": 5000}}
    assert conversion.other_ratios(body, latest) == {"resolution-1080P": 1 / 0.6,
                                                     "seconds": 3600.0}
    assert conversion.other_ratios(body, legacy) == {"seconds": 3600.0}  # no wan2.6 row in L
    assert conversion.ratios_header({"seconds": 5.0, "resolution-720P": 1.8}) == (
        '{"resolution-720P":1.8,"seconds":5}')


# -- the contract describes both releases -------------------------------------------------------
@pytest.mark.anyio
async def test_the_contracts_version_marks_describe_the_fake(each: Fake) -> None:
    from mockserver.contracts.extensions import versions_of

    ext = each.contract.extensions
    assert ext.versions is not None and set(ext.versions.releases) == set(VERSIONS)
    release = ext.versions.releases[each.version]
    assert release.commit.startswith(releases.RELEASES[each.version].commit[:8])
    assert release.source_url.endswith(f"/blob/{release.commit}/")
    components = each.contract.document["components"]
    dto_schema = [s for s in components["schemas"].values()
                  if s.get("required") and "task_id" in s["required"]
                  and each.version in (versions_of(s) or set())]
    [schema] = dto_schema
    sub = await each.submit({**T2V, "model": "wan2.5-t2v-preview"})
    for _ in range(2):
        dto = (await each.task(sub["id"]))["data"]
        assert set(schema["required"]) <= set(dto) <= set(schema["properties"])
        each.advance(60)
    # fields, headers and examples marked for the other release are absent from this one
    task_id_marks = versions_of(components["schemas"]["OpenAIVideo"]["properties"]["task_id"])
    assert ("task_id" in sub) is (each.version in task_id_marks)
    response = await each.client.get(f"/v1/videos/{sub['id']}", headers=KEY)
    version_marks = versions_of(components["headers"]["Version"])
    assert ("x-new-api-version" in response.headers) is (each.version in version_marks)
    marked = [e for e in components["examples"].values() if versions_of(e)]
    assert {v for e in marked for v in versions_of(e) or ()} == set(VERSIONS)
    decisions = [d for d in each.contract.decisions if d.topic.startswith("Which new-api")]
    assert decisions and decisions[0].switch == "newapi_version"


def test_the_submits_relay_dashscopes_judgement() -> None:
    from mockserver.contracts import load

    contract = load()["newapi"]
    for op in contract.by_role("submit"):
        assert op.relay == ("dashscope", "createVideoSynthesis")
        assert set(op.rules) <= {"model_known", "prompt_required"}  # new-api's own refusals
    assert contract.extensions.wrong_method_status == 404
    assert load()["dashscope"].extensions.wrong_method_status == 405


# -- Wan 3.0 as far as each release's Ali adaptor relays it ------------------------------------
@pytest.mark.anyio
async def test_wan3_is_relayed_by_the_generic_conversion(each: Fake) -> None:
    """Neither release knows wan3.0-video (support came with the rc.35 task plugins): a
    channel that lists it gets the generic body, resolution 720P (no `t2v` in the name) and
    prompt_extend true, and DashScope's Wan 3.0 rules judge it."""
    frame = {"input": {"media": [{"type": "first_frame", "url": "https://x.test/a.png"}]},
             "parameters": {"duration": -1}}  # smart duration: through metadata only
    sub = await each.submit({"model": "wan3.0-video", "prompt": "a cat", "metadata": frame})
    upstream = each.upstream(sub["id"])
    assert upstream["parameters"] == {"resolution": "720P", "duration": -1, "prompt_extend": True}
    # R forwards the media; L has no media field: the first frame never reaches DashScope
    assert ("media" in upstream["input"]) is (each.version == "latest")
    each.advance(3600)
    assert (await each.task(sub["id"]))["data"]["status"] == "SUCCESS"
    top = await each.client.post("/v1/videos", headers=KEY,
                                 json={"model": "wan3.0-video", "prompt": "a", "duration": -1})
    if each.version == "latest":  # the relay's own bound, before DashScope
        assert (top.status_code, top.json()["code"]) == (400, "invalid_seconds")
    else:  # L reads a negative duration as none: 5 s
        assert top.status_code == 200
        assert each.upstream(top.json()["id"])["parameters"]["duration"] == 5


@pytest.mark.anyio
async def test_an_inputs_scenario_reaches_the_relayed_judgement(each: Fake) -> None:
    """The job scenario's assumed facts (here the smart duration's pick) apply to the request
    new-api sends, as DashScope would judge it with those inputs."""
    frame = {"parameters": {"duration": -1}}  # smart duration, through metadata
    picked = await each.submit({"model": "wan3.0-video", "prompt": "a cat", "metadata": frame},
                               headers={**KEY, "X-Wanmock-Scenario": "inputs; smart_s=12"})
    plain = await each.submit({"model": "wan3.0-video", "prompt": "a cat", "metadata": frame})
    durations = [each.backend.store.get(s["id"]).spec.duration for s in (picked, plain)]
    assert durations == [12, 5]


@pytest.mark.anyio
async def test_wan3_duration_31_is_dashscopes_400_relayed(each: Fake) -> None:
    """Over Wan 3.0's 30 s, DashScope refuses the body the release builds, and the release
    relays it as its task error: DashScope's status, code fail_to_fetch_task, DashScope's body
    as the message; no task is made."""
    err = await each.submit({"model": "wan3.0-video", "prompt": "a", "duration": 31}, status=400)
    assert (err["code"], err["data"]) == ("fail_to_fetch_task", None)
    upstream = json.loads(err["message"])
    assert (upstream["code"], upstream["message"]) == (
        "InvalidParameter",
        "Required parameter(parameters.duration) missing or invalid, please check the request "
        "parameters.")
    assert list(each.backend.tasks()) == []
