"""Replicate over HTTP, in process (contracts/replicate.yaml): predictions through their
lifecycle, Prefer: wait, cancel and Cancel-After, lists, validation in Replicate's words,
files, models, the documented rate limits, webhooks events, and data removal. The real
`replicate` client is tests/clients/test_replicate_client.py's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.handle import InProcessRoutes, WanMock
from mockserver.providers.policy import Judging, policy_class
from tests.helpers import conforms

BASE = "https://api.replicate.com"
KEY = {"Authorization": "Bearer r8_wanmock_test_0001"}
OTHER = {"Authorization": "Bearer r8_wanmock_test_0002"}
T2V = "/v1/models/wan-video/wan-2.2-t2v-fast/predictions"
I2V = "/v1/models/wan-video/wan-2.2-i2v-fast/predictions"
ID = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")  # lower-case Crockford base32


class Fake:
    """One app on a manual clock, its handle, and a client into it. Each fake answers on a
    host of its own (the module's shared one on Replicate's): routes into two apps never mix."""

    made = 0

    def __init__(self, host: str = "", **options: Any) -> None:
        Fake.made += 1
        self.host = host or f"fake{Fake.made}.replicate.test"
        self.base = f"https://{self.host}"
        self.app = create_app(["replicate"], seed=7, clock="manual", **options)
        self.wanmock = WanMock(self.app.state.backend)
        self.routes = InProcessRoutes(self.app, [self.host])

    def __enter__(self) -> Fake:
        self.routes.__enter__()
        self.client = httpx.Client(base_url=self.base, headers=KEY)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.client.close()
        self.routes.__exit__(*exc)

    def create(self, path: str = T2V, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, json=body or {"input": {"prompt": "a cat surfing"}},
                                **kwargs)

    def get(self, prediction_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/predictions/{prediction_id}")
        return conforms("replicate", "getPrediction", response)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def shared() -> Iterator[Fake]:
    with Fake("api.replicate.com", timing="fast") as fake:
        yield fake


@pytest.fixture
def fake(shared: Fake) -> Fake:
    shared.wanmock.reset()
    return shared


def test_a_prediction_from_starting_to_succeeded(fake: Fake) -> None:
    created = fake.create()
    assert created.status_code == 201 and "Preference-Applied" not in created.headers
    body = conforms("replicate", "createWan22T2vFastPrediction", created)
    pid = body["id"]
    assert ID.match(pid)
    assert body["model"] == "wan-video/wan-2.2-t2v-fast"
    assert body["version"] == ("c483b1f7b892065bc58ebadb6381abf557f6b1f517d2ff0febb3fb635cf49b4d")
    assert (body["status"], body["logs"], body["output"], body["error"]) == (
        "starting", "", None, None)
    assert body["urls"] == {"get": f"{BASE}/v1/predictions/{pid}",
                            "cancel": f"{BASE}/v1/predictions/{pid}/cancel",
                            "web": f"https://replicate.com/p/{pid}"}
    assert "started_at" not in body and "metrics" not in body
    fake.wanmock.advance(1.5)  # a fast model: 1 s queued, about 1 s running (timing fast)
    running = fake.get(pid)
    assert running["status"] == "processing" and "started_at" in running
    assert running["logs"].startswith("Using seed: ")
    # the last tqdm line is what replicate's Prediction.progress reads
    last = running["logs"].strip().splitlines()[-1]
    assert re.match(r"^\s*(\d+)%\s*\|.+?\|\s*(\d+)/(\d+)", last)
    fake.wanmock.advance(60)
    done = fake.get(pid)
    assert done["status"] == "succeeded" and done["completed_at"] >= done["started_at"]
    assert set(done["metrics"]) == {"predict_time", "total_time"}
    assert done["metrics"]["total_time"] > done["metrics"]["predict_time"] > 0
    assert "100%|██████████| 8/8" in done["logs"]
    # the output URL serves the MP4, also to a client that sends its token (FileOutput does)
    video = fake.client.get(done["output"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def test_each_key_sees_its_own_predictions(fake: Fake) -> None:
    pid = fake.create().json()["id"]
    other = fake.client.get(f"/v1/predictions/{pid}", headers=OTHER)
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json() == {"detail": "The requested resource could not be found.",
                            "status": 404}


def test_authentication_errors_are_problem_details(fake: Fake) -> None:
    missing = fake.client.get("/v1/predictions", headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.json() == {"title": "Unauthenticated",
                              "detail": "You did not pass an authentication token",
                              "status": 401}
    token = fake.client.get("/v1/account", headers={"Authorization": "Token r8_old_style"})
    assert token.status_code == 200 and token.json()["type"] == "user"


def test_every_input_problem_in_one_answer(fake: Fake) -> None:
    r = fake.create(body={"model": "x", "input": {"aspect_ratio": "1:1", "num_frames": 5}})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "title": "Input validation failed", "status": 422,
        "detail": "- Additional property model is not allowed\n"
                  "- input: prompt is required\n"
                  "- input.num_frames: Must be greater than or equal to 81\n"
                  "- input.aspect_ratio: aspect_ratio must be one of the following: "
                  "\"16:9\", \"9:16\"\n",
        "invalid_fields": [
            {"type": "additional_property_not_allowed", "field": "",
             "description": "Additional property model is not allowed"},
            {"type": "required", "field": "input", "description": "prompt is required"},
            {"type": "number_gte", "field": "input.num_frames",
             "description": "Must be greater than or equal to 81"},
            {"type": "enum", "field": "input.aspect_ratio",
             "description": "aspect_ratio must be one of the following: \"16:9\", \"9:16\""}]}
    no_uri = fake.create(I2V, {"input": {"prompt": "a", "image": "frame.png"}})
    assert no_uri.json()["invalid_fields"] == [
        {"type": "format", "field": "input.image", "description": "Does not match format 'uri'"}]
    [entry] = fake.wanmock.requests(operation="createWan22I2vFastPrediction")
    assert entry.violations[0]["rule"] == "image_url_format"


def test_the_version_path_and_unknown_models(fake: Fake) -> None:
    by_id = fake.client.post("/v1/predictions", json={
        "version": "c483b1f7b892065bc58ebadb6381abf557f6b1f517d2ff0febb3fb635cf49b4d",
        "input": {"prompt": "a cat"}})
    assert by_id.status_code == 201 and by_id.json()["model"] == "wan-video/wan-2.2-t2v-fast"
    by_name = fake.client.post("/v1/predictions", json={"version": "wan-video/wan-2.6-t2v",
                                                        "input": {"prompt": "a", "size": "1x1"}})
    assert by_name.status_code == 422
    assert by_name.json()["invalid_fields"][0]["field"] == "input.size"
    unknown = fake.client.post("/v1/predictions", json={"version": "acme/nope",
                                                        "input": {"prompt": "a"}})
    assert unknown.status_code == 422 and unknown.json() == {
        "title": "Invalid version or not permitted", "status": 422,
        "detail": "The specified version does not exist (or perhaps you don't have "
                  "permission to use it?)"}
    no_model = fake.create("/v1/models/acme/nope/predictions")
    assert no_model.status_code == 404
    assert no_model.json()["detail"] == "The requested resource could not be found."


def test_frames_make_the_video_length(fake: Fake) -> None:
    pid = fake.create(body={"input": {"prompt": "a", "num_frames": 121,
                                      "frames_per_second": 8}}).json()["id"]
    assert fake.wanmock.backend.store.get(pid).spec.duration == 15


def test_prefer_wait_on_a_clock_that_does_not_move(fake: Fake) -> None:
    held = fake.create(headers={"Prefer": "wait=5"})
    assert held.status_code == 201 and held.headers["Preference-Applied"] == "wait=5"
    assert held.json()["status"] == "starting"
    fake.wanmock.advance(1.5)  # running now: a held answer still reads starting
    again = fake.create(headers={"Prefer": "wait"})
    assert again.headers["Preference-Applied"] == "wait"
    bad = fake.create(headers={"Prefer": "wait=0"})
    assert bad.status_code == 422 and bad.json()["invalid_fields"][0]["field"] == "Prefer"


def test_prefer_wait_answers_a_finished_prediction() -> None:
    with Fake(timing="instant") as fake:
        done = fake.create(headers={"Prefer": "wait"}).json()
        assert done["status"] == "succeeded" and done["output"].endswith(
            done["output"].split("?")[0].rsplit("/", 1)[1] + "?" + done["output"].split("?")[1])
    with Fake(timing="fast", replicate_wait_status="actual",
              replicate_unfinished_status="202") as fake:
        fake.wanmock.advance(0)
        unfinished = fake.create(headers={"Prefer": "wait=1"})
        assert unfinished.status_code == 202 and unfinished.json()["status"] == "starting"


def test_cancel_while_starting_processing_and_after(fake: Fake) -> None:
    queued = fake.create().json()["id"]
    r = fake.client.post(f"/v1/predictions/{queued}/cancel")
    body = conforms("replicate", "cancelPrediction", r)
    assert body["status"] == "canceled" and "started_at" not in body
    assert body["metrics"] == {"total_time": 0.0}
    running = fake.create().json()["id"]
    fake.wanmock.advance(1.5)
    body = fake.client.post(f"/v1/predictions/{running}/cancel").json()
    assert body["status"] == "canceled" and "started_at" in body
    assert body["metrics"]["predict_time"] > 0
    done = fake.create().json()["id"]
    fake.wanmock.advance(60)
    assert fake.client.post(f"/v1/predictions/{done}/cancel").json()["status"] == "succeeded"


def test_cancel_after_aborts_or_cancels() -> None:
    """Realistic timing: 5-60 s queued, 90 s or more running."""
    with Fake(timing="realistic") as fake:
        assert fake.create(headers={"Cancel-After": "0.5"}).status_code == 422
        early = fake.create(headers={"Cancel-After": "1"}).json()  # taken as 5 s
        late = fake.create("/v1/models/wan-video/wan-2.5-t2v/predictions",  # runs 90 s or more
                           headers={"Cancel-After": "1m20s"}).json()["id"]
        assert early["deadline"] == "2026-01-01T00:00:05.000000Z"
        fake.wanmock.advance(3600)
        aborted = fake.get(early["id"])
        assert aborted["status"] == "aborted" and "started_at" not in aborted
        assert aborted["metrics"] == {"total_time": 5.0}
        canceled = fake.get(late)
        assert canceled["status"] == "canceled" and canceled["started_at"]
        assert canceled["completed_at"] == "2026-01-01T00:01:20.000000Z"
    with Fake(timing="realistic", replicate_aborted="canceled") as fake:
        pid = fake.create(headers={"Cancel-After": "5s"}).json()["id"]
        fake.wanmock.advance(30)
        assert fake.get(pid)["status"] == "canceled"


def test_lists_page_with_cursors_on_the_fake() -> None:
    with Fake(timing="instant", replicate_page_size=2) as fake:
        made = []
        for _ in range(5):
            made.append(fake.create().json()["id"])
            fake.wanmock.advance(1)
        fake.create(headers=OTHER)  # another key's
        first = fake.client.get("/v1/predictions").json()
        assert [p["id"] for p in first["results"]] == made[::-1][:2]
        assert first["previous"] is None and first["next"].startswith(
            f"{fake.base}/v1/predictions?")
        second = fake.client.get(first["next"]).json()
        assert [p["id"] for p in second["results"]] == made[::-1][2:4]
        back = fake.client.get(second["previous"]).json()
        assert [p["id"] for p in back["results"]] == made[::-1][:2]
        last = fake.client.get(second["next"]).json()
        assert [p["id"] for p in last["results"]] == [made[0]] and last["next"] is None
        since = fake.client.get("/v1/predictions", params={
            "created_after": "2026-01-01T00:00:01Z"}).json()
        assert [p["id"] for p in since["results"]] == made[::-1][:2]
        assert "created_after=" in since["next"]  # the filters are kept
        assert [p["id"] for p in fake.client.get(since["next"]).json()["results"]] == [
            made[2], made[1]]
        assert fake.client.get("/v1/predictions", params={"source": "web"}).json()[
            "results"] == []
        assert fake.client.get("/v1/predictions", params={"cursor": "nope"}).status_code == 400


def test_files_upload_read_list_delete(fake: Fake) -> None:
    created = fake.client.post("/v1/files", files={"content": ("frame.png", b"\x89PNG-data",
                                                               "image/png")},
                               data={"metadata": '{"ref": 7}'})
    assert created.status_code == 201
    record = created.json()
    assert (record["name"], record["content_type"], record["size"], record["metadata"]) == (
        "frame.png", "image/png", 9, {"ref": 7})
    assert record["etag"] == record["checksums"]["md5"] and len(record["checksums"]["sha256"]) == 64
    assert record["urls"]["get"] == f"{BASE}/v1/files/{record['id']}"
    assert fake.client.get(record["urls"]["get"]).json() == record
    assert fake.client.get(record["urls"]["get"], headers=OTHER).status_code == 404
    assert [f["id"] for f in fake.client.get("/v1/files").json()["results"]] == [record["id"]]
    # its URL is what a client puts into an image input
    made = fake.create(I2V, {"input": {"prompt": "it surfs", "image": record["urls"]["get"]}})
    assert made.status_code == 201
    assert fake.client.delete(record["urls"]["get"]).status_code == 204
    gone = fake.client.get(record["urls"]["get"])
    assert gone.status_code == 404 and gone.json() == {"detail": "File not found", "status": 404}
    no_content = fake.client.post("/v1/files", files={"other": ("a", b"x")})
    assert no_content.status_code == 422
    assert fake.client.post("/v1/files", json={"content": "x"}).status_code == 400


def test_models_versions_account_and_secret(fake: Fake) -> None:
    model = fake.client.get("/v1/models/wan-video/wan-2.5-i2v").json()
    version = model["latest_version"]
    assert (model["owner"], model["name"], model["is_official"]) == ("wan-video", "wan-2.5-i2v",
                                                                    True)
    schemas = version["openapi_schema"]["components"]["schemas"]
    assert schemas["Input"]["required"] == ["image", "prompt"]
    assert schemas["Output"] == {"type": "string", "format": "uri", "title": "Output"}
    path = "/v1/models/wan-video/wan-2.5-i2v/versions"
    assert fake.client.get(path).json()["results"] == [version]
    assert fake.client.get(f"{path}/{version['id']}").json() == version
    assert fake.client.get(f"{path}/{'0' * 64}").status_code == 404
    assert fake.client.get("/v1/models/acme/nope").status_code == 404
    account = fake.client.get("/v1/account").json()
    assert account["type"] == "user" and account["name"] and account["username"]
    secret = fake.client.get("/v1/webhooks/default/secret").json()["key"]
    assert re.match(r"^whsec_[A-Za-z0-9+/=]+$", secret) and "_" not in secret[6:]
    assert fake.client.get("/v1/webhooks/default/secret").json()["key"] == secret
    assert fake.client.get("/v1/webhooks/default/secret", headers=OTHER).json()["key"] != secret


def test_hidden_versions() -> None:
    with Fake(timing="instant", replicate_versions="hidden") as fake:
        assert fake.create().json()["version"] == "hidden"
        assert fake.client.get("/v1/models/wan-video/wan-2.6-t2v").json()[
            "latest_version"] is None
        assert fake.client.get("/v1/models/wan-video/wan-2.6-t2v/versions").status_code == 404


def test_deployments_run_their_model() -> None:
    with Fake(timing="instant",
              replicate_deployments="acme/wan=wan-video/wan-2.6-t2v") as fake:
        made = fake.create("/v1/deployments/acme/wan/predictions")
        assert made.status_code == 201
        assert (made.json()["model"], made.json()["deployment"]) == ("wan-video/wan-2.6-t2v",
                                                                     "acme/wan")
        assert fake.create("/v1/deployments/acme/other/predictions").status_code == 404
        bad = fake.create("/v1/deployments/acme/wan/predictions",
                          {"input": {"prompt": "a", "duration": 7}})
        assert bad.status_code == 422


def test_the_documented_rate_limits() -> None:
    """600 creates a minute per key (straight into the app: 600 requests)."""
    app = create_app(["replicate"], seed=7, clock="manual", timing="instant")

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE,
                                     headers=KEY) as client:
            body = {"input": {"prompt": "a cat"}}
            for _ in range(600):
                assert (await client.post(T2V, json=body)).status_code == 201
            over = await client.post(T2V, json=body)
            assert over.status_code == 429
            seconds = over.headers["Retry-After"]
            assert over.json() == {"detail": f"Request was throttled. Your rate limit resets "
                                             f"in ~{seconds}s.", "status": 429}
            assert (await client.get("/v1/predictions")).status_code == 200  # its own bucket
            assert (await client.post(T2V, json=body, headers=OTHER)).status_code == 201
            app.state.backend.clock.advance(61)
            assert (await client.post(T2V, json=body)).status_code == 201

    asyncio.run(run())
    with Fake(timing="instant", replicate_rate_limits="off") as fake:
        counted: list[Any] = []
        fake.wanmock.backend.admit = lambda *a, **k: counted.append(a) or False
        assert fake.create().status_code == 201 and counted == []  # nothing counts a request


def test_faults_in_replicate_words(fake: Fake) -> None:
    r = fake.client.get("/v1/predictions", headers={"X-Wanmock-Scenario": "throttle; "
                                                                          "retry_after=3"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["detail"] == "Request was throttled. Your rate limit resets in ~3s."
    failing = fake.create(headers={"X-Wanmock-Scenario": "moderation"}).json()["id"]
    fake.wanmock.advance(60)
    body = fake.get(failing)
    assert body["status"] == "failed" and "(E005)" in body["error"] and body["output"] is None


def test_webhook_events_as_filtered(fake: Fake) -> None:
    pid = fake.create(body={"input": {"prompt": "a"}, "webhook": "http://127.0.0.1:9/hook",
                            "webhook_events_filter": ["start", "output", "completed"]}
                      ).json()["id"]
    plain = fake.create(body={"input": {"prompt": "b"}, "webhook": "http://127.0.0.1:9/d"})
    canceled = fake.create(body={"input": {"prompt": "c"}, "webhook": "http://127.0.0.1:9/c",
                                 "webhook_events_filter": ["start", "completed"]}).json()["id"]
    fake.client.post(f"/v1/predictions/{canceled}/cancel")
    fake.wanmock.advance(2)
    started = [h for h in fake.wanmock.webhooks(pid) if h.body is not None]
    assert [h.body["status"] for h in started] == ["processing"]
    fake.wanmock.advance(60)
    hooks = fake.wanmock.webhooks(pid)
    bodies = [h.body for h in hooks]
    assert [b["status"] for b in bodies] == ["processing", "processing", "succeeded"]
    assert bodies[0]["output"] is None and bodies[1]["output"] == bodies[2]["output"]
    assert "completed_at" not in bodies[1] and bodies[2]["metrics"]
    assert bodies[2] == fake.get(pid) | {"logs": bodies[2]["logs"]}
    # no filter: output and completed (decision webhook-events)
    assert [h.body["status"] for h in fake.wanmock.webhooks(plain.json()["id"])] == [
        "processing", "succeeded"]
    # canceled before it started: its start is never owed, its completed is
    assert [h.body["status"] for h in fake.wanmock.webhooks(canceled)] == ["canceled"]


def _grows(texts: list[str]) -> bool:
    return all(a != b and b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))


def test_logs_events_and_all_four_by_option(fake: Fake) -> None:
    # `logs` alone: deliveries while it runs, each with more of the model's log than the last,
    # none with the output (decision webhook-events).
    pid = fake.create(body={"input": {"prompt": "a"}, "webhook": "http://127.0.0.1:9/l",
                            "webhook_events_filter": ["logs"]}).json()["id"]
    fake.wanmock.advance(60)
    bodies = [h.body for h in fake.wanmock.webhooks(pid)]
    assert bodies and {b["status"] for b in bodies} == {"processing"}
    assert all(b["output"] is None for b in bodies) and _grows([b["logs"] for b in bodies])
    assert fake.get(pid)["status"] == "succeeded"
    # --replicate-webhook-events all: with no filter, start, the logs, output, completed.
    with Fake(timing="fast", replicate_webhook_events="all") as every:
        pid = every.create(body={"input": {"prompt": "a"}, "webhook": "http://127.0.0.1:9/a"}
                           ).json()["id"]
        every.wanmock.advance(60)
        bodies = [h.body for h in every.wanmock.webhooks(pid)]
    statuses = [b["status"] for b in bodies]
    assert statuses[-1] == "succeeded" and set(statuses[:-1]) == {"processing"}
    assert len(bodies) >= 4  # start, at least one logs, output, completed
    assert bodies[0]["output"] is None and bodies[-2]["output"] == bodies[-1]["output"]
    assert all(b["output"] is None for b in bodies[:-2])
    assert _grows([b["logs"] for b in bodies[:-2]])


def test_data_is_removed_an_hour_after(fake: Fake) -> None:
    pid = fake.create().json()["id"]
    fake.wanmock.advance(60)
    assert fake.get(pid)["data_removed"] is False
    fake.wanmock.advance(3600)
    body = fake.get(pid)
    assert body["data_removed"] is True and (body["input"], body["output"], body["logs"]) == (
        {}, None, "")


def test_its_policy_judges_without_an_app(contract_set: Any) -> None:
    policy = policy_class("replicate")(Judging(contract_set))
    op = policy.contract.operation("createPrediction")
    spec, violations = policy.judge(op, {"version": "wan-video/wan-2.5-t2v",
                                         "input": {"prompt": "a", "size": "832*480"}})
    assert violations == [] and (spec.width, spec.height, spec.duration) == (832, 480, 5)
    _, violations = policy.judge(op, {"version": "wan-video/wan-2.5-t2v", "input": {}})
    assert [(v.field, v.rule, v.message) for v in violations] == [
        ("input.prompt", "schema:required", "prompt is required")]


def test_the_family_is_one_folder() -> None:
    """Nothing in the package outside providers/replicate/ names Replicate (the family-folder
    rule); its contract and its catalogue entries are the rest of it."""
    from pathlib import Path

    import mockserver
    from mockserver.contracts import load

    root = Path(mockserver.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("providers/replicate/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"replicate|wan-video", line, re.I):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
    contracts = load()
    assert contracts["replicate"].path == root.parent / "contracts" / "replicate.yaml"
    assert {e.model for e in contracts.catalogue.models("replicate")} == {
        op.spec_map["model"]["const"] for op in contracts["replicate"].by_role("submit")
        if isinstance(op.spec_map.get("model"), dict)}
