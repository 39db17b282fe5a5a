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

