"""`fal-client` 1.0.3, unchanged, against `wanmock serve --tls` by environment variables alone
(FAL_QUEUE_RUN_HOST, FAL_RUN_HOST, FAL_KEY and the trust variables `wanmock tls env` prints),
sync and async clients, in its own process: fal-client reads its hosts once, at import."""

from __future__ import annotations

import importlib.util
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import missing, serve_process

SCRIPT = r"""
import asyncio, json
import fal_client
from fal_client.client import FalClientHTTPError

APP = "wan/v2.6/text-to-video"
STUCK = {"X-Wanmock-Scenario": "stuck; seconds=600"}
FAILS = {"X-Wanmock-Scenario": "fail; kind=moderation"}
out = {}

def sync():
    h = fal_client.submit(APP, {"prompt": "a fox", "duration": "5"})
    status = fal_client.status(APP, h.request_id, with_logs=True)
    result = fal_client.result(APP, h.request_id)
    out["sync_submit"] = [h.status_url.startswith("https://127.0.0.1:"), type(status).__name__,
                          result["video"]["content_type"]]
    updates = []
    fal_client.subscribe(APP, {"prompt": "a fox"}, with_logs=True,
                         on_queue_update=updates.append)
    out["sync_subscribe"] = [type(updates[-1]).__name__, bool(updates[-1].logs)]
    ran = fal_client.run(APP, {"prompt": "a fox", "resolution": "720p"})
    out["sync_run"] = ran["video"]["width"]
    stuck = fal_client.submit(APP, {"prompt": "a fox"}, headers=STUCK)
    fal_client.cancel(APP, stuck.request_id)
    out["sync_cancel"] = type(stuck.status()).__name__, stuck.status().error_type
    for name, args, headers in (("sync_failed", {"prompt": "a fox"}, FAILS),
                                ("sync_422", {"prompt": "a fox", "duration": "7"}, None)):
        try:
            fal_client.submit(APP, args, headers=headers or {}).get()
            out[name] = None
        except FalClientHTTPError as exc:
            out[name] = [exc.status_code, exc.message[0]["type"]]

async def run_async():
    client = fal_client.AsyncClient()
    h = await client.submit(APP, {"prompt": "a fox"})
    updates = [u async for u in h.iter_events(with_logs=True)]
    result = await h.get()
    out["async_submit"] = [type(updates[-1]).__name__, result["video"]["content_type"]]
    ran = await client.run(APP, {"prompt": "a fox", "resolution": "720p"})
    out["async_run"] = ran["video"]["height"]
    stuck = await client.submit(APP, {"prompt": "a fox"}, headers=STUCK)
    await stuck.cancel()
    out["async_cancel"] = (await stuck.status()).error_type
    try:
        await (await client.submit(APP, {"prompt": "a fox", "duration": "7"})).get()
    except FalClientHTTPError as exc:
        out["async_422"] = exc.status_code

sync()
asyncio.run(run_async())
print(json.dumps(out))
"""


@pytest.mark.clients
def test_fal_client_against_wanmock_serve_tls(tmp_path: Path) -> None:
    if importlib.util.find_spec("fal_client") is None:
        missing("fal-client is not installed: pip install -e '.[test]'")
    tls_dir = tmp_path / "tls"
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("FAL_") and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    # What a user runs: `wanmock tls env` (which makes the CA), then the server.
    made = subprocess.run([sys.executable, "-m", "mockserver", "tls", "env", "--tls-dir",
                           str(tls_dir), "--shell", "dotenv"], env=clean, capture_output=True,
                          text=True, timeout=60, check=True)
    trust = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
    assert trust["SSL_CERT_FILE"] == str(tls_dir / "bundle.pem")
    verify = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
    with serve_process("--tls", "--tls-dir", str(tls_dir), "--timing", "instant",
                       "--family", "fal", verify=verify, env=clean) as (base, _):
        host = base.removeprefix("https://")
        env = {**clean, **trust, "FAL_QUEUE_RUN_HOST": host, "FAL_RUN_HOST": f"{host}/fal.run",
               "FAL_KEY": "wm-key-id:wm-key-secret"}
        done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                              text=True, timeout=180)
        journal = httpx.get(base + "/_wanmock/journal", params={"family": "fal"},
                            verify=verify).json()["entries"]
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["sync_submit"] == [True, "Completed", "video/mp4"]
    assert out["sync_subscribe"] == ["Completed", True]
    assert out["sync_run"] == 1280
    assert out["sync_cancel"] == ["Completed", "request_cancelled"]
    assert out["sync_failed"] == [422, "content_policy_violation"]
    assert out["sync_422"] == [422, "literal_error"]
    assert out["async_submit"] == ["Completed", "video/mp4"]
    assert out["async_run"] == 720
    assert out["async_cancel"] == "request_cancelled"
    assert out["async_422"] == 422
    runs = [e for e in journal if e["path"].startswith("/fal.run/")]
    assert len(runs) == 2  # fal-client's run() reached the run host's mount
    assert all("wm-key-secret" not in json.dumps(e) for e in journal)  # no key in the journal
