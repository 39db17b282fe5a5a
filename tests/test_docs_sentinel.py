"""The docs' sentinel catches what escapes: a page whose snippet reaches the real provider, or
reaches the provider without the proxy, fails (tests/docs_harness.py runs docs/loop.md)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sybil import Sybil
from sybil.example import SybilFailure

from tests.docs_harness import Harness, parsers, teardown

JOB = '''
```python title="your_e2e_job.py"
import os
from dashscope import VideoSynthesis

done = VideoSynthesis.call(api_key=os.environ["DASHSCOPE_API_KEY"], model="wan2.6-t2v",
                           prompt="a lighthouse", size="1280*720")
assert done.output.task_status == "SUCCEEDED", done
```
'''
PROXY = '''
```bash
wanmock proxy --target https://dashscope-intl.aliyuncs.com --port 8010 --record c.jsonl --budget 1 &
```
'''
# The README's and the CI example's old advice: the 1.x SDK ignores DASHSCOPE_BASE_URL.
WRONG_VARIABLE = PROXY + JOB + '''
```bash
DASHSCOPE_BASE_URL=http://127.0.0.1:8010/api/v1 python your_e2e_job.py
```
'''
REAL_HOST_IN_PROCESS = PROXY + '''
```python
import httpx

httpx.get("https://dashscope-intl.aliyuncs.com/api/v1/tasks/x")
```
'''
UNKNOWN_COMMAND = '''
```bash
curl -s http://127.0.0.1:8010/_wanmock/proxy
```
'''
pytestmark = pytest.mark.usefixtures("loopback_only")


def run_page(text: str, tmp_path: Path, tmp_path_factory) -> list[str]:
    """Evaluate a page as the suite evaluates docs/loop.md; the failures, one per example."""
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    document = Sybil(parsers=parsers(), path=str(tmp_path), patterns=["page.md"]).parse(page)
    document.namespace["tmp_path_factory"] = tmp_path_factory
    failures = []
    try:
        for example in document.examples():
            try:
                example.evaluate()
            except SybilFailure as failure:
                failures.append(failure.result)
    finally:
        teardown(document.namespace)
    return failures


def test_a_variable_the_client_ignores_is_a_failed_snippet(tmp_path, tmp_path_factory):
    [failure] = run_page(WRONG_VARIABLE, tmp_path, tmp_path_factory)
    assert "`your_e2e_job.py` exited 1" in failure
    assert "a lookup of dashscope.aliyuncs.com (in a subprocess)" in failure


def test_a_snippet_that_names_the_real_host_fails(tmp_path, tmp_path_factory):
    [failure] = run_page(REAL_HOST_IN_PROCESS, tmp_path, tmp_path_factory)
    assert "traffic escaped the proxy: a lookup of dashscope-intl.aliyuncs.com" in failure


def test_a_command_the_runner_does_not_know_fails(tmp_path, tmp_path_factory):
    [failure] = run_page(UNKNOWN_COMMAND, tmp_path, tmp_path_factory)
    assert "the docs runner does not know `curl`" in failure


def test_a_request_that_skips_the_proxy_is_an_escape(tmp_path):
    harness = Harness(tmp_path).__enter__()
    try:
        httpx.get(harness.stand_in.url + "/api/v1/tasks/x",
                  headers={"Authorization": "Bearer sk-x"})
        escaped = harness.sentinel.take()
    finally:
        harness.close()
    assert escaped == ["GET /api/v1/tasks/x reached the provider without the proxy"]
