"""The dashboard with many tasks: how long its pages take with 10,000 (or `--tasks N`) tasks.

    python benchmarks/ui.py                 # 10,000 tasks, in process and over HTTP
    python benchmarks/ui.py --tasks 50000 --repeat 20 --no-browser

Tasks are submitted through the app (raw DashScope and jiekou creates over httpx's
ASGITransport, the whole request pipeline), a quarter of them polled, the clock moved so about
half have ended. Then each page is fetched `--repeat` times through ASGITransport (application
time, no sockets) and over HTTP from a live `ThreadedMockServer` on 127.0.0.1 (what a browser's
first byte costs) and loaded in chromium (navigation to the `load` event), and the median and
worst time reported. Not a test: the figures go into
docs/benchmarks.md by hand, noted with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mockserver.app import create_app  # noqa: E402
from mockserver.core.clock import ManualClock  # noqa: E402
from mockserver.server import ThreadedMockServer  # noqa: E402

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
HEADERS = {"Authorization": "Bearer sk-bench-key-1", "X-DashScope-Async": "enable"}
BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk"},
        "parameters": {"size": "1280*720", "duration": 5}}
JIEKOU = {"model_name": "wan2.1-t2v", "prompt": "a cat", "width": 1280, "height": 720}


async def fill(app: object, count: int) -> str:
    """Submit `count` tasks (three DashScope to one jiekou), poll every fourth; return one id."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        some = ""
        for i in range(count):
            if i % 500 == 499:
                app.state.backend.clock.advance(0.5)  # type: ignore[attr-defined]
            if i % 4 == 3:
                r = await client.post("/v3/async/wan-t2v", json=JIEKOU,
                                      headers={"Authorization": "Bearer sk_bench"})
                continue
            r = await client.post(CREATE, json=BODY, headers=HEADERS)
            some = r.json()["output"]["task_id"]
            if i % 4 == 0:
                await client.get(f"/api/v1/tasks/{some}", headers=HEADERS)
        return some


PAGES = [
    ("tasks, page 1", "/_wanmock/ui"),
    ("tasks, page 100", "/_wanmock/ui?page=100"),
    ("tasks, family filter", "/_wanmock/ui?family=jiekou"),
    ("tasks, state filter (views every task)", "/_wanmock/ui?state=succeeded"),
    ("one task", "/_wanmock/ui/tasks/{some}"),
    ("journal", "/_wanmock/ui/journal"),
    ("contracts", "/_wanmock/ui/contracts"),
]


def stats(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:8.1f} ms  (max {max(times) * 1000:.1f})"


async def in_process(app: object, some: str, repeat: int) -> list[tuple[str, str, int]]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    out = []
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for name, path in PAGES:
            times, size = [], 0
            for _ in range(repeat):
                start = time.perf_counter()
                r = await client.get(path.format(some=some))
                times.append(time.perf_counter() - start)
                size = len(r.content)
                assert r.status_code == 200, (path, r.status_code)
            out.append((name, stats(times), size))
    return out


def over_http(app: object, some: str, repeat: int,
              browser: bool) -> tuple[list[tuple[str, str, int]], list[tuple[str, str]]]:
    out, loads = [], []
    with ThreadedMockServer(app) as server, httpx.Client(base_url=server.url,
                                                         trust_env=False) as client:
        for name, path in PAGES[:5]:
            times, size = [], 0
            for _ in range(repeat):
                start = time.perf_counter()
                r = client.get(path.format(some=some))
                times.append(time.perf_counter() - start)
                size = len(r.content)
            out.append((name, stats(times), size))
        if browser:
            loads = in_browser(server.url, some, repeat)
    return out, loads


def in_browser(base: str, some: str, repeat: int) -> list[tuple[str, str]]:
    """Chromium's navigation time to the `load` event (HTML, CSS, JS), per page."""
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-quic"]
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        page = browser.new_page()
        for name, path in PAGES[:5]:
            times = []
            for _ in range(repeat):
                page.goto(base + path.format(some=some), wait_until="load")
                times.append(page.evaluate(
                    "performance.getEntriesByType('navigation')[0].duration") / 1000)
            out.append((name, stats(times)))
        browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-browser", action="store_true",
                        help="skip the load times in chromium (/usr/bin/chromium)")
    args = parser.parse_args(argv)
    app = create_app(clock=ManualClock(), seed=1, timing="fast",
                     journal_size=max(1000, args.tasks))
    start = time.perf_counter()
    some = asyncio.run(fill(app, args.tasks))
    app.state.backend.clock.advance(3)
    print(f"{args.tasks:,} tasks submitted in {time.perf_counter() - start:.1f} s")
    print(f"\nin process (ASGITransport), median of {args.repeat}:")
    for name, figure, size in asyncio.run(in_process(app, some, args.repeat)):
        print(f"  {name:<42} {figure}  {size / 1024:6.1f} KB")
    rows, loads = over_http(app, some, args.repeat, not args.no_browser)
    print(f"\nover HTTP (uvicorn on 127.0.0.1), median of {args.repeat}:")
    for name, figure, size in rows:
        print(f"  {name:<42} {figure}  {size / 1024:6.1f} KB")
    if loads:
        print(f"\nchromium, navigation to the load event, median of {args.repeat}:")
        for name, figure in loads:
            print(f"  {name:<42} {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
