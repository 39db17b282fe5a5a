"""The settings of one fake: `Options`, every core option a field and each family's by name.

`Options` is validated against the one description of every option (`mockserver/options.py`
and each family's `family.py`, put together by the family registry, `mockserver.families`);
`Backend` takes one and `Backend.configure` swaps it for another. `mockserver.core.backend`
re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mockserver.errors import MockServerError
from mockserver.families import bundled_names, family_names, family_options, option_table

RULE_TIMINGS = ("contract", "submit", "async")
_UNSET = object()


def _family_defaults() -> dict[str, Any]:
    return {name: option.default for name, option in family_options().items()}


# Options that shape the app's routes and contracts: fixed for the life of a fake.
FIXED_OPTIONS = ("families", "contracts_dir", "store")


@dataclass(frozen=True, slots=True)
class Options:
    """How the fake behaves: the core options, and each family's in `family_options`.

    Every option is described once (`mockserver.options.CORE`, and each family's
    `providers/<family>/family.py`); that table validates it here and makes it a
    `wanmock serve` flag, a marker argument and a `wanmock_*` ini key. `wanmock serve --help`
    and the options page (docs/options.md) list them. A family option reads as an attribute or
    an item (`options.newapi_version`, `options["newapi_version"]`) and is set by name like any
    other (`Options().merged(newapi_version="legacy")`, `create_app(newapi_version=...)`).

    Parameters:
        families: the families to serve (default: all four).
        timing: `fast`, `realistic` or `instant` queue/run times, or a timing profile file
            (`wanmock calibrate`; see `mockserver.core.profiles`).
        mode: `time` (the clock drives tasks) or `polls` (each query advances a task).
        clock: `system` (wall time) or `manual` (moves only when advanced).
        seed: seeds ids, timings and URL signatures; same seed, same run.
        api_keys: accepted keys; empty means any non-empty Bearer key is accepted.
        rule_timing: `contract` (each rule as its contract says), or force every catalogue rule to
            be rejected at `submit` or to fail the task `async`.
        body_limit: largest request body in bytes (larger gets the family's 4xx).
        journal_size: how many exchanges the journal keeps.
        video_dir: where result videos are cached.
        queued_polls / running_polls: poll-count mode's pacing.
        webhooks: `auto` (sent over HTTP to loopback hosts when the app runs under a server,
            held for other hosts, recorded in process), `send` (to any host) or `record` (never
            sent); see `mockserver.core.webhooks`.
        store: where the state lives: `memory` (default), `sqlite:///path.db` (restarts, the
            workers of one host) or `redis://host:port/db` (workers on any host); see
            `mockserver.core.store`.
        max_tasks: keep at most this many tasks; the oldest ended ones are evicted first
            (default: no bound besides each family's retention).
        replay: a cassette (docs/cassettes.md) whose recorded jobs answer matching submits:
            the recorded states at the recorded times, the recorded bodies (mockserver.replay).
        replay_strict: with `replay`, a request the cassette does not know gets the family's
            404 instead of the normal fake's answer.
        webhook_timeout: seconds one webhook delivery attempt may take (default: the family's
            documented timeout, 5 s on jiekou/Novita).
        public_url: the base URL (scheme, host, port, optional path prefix) that result URLs,
            webhook payloads and the control API's links carry instead of the request's own,
            for clients that reach the fake by another name (a compose service name, a
            reverse proxy); stored without a trailing slash.
        control_token: the token the control plane requires (`mockserver.guard`); None: none.
        allowed_hosts: Host names the control plane answers besides IP addresses and localhost.
        mounts: extra path prefixes a family is served under (`dashscope=/alibailian`, or
            the preset `comfyui`; `mockserver.options.parse_mount`).
        read_timeout: seconds a client has to send a request's head, and at most between two
            pieces of its body, under `wanmock serve` and `ThreadedMockServer` (then 408).
        family_options: each family option's value by name (`newapi_version`,
            `jiekou_bare_key`, `dashscope_result_auth`...; see each family.py), defaults filled.
    """

    families: tuple[str, ...] = field(default_factory=bundled_names)
    timing: str = "fast"
    mode: str = "time"
    clock: str = "system"
    seed: int | None = None
    api_keys: frozenset[str] = frozenset()
    rule_timing: str = "contract"
    body_limit: int = 1024 * 1024
    journal_size: int = 1000
    video_dir: str | None = None
    queued_polls: int = 1
    running_polls: int = 2
    contracts_dir: str | None = None
    scenarios: str | tuple[Any, ...] | None = None
    max_concurrent_tasks: int | None = None
    concurrency_policy: str = "contract"
    rate_limit_qps: float | None = None
    webhooks: str = "auto"
    store: str = "memory"
    max_tasks: int | None = None
    webhook_timeout: float | None = None
    replay: str | None = None
    replay_strict: bool = False
    public_url: str | None = None
    control_token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()
    read_timeout: float = 10.0
    family_options: Mapping[str, Any] = field(default_factory=_family_defaults)

    @classmethod
    def names(cls) -> list[str]:
        """Every option name: the core fields, then each family's options."""
        return [*(f.name for f in fields(cls) if f.name != "family_options"),
                *family_options()]

    def __getattr__(self, name: str) -> Any:
        # only called when `name` is no field: a family option (`options.newapi_version`)
        if name.startswith("__") or name == "family_options":
            raise AttributeError(name)
        try:
            return self.family_options[name]
        except KeyError:
            raise AttributeError(f"Options has no option {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        """Any option by name, core or family (`options["jiekou_bare_key"]`)."""
        found = self.family_options.get(name, _UNSET)
        return getattr(self, name) if found is _UNSET else found

    def as_dict(self) -> dict[str, Any]:
        """Every option by name (family options flat beside the core ones)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "family_options"}
        out.update(self.family_options)
        return out

    def merged(self, **changes: Any) -> Options:
        table = family_options()
        if "family_options" in changes:  # a whole mapping (a copy of another Options')
            changes.update(changes.pop("family_options") or {})
        unknown = set(changes) - set(self.names())
        if unknown:
            raise MockServerError(
                f"unknown option(s) {sorted(unknown)}; known: {', '.join(self.names())}"
            )
        if "api_keys" in changes and not isinstance(changes["api_keys"], frozenset):
            keys = changes["api_keys"]
            changes["api_keys"] = frozenset([keys] if isinstance(keys, str) else keys or [])
        if "allowed_hosts" in changes and changes["allowed_hosts"] is not None:
            hosts = changes["allowed_hosts"]
            changes["allowed_hosts"] = tuple([hosts] if isinstance(hosts, str) else hosts)
        if "mounts" in changes and changes["mounts"] is not None:
            mounts = changes["mounts"]
            changes["mounts"] = tuple([mounts] if isinstance(mounts, str) else mounts)
        if "families" in changes and changes["families"] is not None:
            fams = changes["families"]
            changes["families"] = tuple([fams] if isinstance(fams, str) else fams)
        if isinstance(changes.get("public_url"), str) and changes["public_url"].strip():
            # one spelling: links are the public URL + "/_wanmock/..." (no double slash)
            changes["public_url"] = changes["public_url"].strip().rstrip("/")
        family = {k: changes.pop(k) for k in list(changes) if k in table}
        core = {k: v for k, v in changes.items() if v is not None}
        set_family = {k: v for k, v in family.items() if v is not None}
        if set_family:
            core["family_options"] = {**_family_defaults(), **self.family_options, **set_family}
        return replace(self, **core)

    def check(self) -> Options:
        known = family_names()
        bad = [f for f in self.families if f not in known]
        if bad:
            raise MockServerError(f"unknown families {bad}; known: {', '.join(known)}")
        table = option_table()
        for each in fields(self):
            if each.name in table:
                table[each.name].validate(getattr(self, each.name))
        for name, value in self.family_options.items():
            option = table.get(name)
            if option is None:
                raise MockServerError(f"unknown option {name!r}")
            option.validate(value)
        if self.replay_strict and not self.replay:
            raise MockServerError("replay_strict needs replay (a cassette to replay)")
        if self.replay and not Path(self.replay).is_file():
            raise MockServerError(f"replay: no cassette at {self.replay!r}")
        return self
