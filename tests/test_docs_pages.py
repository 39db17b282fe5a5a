"""Every page of the site, and the README, runs: each python and bash block in order, as a
reader would run it (tests/docs_pages.py says how), with nothing leaving 127.0.0.1."""

from __future__ import annotations

import pytest
from sybil.example import SybilFailure

from tests.docs_pages import ROOT, Page, pages, parse

RUNNABLE = [p for p in pages() if "```python" in p.read_text(encoding="utf-8")
            or "```bash" in p.read_text(encoding="utf-8")]


@pytest.fixture(scope="module")
def servers():
    """The pages' `wanmock serve` servers, by command line (one set per test process)."""
    started: dict = {}
    yield started
    for server in started.values():
        server.stop()


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_page_runs(path, pytester, monkeypatch, servers):
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    document = parse(path)
    examples = list(document.examples())
    assert examples, f"{path.name}: its code blocks were not found"
    with Page(pytester, servers) as page:
        document.namespace["page"] = page
        for example in examples:
            try:
                example.evaluate()
            except SybilFailure as failure:
                failed = str(failure.result)
            except Exception as exc:  # the snippet's own failure, or a DocsError
                failed = f"{type(exc).__name__}: {exc}"
            else:
                continue
            pytest.fail(f"{path.relative_to(ROOT)}, line {example.line}: {failed}", pytrace=False)
