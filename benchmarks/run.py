"""wanmock's benchmark: the fake next to a bare Starlette app, on the same stack, in one run.

    python benchmarks/run.py                  # 10 s per load test, 32 connections
    python benchmarks/run.py --quick          # 3 s per load test, smaller in-process counts
    python benchmarks/run.py --million        # also the 1,000,000-request memory check
    python benchmarks/run.py --duration 20 --connections 64 --output /tmp/b.md

Over HTTP both servers run uvicorn with uvloop and httptools, access log off, pinned to one core
(`--server-cpu`, default 0); the load generator (wrk, else a small async httpx client) is pinned
to another (`--load-cpu`, default 1) and talks to 127.0.0.1 only. Measured:

* GET poll of an existing, succeeded DashScope task (GET /api/v1/tasks/{id});
* POST create with a valid body (full validation: contract schema + catalogue rules);
* POST create with an invalid body (a schema violation, answered 400);
* requests/s, p50 and p99 latency, resident memory of the server after the run.

In process (no sockets): calls/s through httpx's ASGITransport for both apps, whole jobs/s
(submit, poll, fetch the video: three calls with `timing="instant"`), memory for 100,000 stored
tasks, and MP4 render time per resolution. The table goes to stdout and `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
API_KEY = "sk-bench-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {API_KEY}", "X-DashScope-Async": "enable",
           "Content-Type": "application/json"}
VALID = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk, slow pan"},
         "parameters": {"size": "1280*720", "duration": 5}}
INVALID = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk, slow pan"},
           "parameters": {"size": "1280*720", "duration": "five"}}
RESOLUTIONS = {"480P": (832, 480), "720P": (1280, 720), "1080P": (1920, 1080)}
# fal: a queue submit and a status poll (contracts/fal.yaml), next to the same bare routes.
FAL_SUBMIT_PATH = "/wan/v2.6/text-to-video"
FAL_HEADERS = {"Authorization": "Key bench-id:bench-secret", "Content-Type": "application/json"}
FAL_VALID = {"prompt": "a lighthouse at dusk, slow pan", "duration": "5", "resolution": "720p"}
# Replicate: a create by model and a prediction read (contracts/replicate.yaml).
REP_CREATE_PATH = "/v1/models/wan-video/wan-2.2-t2v-fast/predictions"
REP_HEADERS = {"Authorization": "Bearer r8_bench_0123456789", "Content-Type": "application/json"}
REP_VALID = {"input": {"prompt": "a lighthouse at dusk, slow pan", "resolution": "480p"}}
# OpenRouter: a video job's submit and poll (contracts/openrouter.yaml), in process.
OPENROUTER_PATH = "/api/v1/videos"
OPENROUTER_HEADERS = {"Authorization": "Bearer sk-or-v1-bench", "Content-Type": "application/json"}
OPENROUTER_VALID = {"model": "alibaba/wan-2.6", "prompt": "a lighthouse at dusk, slow pan",
                    "duration": 5, "resolution": "720p"}


# -- machine ---------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for dist in ("wanmock", "starlette", "uvicorn", "uvloop", "httptools", "httpx", "jsonschema",
                 "jsonschema-rs", "av"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} -")
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
        versions.append((out.stdout + out.stderr).split("[")[0].strip() or "wrk")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": ", ".join(versions),
    }


# -- servers ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and all their descendants (workers), from
    /proc: on a shared machine, CPU per request moves far less than requests per second."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats.get(pid, (0, 0))[1]
        todo += children.get(pid, [])
    return total / tick


def with_cpu(load: Any, pids: list[int], name: str = "cpu_us") -> Any:
    """`load`, also measuring the CPU the servers `pids` spent per request (into `Load.<name>`:
    `cpu_us`, or `cpu_all_us` for the fake and the store's server together)."""
    def run(*args: Any, **kwargs: Any) -> Load:
        before = cpu_seconds(pids)
        result: Load = load(*args, **kwargs)
        spent = cpu_seconds(pids) - before
        setattr(result, name, spent / result.requests * 1e6 if result.requests else float("nan"))
        return result

    return run


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def server(kind: str, cpu: int | set[int], journal_size: int | None = None,
           store: str | None = None, workers: int = 1) -> Iterator[tuple[str, int]]:
    """Start `bare` or `wanmock` pinned to `cpu` (a CPU or a set); yield (base URL, pid)."""
    port = free_port()
    cpus = cpu if isinstance(cpu, set) else {cpu}
    if kind == "bare":
        cmd = [sys.executable, str(HERE / "bare_app.py"), "--port", str(port)]
    else:
        # Throughput of the pipeline, not DashScope's documented limits (which answer 429
        # beyond 20 polls/s and 5 submits/s per key): lifted, as for any load test.
        cmd = [sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--seed", "1",
               "--timing", "fast", "--dashscope-rate-limits", "off",
               "--replicate-rate-limits", "off"]
        if journal_size is not None:
            cmd += ["--journal-size", str(journal_size)]
        if store is not None:
            cmd += ["--store", store]
        if workers > 1:
            cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                            preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
                if kind == "wanmock":  # workers accept before their app is loaded
                    import httpx

                    httpx.get(f"{url}/_wanmock/clock", timeout=5).raise_for_status()
                break
            except Exception:  # refused, or not answering yet
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"{kind} server did not start: {err}") from None
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGINT) if workers > 1 else proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prepare_fal_task(url: str) -> str:
    """Submit one fal request and move the clock on: the path of its COMPLETED status."""
    import httpx

    with httpx.Client(base_url=url, timeout=10) as client:
        r = client.post(FAL_SUBMIT_PATH, json=FAL_VALID, headers=FAL_HEADERS)
        r.raise_for_status()
        status_url = r.json()["status_url"]
        client.post("/_wanmock/clock/advance", json={"seconds": 60}).raise_for_status()
        body = client.get(status_url, headers=FAL_HEADERS).json()
        assert body["status"] == "COMPLETED", body
        return "/" + status_url.split("/", 3)[3]


def prepare_replicate_prediction(url: str) -> str:
    """Create one Replicate prediction and move the clock on: the path of it, succeeded."""
    import httpx

    with httpx.Client(base_url=url, timeout=10) as client:
        r = client.post(REP_CREATE_PATH, json=REP_VALID, headers=REP_HEADERS)
        r.raise_for_status()
        path = f"/v1/predictions/{r.json()['id']}"
        client.post("/_wanmock/clock/advance", json={"seconds": 60}).raise_for_status()
        body = client.get(path, headers=REP_HEADERS).json()
        assert body["status"] == "succeeded", body
        return path


def prepare_task(url: str) -> str:
    """Submit one task to wanmock and move its clock on, so polls see it SUCCEEDED."""
    import httpx

    with httpx.Client(base_url=url, timeout=10) as client:
        r = client.post(CREATE_PATH, json=VALID, headers=HEADERS)
        r.raise_for_status()
        task_id = r.json()["output"]["task_id"]
        client.post("/_wanmock/clock/advance", json={"seconds": 60}).raise_for_status()
        body = client.get(f"/api/v1/tasks/{task_id}", headers=HEADERS).json()
        assert body["output"]["task_status"] == "SUCCEEDED", body
        return str(task_id)


@contextlib.contextmanager
def redis_server(cpu: int | None = None) -> Iterator[tuple[str, int] | None]:
    """A throwaway redis-server on a free loopback port (None without the binary), pinned to
    `cpu` when given."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=None if cpu is None else (
                                lambda: os.sched_setaffinity(0, {cpu})))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


# -- load generators -------------------------------------------------------------------------
@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    errors: int
    generator: str
    cpu_us: float = float("nan")  # server CPU per request (with_cpu)
    cpu_all_us: float = float("nan")  # with the store's server (redis-server)


def lua_script(method: str, body: dict[str, Any] | None, max_requests: int,
               headers: dict[str, str] | None = None) -> str:
    lines = [f'wrk.method = "{method}"']
    for name, value in (headers or HEADERS).items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        lines.append(f"wrk.body = [==[{json.dumps(body)}]==]")
    lines.append(f"""
local count = 0
function response(status, headers, body)
  count = count + 1
  if count >= {max_requests} then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, "
    .. "\\"non2xx\\": %d, \\"errors\\": %d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
""")
    return "\n".join(lines)


def median_load(runs: list[Load]) -> Load:
    """The median run (by requests/s; the mean of the middle two for an even count), with the
    requests and non-2xx answers of all runs summed."""
    ordered = sorted(runs, key=lambda r: r.rps)
    mid = ordered[(len(ordered) - 1) // 2]
    hi = ordered[len(ordered) // 2]
    def median(values: list[float]) -> float:
        known = [v for v in values if v == v]  # not NaN
        return statistics.median(known) if known else float("nan")

    return Load(sum(r.requests for r in runs), mid.seconds, (mid.rps + hi.rps) / 2,
                (mid.p50_ms + hi.p50_ms) / 2, (mid.p99_ms + hi.p99_ms) / 2,
                sum(r.non2xx for r in runs), sum(r.errors for r in runs), mid.generator,
                median([r.cpu_us for r in runs]), median([r.cpu_all_us for r in runs]))


def run_wrk(url: str, method: str, body: dict[str, Any] | None, *, seconds: float,
            connections: int, cpu: int, max_requests: int,
            headers: dict[str, str] | None = None) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua_script(method, body, max_requests, headers))
        script = fh.name
    try:
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "-s", script, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                             preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    finally:
        os.unlink(script)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    data = json.loads(line[len("WRKJSON "):])
    secs = data["duration_us"] / 1e6
    return Load(data["requests"], secs, data["requests"] / secs, data["p50_us"] / 1000,
                data["p99_us"] / 1000, data["non2xx"], data["errors"], "wrk")


def run_httpx(url: str, method: str, body: dict[str, Any] | None, *, seconds: float,
              connections: int, cpu: int, max_requests: int,
              headers: dict[str, str] | None = None) -> Load:
    """The fallback generator: a subprocess running `connections` async httpx workers."""
    spec = json.dumps({"url": url, "method": method, "body": body, "seconds": seconds,
                       "connections": connections, "max": max_requests,
                       "headers": headers or HEADERS})
    out = subprocess.run([sys.executable, __file__, "--_httpx-load", spec], capture_output=True,
                         text=True, timeout=seconds + 120,
                         preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Load(**data, generator="httpx")


def _httpx_load(spec_json: str) -> None:
    import httpx

    spec = json.loads(spec_json)
    latencies: list[float] = []
    counts = {"non2xx": 0, "errors": 0}
    content = json.dumps(spec["body"]).encode() if spec["body"] is not None else None

    async def main() -> float:
        limits = httpx.Limits(max_connections=spec["connections"])
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            stop = time.perf_counter() + spec["seconds"]

            async def worker() -> None:
                while time.perf_counter() < stop and len(latencies) < spec["max"]:
                    t0 = time.perf_counter()
                    try:
                        r = await client.request(spec["method"], spec["url"], content=content,
                                                 headers=spec["headers"])
                    except httpx.HTTPError:
                        counts["errors"] += 1
                        continue
                    latencies.append(time.perf_counter() - t0)
                    if not 200 <= r.status_code < 400:
                        counts["non2xx"] += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(spec["connections"])))
            return time.perf_counter() - t0

    secs = asyncio.run(main())
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(json.dumps({"requests": len(latencies), "seconds": secs, "rps": len(latencies) / secs,
                      "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, **counts}))


# -- in process ------------------------------------------------------------------------------
async def asgi_rate(app: Any, method: str, path: str, body: dict[str, Any] | None,
                    seconds: float, headers: dict[str, str] | None = None) -> float:
    """Sequential calls/s through httpx's ASGITransport for about `seconds`."""
    import httpx

    headers = headers or HEADERS
    content = json.dumps(body).encode() if body is not None else None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(200):  # warm up
            await client.request(method, path, content=content, headers=headers)
        n, t0 = 0, time.perf_counter()
        while True:
            for _ in range(100):
                await client.request(method, path, content=content, headers=headers)
            n += 100
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                return n / elapsed


def in_process_rates(seconds: float) -> dict[str, tuple[float, float]]:
    import httpx
    from bare_app import app as bare

    from mockserver import create_app
    from mockserver.core.clock import ManualClock

    app = create_app(seed=1, timing="fast", clock=ManualClock(),
                     dashscope_rate_limits="off", replicate_rate_limits="off")

    async def setup() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            r = await client.post(CREATE_PATH, json=VALID, headers=HEADERS)
            task_id = str(r.json()["output"]["task_id"])
        app.state.backend.clock.advance(60)
        return task_id

    task_id = asyncio.run(setup())
    fal_status = asyncio.run(_fal_task(app))
    prediction = asyncio.run(_replicate_prediction(app))
    openrouter_job = asyncio.run(_openrouter_job(app))
    out = {}
    for name, method, path_w, path_b, body, headers in (
        ("GET poll", "GET", f"/api/v1/tasks/{task_id}", f"/api/v1/tasks/{task_id}", None,
         None),
        ("POST create (valid)", "POST", CREATE_PATH, CREATE_PATH, VALID, None),
        ("POST create (invalid)", "POST", CREATE_PATH, CREATE_PATH, INVALID, None),
        ("fal GET status", "GET", fal_status, f"/api/v1/tasks/{task_id}", None, FAL_HEADERS),
        ("fal POST submit", "POST", FAL_SUBMIT_PATH, CREATE_PATH, FAL_VALID, FAL_HEADERS),
        ("replicate GET prediction", "GET", prediction, f"/api/v1/tasks/{task_id}", None,
         REP_HEADERS),
        ("replicate POST create", "POST", REP_CREATE_PATH, CREATE_PATH, REP_VALID, REP_HEADERS),
        ("openrouter GET job", "GET", openrouter_job, f"/api/v1/tasks/{task_id}", None,
         OPENROUTER_HEADERS),
        ("openrouter POST submit", "POST", OPENROUTER_PATH, CREATE_PATH, OPENROUTER_VALID,
         OPENROUTER_HEADERS),
    ):
        gc.collect()
        b = asyncio.run(asgi_rate(bare, method, path_b, body, seconds, headers))
        gc.collect()
        w = asyncio.run(asgi_rate(app, method, path_w, body, seconds, headers))
        out[name] = (b, w)
    return out


async def _openrouter_job(app: Any) -> str:
    """A completed OpenRouter video job in an in-process app: its poll path."""
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bench") as client:
        r = await client.post(OPENROUTER_PATH, json=OPENROUTER_VALID, headers=OPENROUTER_HEADERS)
        path = f"{OPENROUTER_PATH}/{r.json()['id']}"
    app.state.backend.clock.advance(60)
    return path


async def _fal_task(app: Any) -> str:
    """A completed fal request in an in-process app: its status path."""
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bench") as client:
        r = await client.post(FAL_SUBMIT_PATH, json=FAL_VALID, headers=FAL_HEADERS)
        path = "/" + r.json()["status_url"].split("/", 3)[3]
    app.state.backend.clock.advance(60)
    return path


async def _replicate_prediction(app: Any) -> str:
    """A succeeded Replicate prediction in an in-process app: its path."""
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bench") as client:
        r = await client.post(REP_CREATE_PATH, json=REP_VALID, headers=REP_HEADERS)
        path = f"/v1/predictions/{r.json()['id']}"
    app.state.backend.clock.advance(60)
    return path


def jobs_per_second(jobs: int, video_dir: Path) -> tuple[float, int]:
    """Whole jobs in process: submit, poll (SUCCEEDED), fetch the video. Returns (jobs/s, calls
    per job). The video cache is warmed first (one render copied to every tint) so the number
    measures the HTTP path; render time is measured on its own."""
    import httpx

    from mockserver import create_app
    from mockserver.core.artifacts import VideoKey, render_mp4

    body = {"model": "wan2.6-t2v", "input": {"prompt": "a cat"},
            "parameters": {"size": "1280*720", "duration": 2}}
    app = create_app(seed=1, timing="instant", video_dir=str(video_dir),
                     dashscope_rate_limits="off")
    backend = app.state.backend
    provider = app.state.providers["dashscope"]
    op = provider.contract.operation("createVideoSynthesis")
    spec, _ = provider.policy.judge(op, body)
    probe = backend.submit(family="dashscope", operation=op.operation_id, spec=spec,
                           request=body, task_id="probe")
    key = backend.video_key(probe)
    backend.reset()
    first = VideoKey(key.width, key.height, key.duration, key.audio, 0)
    render_mp4(first, video_dir / first.filename)
    for tint in range(1, 256):
        shutil.copyfile(video_dir / first.filename, video_dir / VideoKey(
            key.width, key.height, key.duration, key.audio, tint).filename)
    calls_per_job = 0

    async def run() -> float:
        nonlocal calls_per_job
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            t0 = time.perf_counter()
            for _ in range(jobs):
                calls = 0
                r = await client.post(CREATE_PATH, json=body, headers=HEADERS)
                calls += 1
                task_id = r.json()["output"]["task_id"]
                r = await client.get(f"/api/v1/tasks/{task_id}", headers=HEADERS)
                calls += 1
                out = r.json()["output"]
                assert out["task_status"] == "SUCCEEDED", out
                video = await client.get(out["video_url"])
                calls += 1
                assert video.status_code == 200 and video.content[4:8] == b"ftyp"
                calls_per_job = max(calls_per_job, calls)
            return jobs / (time.perf_counter() - t0)

    return asyncio.run(run()), calls_per_job


def tasks_memory(count: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--_tasks-memory", str(count)],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _tasks_memory(count: int) -> None:
    """In a fresh process: submit `count` tasks through the app (raw ASGI calls, the full
    request pipeline) and report the resident-memory growth."""
    from mockserver import create_app
    from mockserver.core.clock import ManualClock

    app = create_app(seed=1, timing="fast", clock=ManualClock(),
                     dashscope_rate_limits="off", replicate_rate_limits="off")
    body = json.dumps(VALID).encode()
    headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"host", b"bench"))

    async def submit_all() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        for _ in range(count):
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": "POST", "scheme": "http", "path": CREATE_PATH,
                     "raw_path": CREATE_PATH.encode(), "query_string": b"", "root_path": "",
                     "headers": headers, "server": ("127.0.0.1", 80),
                     "client": ("127.0.0.1", 1), "state": {}}
            await app(scope, receive, send)
        assert status.count(200) == count, set(status)

    gc.collect()
    before = rss_mb(os.getpid())
    t0 = time.perf_counter()
    asyncio.run(submit_all())
    secs = time.perf_counter() - t0
    gc.collect()
    after = rss_mb(os.getpid())
    stored = len(app.state.backend.store)
    print(json.dumps({"tasks": stored, "rss_delta_mb": after - before, "rss_mb": after,
                      "seconds": secs}))


def mp4_times(directory: Path) -> dict[tuple[str, bool], float]:
    from mockserver.core.artifacts import VideoKey, render_mp4

    out = {}
    for label, (w, h) in RESOLUTIONS.items():
        for audio in (False, True):
            key = VideoKey(w, h, 5, audio, 7)
            t0 = time.perf_counter()
            render_mp4(key, directory / key.filename)
            out[(label, audio)] = time.perf_counter() - t0
    return out


# -- the run ---------------------------------------------------------------------------------
@dataclass
class Report:
    info: dict[str, str]
    args: argparse.Namespace
    http: dict[str, tuple[Load, Load]] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)
    asgi: dict[str, tuple[float, float]] = field(default_factory=dict)
    jobs: tuple[float, int] | None = None
    tasks: dict[str, float] | None = None
    mp4: dict[tuple[str, bool], float] = field(default_factory=dict)
    million: dict[str, Any] | None = None
    stores: list[tuple[str, dict[str, tuple[Load, Load]]]] = field(default_factory=list)

    def markdown(self) -> str:
        a = self.args
        i = self.info
        lines = [
            "### Run",
            "",
            f"- date: {i['date']}; machine: {i['nproc']} CPUs, {i['cpu']}; kernel {i['kernel']}",
            f"- Python {i['python']}; {i['packages']}",
            f"- command: `python benchmarks/run.py {' '.join(sys.argv[1:])}`".replace(" `", " `"),
            f"- HTTP: server pinned to CPU {a.server_cpu} (uvicorn, uvloop, httptools, access log "
            f"off), load generator `{a.generator_used}` pinned to CPU {a.load_cpu}, "
            f"{a.connections} connections, {a.duration:g} s per run, {a.rounds} alternating "
            f"runs per test (median shown), loopback only",
            "",
        ]
        if self.http:
            lines += ["| HTTP (one server core) | bare req/s | wanmock req/s | ratio | "
                      "server CPU us/req bare / wanmock | CPU ratio | "
                      "bare p50 / p99 ms | wanmock p50 / p99 ms | wanmock non-2xx |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for name, (b, w) in self.http.items():
                lines.append(
                    f"| {name} | {b.rps:,.0f} | {w.rps:,.0f} | **{w.rps / b.rps:.2f}x** | "
                    f"{b.cpu_us:.0f} / {w.cpu_us:.0f} | {b.cpu_us / w.cpu_us:.2f}x | "
                    f"{b.p50_ms:.2f} / {b.p99_ms:.2f} | {w.p50_ms:.2f} / {w.p99_ms:.2f} | "
                    f"{w.non2xx:,} of {w.requests:,} |")
            lines += ["", f"Resident memory after the runs: bare {self.rss.get('bare', 0):.1f} MB,"
                      f" wanmock {self.rss.get('wanmock', 0):.1f} MB (VmRSS; wanmock then holds "
                      "every task the POST test created).", ""]
        if self.stores:
            lines += ["| Store (HTTP) | GET poll req/s | GET ratio | GET CPU us/req (ratio) | "
                      "POST valid req/s | POST ratio | POST CPU us/req (ratio) | non-2xx |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for label, results in self.stores:
                g_b, g_w = results["GET poll"]
                p_b, p_w = results["POST create (valid)"]
                lines.append(
                    f"| {label} | {g_w.rps:,.0f} | **{g_w.rps / g_b.rps:.2f}x** | "
                    f"{_cpu_cell(g_b, g_w)} | "
                    f"{p_w.rps:,.0f} | **{p_w.rps / p_b.rps:.2f}x** | "
                    f"{_cpu_cell(p_b, p_w)} | "
                    f"{g_w.non2xx + p_w.non2xx:,} |")
            redis_cpu = a.server_cpu if a.redis_cpu is None else a.redis_cpu
            lines += ["", "Ratios against bare Starlette on one server core, alternating runs "
                      "in the same block (medians); CPU: the server processes' user + system "
                      "time per request, ratio bare over wanmock (a Redis store's CPU counts "
                      "redis-server's too: the second figure is the fake's alone). `--workers "
                      "2` runs on both cores (the load generator shares one of them); "
                      f"redis-server pinned to CPU {redis_cpu}.", ""]
        if self.asgi:
            lines += ["| In process (httpx ASGITransport, sequential) | bare calls/s | "
                      "wanmock calls/s | ratio |", "|---|---:|---:|---:|"]
            for name, (b, w) in self.asgi.items():
                lines.append(f"| {name} | {b:,.0f} | {w:,.0f} | **{w / b:.2f}x** |")
            lines.append("")
        if self.jobs:
            lines += [f"Whole jobs in process (submit, poll to SUCCEEDED, fetch the MP4; "
                      f"`timing=\"instant\"`): **{self.jobs[0]:,.0f} jobs/s**, "
                      f"{self.jobs[1]} calls per job.", ""]
        if self.tasks:
            t = self.tasks
            lines += [f"Memory for {int(t['tasks']):,} stored tasks (submitted through the app): "
                      f"**{t['rss_delta_mb']:.1f} MB** RSS growth "
                      f"({t['rss_delta_mb'] * 1024 / t['tasks']:.2f} KB per task; process "
                      f"{t['rss_mb']:.0f} MB; {t['tasks'] / t['seconds']:,.0f} submits/s).", ""]
        if self.mp4:
            lines += ["| MP4 render, 5 s (render_mp4) | without audio | with audio |",
                      "|---|---:|---:|"]
            for label in RESOLUTIONS:
                w, h = RESOLUTIONS[label]
                lines.append(f"| {label} {w}x{h} | {self.mp4[(label, False)]:.2f} s | "
                             f"{self.mp4[(label, True)]:.2f} s |")
            lines.append("")
        if self.million:
            m = self.million
            lines += [f"1,000,000-request check: {m['requests']:,} GET polls in "
                      f"{m['seconds']:.0f} s ({m['rps']:,.0f} req/s); wanmock RSS "
                      f"{m['rss_before']:.1f} MB before, **{m['rss_after']:.1f} MB after**; "
                      f"journal {m['journal']} entries.", ""]
        return "\n".join(lines)


def _cpu_cell(bare: Load, wan: Load) -> str:
    """`CPU us/req (ratio)`; with the store's server as well when it was measured apart."""
    cell = f"{wan.cpu_us:.0f} ({bare.cpu_us / wan.cpu_us:.2f}x)"
    if wan.cpu_all_us == wan.cpu_all_us:  # not NaN: a store server was measured too
        cell = (f"{wan.cpu_all_us:.0f} ({bare.cpu_us / wan.cpu_all_us:.2f}x) with "
                f"redis-server; {cell} the fake alone")
    return cell


def store_runs(args: argparse.Namespace, load: Any, log: Any
               ) -> list[tuple[str, dict[str, tuple[Load, Load]]]]:
    """GET poll and valid POST for each store, next to bare Starlette (`--rounds` alternating
    runs, medians). A Redis store's CPU per request counts redis-server's CPU too."""
    kw = {"seconds": args.duration, "connections": args.connections, "cpu": args.load_cpu,
          "max_requests": args.max_requests}
    tests = (("GET poll", "GET", None, None), ("POST create (valid)", "POST", CREATE_PATH, VALID))
    wanted = [s.strip() for s in args.stores.split(",") if s.strip()]
    out = []
    redis_cpu = args.server_cpu if args.redis_cpu is None else args.redis_cpu
    with tempfile.TemporaryDirectory(prefix="wanmock-store-") as tmp, \
            redis_server(redis_cpu) as redis, \
            server("bare", args.server_cpu) as (bare_url, bare_pid):
        configs: list[tuple[str, str, int, list[int]]] = []
        for name in wanted:
            if name == "sqlite":
                configs.append(("sqlite", f"sqlite:///{tmp}/bench.db", 1, []))
            elif name in ("redis", "redis-workers") and redis is None:
                log(f"  {name}: skipped (no redis-server)")
            elif name == "redis" and redis is not None:
                configs.append(("redis", redis[0] + "?prefix=one", 1, [redis[1]]))
            elif name == "redis-workers" and redis is not None:
                configs.append(("redis, --workers 2", redis[0] + "?prefix=two", 2, [redis[1]]))
        bare_load = with_cpu(load, [bare_pid])
        for label, url, workers, extra in configs:
            cpu: int | set[int] = args.server_cpu if workers == 1 else {args.server_cpu,
                                                                         args.load_cpu}
            with server("wanmock", cpu, store=url, workers=workers) as (wan_url, wan_pid):
                wan_load = with_cpu(load, [wan_pid])
                if extra:  # a store server of its own (redis-server): measured with the fake too
                    wan_load = with_cpu(wan_load, [wan_pid, *extra], "cpu_all_us")
                task_id = prepare_task(wan_url)
                results = {}
                for name, method, path, body in tests:
                    runs: dict[str, list[Load]] = {"bare": [], "wanmock": []}
                    for _ in range(args.rounds):
                        runs["bare"].append(bare_load(
                            bare_url + (path or "/api/v1/tasks/0b6a4c2e-2d1f-4a59-9c5e-5b1d2f3e"
                                                "4a5b"), method, body, **kw))
                        runs["wanmock"].append(wan_load(
                            wan_url + (path or f"/api/v1/tasks/{task_id}"), method, body, **kw))
                    b, w = median_load(runs["bare"]), median_load(runs["wanmock"])
                    log(f"  {label:<20} {name:<24} bare {b.rps:>8,.0f}  wanmock {w.rps:>8,.0f}"
                        f"  ({w.rps / b.rps:.2f}x; CPU us/req bare {b.cpu_us:.0f}, wanmock "
                        f"{_cpu_cell(b, w)})  non-2xx {w.non2xx}")
                    results[name] = (b, w)
                out.append((label, results))
    return out


def write_doc(path: Path, section: str) -> None:
    """Replace the generated section of docs/benchmarks.md, keeping the hand-written notes."""
    begin, end = "<!-- benchmark:begin -->", "<!-- benchmark:end -->"
    text = path.read_text() if path.exists() else (
        "# Benchmarks\n\nGenerated by `python benchmarks/run.py`.\n\n"
        f"{begin}\n{end}\n")
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1] if end in rest else ""
    path.write_text(f"{head}{begin}\n{section}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per HTTP test")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rounds", type=int, default=None,
                   help="alternating bare/wanmock runs per HTTP test; medians are reported "
                        "(default 3, --quick 2)")
    p.add_argument("--quick", action="store_true", help="3 s tests, smaller in-process counts")
    p.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--max-requests", type=int, default=2_000_000,
                   help="cap per HTTP test (the generator stops there)")
    p.add_argument("--million", action="store_true",
                   help="also send 1,000,000 GET polls to one wanmock server and report its RSS")
    p.add_argument("--tasks", type=int, default=None, help="stored tasks for the memory test")
    p.add_argument("--skip", action="append", default=[],
                   choices=["http", "asgi", "jobs", "tasks", "mp4", "stores"])
    p.add_argument("--redis-cpu", type=int, default=None,
                   help="the CPU redis-server is pinned to (default: the server's, so the "
                        "fake and its store share the one server core, and no round trip "
                        "waits for another core to wake up)")
    p.add_argument("--stores", default="sqlite,redis,redis-workers",
                   help="stores to compare over HTTP (GET poll, valid POST) besides memory: "
                        "any of sqlite, redis, redis-workers (redis with --workers 2); "
                        "redis needs redis-server")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--_httpx-load", dest="httpx_load", help=argparse.SUPPRESS)
    p.add_argument("--_tasks-memory", dest="tasks_memory", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.httpx_load:
        _httpx_load(args.httpx_load)
        return 0
    if args.tasks_memory:
        _tasks_memory(args.tasks_memory)
        return 0
    if args.quick and args.duration == 10.0:
        args.duration = 3.0
    if args.rounds is None:
        args.rounds = 2 if args.quick else 3
    tasks = args.tasks or 100_000
    asgi_seconds = 1.0 if args.quick else 3.0
    jobs = 300 if args.quick else 2000
    cpus = os.sched_getaffinity(0)
    if args.server_cpu not in cpus or args.load_cpu not in cpus:
        p.error(f"CPUs {args.server_cpu}/{args.load_cpu} not available (have {sorted(cpus)})")
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    load = run_wrk if use_wrk else run_httpx
    args.generator_used = "wrk -t1" if use_wrk else "httpx (async, 1 process)"
    report = Report(machine(), args)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    tests = (("GET poll", "GET", None, None, None),
             ("POST create (valid)", "POST", CREATE_PATH, VALID, None),
             ("POST create (invalid)", "POST", CREATE_PATH, INVALID, None),
             ("fal GET status", "GET", "fal", None, FAL_HEADERS),
             ("fal POST submit", "POST", FAL_SUBMIT_PATH, FAL_VALID, FAL_HEADERS),
             ("replicate GET prediction", "GET", "replicate", None, REP_HEADERS),
             ("replicate POST create", "POST", REP_CREATE_PATH, REP_VALID, REP_HEADERS))

    if "http" not in args.skip:
        # Both servers run at once (each pinned to the server CPU, only one under load at a
        # time) and the tests alternate bare/wanmock, `rounds` times: a machine whose speed
        # drifts (other jobs, CPU steal) then moves both columns alike. Medians are reported.
        kw = {"seconds": args.duration, "connections": args.connections, "cpu": args.load_cpu,
              "max_requests": args.max_requests}
        with server("bare", args.server_cpu) as (bare_url, bare_pid), \
                server("wanmock", args.server_cpu) as (wan_url, wan_pid):
            loads = {"bare": with_cpu(load, [bare_pid]), "wanmock": with_cpu(load, [wan_pid])}
            task_id = prepare_task(wan_url)
            fal_status = prepare_fal_task(wan_url)
            prediction = prepare_replicate_prediction(wan_url)
            bare_task = "/api/v1/tasks/0b6a4c2e-2d1f-4a59-9c5e-5b1d2f3e4a5b"
            targets = {"bare": (bare_url, bare_task),
                       "wanmock": (wan_url, f"/api/v1/tasks/{task_id}")}
            # fal's paths on the fake; the same bare Starlette routes as the baseline
            fal_paths = {"bare": {"fal": bare_task, FAL_SUBMIT_PATH: CREATE_PATH,
                                  "replicate": bare_task, REP_CREATE_PATH: CREATE_PATH},
                         "wanmock": {"fal": fal_status, FAL_SUBMIT_PATH: FAL_SUBMIT_PATH,
                                     "replicate": prediction, REP_CREATE_PATH: REP_CREATE_PATH}}
            for url, task_path in targets.values():  # warm up
                load(url + task_path, "GET", None, **{**kw, "seconds": 1.0})
            for name, method, path, body, headers in tests:
                runs: dict[str, list[Load]] = {"bare": [], "wanmock": []}
                for _ in range(args.rounds):
                    for kind, (url, task_path) in targets.items():
                        where = fal_paths[kind].get(path, path) if headers else path
                        r = loads[kind](url + (where or task_path), method, body, **kw,
                                        headers=headers)
                        runs[kind].append(r)
                        log(f"  {kind:<8} {name:<24} {r.rps:>9,.0f} req/s  p50 {r.p50_ms:.2f} ms"
                            f"  p99 {r.p99_ms:.2f} ms  CPU {r.cpu_us:.0f} us/req  non-2xx "
                            f"{r.non2xx}  errors {r.errors}")
                report.http[name] = (median_load(runs["bare"]), median_load(runs["wanmock"]))
            report.rss["bare"] = rss_mb(bare_pid)
            report.rss["wanmock"] = rss_mb(wan_pid)

    if "stores" not in args.skip and args.stores:
        log("stores...")
        report.stores = store_runs(args, load, log)

    os.sched_setaffinity(0, {args.server_cpu})  # in-process parts on one core too
    if "asgi" not in args.skip:
        log("in process (ASGITransport)...")
        report.asgi = in_process_rates(asgi_seconds)
    with tempfile.TemporaryDirectory(prefix="wanmock-bench-") as tmp:
        if "jobs" not in args.skip:
            log("jobs in process...")
            (Path(tmp) / "jobs").mkdir()
            report.jobs = jobs_per_second(jobs, Path(tmp) / "jobs")
        if "mp4" not in args.skip:
            log("MP4 render times...")
            report.mp4 = mp4_times(Path(tmp))
    if "tasks" not in args.skip:
        log(f"memory for {tasks:,} tasks...")
        report.tasks = tasks_memory(tasks)
    os.sched_setaffinity(0, cpus)

    if args.million:
        log("1,000,000 GET polls...")
        with server("wanmock", args.server_cpu) as (url, pid):
            task_id = prepare_task(url)
            before = rss_mb(pid)
            rate = report.http["GET poll"][1].rps if report.http else 5000.0
            total, spent, t0 = 0, 0.0, time.perf_counter()
            while total < 1_000_000:  # wrk runs for its duration: ask for what is left
                left = 1_000_000 - total
                r = load(f"{url}/api/v1/tasks/{task_id}", "GET", None,
                         seconds=min(600.0, left / rate * 1.1 + 1), connections=args.connections,
                         cpu=args.load_cpu, max_requests=left)
                total += r.requests
                spent += r.requests / r.rps if r.rps else 0.0
                rate = max(r.rps, 100.0)
            import httpx

            journal = httpx.get(f"{url}/_wanmock/journal?limit=100000").json()["count"]
            report.million = {"requests": total, "seconds": time.perf_counter() - t0,
                              "rps": total / spent if spent else 0.0, "rss_before": before,
                              "rss_after": rss_mb(pid), "journal": journal}

    text = report.markdown()
    print(text)
    if not args.no_write:
        write_doc(Path(args.output), text)
        log(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
