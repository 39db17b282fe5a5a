"""Who may drive the control plane (`/_wanmock/`): the checks trusted local servers make.

A page in the user's browser can send requests to the fake (it listens on loopback, the browser
runs there too), so the control API and the dashboard check, in this order:

1. **Host** (DNS rebinding, as webpack-dev-server's `allowedHosts` and Vite's
   `server.allowedHosts`): the `Host` header must name an IP address, `localhost` or a
   `*.localhost` name, the address the server reports for itself (ASGI `scope["server"]`), the
   host of `--public-url`, or a host the user allowed (`--allowed-host H`; `.example.com` allows
   its subdomains, `*` allows any). A rebinding page's requests carry its own domain name.
2. **Control token** (only when one is set: `wanmock serve --allow-remote` sets one, as
   Jupyter's server does): `X-Wanmock-Token: T`, or the cookie the dashboard sets when it is
   opened once as `/_wanmock/ui?token=T`. An API key (`--api-key`) never opens the control plane.
3. **Cross-origin requests** (state-changing methods only), the algorithm of Go 1.25's
   `net/http.CrossOriginProtection`: `Sec-Fetch-Site` other than `same-origin`/`none` is refused;
   without it, an `Origin` whose host is not the `Host` is refused; no header at all is a
   non-browser client and passes.
4. **Content type** (state-changing methods only): a body must be JSON, and the types a page may
   send without a CORS preflight (`text/plain`, `application/x-www-form-urlencoded`,
   `multipart/form-data`) are refused even empty, so a browser must ask first (and is told no).

The signed result-video URLs (`/_wanmock/videos/...`) are exempt: clients fetch them by whatever
host a result URL names, and their signature already guards them. `GET /_wanmock/health` needs
no token (a container's HEALTHCHECK cannot know one generated at start; it tells only the
status, version and store reachability). No Starlette here.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

PREFIX = "/_wanmock"
EXEMPT = ("/_wanmock/videos/",)
# Read-only and free of task data, for probes that cannot know a token generated at start
# (a container's HEALTHCHECK, an orchestrator's HTTP probe): the Host check still applies.
TOKEN_EXEMPT = frozenset({"/_wanmock/health"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The request content types a page may send cross-origin without a CORS preflight (Fetch
# standard, "CORS-safelisted request-header").
SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
TOKEN_HEADER = "x-wanmock-token"
TOKEN_QUERY = "token"


@dataclass(frozen=True, slots=True)
class Refusal:
    """What the guard answers instead of the route: a status, a message, extra headers."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def host_name(host: str) -> str:
    """The name part of a `Host` header (`[::1]:8000` -> `::1`, `Example.COM.:80` ->
    `example.com`)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def cookie_name(host: str) -> str:
    """The token cookie's name: one per port, since cookies are shared by every port of a host
    (two fakes on one machine keep their own)."""
    port = host.rpartition(":")[2] if host.rpartition(":")[2].isdigit() else "80"
    return f"wanmock_token_{port}"


class ControlGuard:
    """The checks above, for one app. `token` None: no token needed (loopback serving)."""

    def __init__(self, *, token: str | None = None, allowed_hosts: Iterable[str] = (),
                 public_url: str | None = None) -> None:
        self.token = token or None
        hosts = {host_name(h) if not h.startswith(".") else h.lower().rstrip(".")
                 for h in allowed_hosts if h}
        self.any_host = "*" in hosts
        self.suffixes = tuple(h for h in hosts if h.startswith("."))
        self.hosts = frozenset(h for h in hosts if not h.startswith("."))
        self.public_origin = None
        if public_url:
            parts = urlsplit(public_url)
            self.hosts |= {host_name(parts.netloc)}
            self.public_origin = f"{parts.scheme}://{parts.netloc}".lower()

    @classmethod
    def from_options(cls, options: Any) -> ControlGuard:
        """The guard an app's `Options` describe (`control_token`, `allowed_hosts`, and
        `public_url` where that option exists)."""
        values = options.as_dict()
        return cls(token=values.get("control_token"),
                   allowed_hosts=values.get("allowed_hosts") or (),
                   public_url=values.get("public_url"))

    def host_allowed(self, name: str, server: Any = None) -> bool:
        """Whether a `Host` name may reach the control plane."""
        if (self.any_host or _is_ip(name) or name == "localhost" or name.endswith(".localhost")
                or name in self.hosts):
            return True
        if server and isinstance(server[0], str) and host_name(server[0]) == name:
            return True  # the address the server reports for itself (in process: its name)
        return any(name.endswith(s) or name == s[1:] for s in self.suffixes)

    def check(self, scope: MutableMapping[str, Any]) -> Refusal | None:
        """None when the request may go on to its route, else the refusal to answer."""
        path: str = scope["path"]
        if not path.startswith(PREFIX) or path.startswith(EXEMPT):
            return None
        headers = _headers(scope)
        host = headers.get("host", "")
        if host and not self.host_allowed(host_name(host), scope.get("server")):
            return Refusal(403, f"Host {host_name(host)!r} may not reach the control plane "
                           "(DNS rebinding protection); start the fake with --allowed-host "
                           f"{host_name(host)} to allow it")
        method = scope["method"]
        if self.token is not None and not (method in SAFE_METHODS and path in TOKEN_EXEMPT):
            refused = self._token(scope, headers, host, method)
            if refused is not None:
                return refused
        if method in SAFE_METHODS:
            return None
        return self._cross_origin(headers, host) or self._content_type(headers)

    def _token(self, scope: MutableMapping[str, Any], headers: dict[str, str], host: str,
               method: str) -> Refusal | None:
        assert self.token is not None
        given = headers.get(TOKEN_HEADER)
        if given is None and "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a cookie header the stdlib cannot read: no token there
                jar = SimpleCookie()
            morsel = jar.get(cookie_name(host))
            given = morsel.value if morsel is not None else None
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        query = parse_qsl((scope.get("query_string") or b"").decode("latin-1"))
        offered = [v for k, v in query if k == TOKEN_QUERY]
        if (method == "GET" and offered
                and hmac.compare_digest(offered[0].encode(), self.token.encode())):
            # Jupyter's way in: the link printed at start sets a cookie, then the URL drops it.
            rest = urlencode([(k, v) for k, v in query if k != TOKEN_QUERY])
            where = scope["path"] + (f"?{rest}" if rest else "")
            cookie = (f"{cookie_name(host)}={self.token}; Path={PREFIX}; HttpOnly; "
                      "SameSite=Strict")
            return Refusal(303, "token accepted", (("location", where), ("set-cookie", cookie)))
        return Refusal(401, "the control plane needs the control token printed at start: send "
                       f"the header X-Wanmock-Token, or open {PREFIX}/ui?token=... once")

    def _cross_origin(self, headers: dict[str, str], host: str) -> Refusal | None:
        site = headers.get("sec-fetch-site")
        if site is not None:
            if site in ("same-origin", "none"):
                return None
            return Refusal(403, f"cross-origin request refused (Sec-Fetch-Site: {site}): the "
                           "control API is driven from its own dashboard or a non-browser client")
        origin = headers.get("origin")
        if origin is None:
            return None
        parts = urlsplit(origin)
        if origin != "null" and parts.netloc.lower() == host.lower():
            return None
        if self.public_origin is not None and origin.lower() == self.public_origin:
            return None
        return Refusal(403, f"cross-origin request refused (Origin: {origin}): the control API "
                       "is driven from its own dashboard or a non-browser client")

    @staticmethod
    def _content_type(headers: dict[str, str]) -> Refusal | None:
        kind = headers.get("content-type", "").partition(";")[0].strip().lower()
        has_body = headers.get("content-length", "0").strip() not in ("", "0") or \
            "transfer-encoding" in headers
        if kind in SIMPLE_TYPES or (has_body and not _is_json(kind)):
            return Refusal(415, "the control API takes JSON: send Content-Type: application/json"
                           f" (got {kind or 'none'})")
        return None


def _is_json(kind: str) -> bool:
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


def _headers(scope: MutableMapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = name.decode("latin-1").lower()
        if key not in out:
            out[key] = value.decode("latin-1")
    return out


async def send_refusal(refusal: Refusal, send: Any) -> None:
    """Answer a refusal as the control API answers errors: `{"error", "type"}` JSON."""
    import json

    body = json.dumps({"error": refusal.message, "type": "MockServerError"}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in refusal.headers]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guarded:
    """Any ASGI app (the proxy's) behind a `ControlGuard`."""

    def __init__(self, app: Any, guard: ControlGuard) -> None:
        self.app = app
        self.guard = guard

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = self.guard.check(scope)
            if refusal is not None:
                await send_refusal(refusal, send)
                return
        await self.app(scope, receive, send)
