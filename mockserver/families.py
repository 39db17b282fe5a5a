"""The family registry: what wanmock knows about each provider family, as data.

A family is one folder, `mockserver/providers/<family>/`, plus one contract file,
`contracts/<family>.yaml`. Its `family.py` holds everything the rest of wanmock needs to know
about it as a `FamilySpec`: the path prefixes it owns, its status words and which of them end a
task, where its answers carry the task id and status, its options, and where its policy and its
HTTP class live (named by `"module:Class"`, loaded only by the layers that use them). Its hosts
are its contract's `servers:`. Everything outside the folder asks this registry; nothing else
keeps a copy of a family's words.

This module is on the ground floor: it imports only `mockserver.options`, `mockserver.errors`
and `mockserver.jsonwire`, so every layer (contracts excepted, which need no family) may read it.
Families are found by looking for `family.py` in every sub-package of `mockserver.providers`
(without importing that package's HTTP code: a `family.py` imports only the ground floor); a
family kept elsewhere (a plugin, the toy family of the tests) joins with `register("pkg.family")`
or the `WANMOCK_FAMILIES` environment variable (module names, comma-separated).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import os
import pkgutil
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mockserver.errors import MockServerError
from mockserver.jsonwire import ascii_int
from mockserver.options import CORE, Option, by_name

# The package whose sub-packages are the bundled families.
PROVIDERS = "mockserver.providers"
FAMILIES_ENV = "WANMOCK_FAMILIES"
# The neutral states (core/tasks.State values) in the order a task moves through them.
RANK = {"queued": 0, "running": 1, "suspended": 1, "succeeded": 2, "failed": 2, "canceled": 2,
        "expired": 3}
TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})
_MISSING = object()


class Servers(Protocol):
    """What `FamilySpec.hosts` reads hosts from: a `mockserver.contracts.ContractSet`."""

    def hosts(self, family: str) -> tuple[str, ...]:
        """The hosts of a family's contract's https `servers:` (empty if it has none)."""
        ...


@dataclass(frozen=True, slots=True)
class StatusField:
    """Where a family's answer carries a status word, and what each word means (a neutral
    state name: `queued`, `running`, `succeeded`, `failed`, `canceled`, `expired`)."""

    path: str  # dotted: `output.task_status`
    words: Mapping[str, str]
    operations: tuple[str, ...] = ()  # only answers of these operationIds (empty: any)


@dataclass(frozen=True)
class FamilySpec:
    """What wanmock knows about one family, outside its HTTP class.

    Parameters:
        name: the family's name (its folder, its contract's file name and `x-wanmock-family`).
        routes: `"module:Class"` of its HTTP class (a `mockserver.providers.base.Family`).
        policy: `"module:Class"` of its `mockserver.providers.policy.Policy` subclass (no
            Starlette): its wording and its judgement of a body, used without an app
            (`mockserver.checks`); empty: the contract alone judges.
        prefixes: path prefixes it owns: a request there that no operation matches gets this
            family's 404/405 (the longest prefix that matches wins, then `order`).
        task_paths: path prefixes followed by a task id (`/api/v1/tasks/`), read once per
            request when the state lives in a shared store.
        statuses: where its answers carry a status, first match wins.
        task_id_paths: where its answers carry the task id (dotted), first match wins.
        progress_paths / video_url_paths / failure_paths: the same for progress, the result
            URL and a failed task's (code path, message path).
        route_servers: its contract's https `servers:` are the family's hosts (the pytest
            plugin routes them into the fake, the live target sends them to the provider);
            False for a gateway whose servers are only examples.
        base_url_hint: the `wanmock serve` banner line (`{url}` is the fake's URL).
        key_variables: environment variables holding a live key, first found wins.
        video_url_operations: the operations whose answers carry the result URL (empty: every
            query; a family whose status answers never carry it names its result operation).
        key_header: the `Authorization` value its clients send for a key (`{key}`), what
            `wanmock check` sends (`Key {key}` for a family that reads that scheme).
        options: the options this family owns (`Option.family` is set to its name).
        order: place among the families (banner, defaults, prefix matching).
        metadata_fields: its submits take the neutral fields flat or nested under `metadata`:
            True, the strategies draw both shapes; "nested", only the nested one (new-api,
            whose flat fields it converts before the relayed provider judges them).
        own_refusals: the strategies' break kinds (`media_missing`...) the family refuses in
            its own words before the contract's rule meets them (new-api's request building
            refuses a wan2.7-i2v body without an image): not drawn for it.
    """

    name: str
    routes: str
    policy: str = ""
    prefixes: tuple[str, ...] = ()
    task_paths: tuple[str, ...] = ()
    statuses: tuple[StatusField, ...] = ()
    task_id_paths: tuple[str, ...] = ()
    progress_paths: tuple[str, ...] = ()
    video_url_paths: tuple[str, ...] = ()
    failure_paths: tuple[tuple[str, str], ...] = ()
    route_servers: bool = True
    base_url_hint: str = "{url}"
    key_variables: tuple[str, ...] = ()
    key_header: str = "Bearer {key}"
    video_url_operations: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    order: int = 100
    metadata_fields: bool | str = False
    own_refusals: frozenset[str] = frozenset()

    def status(self, body: Any, operation: str | None = None) -> tuple[str | None, str | None]:
        """(neutral state, the word used) of an answer; (None, word) for an unknown word,
        (None, None) when it carries no status."""
        for spot in self.statuses:
            if spot.operations and operation not in spot.operations:
                continue
            word = read_path(body, spot.path)
            if isinstance(word, str):
                return spot.words.get(word), word
        return None, None

    def task_id(self, body: Any) -> str | None:
        """The task id an answer carries, or None."""
        for path in self.task_id_paths:
            value = read_path(body, path)
            if isinstance(value, str) and value:
                return value
        return None

    def first(self, body: Any, paths: Iterable[str]) -> Any:
        """The first value present at one of `paths` (None if none is)."""
        for path in paths:
            value = read_path(body, path)
            if value is not _MISSING and value is not None and value != "":
                return value
        return None

    def video_url(self, body: Any) -> str | None:
        """The result URL an answer carries (the first of `video_url_paths`), or None."""
        url = self.first(body, self.video_url_paths)
        return url if isinstance(url, str) and url else None

    def progress(self, body: Any) -> int | None:
        """The progress an answer reports (`30`, `"30%"`), or None."""
        value = self.first(body, self.progress_paths)
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return int(value) if math.isfinite(value) else None  # JSON's 1e400 reads as inf
        if isinstance(value, str):
            return ascii_int(value.rstrip("%"), 9)
        return None

    def failure(self, body: Any) -> tuple[str, str] | None:
        """The (code, message) of a failed task's answer, or None."""
        for code_path, message_path in self.failure_paths:
            code = read_path(body, code_path)
            if isinstance(code, str | int) and not isinstance(code, bool) and code != "":
                message = read_path(body, message_path)
                return str(code), message if isinstance(message, str) else ""
        return None

    @property
    def words(self) -> dict[str, str]:
        """Every status word of the family -> its neutral state (the first meaning wins)."""
        out: dict[str, str] = {}
        for spot in self.statuses:
            for word, state in spot.words.items():
                out.setdefault(word, state)
        return out

    @property
    def terminal_words(self) -> frozenset[str]:
        """The status words that end a task (an `UNKNOWN`/expired answer ends a wait too)."""
        return frozenset(w for w, s in self.words.items() if s in TERMINAL)

    def hosts(self, contracts: Servers) -> tuple[str, ...]:
        """The provider's real hosts: the https `servers:` of its contract (none for a gateway
        whose servers are only examples, `route_servers=False`)."""
        return contracts.hosts(self.name) if self.route_servers else ()


def load_class(path: str) -> Any:
    """The object a `"module:Name"` reference names (`FamilySpec.routes`, `.policy`)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def read_path(body: Any, path: str) -> Any:
    """A dotted path (`output.task_status`, `videos.0.video_url`) in a JSON body, or a
    sentinel when a step is missing."""
    node = body
    for step in path.split("."):
        if isinstance(node, Mapping) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return _MISSING
    return node


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.extra: list[str] = []
        self.found: dict[str, FamilySpec] | None = None
        self.bundled: tuple[str, ...] = ()
        self.table: dict[str, Option] | None = None

    def specs(self) -> dict[str, FamilySpec]:
        found = self.found
        if found is None:
            with self.lock:
                found = self.found = self._discover()
        return found

    def _discover(self) -> dict[str, FamilySpec]:
        found = importlib.util.find_spec(PROVIDERS)
        where = found.submodule_search_locations if found is not None else None
        modules = [f"{PROVIDERS}.{info.name}.family" for info in pkgutil.iter_modules(where or [])
                   if info.ispkg]
        env = [m.strip() for m in os.environ.get(FAMILIES_ENV, "").split(",") if m.strip()]
        specs: list[FamilySpec] = []
        inside: set[str] = set()
        for module in [*modules, *env, *self.extra]:
            try:
                loaded = importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name == module:  # a sub-package that is no family (no family.py)
                    continue
                raise
            spec = getattr(loaded, "FAMILY", None)
            if not isinstance(spec, FamilySpec):
                raise MockServerError(f"{module} has no FAMILY = FamilySpec(...)")
            specs.append(spec)
            if module in modules:
                inside.add(spec.name)
        out: dict[str, FamilySpec] = {}
        for spec in sorted(specs, key=lambda s: s.order):
            out.setdefault(spec.name, spec)
        self.bundled = tuple(n for n in out if n in inside)
        return out


_REGISTRY = _Registry()


def register(module: str) -> FamilySpec:
    """Add the family whose `FAMILY` lives in `module` (a package outside mockserver)."""
    with _REGISTRY.lock:
        if module not in _REGISTRY.extra:
            _REGISTRY.extra.append(module)
        _REGISTRY.found = _REGISTRY.table = None
    return importlib.import_module(module).FAMILY  # type: ignore[no-any-return]


def unregister(module: str) -> None:
    """Forget a family `register` added."""
    with _REGISTRY.lock:
        if module in _REGISTRY.extra:
            _REGISTRY.extra.remove(module)
        _REGISTRY.found = _REGISTRY.table = None


def families() -> dict[str, FamilySpec]:
    """Every known family by name, in order."""
    return _REGISTRY.specs()


def bundled_names() -> tuple[str, ...]:
    """The families that come with wanmock (a folder here), in order: served by default."""
    families()
    return _REGISTRY.bundled


def family_names() -> tuple[str, ...]:
    """The names of every known family, in order."""
    return tuple(families())


def spec(name: str) -> FamilySpec:
    """The family called `name` (`MockServerError` if there is none)."""
    found = families().get(name)
    if found is None:
        raise MockServerError(f"unknown family {name!r}; known: {', '.join(families())}")
    return found


def option_table() -> dict[str, Option]:
    """Every user-settable option: the core ones, then each family's."""
    table = _REGISTRY.table
    if table is None:
        table = by_name([*CORE, *(o for s in families().values() for o in s.options)])
        _REGISTRY.table = table
    return table


def family_options() -> dict[str, Option]:
    """The options the families own (not fields of core `Options`)."""
    return {o.name: o for s in families().values() for o in s.options}


def host_families(contracts: Servers, names: Iterable[str] | None = None) -> dict[str, str]:
    """Each provider host -> its family (from the contracts' `servers:`); a host may be a
    pattern whose `*` stands for one DNS label (a Model Studio workspace host)."""
    chosen = families() if names is None else {n: spec(n) for n in names}
    return {host: s.name for s in chosen.values() for host in s.hosts(contracts)}


def host_regex(host: str) -> str:
    """A host or host pattern (`*.cn-beijing.maas.aliyuncs.com`) as an anchored regex; `*`
    is one DNS label."""
    return "^" + r"[A-Za-z0-9_-]+".join(re.escape(part) for part in host.split("*")) + "$"


def host_match(hosts: Mapping[str, str], host: str) -> str | None:
    """What `hosts` (host or pattern -> value) holds for `host`: an exact entry first,
    then the first pattern that matches."""
    found = hosts.get(host)
    if found is not None:
        return found
    for pattern, value in hosts.items():
        if "*" in pattern and host_pattern(pattern).match(host):
            return value
    return None


@functools.lru_cache(maxsize=1024)
def host_pattern(host: str) -> re.Pattern[str]:
    """`host_regex(host)` compiled, once per pattern: DashScope asks on every submit."""
    return re.compile(host_regex(host))


def owner(path: str, served: Iterable[str] | None = None) -> str | None:
    """The family owning `path` by prefix (its 404/405 envelope), or None: the longest
    matching prefix wins (new-api's `/v1/` yields `/v1/tasks` to apiyi), then `order`."""
    allowed = None if served is None else set(served)
    best, length = None, -1
    for s in families().values():
        if allowed is not None and s.name not in allowed:
            continue
        for prefix in s.prefixes:
            if len(prefix) > length and path.startswith(prefix):
                best, length = s.name, len(prefix)
    return best


def key_variables() -> str:
    """Every family's live-key variables, for help texts (`DASHSCOPE_API_KEY, JIEKOU_API_KEY or
    NOVITA_API_KEY, ...`)."""
    return ", ".join(" or ".join(s.key_variables) for s in families().values() if s.key_variables)


def terminal_words() -> frozenset[str]:
    """Every family's words that end a task."""
    return frozenset(w for s in families().values() for w in s.terminal_words)
