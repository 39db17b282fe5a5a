"""The proxy's reverse-proxy manners: which headers travel, and what they say (no Starlette).

As a reverse proxy (nginx, Traefik, RFC 9110 §7.6.1) does:

- hop-by-hop headers (`Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`,
  `Proxy-*`, `Trailer`) and every header the `Connection` header names stay on their hop, both
  ways; `Host` is the target's (httpx sets it from the URL) and `Content-Length` is recomputed;
- the request gains `X-Forwarded-For` (the client's address appended to any it brought),
  `X-Forwarded-Proto` and `X-Forwarded-Host` (what the client asked the proxy for);
- a `Location` or `Content-Location` that points at a target is rewritten to the proxy's own
  address, so a client that follows a redirect stays on the proxy (and keeps its credentials:
  HTTP clients drop `Authorization` on a redirect that leaves the origin);
- an absolute URL in a JSON answer that points at a target (a self-link: a status URL, a
  polling URL, a `get` link the answer gives the client) is rewritten the same way, so a client
  that follows it keeps going through the proxy (and is recorded); the cassette keeps the
  provider's own body (`rewrite_links`);
- in record mode the real key replaces the client's placeholder where the family reads it, in
  the form the client sent it (`Bearer`, a bare key, another scheme: `with_key`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from mockserver.errors import ProviderError

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "trailers", "transfer-encoding",
                        "upgrade"})
# Never copied from one hop to the next: the next hop's framing and address are its own.
_REPLACED = frozenset({"host", "content-length"})
_FORWARDED = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
_LOCATIONS = ("location", "content-location")


def _named_by_connection(headers: Iterable[tuple[str, str]]) -> set[str]:
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return named


def end_to_end(headers: Iterable[tuple[str, str]], *, keep: Iterable[str] = ()
               ) -> list[tuple[str, str]]:
    """The headers that travel on: no hop-by-hop header, none the `Connection` header names,
    no `Host` or `Content-Length` (unless named in `keep`)."""
    headers = list(headers)
    kept = {name.lower() for name in keep}
    drop = (HOP_BY_HOP | _REPLACED | _named_by_connection(headers)) - kept
    return [(k, v) for k, v in headers if k.lower() not in drop]


def forwarded_request(headers: Iterable[tuple[str, str]], *, client: str | None, scheme: str,
                      host: str | None) -> list[tuple[str, str]]:
    """The request's headers as the target gets them (see the module docstring)."""
    out = end_to_end(headers)
    before = [v for k, v in out if k.lower() == "x-forwarded-for"]
    out = [(k, v) for k, v in out if k.lower() not in _FORWARDED]
    chain = [*before, client] if client else before
    if chain:
        out.append(("X-Forwarded-For", ", ".join(chain)))
    out.append(("X-Forwarded-Proto", scheme))
    if host:
        out.append(("X-Forwarded-Host", host))
    return out


def _port(url: httpx.URL) -> int | None:
    return url.port or {"http": 80, "https": 443}.get(url.scheme)


def rewrite_location(value: str, targets: Iterable[str], public: str) -> str:
    """`value` with a target's address replaced by the proxy's (`public`, scheme and host);
    anything else (a relative URL, another host or port) unchanged."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        return value
    if not url.is_absolute_url:
        return value
    for target in targets:
        base = httpx.URL(target)
        prefix = base.raw_path.decode("ascii").rstrip("/")
        path = url.raw_path.decode("ascii")
        # The same server whatever the scheme: a target behind the proxy may build its links
        # from the X-Forwarded-Proto it was sent (https) on its own plain-HTTP port.
        if ((url.host, _port(url)) == (base.host, _port(base))
                and (not prefix or path == prefix or path.startswith(prefix + "/")
                     or path.startswith(prefix + "?"))):
            rest = path[len(prefix):] or "/"
            return public.rstrip("/") + rest + (f"#{url.fragment}" if url.fragment else "")
    return value


def rewrite_links(body: bytes, targets: Iterable[str], public: str) -> bytes | None:
    """A JSON body with every string that is a URL on a target rewritten to the proxy
    (`rewrite_location`), or None when nothing changed (the body then goes out as it came).
    A URL under `/_wanmock/` stays: the proxy never forwards those paths."""
    targets = list(targets)
    hosts = [httpx.URL(t).netloc.decode("ascii") for t in targets]
    text = body.decode("utf-8", "replace")
    if not any(host in text for host in hosts):  # the common case: no self-link at all
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    changed = False

    def walk(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith(("http://", "https://")) and \
                "/_wanmock/" not in value:
            new = rewrite_location(value, targets, public)
            changed = changed or new != value
            return new
        return value

    out = walk(data)
    return json.dumps(out, ensure_ascii=False).encode() if changed else None


def answered_headers(headers: Iterable[tuple[str, str]], targets: Iterable[str], public: str,
                     *, keep: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The target's response headers as the client gets them: end to end only, and every
    `Location`/`Content-Location` that points at a target rewritten to the proxy."""
    targets = list(targets)
    out = []
    for name, value in end_to_end(headers, keep=keep):
        if name.lower() in _LOCATIONS:
            value = rewrite_location(value, targets, public)
        out.append((name, value))
    return out



def with_key(headers: list[tuple[str, str]], policy: Any, key: str) -> list[tuple[str, str]]:
    """The request's headers with the client's key replaced by `key` wherever it is sent
    (the family's policy reads which key the client sent: `Policy.read_key`), so the scheme
    and header the client used stay; with no key the family can read, `Authorization: Bearer`."""
    sent: str | None = None
    if policy is not None:
        try:
            sent = policy.read_key({k.lower(): v for k, v in headers})
        except ProviderError:
            sent = None
    if not sent:
        kept = [(k, v) for k, v in headers if k.lower() != "authorization"]
        return [*kept, ("Authorization", f"Bearer {key}")]
    out = []
    for name, value in headers:
        scheme, space, token = value.strip().rpartition(" ")
        if token == sent:  # the whole value, or its credential after a scheme
            value = f"{scheme}{space}{key}"
        out.append((name, value))
    return out
