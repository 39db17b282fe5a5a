"""YAML as the contracts, the catalogue, scenario books and timing profiles are read.

PyYAML's safe loading, through libyaml's C parser when PyYAML was built with it (the wheels
are): the seven contracts and the catalogue are 25,000 lines, which the pure-Python parser took
about 2.5 s to read on every start of a fake (`wanmock serve`, a pytest worker, a subprocess
test); the C parser reads them in a tenth of that. Both build the same documents (the safe
constructor is the same Python code either way).
"""

from __future__ import annotations

from typing import IO, Any

import yaml

SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """`yaml.safe_load`, with libyaml's parser where it is available."""
    return yaml.load(stream, Loader=SafeLoader)  # noqa: S506 - a safe loader
