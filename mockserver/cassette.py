"""Cassettes: recorded exchanges, one JSON object per line, credentials removed.

Line 1 is the header (`{"wanmock_cassette": true, "version": 1, ...}`); every other line is one
exchange (see docs/cassettes.md). `CassetteWriter` appends each exchange as it happens (a run
cut short leaves every finished exchange readable); `read()` reports each bad line with its
number and skips it, and refuses a file whose header it cannot read. Nothing that authenticates
reaches the file: secret headers, key-like query parameters and body fields, bearer tokens and
`sk-` keys anywhere, URL signatures (OSS `Signature=`, `OSSAccessKeyId=`, S3 `X-Amz-*`, the
fake's `Signature=`), and the exact key strings the writer saw in requests.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from mockserver.core.journal import SECRET_HEADERS, redact_value
from mockserver.errors import MockServerError
from mockserver.providers.policy import form_body
from mockserver.version import __version__

VERSION = 1
REDACTED = "[redacted]"
BODY_LIMIT = 8 * 1024 * 1024  # larger bodies are kept as their size and hash only
# Names (headers, query parameters, JSON keys) whose values are credentials.
_SECRET_NAME = re.compile(
    r"(?i)^(?:x-)?(?:api[-_]?key|apikey|access[-_]?key(?:[-_]?id|[-_]?secret)?|"
    r"secret(?:[-_]?key)?|client[-_]?secret|(?:access|refresh|id|auth|session|security)?[-_]?"
    r"token|password|passwd|signature|sig|credential|authorization|ossaccesskeyid|"
    r"x-oss-(?:signature|credential|security-token)|x-amz-(?:signature|credential|"
    r"security-token))$")
# A signature or credential inside a URL in any string.
_URL_SECRET = re.compile(
    r"(?i)([?&](?:Signature|OSSAccessKeyId|security-token|x-oss-signature|x-oss-credential|"
    r"x-oss-security-token|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|sig|"
    r"api_key|apikey|key|token|access_token)=)[^&\"'\s#]*")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
REQUIRED = ("seq", "time", "request", "response")


class CassetteError(MockServerError):
    """A cassette that cannot be read at all (no header, an unknown version)."""


def secret_name(name: str) -> bool:
    """Whether a header, query parameter or JSON key of this name carries a credential."""
    return name.lower() in SECRET_HEADERS or bool(_SECRET_NAME.match(name))


def redact_text(text: str) -> str:
    """Bearer tokens, `sk-` keys and URL signatures in free text."""
    text = redact_value(text)
    if "=" in text:
        text = _URL_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers with lower-case names; credentials masked (the scheme of `Bearer` kept)."""
    out: dict[str, str] = {}
    for name, value in headers:
        low = name.lower()
        if secret_name(low) or low in ("cookie", "set-cookie"):
            out[low] = value[:7] + REDACTED if value[:7].lower() == "bearer " else REDACTED
        else:
            out[low] = redact_text(value)
    return out


def redact_query(query: str) -> str:
    """A query string with key-like parameters and signatures masked."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REDACTED if secret_name(k) else redact_text(v)) for k, v in pairs],
                     safe="[]/:")


def redact_body(value: Any) -> Any:
    """A JSON value with credential fields masked and credentials in strings removed."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact_body(v) for v in value]
    if isinstance(value, dict):
        return {k: (REDACTED if secret_name(str(k)) and isinstance(v, str | int) and v != ""
                    else redact_body(v)) for k, v in value.items()}
    return value


def body_hash(body: Any) -> str:
    """A stable hash of a (redacted) JSON body: replay matches submissions on it."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def encode_body(raw: bytes | None, content_type: str) -> dict[str, Any]:
    """A body as the cassette keeps it: parsed JSON, text, or its size and hash only."""
    if raw is None:
        return {"body": None, "encoding": "none"}
    if not raw:
        return {"body": None, "encoding": "empty"}
    if len(raw) > BODY_LIMIT:
        return {"body": None, "encoding": "omitted", "size": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest()}
    if raw and ("json" in content_type or raw.lstrip()[:1] in (b"{", b"[")):
        try:
            body = redact_body(json.loads(raw))
        except (ValueError, UnicodeDecodeError, RecursionError):
            pass
        else:
            return {"body": body, "encoding": "json", "sha256": body_hash(body)}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"body": None, "encoding": "omitted", "size": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest()}
    if "\x00" in text:
        return {"body": None, "encoding": "omitted", "size": len(raw)}
    return {"body": redact_text(text), "encoding": "text"}


FORM_ENCODINGS = ("form", "multipart")  # a form body, kept as its fields


def encode_form(kind: str, values: Mapping[str, Any],
                files: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A form body's cassette fields (`kind`: `form` or `multipart`), credentials masked; the
    digest is over the fields, so two encodings of one form (another boundary) match."""
    body = redact_body(form_body(values, files))
    return {"body": body, "encoding": kind, "sha256": body_hash(body)}


@dataclass(slots=True)
class Exchange:
    """One recorded request and its answer (bodies as decoded by `encode_body`)."""

    line: int
    seq: int
    time: float
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: Any
    request_encoding: str
    status: int
    response_headers: dict[str, str]
    response_body: Any
    response_encoding: str
    family: str | None = None
    operation: str | None = None
    role: str | None = None
    task: str | None = None
    since_submit: float | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    body_sha256: str | None = None
    origin: str = "upstream"  # or `guard`/`budget`: answered by the proxy, never forwarded


@dataclass(slots=True)
class Problem:
    """A line of a cassette that was skipped, and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(slots=True)
class Cassette:
    path: Path
    header: dict[str, Any]
    exchanges: list[Exchange]
    problems: list[Problem]

    def tasks(self) -> dict[str, list[Exchange]]:
        """Each recorded task's exchanges (its submit first), in recorded order."""
        out: dict[str, list[Exchange]] = {}
        for ex in self.exchanges:
            if ex.task is not None:
                out.setdefault(ex.task, []).append(ex)
        return out

    @property
    def families(self) -> list[str]:
        return sorted({e.family for e in self.exchanges if e.family})


def _exchange(line: int, data: Any) -> Exchange:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise ValueError(f"missing field {', '.join(missing)}")
    req, resp = data["request"], data["response"]
    if not isinstance(req, dict) or not isinstance(resp, dict):
        raise ValueError("request and response must be objects")
    for name in ("method", "path"):
        if not isinstance(req.get(name), str):
            raise ValueError(f"missing field request.{name}")
    if not isinstance(resp.get("status"), int):
        raise ValueError("missing field response.status")
    if not isinstance(data["time"], int | float) or not isinstance(data["seq"], int):
        raise ValueError("seq must be an integer and time a number")
    since = data.get("since_submit")
    return Exchange(
        line=line, seq=data["seq"], time=float(data["time"]), method=req["method"],
        path=req["path"], query=str(req.get("query") or ""),
        request_headers=dict(req.get("headers") or {}), request_body=req.get("body"),
        request_encoding=str(req.get("encoding", "none")), status=resp["status"],
        response_headers=dict(resp.get("headers") or {}), response_body=resp.get("body"),
        response_encoding=str(resp.get("encoding", "none")), family=data.get("family"),
        operation=data.get("operation"), role=data.get("role"), task=data.get("task"),
        since_submit=float(since) if isinstance(since, int | float) else None,
        violations=list(data.get("violations") or []), body_sha256=req.get("sha256"),
        origin=str(data.get("origin", "upstream")),
    )


def read(path: Path | str, *, strict: bool = False) -> Cassette:
    """Read a cassette. Bad exchange lines (truncated JSON, a missing field) are skipped and
    listed in `problems` with their line numbers; `strict=True` refuses the file instead. A
    missing or unreadable header, or a version this wanmock does not know, raises
    `CassetteError` (nothing in the file can be trusted)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CassetteError(f"{path}: cannot read the cassette: {exc.strerror}") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CassetteError(f"{path}: line 1: empty file, no cassette header")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise CassetteError(f"{path}: line 1: the header is not JSON ({exc.msg})") from None
    if not isinstance(header, dict) or "version" not in header:
        raise CassetteError(f"{path}: line 1: not a wanmock cassette header (no `version`)")
    if header["version"] != VERSION:
        raise CassetteError(f"{path}: line 1: unknown cassette version {header['version']!r} "
                            f"(this wanmock reads version {VERSION})")
    exchanges: list[Exchange] = []
    problems: list[Problem] = []
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(number, f"not valid JSON ({exc.msg} at column {exc.colno}"
                                            "; truncated?)"))
            continue
        if isinstance(data, dict) and "version" in data and data["version"] != VERSION:
            problems.append(Problem(number, f"unknown version {data['version']!r}"))
            continue
        try:
            exchanges.append(_exchange(number, data))
        except ValueError as exc:
            problems.append(Problem(number, str(exc)))
    if strict and problems:
        raise CassetteError(f"{path}: " + "; ".join(str(p) for p in problems))
    return Cassette(path, header, exchanges, problems)


class CassetteWriter:
    """Appends exchanges to a cassette as they happen (one flushed line each); thread-safe.

    `secret(value)` registers a credential seen on the wire: its exact text is removed from
    every later line, whatever field it hides in."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.monotonic,
                 **header: Any) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._seq = 0
        self.t0 = clock()  # `time` of each exchange counts from here (a monotonic reading)
        self._file = self.path.open("w", encoding="utf-8")
        head = {"wanmock_cassette": True, "version": VERSION, "wanmock": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **header}
        self._write(head)

    def secret(self, value: str | None) -> None:
        if value and len(value.strip()) >= 6:
            self._secrets.add(value.strip())

    def since_start(self, monotonic: float) -> float:
        """Seconds from the start of the recording to `monotonic` (a reading of `clock`)."""
        return round(max(0.0, monotonic - self.t0), 6)

    def _write(self, data: Mapping[str, Any]) -> None:
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        for secret in sorted(self._secrets, key=len, reverse=True):
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
            line = line.replace(escaped, REDACTED)
        self._file.write(line + "\n")
        self._file.flush()

    def write(self, **exchange: Any) -> int:
        """Write one exchange (fields as in docs/cassettes.md); returns its `seq`."""
        with self._lock:
            self._seq += 1
            self._write({"seq": self._seq, **exchange})
            return self._seq

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> CassetteWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
