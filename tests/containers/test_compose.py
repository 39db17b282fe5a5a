"""compose.yaml brought up with podman-compose: two wanmock replicas (`--workers 2` each) over
Redis, reached from the host through ports published on 127.0.0.1, talking to each other and
to a webhook receiver on the network the test created. A soak of a few hundred jobs of every
family runs through both replicas; one replica is stopped (SIGTERM) mid-run; nothing is lost:
every accepted task still answers and ends, every webhook owed is delivered (those the stopped
replica held are taken over), and result URLs resolve inside the network."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.containers import podman
from tests.helpers import self_links, until

pytestmark = pytest.mark.container
JOBS = 300
CONCURRENCY = 64
TOKEN = "compose-test-token-0123456789"
KEY = {"Authorization": "Bearer sk-compose-soak-0123456789"}
DASHSCOPE = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk"},
             "parameters": {"size": "1280*720", "duration": 5}}
HOOK_URL = "http://receiver:9000/hook"

# The webhook receiver, run from wanmock's image on the stack's network: it keeps each
# delivery, fetches the result URL it carries (by the public URL, inside the network), and
# never answers the stopped replica's deliveries (held until it stops), so those can only
# arrive through a takeover by the other replica.
RECEIVER = """
import json, socket, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
hooks, lock = [], threading.Lock()
def held_address():
    try:
        return socket.gethostbyname("wanmock-2")
    except OSError:
        return None
def fetch(url):
    for _ in range(5):
        try:
            with urllib.request.urlopen(url, timeout=20) as r:
                return [r.status, r.read()[4:8].decode("latin-1")]
        except Exception as exc:
            last = str(exc)
            time.sleep(0.5)
    return [0, last]
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        task = event["payload"]["task"]
        held = self.client_address[0] == held_address()
        entry = {"task_id": task["task_id"], "status": task["status"], "held": held}
        videos = event["payload"].get("videos") or []
        if videos and not held:
            entry["url"] = videos[0]["video_url"]
            entry["fetched"] = fetch(videos[0]["video_url"])
        with lock:
            hooks.append(entry)
        if held:
            time.sleep(300)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        with lock:
            body = json.dumps(hooks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("0.0.0.0", 9000), Handler).serve_forever()
"""


@dataclass
class Stack:
    project: str
    files: list[Path]
    env: dict[str, str]
    ports: list[int]  # wanmock, wanmock-2 on the host
    receiver: int

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"


@pytest.fixture
def stack(image: str, redis_image: str, tmp_path: Path) -> Iterator[Stack]:
    podman.needs("podman-compose")
    podman.networking_ready()
    override = tmp_path / "compose.test.yaml"
    # One key drives the whole soak: DashScope's per-key limits (20 requests/s, tasks in
    # progress) would make it a rate-limit test; they are lifted, as the benchmarks do.
    unlimited = {"environment": {"WANMOCK_DASHSCOPE_RATE_LIMITS": "off"}}
    override.write_text(yaml.safe_dump({"services": {
        "wanmock": unlimited, "wanmock-2": unlimited,
        "receiver": {"image": image, "entrypoint": ["python3", "-c", RECEIVER],
                     "ports": ["127.0.0.1:${RECEIVER_PORT}:9000"]}}}))
    ports = [podman.free_port(), podman.free_port()]
    made = Stack(f"wanmock-test-{uuid.uuid4().hex[:8]}",
                 [podman.ROOT / "compose.yaml", override],
                 {"WANMOCK_IMAGE": image, "WANMOCK_REDIS_IMAGE": redis_image,
                  "WANMOCK_PUBLISHED_PORT": str(ports[0]),
                  "WANMOCK_PUBLISHED_PORT_2": str(ports[1]),
                  "RECEIVER_PORT": str(podman.free_port()),
                  "WANMOCK_CONTROL_TOKEN": TOKEN,
                  # an attempt the receiver holds stays in flight (no retries spent) until
                  # the replica stops: its lease (60 s + 10 s) outlasts the test's deadline
                  "WANMOCK_WEBHOOK_TIMEOUT": "60"},
                 ports, 0)
    made.receiver = int(made.env["RECEIVER_PORT"])
    try:
        # podman < 4.6 cannot wait for `service_healthy`: Redis first, then the rest
        podman.compose(made.project, made.files, "up", "-d", "redis", env=made.env)
        until(lambda: podman.podman("exec", made.container("redis"), "redis-cli", "ping",
                                     check=False).stdout.strip() == "PONG", 60, "redis answers")
        podman.compose(made.project, made.files, "up", "-d", env=made.env)
        for port, service in zip(ports, ("wanmock", "wanmock-2"), strict=True):
            podman.wait_healthy(f"http://127.0.0.1:{port}", 90, made.container(service))
        until(lambda: _get_json(f"http://127.0.0.1:{made.receiver}/") == [], 60,
               "the receiver answers")
        yield made
    finally:
        podman.compose(made.project, made.files, "down", "-t", "2", env=made.env, check=False)


def _get_json(url: str) -> Any:
    try:
        return httpx.get(url, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return None


@dataclass
class Job:
    family: str
    task_id: str = ""
    submitted_via: int = 0
    final: str = ""
    urls: list[str] = field(default_factory=list)


def _submit(family: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    if family == "dashscope":
        return ("/api/v1/services/aigc/video-generation/video-synthesis", DASHSCOPE,
                {"X-DashScope-Async": "enable"})
    if family == "apiyi":
        return ("/wan/api/v1/services/aigc/video-generation/video-synthesis", DASHSCOPE,
                {"X-DashScope-Async": "enable"})
    if family == "newapi":
        return "/v1/videos", {"model": "wan2.6-t2v", "prompt": "a fox", "size": "1280*720"}, {}
    return "/v3/async/wan-t2v", {"prompt": "a fox", "width": 832, "height": 480,
                                 "extra": {"webhook": {"url": HOOK_URL}}}, {}


def _task_id(family: str, body: dict[str, Any]) -> str:
    if family in ("dashscope", "apiyi"):
        return str(body["output"]["task_id"])
    return str(body["id"] if family == "newapi" else body["task_id"])


def _status(family: str, task_id: str) -> tuple[str, dict[str, str] | None]:
    if family == "dashscope":
        return f"/api/v1/tasks/{task_id}", None
    if family == "apiyi":
        return f"/v1/tasks/{task_id}", None
    if family == "newapi":
        return f"/v1/videos/{task_id}", None
    return "/v3/async/task-result", {"task_id": task_id}


def _ended(family: str, body: dict[str, Any]) -> str:
    """The terminal word, or "" while the task runs."""
    if family == "dashscope":
        word = body["output"]["task_status"]
        return word if word in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN") else ""
    if family in ("newapi", "apiyi"):
        return body["status"] if body["status"] in ("completed", "failed") else ""
    word = body["task"]["status"]
    return word if word in ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED") else ""


class Soak:
    """Jobs from the host through both published ports; a request the stopped replica cannot
    answer (refused, reset) is made again through the other port, as a load balancer would."""

    def __init__(self, ports: list[int]) -> None:
        self.bases = [f"http://127.0.0.1:{p}" for p in ports]
        self.down: set[int] = set()
        self.accepted = 0
        self.retried = 0
        self.stop_at = threading.Event()  # set when half the jobs were accepted

    async def request(self, client: httpx.AsyncClient, prefer: int, method: str, path: str,
                      **kw: Any) -> tuple[int, httpx.Response]:
        order = [prefer, 1 - prefer]
        for attempt in range(40):
            index = order[attempt % 2]
            if index in self.down and attempt < 2:
                continue
            try:
                response = await client.request(method, self.bases[index] + path, **kw)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
                    httpx.ConnectTimeout):
                self.retried += 1
                await asyncio.sleep(0.1)
                continue
            if response.status_code == 503:  # the stopping replica's store closed under it
                self.retried += 1
                continue
            return index, response
        raise AssertionError(f"{method} {path}: no replica answered")

    async def job(self, client: httpx.AsyncClient, n: int, family: str) -> Job:
        path, body, headers = _submit(family)
        via, response = await self.request(client, n % 2, "POST", path, json=body,
                                           headers={**KEY, **headers})
        assert response.status_code == 200, (family, response.text)
        job = Job(family, _task_id(family, response.json()), via)
        self.accepted += 1
        if self.accepted == JOBS // 2:
            self.stop_at.set()
        status_path, params = _status(family, job.task_id)
        for _ in range(600):
            await asyncio.sleep(0.5)
            _, response = await self.request(client, random.randrange(2), "GET", status_path,
                                             params=params, headers=KEY)
            assert response.status_code == 200, (family, job.task_id, response.text)
            job.final = _ended(family, response.json())
            if job.final:
                job.urls = self_links(response.json())
                return job
        raise AssertionError(f"{family} task {job.task_id} never ended")

    async def run(self) -> list[Job]:
        families = ["dashscope", "jiekou", "newapi", "apiyi"]
        gate = asyncio.Semaphore(CONCURRENCY)
        limits = httpx.Limits(max_connections=CONCURRENCY * 2)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            async def one(n: int) -> Job:
                async with gate:
                    return await self.job(client, n, families[n % len(families)])

            return list(await asyncio.gather(*(one(n) for n in range(JOBS))))


def test_a_soak_survives_a_replica_stopped_mid_run(stack: Stack) -> None:
    soak = Soak(stack.ports)
    stopped: dict[str, Any] = {}

    def stop_one() -> None:
        soak.stop_at.wait(300)
        started = time.monotonic()
        podman.podman("stop", "--time", "15", stack.container("wanmock-2"))
        stopped["took"] = time.monotonic() - started
        soak.down.add(1)  # from now on, as a load balancer would, the other replica first
        stopped["state"] = json.loads(podman.podman(
            "inspect", stack.container("wanmock-2")).stdout)[0]["State"]

    stopper = threading.Thread(target=stop_one, daemon=True)
    stopper.start()
    started = time.monotonic()
    jobs = asyncio.run(soak.run())
    soak_s = time.monotonic() - started
    stopper.join(60)

    # the replica stopped cleanly on SIGTERM, mid-run
    assert stopped["state"]["ExitCode"] == 0, stopped
    assert stopped["took"] < 15
    # nothing lost: every accepted task answers and ended, each id once
    assert len(jobs) == JOBS == soak.accepted
    assert len({(j.family, j.task_id) for j in jobs}) == JOBS
    assert {j.final for j in jobs} == {"SUCCEEDED", "TASK_STATUS_SUCCEED", "completed"}
    assert {j.submitted_via for j in jobs} == {0, 1}  # both replicas took submits
    for job in jobs:
        assert job.urls and all(u.startswith("http://wanmock:8000/_wanmock/videos/")
                                for u in job.urls), job  # the public URL: the service name
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.ports[0]}", headers=KEY,
                      timeout=30) as client:
        for job in jobs:  # once more, all through the surviving replica
            path, params = _status(job.family, job.task_id)
            assert _ended(job.family, client.get(path, params=params).json()) == job.final

    # every webhook owed was delivered and answered; those the stopped replica was sending
    # were taken over by the other one; result URLs resolve inside the network
    hooked = {j.task_id for j in jobs if j.family == "jiekou"}

    def delivered() -> list[dict[str, Any]] | None:
        hooks = _get_json(f"http://127.0.0.1:{stack.receiver}/") or []
        answered = [h for h in hooks if not h["held"]]
        return hooks if {h["task_id"] for h in answered} >= hooked else None

    hooks = until(delivered, 60, "every webhook delivered")
    answered = [h for h in hooks if not h["held"]]
    held = {h["task_id"] for h in hooks if h["held"]}
    assert {h["task_id"] for h in answered} == hooked
    assert all(h["status"] == "TASK_STATUS_SUCCEED" for h in answered)
    assert all(h["fetched"] == [200, "ftyp"] for h in answered), [
        h for h in answered if h["fetched"] != [200, "ftyp"]][:3]
    assert held, "the stopped replica was sending no webhook when it stopped"
    assert held <= {h["task_id"] for h in answered}
    print(f"soak: {JOBS} jobs in {soak_s:.1f} s, {soak.retried} requests retried on the other "
          f"replica, replica stopped in {stopped['took']:.2f} s, {len(hooked)} webhooks "
          f"delivered ({len(held)} taken over from the stopped replica)")
