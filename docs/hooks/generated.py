"""MkDocs hook: the reference tables that come from the code, made at build time.

A page asks for a table with a marker line; the hook replaces the marker with Markdown rendered
from the objects wanmock itself builds its command line and pytest plugin from, so the site
can never list a flag that does not exist or miss one that does:

- `<!-- generated: serve-options -->`: every `wanmock serve` flag, from the argparse parser
  (`mockserver.cli.build_parser`), with its environment variable (`mockserver.envconfig`) and,
  for the options of the option table (`mockserver.families.option_table`), the name a
  `create_app(...)` keyword, a `@pytest.mark.wanmock(...)` argument and a `wanmock_<name>`
  ini key use.
- `<!-- generated: commands -->`: the flags and arguments of every other `wanmock` command.
- `<!-- generated: pytest-options -->`: the pytest plugin's command-line options and ini keys,
  from its own `pytest_addoption`.
- `<!-- generated: job-scenarios -->` and `<!-- generated: fault-kinds -->`: the job scenarios
  and the registered fault kinds (`mockserver.core.scenarios.JOB`, `mockserver.core.faults`).

tests/test_docs_site.py renders the pages through `render()` and checks that every flag is
there. Nothing here imports MkDocs: `on_page_markdown` is the only hook MkDocs calls.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.M)
SUPPRESS = argparse.SUPPRESS


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs hook: replace each marker with its table."""
    return render(markdown)


def render(markdown: str) -> str:
    """The page with every `<!-- generated: NAME -->` marker replaced; an unknown name is an
    error (a typo must not leave a page without its table)."""

    def table(found: re.Match[str]) -> str:
        name = found[1]
        if name not in TABLES:
            raise ValueError(f"unknown generated table {name!r} (known: {', '.join(TABLES)})")
        return TABLES[name]()

    return MARKER.sub(table, markdown)


# -- helpers ----------------------------------------------------------------------------------
def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: object) -> str:
    return f"`{_cell(text)}`" if text not in (None, "") else ""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {c.dest: c.help or "" for c in action._choices_actions}
    return {}


def _shown(action: argparse.Action) -> bool:
    return not isinstance(action, argparse._HelpAction) and action.help != SUPPRESS


def _spelling(action: argparse.Action) -> str:
    """`--mode {time,polls}`, `--seed N`, `--usage-sr / --no-usage-sr`, `cassette`."""
    if not action.option_strings:
        return action.metavar or action.dest  # type: ignore[return-value]
    if isinstance(action, argparse.BooleanOptionalAction):
        return " / ".join(action.option_strings)
    text = ", ".join(action.option_strings)
    if action.nargs == 0:
        return text
    if action.choices is not None:
        return f"{text} {{{','.join(str(c) for c in action.choices)}}}"
    return f"{text} {action.metavar or action.dest.upper()}"


def _given(value: object) -> bool:
    """A default worth showing: not None, not empty."""
    if value is None or value == "":
        return False
    return not (isinstance(value, tuple | list | set | frozenset | dict) and not value)


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction):
        return ""
    value = action.default
    if not _given(value) or value == SUPPRESS:
        return ""
    return _code(value)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if action.option_strings and action.nargs != 0 and isinstance(
            action, argparse._AppendAction) and "repeatable" not in text:
        text += " (repeatable)"
    return _cell(text)


# -- tables -----------------------------------------------------------------------------------
def serve_options() -> str:
    """Every `wanmock serve` flag, grouped core, then by family."""
    from mockserver.cli import build_parser
    from mockserver.envconfig import env_name
    from mockserver.families import option_table

    serve = _subparsers(build_parser())["serve"]
    table = option_table()
    prefix = getattr(serve, "env_prefix", None) or "WANMOCK_"
    groups: dict[str, list[str]] = {}
    for action in filter(_shown, serve._actions):
        option = table.get(action.dest)
        owner = option.family if option is not None and option.family else ""
        name = _code(action.dest) if option is not None else "(command line only)"
        default = _code(option.default) if option is not None and _given(
            option.default) else _default(action)
        row = (f"| {_code(_spelling(action))} | {_code(env_name(action, prefix))} | {name} | "
               f"{default} | {_help(action)} |")
        groups.setdefault(owner, []).append(row)
    head = ("| flag | environment | option (`create_app`, marker, `wanmock_<name>` ini) | "
            "default | meaning |\n|---|---|---|---|---|")
    parts = ["### Server and core options\n", head, *groups.pop("", [])]
    for family in sorted(groups):
        parts += ["", f"### The `{family}` family\n", head, *groups[family]]
    return "\n".join(parts) + "\n"


def commands() -> str:
    """The other `wanmock` commands: arguments and flags."""
    from mockserver.cli import build_parser

    parser = build_parser()
    helps = _helps(parser)
    parts = []
    for name, sub in _subparsers(parser).items():
        if name == "serve":
            continue
        parts += [f"### `wanmock {name}`\n", _cell(helps.get(name, "")).capitalize() + ".\n",
                  "| argument | default | meaning |", "|---|---|---|"]
        for action in filter(_shown, sub._actions):
            parts.append(f"| {_code(_spelling(action))} | {_default(action)} | "
                         f"{_help(action)} |")
        parts.append("")
    return "\n".join(parts)


class _Recorder:
    """Stands in for pytest's parser and option group: records what the plugin declares."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.ini: list[tuple[str, str, dict[str, Any]]] = []

    def getgroup(self, *_: Any, **__: Any) -> _Recorder:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.append((names, kwargs))

    def addini(self, name: str, help: str, **kwargs: Any) -> None:  # noqa: A002 - pytest's name
        self.ini.append((name, help, kwargs))


def pytest_options() -> str:
    """The plugin's command-line options, then its ini keys."""
    from mockserver import pytest_plugin

    recorder = _Recorder()
    pytest_plugin.pytest_addoption(recorder)  # type: ignore[arg-type]
    rows = ["| option | meaning |", "|---|---|"]
    for names, kwargs in recorder.options:
        metavar = "" if kwargs.get("action") in ("store_true", "store_false") else (
            " " + (kwargs.get("metavar") or str(kwargs.get("dest", "")).upper()))
        rows.append(f"| {_code(', '.join(names) + metavar)} | {_cell(kwargs.get('help', ''))} |")
    rows += ["", "| ini key | default | meaning |", "|---|---|---|"]
    for name, text, kwargs in recorder.ini:
        default = kwargs.get("default")
        rows.append(f"| {_code(name)} | {_code(default) if default not in (None, '', []) else ''}"
                    f" | {_cell(text)} |")
    return "\n".join(rows) + "\n"


def job_scenarios() -> str:
    """The job scenarios (`mockserver.core.scenarios.JOB`)."""
    from mockserver.core.scenarios import JOB

    rows = ["| job scenario (on a submission) | effect |", "|---|---|"]
    rows += [f"| `{name}` | {_cell(text)} |" for name, text in JOB.items()]
    return "\n".join(rows) + "\n"


def fault_kinds() -> str:
    """The transport faults: the fault-kind registry (`mockserver.core.faults`)."""
    from mockserver.core import faults

    rows = ["| fault (on any request) | effect |", "|---|---|"]
    rows += [f"| `{name}` | {_cell(text)} |" for name, text in faults.descriptions().items()]
    return "\n".join(rows) + "\n"


TABLES: dict[str, Callable[[], str]] = {
    "job-scenarios": job_scenarios,
    "fault-kinds": fault_kinds,
    "serve-options": serve_options,
    "commands": commands,
    "pytest-options": pytest_options,
}


def flags(parser: argparse.ArgumentParser | None = None) -> Iterable[tuple[str, str]]:
    """(command, flag) for every flag of every `wanmock` command (for the tests)."""
    from mockserver.cli import build_parser

    for name, sub in _subparsers(parser or build_parser()).items():
        for action in filter(_shown, sub._actions):
            for flag in action.option_strings:
                yield name, flag
