"""Repository-level pytest configuration: pytester for plugin tests, Hypothesis profiles.

Profiles: `ci` (default: small and deterministic, keeps the suite under a few minutes) and
`thorough` (many more examples). Choose with HYPOTHESIS_PROFILE=thorough.
"""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# The loop's documentation runs as tests (tests/docs_harness.py): every snippet of docs/loop.md
# in order, against a stand-in provider and a sentinel. Its examples share one scratch
# directory and the servers the page starts, so they run in one xdist worker (`loadgroup`).
def _docs() -> object:
    from sybil import Sybil

    from tests.docs_harness import parsers, teardown

    return Sybil(parsers=parsers(), path="docs", patterns=["loop.md"], teardown=teardown,
                 fixtures=["tmp_path_factory"], name="docs").pytest()


pytest_collect_file = _docs()


def pytest_collection_modifyitems(items: list) -> None:
    import pytest

    for item in items:
        if item.nodeid.startswith("docs/"):
            item.add_marker(pytest.mark.xdist_group("docs"))
