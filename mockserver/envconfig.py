"""Command-line flags that also read the environment: `--store` from `WANMOCK_STORE`.

An orchestrator (a container, compose, Kubernetes) configures `wanmock serve` without a command
line. Every flag of a parser made with `EnvParser(env_prefix="WANMOCK_")` reads
`WANMOCK_<FLAG>` (the long flag upper-cased, dashes as underscores: `--public-url` ->
`WANMOCK_PUBLIC_URL`, `--jiekou-bare-key` -> `WANMOCK_JIEKOU_BARE_KEY`) when the command line
does not set it. Nothing is listed by hand: the variables are the parser's own flags, which come
from the option table (`mockserver.options` and each family's `family.py`) and the few
flags `cli.py` writes itself.

- The command line wins over the environment; an empty variable counts as unset.
- A value is converted and checked as the flag's own would be (its type, its choices); a bad
  one is one line naming the variable and exit code 2, as for a bad flag (no usage: the
  command line is not at fault). It is read when the command runs, never when the parser is
  built, so a bad variable of one command never breaks another.
- `env_only` limits the variables to some options (`wanmock proxy` reads only WANMOCK_PORT).
- Booleans (`--replay-strict`, `--[no-]newapi-drop-shot-type`, `--allow-remote`) take
  true/false, 1/0, yes/no, on/off; repeatable flags (`--api-key`, `--family`) a list separated
  by commas or spaces.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from mockserver.options import parse_bool

_UNSET = object()  # the default while parsing: "the command line did not set it"


def env_name(action: argparse.Action, prefix: str) -> str | None:
    """The variable an option reads (`--public-url` -> `WANMOCK_PUBLIC_URL`), or None for
    positionals, `--help` and `--version`."""
    if isinstance(action, argparse._HelpAction | argparse._VersionAction):
        return None
    longs = [s for s in action.option_strings if s.startswith("--") and not s.startswith("--no-")]
    if not longs:
        return None
    return prefix + longs[0][2:].replace("-", "_").upper()


class EnvParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose options read `<env_prefix><FLAG>` when the command line does
    not set them (see the module doc); without `env_prefix` it is a plain `ArgumentParser`
    (`add_subparsers(parser_class=EnvParser)` makes every subcommand one)."""

    def __init__(self, *args: Any, env_prefix: str | None = None,
                 env_only: Collection[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env_prefix = env_prefix
        self.env_only = None if env_only is None else frozenset(env_only)

    def env_actions(self) -> Iterator[tuple[str, argparse.Action]]:
        """(variable, action) for every option that reads the environment."""
        if not self.env_prefix:
            return
        for action in self._actions:
            name = env_name(action, self.env_prefix)
            if name is not None and (self.env_only is None or action.dest in self.env_only):
                yield name, action

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        actions = list(self.env_actions())
        if not actions:
            return super().parse_known_args(args, namespace)
        # Parse with every default set aside, so what the command line set is known exactly
        # (`--host 127.0.0.1` given wins over WANMOCK_HOST, though it equals the default).
        # A repeatable flag appends to its default: None there, which it replaces by a list.
        defaults = {id(action): action.default for _, action in actions}
        for _, action in actions:
            action.default = None if _appends(action) else _UNSET
        try:
            parsed, extras = super().parse_known_args(args, namespace)
        finally:
            for _, action in actions:
                action.default = defaults[id(action)]
        environ = os.environ
        for name, action in actions:
            if getattr(parsed, action.dest, None) is not (None if _appends(action) else _UNSET):
                continue
            raw = environ.get(name, "")
            value = self.from_env(name, action, raw) if raw.strip() else action.default
            setattr(parsed, action.dest, value)
        return parsed, extras

    def env_error(self, message: str) -> NoReturn:
        """A bad variable: one line and exit code 2 (`wanmock serve: error: WANMOCK_PORT=...`)."""
        self.exit(2, f"{self.prog}: error: {message}\n")

    def from_env(self, name: str, action: argparse.Action, raw: str) -> Any:
        """The value a variable gives an option, converted and checked as its flag is; a
        bad value is a usage error (exit code 2) naming the variable."""
        flag = next(s for s in action.option_strings if s.startswith("--"))
        where = f"{name}={raw!r} (the environment's {flag})"
        if action.nargs == 0:  # store_true, --x/--no-x
            value = parse_bool(raw)
            if value is None:
                self.env_error(f"{where}: expected true or false (1/0, yes/no, on/off)")
            if isinstance(action, argparse.BooleanOptionalAction):
                return value
            return action.const if value else action.default
        if _appends(action):
            items = [part for part in raw.replace(",", " ").split() if part]
            return [self._convert(where, action, item) for item in items]
        return self._convert(where, action, raw.strip())

    def _convert(self, where: str, action: argparse.Action, raw: str) -> Any:
        value: Any = raw
        if action.type is not None:
            convert: Any = action.type
            try:
                value = convert(raw)
            except argparse.ArgumentTypeError as exc:
                self.env_error(f"{where}: {exc}")
            except (TypeError, ValueError):
                kind = getattr(convert, "__name__", repr(convert))
                self.env_error(f"{where}: invalid {kind} value: {raw!r}")
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(repr(c) for c in action.choices)
            self.env_error(f"{where}: invalid choice: {raw!r} (choose from {choices})")
        return value


def _appends(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction)


def variables(parser: argparse.ArgumentParser,
              command: str = "serve") -> list[tuple[str, str, str]]:
    """(variable, flag, help) of every option of `command` that reads the environment, for
    documentation (`wanmock serve --help` shows them too)."""
    sub = subcommand(parser, command)
    out = []
    if isinstance(sub, EnvParser):
        for name, action in sub.env_actions():
            flag = next(s for s in action.option_strings if s.startswith("--"))
            out.append((name, flag, action.help or ""))
    return out


def subcommand(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one subcommand (`serve`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: Mapping[str, argparse.ArgumentParser] = action.choices
            if command in found:
                return found[command]
    raise KeyError(command)
