"""The layers hold (pyproject.toml `[tool.importlinter]`, ARCHITECTURE.md): import-linter finds
no upward import (imports inside functions and under TYPE_CHECKING included), no circle, no
registry in the contract layer, no Starlette below the HTTP layer. .ci/run runs `lint-imports`
too; this keeps a local test run honest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept() -> None:
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout and "5 kept" in run.stdout, run.stdout


def test_every_module_is_on_a_floor() -> None:
    """A module in no layer would be checked by nothing: each top-level module of the package
    is named in the layers contract."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = next(c for c in config["tool"]["importlinter"]["contracts"]
                  if c["type"] == "layers")["layers"]
    named = {part.strip() for layer in layers for part in layer.replace("|", ":").split(":")}
    package = ROOT / "mockserver"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert modules - named == set(), "modules in no layer of pyproject.toml's [tool.importlinter]"
    assert named - modules == set(), "layers naming modules that do not exist"
