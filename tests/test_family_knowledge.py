"""Family knowledge lives only in its folder and its contract (ARCHITECTURE.md): no module outside
`mockserver/providers/` and the contract layer spells a family's host, path or status word."""

from __future__ import annotations

import ast
from pathlib import Path

import mockserver
from mockserver import families as registry
from mockserver.contracts import load
from mockserver.core.tasks import State

ROOT = Path(mockserver.__file__).parent
# The contract layer reads the contracts; the providers are the families.
EXEMPT = ("providers/", "contracts/", "contracts.py", "catalogue.py", "wording.py",
          "jsonwire.py")

# Plain words that happen to be some family's status word too.
ENGLISH = {("calibrate.py", "unknown"),  # a recorded body without a model
           ("conformance.py", "FAILURE"),  # a Schemathesis check's status
           ("ui/timeline.py", "submitted"),  # the timeline's first mark
           ("core/webhooks.py", "pending")}  # a webhook not yet delivered


def _outside() -> list[Path]:
    return [p for p in sorted(ROOT.rglob("*.py"))
            if not p.relative_to(ROOT).as_posix().startswith(EXEMPT)]


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module but its docstrings (examples for readers), f-string
    parts included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs]


def _knowledge() -> tuple[set[str], set[str], set[str]]:
    specs = registry.families().values()
    hosts = set(registry.host_families(load()))
    neutral = {s.value for s in State}
    words = {w for s in specs for w in s.words} - neutral
    paths = {p for s in specs for p in (*s.prefixes, *s.task_paths)}
    return hosts, words, paths


def test_the_knowledge_is_found():
    hosts, words, paths = _knowledge()
    assert {"dashscope.aliyuncs.com", "api.novita.ai", "api.apiyi.com"} <= hosts
    assert {"TASK_STATUS_SUCCEED", "PENDING", "IN_PROGRESS", "NOT_START"} <= words
    assert {"/api/v1/", "/v3/", "/v1/"} <= paths


def test_no_family_knowledge_outside_providers():
    hosts, words, paths = _knowledge()
    found = []
    for path in _outside():
        where = path.relative_to(ROOT).as_posix()
        for line, text in _strings(path):
            if any(host in text for host in hosts):
                found.append(f"{where}:{line}: host in {text[:60]!r}")
            if text in words and (where, text) not in ENGLISH:
                found.append(f"{where}:{line}: status word {text!r}")
            if any(text.startswith(p) for p in paths):
                found.append(f"{where}:{line}: path {text[:60]!r}")
    assert len(_outside()) > 40  # the scan sees the package
    assert not found, "\n".join(found)


def _compared_names(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """Family names a module compares something with (`x == "newapi"`, `x in ("a", "b")`):
    code that branches on a family instead of asking it (its FamilySpec or policy)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        for side in (node.left, *node.comparators):
            items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
            found += [(node.lineno, item.value) for item in items
                      if isinstance(item, ast.Constant) and item.value in names]
    return found


def test_no_code_outside_providers_branches_on_a_family_name():
    names = set(registry.family_names())
    assert {"dashscope", "newapi", "jiekou", "apiyi"} <= names
    found = [f"{path.relative_to(ROOT).as_posix()}:{line}: compares with {name!r}"
             for path in _outside() for line, name in _compared_names(path, names)]
    assert not found, "\n".join(found)


def test_the_name_scan_sees_a_comparison(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text('if t.family != "newapi" or f in ("jiekou",):\n    pass\n')
    assert _compared_names(sample, {"newapi", "jiekou"}) == [(1, "newapi"), (1, "jiekou")]
