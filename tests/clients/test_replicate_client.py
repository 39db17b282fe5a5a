"""The real `replicate` Python client (replicate 1.0.7), unchanged, against the replicate family
on 127.0.0.1: pointed at the fake by `Client(base_url=...)` or `REPLICATE_BASE_URL`.

Two live fakes, each started once for the module:

- `polls`: each poll moves a prediction on (0 polls starting, 1 processing, then done) and a
  `Prefer: wait` create answers at once, so an unfinished create reads `starting` and the
  client polls (what `replicate.run` does when the window is over; decision wait-unfinished);
- `clock`: a real clock with every prediction made about 20 times shorter than a fast model
  (`slow; factor=0.05`), so `Prefer: wait` holds the request until the prediction ends and
  webhooks leave the fake signed, to a receiver on loopback.

The client never retries a POST (replicate/client.py RetryTransport: GET, PUT, DELETE...), so
the 429 it retries is a poll's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError
from replicate.helpers import FileOutput
from replicate.webhook import InvalidSignatureError

from mockserver.handle import WanMock
from mockserver.images import SAMPLE_PNG_DATA_URI
from mockserver.server import ThreadedMockServer
from tests.clients.conftest import assert_mp4
from tests.helpers import WebhookReceiver, until

pytestmark = pytest.mark.clients

TOKEN = "r8_wanmock_client_0001"
T2V = "wan-video/wan-2.2-t2v-fast"
I2V = "wan-video/wan-2.2-i2v-fast"
PROMPT = {"prompt": "a koi pond in the rain"}


def _serve(tmp_path_factory: pytest.TempPathFactory, name: str,
           **options: Any) -> ThreadedMockServer:
    return ThreadedMockServer(seed=7, families=["replicate"], timing="fast",
                              video_dir=str(tmp_path_factory.mktemp(f"replicate-{name}")),
                              **options).start()


@pytest.fixture(scope="module")
def _polls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedMockServer]:
    server = _serve(tmp_path_factory, "polls", mode="polls", queued_polls=0, running_polls=1)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def _clock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedMockServer]:
    server = _serve(tmp_path_factory, "clock", replicate_output="data")
    yield server
    server.stop()


@pytest.fixture
def polls(_polls: ThreadedMockServer) -> ThreadedMockServer:
    _polls.backend.reset()
    return _polls


@pytest.fixture
def clock(_clock: ThreadedMockServer) -> ThreadedMockServer:
    _clock.backend.reset()
    WanMock(_clock.backend).scenario("slow", factor=0.05, match={"family": "replicate"})
    return _clock


@pytest.fixture
def client() -> Iterator[Any]:
    """`client(server, token=..., **kwargs)`: a `replicate.Client` on a live fake (its
    connections closed after the test)."""
    made: list[replicate.Client] = []

    def make(server: ThreadedMockServer, token: str | None = TOKEN,
             **kwargs: Any) -> replicate.Client:
        rc = replicate.Client(token, base_url=server.url, **kwargs)
        rc.poll_interval = 0.0  # the fake moves on each poll: no need to wait between them
        made.append(rc)
        return rc

    yield make
    for rc in made:
        rc._client.close()


def calls(server: ThreadedMockServer) -> list[tuple[str, int]]:
    return [(e.operation, e.status) for e in WanMock(server.backend).requests(family="replicate")]


def test_run_polls_an_unfinished_prediction_to_its_video(polls: ThreadedMockServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # the module's functions use the default client made at import: pointed at the fake by
    # environment alone (its httpx client is built, and the variables read, on first use)
    monkeypatch.setenv("REPLICATE_BASE_URL", polls.url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    default = replicate.default_client
    monkeypatch.setattr(default, "poll_interval", 0.0)
    monkeypatch.setattr(default, "_Client__client", None)  # built afresh, closed below
    try:
        output = replicate.run(T2V, input=PROMPT)
    finally:
        default._client.close()
    # over plain http the output URL stays a str (only https: and data: become FileOutput)
    assert isinstance(output, str)
    assert_mp4(output, 832, 480)
    assert calls(polls) == [("createWan22T2vFastPrediction", 201), ("getPrediction", 200),
                            ("getPrediction", 200)]
    [create] = WanMock(polls.backend).requests(operation="createWan22T2vFastPrediction")
    assert create.request_headers["prefer"] == "wait"
    assert json.loads(create.response_body)["status"] == "starting"  # so run() polls


def test_predictions_create_wait_cancel_and_list(polls: ThreadedMockServer, client: Any) -> None:
    rc = client(polls)
    prediction = rc.predictions.create(model=T2V, input=PROMPT)
    assert (prediction.status, prediction.model, prediction.output) == ("starting", T2V, None)
    prediction.wait()
    assert prediction.status == "succeeded"
    assert prediction.metrics and prediction.metrics["predict_time"] > 0
    assert prediction.completed_at and prediction.output.startswith(polls.url)

    # the version path: `owner/name:version` runs by POST /v1/predictions
    version = rc.models.get(T2V).latest_version
    assert version is not None and len(version.id) == 64
    by_version = rc.predictions.create(version=version.id, input=PROMPT)
    assert by_version.version == version.id and by_version.model == T2V

    by_version.cancel()
    assert rc.predictions.get(by_version.id).status == "canceled"
    prediction.cancel()  # ended: a cancel changes nothing
    assert rc.predictions.get(prediction.id).status == "succeeded"

    page = rc.predictions.list()
    assert [p.id for p in page.results] == [by_version.id, prediction.id]  # newest first
    assert page.next is None


def test_prefer_wait_answers_the_finished_prediction(clock: ThreadedMockServer,
                                                     client: Any) -> None:
    rc = client(clock)
    # predictions.create(model=..., wait=True) drops `wait` in replicate 1.0.7
    # (replicate/prediction.py:462-471); models.predictions.create sends Prefer: wait
    prediction = rc.models.predictions.create(model=T2V, input=PROMPT, wait=True)
    assert prediction.status == "succeeded"
    # replicate_output=data: the MP4 itself, which run() hands over as a FileOutput
    assert prediction.output.startswith("data:video/mp4;base64,")
    output = rc.run(T2V, input=PROMPT)
    assert isinstance(output, FileOutput)
    assert output.read()[4:8] == b"ftyp"
    assert [op for op, _ in calls(clock)] == ["createWan22T2vFastPrediction"] * 2  # no polls
    creates = WanMock(clock.backend).requests(operation="createWan22T2vFastPrediction")
    assert [c.request_headers.get("prefer") for c in creates] == ["wait", "wait"]


def test_a_failed_prediction_raises_model_error(polls: ThreadedMockServer, client: Any) -> None:
    rc = client(polls, headers={"X-Wanmock-Scenario": "moderation"})
    with pytest.raises(ModelError) as raised:
        rc.run(T2V, input=PROMPT)
    failed = raised.value.prediction
    assert failed.status == "failed" and failed.output is None
    assert str(raised.value) == failed.error and "(E005)" in failed.error


def test_rejections_are_replicate_errors(polls: ThreadedMockServer, client: Any) -> None:
    rc = client(polls)
    with pytest.raises(ReplicateError) as raised:
        rc.predictions.create(model=T2V, input={"prompt": "a koi", "resolution": "4k"})
    error = raised.value
    assert error.status == 422 and error.title == "Input validation failed"
    assert "resolution" in error.detail
    with pytest.raises(ReplicateError) as unknown:
        rc.models.get("wan-video/wan-9.9-t2v")
    assert unknown.value.status == 404
    assert unknown.value.detail == "The requested resource could not be found."


def test_a_throttled_poll_is_retried(polls: ThreadedMockServer, client: Any) -> None:
    rc = client(polls)
    prediction = rc.predictions.create(model=T2V, input=PROMPT)
    WanMock(polls.backend).scenario("throttle", retry_after=0, times=1,
                                    match={"operation": "getPrediction"})
    assert rc.predictions.get(prediction.id).status == "processing"
    assert calls(polls)[1:] == [("getPrediction", 429), ("getPrediction", 200)]
    # a create is never retried: the 429 reaches the caller
    WanMock(polls.backend).scenario("throttle", retry_after=0, times=1,
                                    match={"operation": "createWan22T2vFastPrediction"})
    with pytest.raises(ReplicateError) as raised:
        rc.predictions.create(model=T2V, input=PROMPT)
    assert raised.value.status == 429 and raised.value.detail.startswith("Request was throttled")


def test_file_inputs_upload_through_the_files_api(polls: ThreadedMockServer, client: Any,
                                                  tmp_path: Path) -> None:
    image = tmp_path / "koi.png"
    image.write_bytes(base64.b64decode(SAMPLE_PNG_DATA_URI.split(",", 1)[1]))
    rc = client(polls)
    with image.open("rb") as handle:
        output = rc.run(I2V, input={"prompt": "the koi swims", "image": handle})
    assert isinstance(output, str) and output.startswith(polls.url)
    [upload] = rc.files.list()
    assert (upload.name, upload.content_type, upload.size) == (
        "koi.png", "image/png", image.stat().st_size)
    [create] = WanMock(polls.backend).requests(operation="createWan22I2vFastPrediction")
    assert json.loads(create.request_body)["input"]["image"] == upload.urls["get"]
    # base64 instead: the image travels inside the request as a data: URI
    with image.open("rb") as handle:
        rc.run(I2V, input={"prompt": "again", "image": handle}, file_encoding_strategy="base64")
    assert len(rc.files.list()) == 1


def test_webhooks_validate_signed_and_reject_tampered(clock: ThreadedMockServer,
                                                      client: Any) -> None:
    receiver = WebhookReceiver()
    try:
        rc = client(clock)
        prediction = rc.predictions.create(model=T2V, input=PROMPT, webhook=receiver.url,
                                           webhook_events_filter=["completed"])
        until(lambda: receiver.received, 10, "the completed webhook")
    finally:
        receiver.close()
    [(headers, body)] = receiver.received
    assert json.loads(body)["id"] == prediction.id
    assert json.loads(body)["status"] == "succeeded"
    secret = rc.webhooks.default.secret()
    assert secret.key.startswith("whsec_")
    replicate.webhooks.validate(headers=headers, body=body, secret=secret, tolerance=300)
    tampered = body.replace('"succeeded"', '"failed"')
    with pytest.raises(InvalidSignatureError):
        replicate.webhooks.validate(headers=headers, body=tampered, secret=secret)
    # another account's secret does not validate it either
    other = client(clock, token="r8_wanmock_client_0002").webhooks.default.secret()
    assert other.key != secret.key
    with pytest.raises(InvalidSignatureError):
        replicate.webhooks.validate(headers=headers, body=body, secret=other)


def test_over_https_run_hands_over_a_file_output(wanmock_tls_server: Any) -> None:
    """Served over HTTPS (`wanmock serve --tls`), the fake's own result URL is https:, so
    replicate.run hands it over as a FileOutput that reads the MP4 (decision output-url)."""
    # the client builds its own transport: trust goes on the transport it is handed
    transport = httpx.HTTPTransport(verify=wanmock_tls_server.ssl_context())
    rc = replicate.Client(TOKEN, base_url=wanmock_tls_server.url, transport=transport)
    rc.poll_interval = 0.0
    try:
        output = rc.run(T2V, input=PROMPT)
        assert isinstance(output, FileOutput)
        assert str(output).startswith(wanmock_tls_server.url + "/_wanmock/videos/")
        assert output.read()[4:8] == b"ftyp"
    finally:
        transport.close()
