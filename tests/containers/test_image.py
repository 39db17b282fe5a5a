"""wanmock's image, built from the repository's Dockerfile (base: Debian's Python from
mmdebstrap, the only build argument) and run with podman: how it is built, a job end to end
from the host with the dashscope SDK, its HEALTHCHECK, and a clean stop on SIGTERM."""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus

import av
import httpx
import pytest

from mockserver import __version__
from tests.containers import podman

pytestmark = pytest.mark.container
TOKEN = "container-test-token-0123456789"
API_KEY = "sk-container-0123456789"


@dataclass
class Running:
    name: str
    url: str  # where the host reaches it (the published port)
    public: str  # its --public-url


@pytest.fixture
def container(image: str) -> Iterator[Running]:
    """The image run as `docker run` would, configured by environment variables only."""
    port = podman.free_port()
    name = f"wanmock-test-{uuid.uuid4().hex[:8]}"
    public = f"http://localhost:{port}"
    podman.podman("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8000",
                  "--env", "WANMOCK_SEED=5", "--env", "WANMOCK_TIMING=instant",
                  "--env", f"WANMOCK_CONTROL_TOKEN={TOKEN}",
                  "--env", f"WANMOCK_PUBLIC_URL={public}", image)
    try:
        podman.wait_healthy(f"http://127.0.0.1:{port}", 60, name)
        yield Running(name, f"http://127.0.0.1:{port}", public)
    finally:
        podman.podman("rm", "--force", "--time", "0", name, check=False)


def test_the_image_is_built_as_documented(image: str) -> None:
    [info] = json.loads(podman.podman("image", "inspect", image).stdout)
    config = info["Config"]
    assert config["User"] == "10001:10001"  # not root
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"] == ["wanmock"] and config["Cmd"] == ["serve"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["WANMOCK_HOST"] == "0.0.0.0" and env["WANMOCK_ALLOW_REMOTE"] == "true"
    assert env["PATH"].startswith("/opt/wanmock/bin:")
    assert info["Healthcheck"]["Test"] == ["CMD", "python3", "-m", "mockserver.healthcheck"]
    # The runtime stage holds the installed wheels only: no sources, wheels or build venv.
    probe = podman.podman("run", "--rm", "--entrypoint", "sh", image, "-c",
                          "test ! -e /src && test ! -e /wheels && test ! -e /opt/build "
                          "&& command -v python3 && id -u")
    assert probe.stdout.split() == ["/opt/wanmock/bin/python3", "10001"]
    version = podman.podman("run", "--rm", image, "--version")
    assert version.stdout.strip() == f"wanmock {__version__}"
    # The image runs this checkout's code (a rebuild must not reuse an install of older code),
    # and its contracts' OpenAPI verdicts were cached at build time.
    ours = hashlib.sha256((podman.ROOT / "mockserver" / "contracts" / "loading.py").read_bytes())
    theirs = podman.podman("run", "--rm", "--entrypoint", "python3", image, "-c",
                           "import hashlib, mockserver.contracts.loading as m, os; "
                           "print(hashlib.sha256(open(m.__file__, 'rb').read()).hexdigest()); "
                           "print(len(os.listdir(m.validated_cache())))")
    digest, cached = theirs.stdout.split()
    assert digest == ours.hexdigest()
    assert int(cached) == len(list((podman.ROOT / "contracts").glob("*.yaml"))) - 1
    size_mb = info["Size"] / 1e6
    print(f"image {image}: {size_mb:.0f} MB")


def test_a_job_end_to_end_from_the_host_with_the_dashscope_sdk(
        container: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    import dashscope
    from dashscope import VideoSynthesis

    monkeypatch.setattr(dashscope, "base_http_api_url", container.url + "/api/v1")
    done = VideoSynthesis.call(api_key=API_KEY, model="wan2.6-t2v",
                               prompt="a lighthouse at dusk", size="1280*720", duration=5)
    assert done.status_code == HTTPStatus.OK, done
    assert done.output.task_status == "SUCCEEDED"
    url = done.output.video_url
    # --public-url: the link names the public host, not the address the SDK called
    assert url.startswith(f"{container.public}/_wanmock/videos/{done.output.task_id}.mp4?")
    video = httpx.get(url.replace(container.public, container.url), timeout=30)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    stream = av.open(io.BytesIO(video.content)).streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    # the control plane needs the token (--allow-remote in the image); the health probe not
    with httpx.Client(base_url=container.url, timeout=10) as client:
        assert client.get("/_wanmock/tasks").status_code == 401
        tasks = client.get("/_wanmock/tasks", headers={"X-Wanmock-Token": TOKEN}).json()
        assert [t["id"] for t in tasks["tasks"]] == [done.output.task_id]
        assert client.get("/_wanmock/health").json()["store"]["tasks"] == 1


def test_the_healthcheck(container: Running) -> None:
    run = podman.podman("healthcheck", "run", container.name, check=False)
    assert run.returncode == 0, run.stderr
    state = json.loads(podman.podman("inspect", container.name).stdout)[0]["State"]
    health = state.get("Health") or state.get("Healthcheck")
    assert health["Status"] == "healthy"
    assert '"status": "ok"' in health["Log"][-1]["Output"]
    # the probe inside the image fails where nothing healthy answers
    dead = podman.podman("exec", container.name, "python3", "-m", "mockserver.healthcheck",
                         "http://127.0.0.1:1/_wanmock/health", check=False)
    assert dead.returncode == 1 and "Connection refused" in dead.stdout


def test_sigterm_stops_it_cleanly(container: Running) -> None:
    started = time.monotonic()
    podman.podman("stop", "--time", "20", container.name)  # SIGTERM; SIGKILL only after 20 s
    took = time.monotonic() - started
    state = json.loads(podman.podman("inspect", container.name).stdout)[0]["State"]
    logs = podman.podman("logs", container.name)
    assert state["ExitCode"] == 0, (state, logs.stdout[-2000:], logs.stderr[-2000:])
    assert took < 20  # stopped by SIGTERM, not killed when the grace ran out
    assert "Traceback" not in logs.stdout + logs.stderr
    print(f"SIGTERM to exit: {took:.2f} s")
