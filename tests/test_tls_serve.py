"""`wanmock serve --tls` as users run it: real clients in their own processes (Python httpx,
requests, aiohttp and urllib, the dashscope SDK, Node's fetch) trust it through environment
variables alone, and `--workers 2` serves TLS from every worker. Only 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest

from tests.helpers import ROOT, require_program, serve_process, until

# The variables a machine may already set (this one sets them all to the system bundle): the
# clients below start without them, so only what wanmock prints makes them trust the fake.
TRUST_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                   "NODE_EXTRA_CA_CERTS")
CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"

PROBE = textwrap.dedent("""
    import asyncio, json, sys, urllib.request

    import aiohttp, httpx, requests

    url = sys.argv[1] + "/_wanmock/clock"

    async def aio():
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                return response.status

    results = {}
    for name, call in [("httpx", lambda: httpx.get(url).status_code),
                       ("requests", lambda: requests.get(url).status_code),
                       ("aiohttp", lambda: asyncio.run(aio())),
                       ("urllib", lambda: urllib.request.urlopen(url).status)]:
        try:
            results[name] = call()
        except Exception as exc:
            results[name] = "CERTIFICATE_VERIFY_FAILED" if "CERTIFICATE_VERIFY_FAILED" in str(
                exc) or "certificate verify failed" in str(exc) else repr(exc)
    print(json.dumps(results))
""")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in TRUST_VARIABLES}


@pytest.fixture(scope="module")
def served(tls_dir: Path) -> Iterator[tuple[str, list[str]]]:
    """`wanmock serve --tls` on the session's CA directory; (base URL, its banner)."""
    verify = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
    with tempfile.TemporaryFile("w+") as out, serve_process(
            "--tls", "--tls-dir", str(tls_dir), "--tls-name", "queue.fal.run", "--timing",
            "instant", "--seed", "5", "--family", "dashscope", verify=verify, stdout=out,
            env=clean_env()) as (base, _):
        out.seek(0)
        yield base, out.read().splitlines()


def test_the_banner_prints_the_bundle_and_the_variables(served, tls_dir: Path) -> None:
    base, banner = served
    assert banner[0].startswith("wanmock ") and f"serving on {base}" in banner[0]
    text = "\n".join(banner)
    assert "certificate for localhost, 127.0.0.1, ::1, queue.fal.run" in text
    bundle, ca = tls_dir / "bundle.pem", tls_dir / "ca.pem"
    assert f"CA bundle  {bundle}" in text
    for line in (f"SSL_CERT_FILE={bundle}", f"REQUESTS_CA_BUNDLE={bundle}",
                 f"CURL_CA_BUNDLE={bundle}", f"NODE_EXTRA_CA_CERTS={ca}"):
        assert line in text, text
    assert f'eval "$(wanmock tls env --tls-dir {tls_dir})"' in text
    # A --tls-name is a name the control plane answers to (its Host check).
    trust = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
    for host, status in [("queue.fal.run", 200), ("elsewhere.example", 403)]:
        r = httpx.get(base + "/_wanmock/clock", headers={"Host": host}, verify=trust)
        assert r.status_code == status, (host, r.text)


def test_python_clients_trust_it_by_environment_alone(served, tls_dir: Path) -> None:
    base, _ = served
    script = [sys.executable, "-c", PROBE, base]
    without = subprocess.run(script, env=clean_env(), capture_output=True, text=True,
                             timeout=120, check=True)
    assert json.loads(without.stdout) == dict.fromkeys(
        ["httpx", "requests", "aiohttp", "urllib"], "CERTIFICATE_VERIFY_FAILED")
    # What docs/tls.md tells a user to type: eval "$(wanmock tls env)", then run the client.
    shell = (f'eval "$({sys.executable} -m mockserver tls env --tls-dir "$1")" && '
             'exec "$2" -c "$3" "$4"')
    trusted = subprocess.run(["sh", "-c", shell, "sh", str(tls_dir), sys.executable, PROBE,
                              base], env={**clean_env(), "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(trusted.stdout) == {"httpx": 200, "requests": 200, "aiohttp": 200,
                                          "urllib": 200}


def test_the_dashscope_sdk_completes_jobs_over_https(served, tls_dir: Path) -> None:
    """The sync client (requests) trusts the fake through REQUESTS_CA_BUNDLE; the async one
    (aiohttp) pins certifi's roots in dashscope 2.0.2 (`aio_session.get_ssl_context`), so no
    variable reaches it: it trusts the fake once its cached context is one that reads them."""
    base, _ = served
    script = textwrap.dedent("""
        import asyncio, json, ssl, sys
        import dashscope
        from dashscope import VideoSynthesis
        from dashscope.aigc.video_synthesis import AioVideoSynthesis
        from dashscope.api_entities import aio_session

        dashscope.base_http_api_url = sys.argv[1] + "/api/v1"
        args = dict(api_key="sk-tls-sdk", model="wan2.6-t2v", prompt="a lighthouse",
                    size="1280*720", duration=2)
        results = []
        rsp = VideoSynthesis.call(**args)                    # requests
        results.append([rsp.status_code, rsp.output.task_status, rsp.output.video_url])

        async def aio_call():
            try:
                return await AioVideoSynthesis.call(**args)   # aiohttp
            finally:
                await aio_session.close_shared_aio_session()

        try:
            asyncio.run(aio_call())
        except Exception as exc:
            results.append("CERTIFICATE_VERIFY_FAILED" in str(exc))
        aio_session._shared_ssl_context = ssl.create_default_context()  # reads SSL_CERT_FILE
        rsp = asyncio.run(aio_call())
        results.append([rsp.status_code, rsp.output.task_status, rsp.output.video_url])
        print(json.dumps(results))
    """)
    # The variables a server fixture or `wanmock tls env` gives, and nothing else.
    from mockserver.tls import trust_variables

    env = {**clean_env(), **trust_variables(str(tls_dir / "bundle.pem"),
                                            str(tls_dir / "ca.pem"))}
    run = subprocess.run([sys.executable, "-c", script, base], env=env, capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    sync, aio_refused, aio = json.loads(run.stdout.splitlines()[-1])
    assert aio_refused is True
    for status, state, video in (sync, aio):
        assert (status, state) == (200, "SUCCEEDED")
        assert video.startswith(base + "/_wanmock/videos/")


NODE_SCRIPT = textwrap.dedent("""
    const base = process.argv[1];
    const headers = {"Authorization": "Bearer sk-tls-node", "X-DashScope-Async": "enable",
                     "Content-Type": "application/json"};
    (async () => {
      try {
        const submit = await fetch(base + "%s", {method: "POST", headers, body: JSON.stringify(
          {model: "wan2.6-t2v", input: {prompt: "a lighthouse"},
           parameters: {size: "1280*720", duration: 2}})});
        const id = (await submit.json()).output.task_id;
        const task = await (await fetch(base + "/api/v1/tasks/" + id, {headers})).json();
        const video = await fetch(task.output.video_url);
        const bytes = Buffer.from(await video.arrayBuffer());
        console.log(JSON.stringify({state: task.output.task_status, url: task.output.video_url,
          status: video.status, type: video.headers.get("content-type"), size: bytes.length,
          box: bytes.subarray(4, 8).toString("latin1")}));
      } catch (error) {
        console.log(JSON.stringify({error: String(error.cause && error.cause.code || error)}));
      }
    })();
""") % CREATE


def test_node_fetches_a_result_mp4_over_https_with_node_extra_ca_certs(
        served, tls_dir: Path) -> None:
    node = require_program("node", "apt-get install nodejs (Node 18 or later)")
    base, _ = served

    def run(**extra: str) -> dict:
        done = subprocess.run([node, "-e", NODE_SCRIPT, base], env={**clean_env(), **extra},
                              capture_output=True, text=True, timeout=60, check=True)
        return json.loads(done.stdout)

    assert run() == {"error": "UNABLE_TO_VERIFY_LEAF_SIGNATURE"}
    got = run(NODE_EXTRA_CA_CERTS=str(tls_dir / "ca.pem"))
    assert got["state"] == "SUCCEEDED" and got["url"].startswith(base + "/_wanmock/videos/")
    assert (got["status"], got["type"], got["box"]) == (200, "video/mp4", "ftyp")
    assert got["size"] > 1000


def test_every_worker_serves_tls(tls_dir: Path, tmp_path: Path) -> None:
    from tests.test_store_servers import _children

    trust = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
    with serve_process("--tls", "--tls-dir", str(tls_dir), "--workers", "2", "--store",
                       f"sqlite:///{tmp_path / 'state.db'}", "--timing", "instant",
                       "--family", "dashscope", verify=trust) as (base, proc):
        workers = until(lambda: len(_children(proc.pid)) >= 2 and _children(proc.pid), 60,
                         "two worker processes")
        # With one worker stopped, the other accepts every new connection: each must hand out
        # the certificate. (The stop is kept short: uvicorn replaces a worker that does not
        # answer its health check within 5 s, so the stopped one may be gone by SIGCONT.)
        for paused in workers[:2]:
            os.kill(paused, signal.SIGSTOP)
            try:
                answered = httpx.get(base + "/_wanmock/clock", verify=trust, timeout=10)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(paused, signal.SIGCONT)
            assert answered.status_code == 200
        headers = {"Authorization": "Bearer sk-tls-workers", "X-DashScope-Async": "enable"}
        body = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse"}}
        with httpx.Client(base_url=base, verify=trust, timeout=10) as client:
            task_id = client.post(CREATE, json=body, headers=headers).json()["output"]["task_id"]
        for _ in range(4):  # fresh connections, whichever worker takes them
            polled = httpx.get(f"{base}/api/v1/tasks/{task_id}", headers=headers, verify=trust)
            assert polled.json()["output"]["task_status"] == "SUCCEEDED"
        certifi_only = ssl.create_default_context(cafile=certifi.where())
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(base + "/_wanmock/clock", verify=certifi_only)
