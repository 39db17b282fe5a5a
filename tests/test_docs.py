"""docs/loop.md runs: every snippet of the loop's page, in order, as a reader would run them,
against a stand-in provider on 127.0.0.1 and the sentinel (tests/docs_harness.py). Sybil parses
and evaluates the page; its examples share one scratch directory and the servers the page
starts, so they run as one test (in one process, whatever xdist does), stopping at the first
snippet that fails or lets traffic escape."""

from __future__ import annotations

from pathlib import Path

import pytest
from sybil import Sybil
from sybil.example import SybilFailure

from tests.docs_harness import parsers, teardown

DOCS = Path(__file__).resolve().parent.parent / "docs"
pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.mark.parametrize("page", ["loop.md"])
def test_the_page_runs_and_nothing_escapes(page, tmp_path_factory):
    document = Sybil(parsers=parsers(), path=str(DOCS), patterns=[page]).parse(DOCS / page)
    document.namespace["tmp_path_factory"] = tmp_path_factory
    examples = list(document.examples())
    assert len(examples) >= 15  # the page's snippets were found, not silently none
    try:
        for example in examples:
            try:
                example.evaluate()
            except SybilFailure as failure:
                pytest.fail(f"docs/{page}, line {example.line}:\n{failure.result}",
                            pytrace=False)
        harness = document.namespace["harness"]
        assert harness.stand_in.requests() > 0  # the page's traffic reached the provider
    finally:
        teardown(document.namespace)
