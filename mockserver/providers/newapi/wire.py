"""How new-api reads a submit body, by Content-Type, before and inside the task relay.

No Starlette here: plain functions over the raw bytes, so the journal, the routes and the
conformance checks read a body the same way. Sources (github.com/QuantumNous/new-api at
v1.0.0-rc.25 f1164142 and v0.10.0 ee53a7b6; contracts/newapi.yaml x-wanmock-decisions):

- `middleware/distributor.go` `getModelFromRequest`: a `Content-Type` that *starts with*
  `application/json` is checked with gjson (latest) or decoded into `ModelRequest` (legacy);
  anything else goes through `common.UnmarshalBodyReusable`.
- `common/gin.go` `UnmarshalBodyReusable`: JSON by prefix, then `application/x-www-form-urlencoded`
  (`url.ParseQuery`) and `multipart/form-data` (`multipart.Reader.ReadForm`) by substring; any
  other type is skipped (the request reads as empty, so the distributor finds no model).
  `processFormMap` marshals the form values (a string, or a list when a key repeats) to JSON and
  unmarshals that into the target struct; file parts are not in `form.Value` and are dropped.
- `relay/common/relay_info.go` `TaskSubmitReq.UnmarshalJSON`: `duration` may be a number or a
  numeric string (else it stays 0), `metadata` may be an object or a JSON string of one.

Go's error texts are reproduced where the source fixes them; the `encoding/json` and
`mime/multipart` texts are Go's standard library wording [B].
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from mockserver import jsonwire
from mockserver.providers.newapi import gojson

JSON_PREFIX = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]*)')


class WireError(Exception):
    """new-api could not read the body; `str(err)` is Go's error text."""


@dataclass(slots=True)
class FilePart:
    """A multipart file part: new-api's Ali relay drops it; the fake keeps what it was."""

    name: str
    filename: str
    content_type: str
    data: bytes

    def summary(self) -> dict[str, Any]:
        """What the journal shows instead of the bytes."""
        return {"filename": self.filename, "content_type": self.content_type,
                "size": len(self.data), "sha256": hashlib.sha256(self.data).hexdigest()}

    def record(self) -> dict[str, Any]:
        """What the task's request keeps: the summary and the bytes as a data: URI."""
        kind = self.content_type or "application/octet-stream"
        return {"name": self.name, **self.summary(),
                "data_uri": f"data:{kind};base64,{base64.b64encode(self.data).decode()}"}


@dataclass(slots=True)
class Form:
    """A form body as new-api's form map sees it, plus the file parts it ignores."""

    values: dict[str, str | list[str]] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)


def kind_of(content_type: str) -> str:
    """`json`, `form`, `multipart` or `none`, in UnmarshalBodyReusable's order."""
    if content_type.startswith(JSON_PREFIX):
        return "json"
    if FORM in content_type:
        return "form"
    if MULTIPART in content_type:
        return "multipart"
    return "none"


# -- application/x-www-form-urlencoded ---------------------------------------------------------
def parse_query(raw: bytes) -> Form:
    """Go's `url.ParseQuery` (errors as Go words them)."""
    from urllib.parse import unquote_plus

    values: dict[str, list[str]] = {}
    text = raw.decode("utf-8", errors="replace")
    for part in text.split("&"):
        if not part:
            continue
        if ";" in part:
            raise WireError("invalid semicolon separator in query")
        key, _, value = part.partition("=")
        for piece in (key, value):
            bad = _ESCAPE.search(piece)
            if bad:
                raise WireError(f'invalid URL escape "{piece[bad.start():bad.start() + 3]}"')
        values.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    return Form({k: v[0] if len(v) == 1 else v for k, v in values.items()})


# -- multipart/form-data -----------------------------------------------------------------------
def boundary_of(content_type: str) -> str | None:
    """The boundary, None when there is none (new-api then decodes the body as JSON), or
    `WireError` for a media type Go's `mime.ParseMediaType` refuses."""
    head, _, params = content_type.partition(";")
    if not head.strip() or "/" not in head:
        raise WireError("mime: no media type")
    found: dict[str, str] = {}
    rest = ";" + params if params else ""
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None:
            if rest[pos:].strip(" ;"):
                raise WireError("mime: invalid media parameter")
            break
        value = match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        key = match.group(1).lower()
        if key in found:
            raise WireError("mime: duplicate parameter name")
        found[key] = value
        pos = match.end()
    return found.get("boundary") or None


def parse_multipart(raw: bytes, boundary: str) -> Form:
    """Go's `multipart.Reader.ReadForm`: value parts into the form map, file parts apart."""
    dash = b"--" + boundary.encode("latin-1")
    form = Form()
    values: dict[str, list[str]] = {}
    if raw.startswith(dash):
        pos = len(dash)
    else:
        found = raw.find(b"\n" + dash)
        if found < 0:
            return form  # no boundary line: Go's reader reaches EOF, the form is empty
        pos = found + 1 + len(dash)
    delimiter = b"\r\n" + dash
    while True:
        if raw.startswith(b"--", pos):
            break  # the closing boundary
        eol = raw.find(b"\n", pos)
        if eol < 0:
            raise WireError("multipart: NextPart: EOF")
        if raw[pos:eol].strip(b" \t\r"):
            raise WireError(f"multipart: expecting a new Part; got line {_quote(raw[pos:eol + 1])}")
        headers, body_at = _headers(raw, eol + 1)
        end = raw.find(delimiter, body_at)
        if end < 0:
            raise WireError("unexpected EOF")
        content = raw[body_at:end]
        name, filename = _disposition(headers.get("content-disposition", ""))
        if name:
            if filename:
                form.files.append(FilePart(name, filename, headers.get("content-type", ""),
                                           content))
            else:
                values.setdefault(name, []).append(content.decode("utf-8", errors="replace"))
        pos = end + len(delimiter)
    form.values = {k: v[0] if len(v) == 1 else v for k, v in values.items()}
    return form


def _headers(raw: bytes, pos: int) -> tuple[dict[str, str], int]:
    headers: dict[str, str] = {}
    while True:
        eol = raw.find(b"\n", pos)
        if eol < 0:
            raise WireError("multipart: NextPart: EOF")
        line = raw[pos:eol].rstrip(b"\r")
        pos = eol + 1
        if not line:
            return headers, pos
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name:
            raise WireError(f"multipart: NextPart: malformed MIME header line: "
                            f"{line[:64].decode('utf-8', errors='replace')}")
        headers.setdefault(name.decode("latin-1").lower(), value.strip().decode(
            "utf-8", errors="replace"))


def _disposition(value: str) -> tuple[str, str]:
    kind, _, params = value.partition(";")
    if kind.strip().lower() != "form-data":
        return "", ""
    found = {m.group(1).lower(): m.group(2) for m in _PARAM.finditer(";" + params)}
    name, filename = (found.get(k, "") for k in ("name", "filename"))
    return (name[1:-1] if name.startswith('"') else name,
            filename[1:-1] if filename.startswith('"') else filename)


def _quote(data: bytes) -> str:
    return json.dumps(data[:64].decode("utf-8", errors="replace"))


def read_form(raw: bytes, content_type: str) -> Form | Any:
    """A form or multipart body as new-api reads it: a `Form`, or for multipart without a
    boundary the body decoded as JSON (Go's fallback). `WireError` when Go would fail."""
    if kind_of(content_type) == "form":
        return parse_query(raw)
    boundary = boundary_of(content_type)
    if boundary is None:
        return decode_json(raw)
    return parse_multipart(raw, boundary)


# -- JSON --------------------------------------------------------------------------------------
def decode_json(raw: bytes) -> Any:
    """Go's `json.Unmarshal` of a whole body: the value, or `WireError` with Go's words
    (`mockserver.jsonwire`: NaN and Infinity refused, U+FFFD for invalid UTF-8 and lone
    surrogates, the scanner's own error texts)."""
    try:
        return jsonwire.decode(raw)
    except jsonwire.NotJSON:
        # Python gives up nesting before Go's limit of 10000 ("exceeded max depth").
        raise WireError(jsonwire.go_error(raw) or "exceeded max depth") from None


def model_of(body: Any, *, legacy: bool) -> str:
    """The distributor's `ModelRequest.model`: latest gjson (`field model must be a string`),
    legacy `json.Unmarshal` into the struct (Go's type error)."""
    if not isinstance(body, dict):
        if legacy and body is not None:
            raise WireError(f"json: cannot unmarshal {gojson.kind(body)} into Go value of type "
                            "middleware.ModelRequest")
        return ""
    for name in ("model", "group"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            if legacy:
                raise WireError(f"json: cannot unmarshal {gojson.kind(value)} into Go struct field "
                                f"ModelRequest.{name} of type string")
            raise WireError(f"field {name} must be a string")
    model = body.get("model")
    return model if isinstance(model, str) else ""


# -- the relay's TaskSubmitReq from a form map -------------------------------------------------
def task_request(form: Form) -> dict[str, Any]:
    """The form map as `processFormMap` hands it to TaskSubmitReq: each value a string, or a
    list when the key repeats, in json.Marshal's sorted key order (taskreq.decode reads it)."""
    return dict(sorted(form.values.items()))


def journal_text(form: Form) -> str:
    """A multipart body as the journal shows it: every value, each file summarised."""
    shown: dict[str, Any] = dict(form.values)
    for part in form.files:
        shown.setdefault(part.name, part.summary())
    return json.dumps(shown, ensure_ascii=False, separators=(",", ":"))
