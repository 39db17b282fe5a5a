"""`mockserver.checks.judge` judges a body with the family's policy alone: no Starlette is
imported and no `Backend` is built (ARCHITECTURE.md: providers/policy.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from mockserver import checks
from mockserver.families import family_names

# One body per family that the fake refuses at submit, with the code it answers.
REFUSED = {
    "dashscope": ("createVideoSynthesis", {"model": "wan2.6-t2v", "input": {}},
                  "InvalidParameter"),
    "apiyi": ("createVideoSynthesis", {"model": "wan-nope", "input": {"prompt": "a cat"}},
              "InvalidParameter"),
    "jiekou": ("createWanT2vTask", {"prompt": "a cat", "steps": 1000}, "INVALID_REQUEST_BODY"),
    # new-api's own step: the Ali adaptor refuses a size tier on a t2v model while converting.
    "newapi": ("createVideoGeneration", {"model": "wan2.6-t2v", "prompt": "a cat",
                                         "size": "720p"}, "build_request_failed"),
    # fal's runner refuses it (a request that fails later, contracts/fal.yaml).
    "fal": ("submitWan26T2v", {"prompt": "a cat", "duration": "7"}, "literal_error"),
    # OpenRouter's capability check: wan-2.6 offers 5 or 10 seconds.
    "openrouter": ("createVideo", {"model": "alibaba/wan-2.6", "prompt": "a cat",
                                   "duration": 7}, "invalid_request"),
}

_SCRIPT = """
import json, sys
import mockserver.core.backend as backend_module

built = []
real_init = backend_module.Backend.__init__
def counting(self, *args, **kwargs):
    built.append(1)
    real_init(self, *args, **kwargs)
backend_module.Backend.__init__ = counting

from mockserver import checks
cases = json.loads(sys.argv[1])
codes = {}
for family, (operation, body, _) in cases.items():
    codes[family] = [v.code for v in checks.judge(family, operation, body)]
print(json.dumps({"codes": codes, "starlette": sorted(m for m in sys.modules
                                                      if m.split(".")[0] == "starlette"),
                  "backends": len(built)}))
"""


def test_every_family_has_a_refused_body_here():
    assert set(REFUSED) == set(family_names()) - {"toy"}


def test_judging_imports_no_starlette_and_builds_no_backend():
    done = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(REFUSED)],
                          capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["starlette"] == []
    assert found["backends"] == 0
    for family, (_, _, code) in REFUSED.items():
        assert code in found["codes"][family], (family, found["codes"][family])


def test_a_valid_body_has_no_violation():
    body = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse at dusk"}}
    assert checks.judge("dashscope", "createVideoSynthesis", body) == []


def test_the_dashscope_option_reaches_new_api_through_its_family():
    """new-api relays DashScope's prompt rule with DashScope's option (its policy supplies it)."""
    from mockserver.contracts import load
    from mockserver.core.backend import Options
    from mockserver.providers.policy import Judging, policy_class

    body = {"model": "wan2.6-r2v", "prompt": "x" * 1501}
    for over, refused in (("truncate", False), ("reject", True)):
        context = Judging(load(), Options().merged(dashscope_r2v_prompt_over=over))
        policy = policy_class("newapi")(context)
        _, violations = policy.judge(policy.contract.operation("createVideoGeneration"), body)
        assert any(v.rule == "prompt_length" for v in violations) is refused, violations
        # new-api cannot send references: DashScope refuses the r2v request either way
        assert any(v.rule == "references_required" for v in violations), violations
