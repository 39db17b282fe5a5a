"""One description of every option a user can set: its type, default, allowed values and help.

`Options` (core/config.py) validates against it, `wanmock serve` makes its flags from it, the
pytest plugin its marker arguments and `wanmock_*` ini keys. Core options are listed here;
each family declares its own in its `providers/<family>/family.py` (`FamilySpec.options`), and
`mockserver.families.option_table()` puts the two together. Data on the ground floor: it
imports only `mockserver.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mockserver.errors import MockServerError

# kind -> how a string (a flag, an ini value) becomes the option's value
KINDS = ("str", "int", "float", "bool", "list")
_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True, slots=True)
class Option:
    """One user-settable option.

    `check(value)` returns an error message or None (after `choices`, which it need not repeat);
    `flag` is the `wanmock serve` spelling when not `--<name with dashes>`, None for options
    the command line sets by hand (`families`, `api_keys`) or not at all (`scenarios` as rule
    objects only exist in Python, but a YAML file name is still a flag); `family` names the
    family that owns it (None: core).
    """

    name: str
    default: Any
    help: str
    kind: str = "str"
    choices: tuple[Any, ...] = ()
    check: Callable[[Any], str | None] | None = None
    family: str | None = None
    flag: str | None = ""
    metavar: str | None = None
    nullable: bool = False  # None is a value of its own (`seed`, `newapi_poll_interval`...)

    @property
    def cli_flag(self) -> str | None:
        """The `wanmock serve` flag (`--jiekou-bare-key`), or None."""
        if self.flag is None:
            return None
        return self.flag or "--" + self.name.replace("_", "-")

    def parse(self, raw: str) -> Any:
        """A string (command line, ini file) as this option's value."""
        text = raw.strip()
        if self.nullable and text.lower() in ("", "none", "null"):
            return None
        try:
            if self.kind == "int":
                value: Any = int(text)
            elif self.kind == "float":
                value = float(text)
            elif self.kind == "bool":
                value = _BOOL[text.lower()]
            elif self.kind == "list":
                value = [part.strip() for part in text.replace(",", " ").split() if part.strip()]
            else:
                value = text
        except (ValueError, KeyError):
            raise MockServerError(f"{self.name} must be {self.describe()}, not {raw!r}") from None
        if self.choices and value not in self.choices:
            raise MockServerError(f"{self.name} must be one of {self._choices()}, not {raw!r}")
        return value

    def validate(self, value: Any) -> None:
        """Raise `MockServerError` unless `value` is allowed."""
        if value is None and (self.nullable or self.default is None):
            return
        if self.choices and value not in self.choices:
            raise MockServerError(f"{self.name} must be one of {self._choices()}, "
                                  f"not {value!r}")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise MockServerError(f"{self.name} {problem}")

    def describe(self) -> str:
        """The values it takes, for help texts and errors."""
        if self.choices:
            return f"one of {self._choices()}"
        return {"int": "an integer", "float": "a number", "bool": "true or false",
                "list": "a list"}.get(self.kind, "a string")

    def _choices(self) -> str:
        return ", ".join(str(c) for c in self.choices)


def parse_bool(text: str) -> bool | None:
    """A boolean as flags, ini keys and environment variables spell it (true/false, 1/0,
    yes/no, on/off), or None when it is none of those."""
    return _BOOL.get(text.strip().lower())


def at_least(low: float, unit: str = "") -> Callable[[Any], str | None]:
    """A check: the value is >= low."""
    return lambda v: None if v >= low else f"must be >= {low:g}{unit}"


def positive(v: Any) -> str | None:
    """A check: the value is > 0."""
    return None if v > 0 else "must be > 0"


def public_url_problem(v: Any) -> str | None:
    """A check: an absolute http(s) URL with a host, an optional port and path prefix, and
    nothing a base URL cannot carry (a query, a fragment, user:password)."""
    if not isinstance(v, str):
        return "must be a URL such as http://wanmock:8000"
    try:
        parts = urlsplit(v.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"must be a URL such as http://wanmock:8000, not {v!r} ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, not {v!r}"
    if parts.query or parts.fragment or "@" in parts.netloc:
        return f"must be a scheme, host, port and path prefix only, not {v!r}"
    return None


# `--mount NAME`: a gateway that serves a family under its own prefix, with its manners.
# comfyui: comfy.org's proxy (ComfyUI's Wan nodes, comfy_api_nodes/nodes_wan.py) takes
# /proxy/wan/api/v1/..., authenticates its own credential (Bearer or X-API-KEY) and adds
# X-DashScope-Async upstream, so its clients send no async header.
MOUNT_PRESETS = {"comfyui": ("dashscope", "/proxy/wan", True)}


def parse_mount(text: str) -> tuple[str, str, bool]:
    """A `mounts` entry as (family, path prefix, gateway manners): `FAMILY=/PREFIX` serves
    the family's operations under the prefix as they are; a preset name (`comfyui`) adds
    the gateway's manners too. Raises MockServerError on anything else."""
    text = text.strip()
    if text in MOUNT_PRESETS:
        return MOUNT_PRESETS[text]
    family, sep, prefix = text.partition("=")
    prefix = prefix.strip().rstrip("/")
    if (not sep or not family.strip() or not prefix.startswith("/") or "//" in prefix
            or any(c in prefix for c in "?#{} ") or prefix.startswith("/_wanmock")):
        raise MockServerError(
            f"mount must be FAMILY=/PREFIX (e.g. dashscope=/alibailian) or one of "
            f"{', '.join(MOUNT_PRESETS)}, not {text!r}")
    return family.strip(), prefix, False


def _mounts(v: Any) -> str | None:
    try:
        for entry in v:
            parse_mount(entry)
    except MockServerError as exc:
        return str(exc).removeprefix("mount ")
    return None


def _webhook_timeout(v: Any) -> str | None:
    return None if 0 < v <= 60 else "must be > 0 and at most 60 seconds"


def _body_limit(v: Any) -> str | None:
    return None if 1024 <= v <= 1024 ** 3 else "must be at least 1024 bytes and at most 1 GiB"


def _read_timeout(v: Any) -> str | None:
    return None if 0 < v <= 600 else "must be > 0 and at most 600 seconds"


def _token(v: Any) -> str | None:
    return None if isinstance(v, str) and len(v) >= 16 and v.isprintable() and " " not in v \
        else "must be at least 16 printable characters without spaces"


# The core options, in `Options`' order. Families add theirs (providers/<family>/family.py).
CORE: tuple[Option, ...] = (
    Option("families", None, "serve only these families (repeatable; default: all)",
           kind="list", flag=None),
    Option("timing", "fast", "task queue/run times: fast (default: a 5 s 720P job in ~5 s), "
           "realistic, instant, or a timing profile file (wanmock calibrate)"),
    Option("mode", "time", "tasks advance with time, or with each poll",
           choices=("time", "polls")),
    Option("clock", "system", "manual: time moves only via POST /_wanmock/clock/advance",
           choices=("system", "manual")),
    Option("seed", None, "seed ids, timings and URL signatures", kind="int", nullable=True,
           metavar="N"),
    Option("api_keys", frozenset(), "accept only this key (repeatable; default: any non-empty "
           "key)", kind="list", flag=None),
    Option("rule_timing", "contract", "report catalogue rules as the contract says, or all at "
           "submit/async", choices=("contract", "submit", "async")),
    Option("body_limit", 1024 * 1024, "max body bytes", kind="int", check=_body_limit),
    Option("journal_size", 1000, "journal entries kept", kind="int"),
    Option("video_dir", None, "where result videos are cached", nullable=True),
    Option("queued_polls", 1, "--mode polls: queries a task answers queued", kind="int",
           check=at_least(0)),
    Option("running_polls", 2, "--mode polls: queries a task answers running", kind="int",
           check=at_least(0)),
    Option("contracts_dir", None, "directory of contracts to serve (default: bundled)",
           flag="--contracts", nullable=True, metavar="DIR"),
    Option("scenarios", None, "YAML file of scenario rules (faults and job outcomes)",
           nullable=True, metavar="FILE"),
    Option("max_concurrent_tasks", None, "running tasks per API key and family (default: no "
           "limit)", kind="int", check=at_least(1), nullable=True),
    Option("concurrency_policy", "contract", "extra tasks wait (queue) or get 429 (reject)",
           choices=("contract", "queue", "reject")),
    Option("rate_limit_qps", None, "requests per second per API key and family (default: no "
           "limit)", kind="float", check=positive, nullable=True),
    Option("webhooks", "auto", "POST webhooks (jiekou extra.webhook.url) when tasks end: to "
           "loopback hosts only (auto, default), to any host (send), or never (record; all "
           "are listed at GET /_wanmock/webhooks)", choices=("auto", "send", "record")),
    Option("store", "memory", "where the state lives: memory (default), sqlite:///PATH.db "
           "(survives restarts; the workers of one host) or redis://HOST:PORT/DB (workers on "
           "any host)"),
    Option("max_tasks", None, "keep at most N tasks; the oldest ended ones are evicted first",
           kind="int", check=at_least(1), nullable=True, metavar="N"),
    Option("webhook_timeout", None, "seconds per webhook delivery attempt (default: the "
           "family's, 5 s on jiekou/Novita)", kind="float", check=_webhook_timeout,
           nullable=True),
    Option("replay", None, "a cassette (wanmock proxy --record): recorded jobs answer matching "
           "submits with their recorded states, times and bodies", nullable=True,
           metavar="FILE"),
    Option("replay_strict", False, "with --replay: requests the cassette does not know get a "
           "404", kind="bool"),
    Option("public_url", None, "the scheme, host and optional path prefix that result URLs, "
           "webhook payloads and other self-links carry instead of the request's own (e.g. "
           "http://wanmock:8000 in a compose network)", check=public_url_problem, nullable=True,
           metavar="URL"),
    Option("control_token", None, "the token the control API and dashboard require "
           "(X-Wanmock-Token header, or open /_wanmock/ui?token=T once); --allow-remote "
           "generates and prints one unless given", nullable=True, check=_token, metavar="T"),
    Option("allowed_hosts", (), "a Host name the control plane answers besides IP addresses "
           "and localhost (repeatable; .example.com: its subdomains; *: any)", kind="list",
           flag=None),
    Option("mounts", (), "serve a family under an extra path prefix as well, as resellers "
           "and gateways do: FAMILY=/PREFIX (dashscope=/alibailian: "
           "/alibailian/api/v1/...), or comfyui (dashscope at /proxy/wan with comfy.org's "
           "proxy manners) (repeatable)", kind="list", check=_mounts, flag=None),
    Option("read_timeout", 10.0, "seconds a client has to send a request's head, and at most "
           "between two pieces of its body (then 408)", kind="float", check=_read_timeout,
           metavar="S"),
)


def by_name(options: Sequence[Option]) -> dict[str, Option]:
    """The table keyed by option name; two options of one name are a programming error."""
    out: dict[str, Option] = {}
    for option in options:
        if option.name in out:
            raise MockServerError(f"option {option.name!r} is declared twice "
                                  f"({out[option.name].family or 'core'}, "
                                  f"{option.family or 'core'})")
        out[option.name] = option
    return out
