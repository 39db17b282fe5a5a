"""`@fal-ai/client` 1.10.1 (npm, Node 20), unchanged, against `wanmock serve --tls`: it trusts
the fake by NODE_EXTRA_CA_CERTS and reaches it through its documented `requestMiddleware` (the
JavaScript client has no host variable). subscribe with logs and queue updates, the status
stream, result, cancel, run and a 422 the client raises as its ValidationError
(tests/clients/node_fal/fal.mjs)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import missing, require_program, serve_process

NODE_DIR = Path(__file__).parent / "node_fal"


@pytest.mark.clients
def test_fal_js_client_against_wanmock_serve_tls(tmp_path: Path) -> None:
    node = require_program("node", "Node 20: apt-get install nodejs npm")
    if not (NODE_DIR / "node_modules" / "@fal-ai" / "client").is_dir():
        missing(f"@fal-ai/client is not installed: cd {NODE_DIR} && npm ci")
    tls_dir = tmp_path / "tls"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "NODE_"))}
    with serve_process("--tls", "--tls-dir", str(tls_dir), "--timing", "instant",
                       "--family", "fal", verify=False, env=env) as (base, _):
        done = subprocess.run(
            [node, "fal.mjs", base], cwd=NODE_DIR, capture_output=True, text=True, timeout=120,
            env={**env, "NODE_EXTRA_CA_CERTS": str(tls_dir / "ca.pem"), "FAL_KEY": "wm-id:wm-s"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["subscribe"] == ["video/mp4", "string", "COMPLETED", True]
    assert out["streaming"] == ["COMPLETED", True, True]  # status/stream, then the result
    assert out["cancel"] == ["COMPLETED", "request_cancelled"]
    assert out["run"] == 1280
    assert out["invalid"] == [True, 422, ["body.duration:literal_error"]]
