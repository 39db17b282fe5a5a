"""No module of the package reaches into another module's private names (issue 24, "readable
names and edges"): a name with one leading underscore belongs to the module that defines it.
Read from the syntax tree, so a lazy import inside a function or under TYPE_CHECKING counts
too. A name another module needs is public (renamed) or lives where it is used."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mockserver"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _modules() -> set[str]:
    return {_module_name(p) for p in PACKAGE.rglob("*.py")}


def crossings(source: str, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """Every use in `source` (module `module`) of a private name of another module:
    `from m import _x`, `import m as alias` then `alias._x`, `from pkg import _submodule`."""
    tree = ast.parse(source, module)
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _private(alias.name.rsplit(".", 1)[-1]) and alias.name.startswith("mockserver"):
                    found.append(f"{node.lineno}: import {alias.name}")
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(module, node, is_package)
            if not origin.startswith("mockserver") or origin == module:
                continue
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{node.lineno}: from {origin} import {alias.name}")
                full = f"{origin}.{alias.name}"
                if full in modules:
                    aliases[alias.asname or alias.name] = full
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        chain: list[str] = [node.attr]
        value = node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if not isinstance(value, ast.Name) or value.id not in aliases:
            continue
        # `alias.sub.mod._x`: the dotted prefix must name a module of the package.
        owner = ".".join([aliases[value.id], *reversed(chain[1:])])
        if owner in modules and owner != module:
            found.append(f"{node.lineno}: {owner}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    modules = _modules()
    offences = {
        str(path.relative_to(ROOT)): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if (hits := crossings(path.read_text(encoding="utf-8"), _module_name(path),
                              path.name == "__init__.py", modules))
    }
    assert offences == {}, "private names used across modules (make them public or move them)"


def test_the_scanner_sees_each_form() -> None:
    """The check itself can fail: each form of crossing is caught, own names and dunders are not."""
    source = (
        "from mockserver.core.tasks import _pack\n"
        "from . import clock\n"
        "import mockserver.core.ids as ids\n"
        "from mockserver import __version__\n"
        "def f():\n"
        "    from mockserver.core import backend\n"
        "    return clock._check, ids._V4_SET, backend._own, mockserver_obj._fine, _mine\n"
        "_mine = 1\n"
    )
    hits = crossings(source, "mockserver.core.probe", False, _modules())
    assert [h.split(": ", 1)[1] for h in hits] == [
        "from mockserver.core.tasks import _pack",
        "mockserver.core.clock._check", "mockserver.core.ids._V4_SET",
        "mockserver.core.backend._own",
    ]
