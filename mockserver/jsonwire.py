"""Request bodies decoded as the providers' parsers decode them, not as Python's `json` does.

Python's `json.loads` accepts what the providers refuse: the tokens `NaN`, `Infinity` and
`-Infinity`, numbers beyond float64 (read as `inf`), UTF-16/32 bodies and a UTF-8 BOM (when it is
given bytes). Go's `encoding/json` (new-api, the Go gateways) refuses all of them, and its docs
say: "invalid UTF-8 or invalid UTF-16 surrogate pairs are not treated as an error. Instead, they
are replaced by the Unicode replacement character U+FFFD" (encoding/json `Unmarshal`). `decode`
follows Go; `invalid_utf8="reject"` keeps a body with invalid UTF-8 bytes out (DashScope, whose
parser is not Go: decision `json-decoding` in each contract).

`go_error(raw)` is the message `json.Unmarshal` returns for a body it refuses
(`invalid character 'N' looking for beginning of value`), from a port of Go's scanner
(encoding/json/scanner.go), for families that answer with Go's words.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any, Literal

InvalidUtf8 = Literal["replace", "reject"]


class NotJSON(ValueError):
    """The body is not JSON to the provider's parser."""


def _reject_constant(name: str) -> Any:
    raise NotJSON(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: Go's ParseFloat fails (out of range); Python says inf
        raise NotJSON(f"number {text} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_float)
_decode = _DECODER.decode
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_replace(err: UnicodeError) -> tuple[str, int]:
    """Go replaces each byte of an invalid UTF-8 sequence by U+FFFD (utf8.DecodeRune gives
    (RuneError, 1)); Python's "replace" would give one per maximal subpart."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return "\ufffd", err.start + 1


codecs.register_error("wanmock-go-utf8", _go_replace)


def decode(raw: bytes, *, invalid_utf8: InvalidUtf8 = "replace") -> Any:
    """The JSON value of a request body, or `NotJSON`.

    UTF-8 only (no BOM, no UTF-16/32); no NaN, Infinity, -Infinity or out-of-range numbers; lone
    surrogates (`\\ud800`) become U+FFFD; invalid UTF-8 bytes become U+FFFD (`replace`, Go) or
    make the body not JSON (`reject`).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if invalid_utf8 == "reject":
            raise NotJSON("the body is not UTF-8") from None
        text = raw.decode("utf-8", "wanmock-go-utf8")
    try:
        value = _decode(text)
    except NotJSON:
        raise
    except (ValueError, RecursionError) as exc:  # too deep is not JSON either
        raise NotJSON(str(exc)) from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        value = _replace_surrogates(value)
    return value


_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


def verbatim(raw: bytes) -> bool:
    """Whether `decode(raw)` is what Python's `json.loads(raw)` gives too (no byte replaced by
    U+FFFD), so the text itself can stand for the value."""
    if b"\\u" in raw and _SURROGATE_ESCAPE_BYTES.search(raw):
        return False
    if raw.isascii():
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


# -- Go's scanner, for its error messages ------------------------------------------------------
_SPACE = b" \t\r\n"
_HEX = b"0123456789abcdefABCDEF"
_DIGITS = b"0123456789"
_ESCAPES = b'bfnrt\\/"'


def quote_char(c: int) -> str:
    """Go's `quoteChar`: the byte as Go's scanner names it in a SyntaxError."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    named = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
    if c in named:
        return f"'{named[c]}'"
    if c < 0x20 or c == 0x7F:
        return f"'\\x{c:02x}'"
    if 0x80 <= c <= 0xA0 or c == 0xAD:  # not printable to strconv.IsPrint
        return f"'\\u{c:04x}'"
    return f"'{chr(c)}'"


def go_error(raw: bytes) -> str:
    """The error `encoding/json` gives for `raw`: a SyntaxError text, `unexpected end of JSON
    input`, or (for a well-formed body Python refuses) Go's number error. "" if Go accepts it."""
    stack: list[str] = []  # "key" / "value" (in an object), "array"
    state = "begin"
    literal = b""
    pos = 0
    # Go's scanner ends the input by stepping one more space (scanner.eof): "1." then reads
    # "invalid character ' ' after decimal point in numeric literal".
    raw = raw + b" "
    i = 0
    n = len(raw)

    def err(c: int, context: str) -> str:
        return f"invalid character {quote_char(c)} {context}"

    while i < n:
        c = raw[i]
        if state == "begin":  # the beginning of a value
            if c in _SPACE:
                i += 1
                continue
            if c == 0x7B:
                stack.append("key")
                state = "key_or_end"
            elif c == 0x5B:
                stack.append("array")
                state = "value_or_end"
            elif c == 0x22:
                state = "string"
            elif c == 0x2D:
                state = "neg"
            elif c == 0x30:
                state = "zero"
            elif 0x31 <= c <= 0x39:
                state = "int"
            elif c in b"tfn":
                literal = {0x74: b"true", 0x66: b"false", 0x6E: b"null"}[c]
                state = "literal"
                pos = 1
            else:
                return err(c, "looking for beginning of value")
            i += 1
            continue
        if state == "key_or_end":
            if c in _SPACE:
                i += 1
                continue
            if c == 0x7D:
                stack.pop()
                state = "end"
                i += 1
                continue
            state = "key"
            continue
        if state == "key":
            if c in _SPACE:
                i += 1
                continue
            if c != 0x22:
                return err(c, "looking for beginning of object key string")
            state = "string"
            i += 1
            continue
        if state == "value_or_end":
            if c in _SPACE:
                i += 1
                continue
            if c == 0x5D:
                stack.pop()
                state = "end"
                i += 1
                continue
            state = "begin"
            continue
        if state == "string":
            if c == 0x22:
                state = "end"
            elif c == 0x5C:
                state = "escape"
            elif c < 0x20:
                return err(c, "in string literal")
            i += 1
            continue
        if state == "escape":
            if c in _ESCAPES:
                state = "string"
            elif c == 0x75:
                state = "u0"
            else:
                return err(c, "in string escape code")
            i += 1
            continue
        if state in ("u0", "u1", "u2", "u3"):
            if c not in _HEX:
                return err(c, "in \\u hexadecimal character escape")
            state = "string" if state == "u3" else "u" + str(int(state[1]) + 1)
            i += 1
            continue
        if state == "literal":
            if c != literal[pos]:
                word = literal.decode()
                return err(c, f"in literal {word} (expecting {quote_char(literal[pos])})")
            pos += 1
            if pos == len(literal):
                state = "end"
            i += 1
            continue
        if state == "neg":
            if c == 0x30:
                state = "zero"
            elif 0x31 <= c <= 0x39:
                state = "int"
            else:
                return err(c, "in numeric literal")
            i += 1
            continue
        if state == "int" and c in _DIGITS:
            i += 1
            continue
        if state in ("int", "zero"):
            if c == 0x2E:
                state = "dot"
                i += 1
                continue
            if c in b"eE":
                state = "exp"
                i += 1
                continue
            state = "end"
            continue
        if state == "dot":
            if c not in _DIGITS:
                return err(c, "after decimal point in numeric literal")
            state = "frac"
            i += 1
            continue
        if state == "frac":
            if c in _DIGITS:
                i += 1
                continue
            if c in b"eE":
                state = "exp"
                i += 1
                continue
            state = "end"
            continue
        if state == "exp":
            state = "exp_sign"
            if c in b"+-":
                i += 1
            continue
        if state == "exp_sign":
            if c not in _DIGITS:
                return err(c, "in exponent of numeric literal")
            state = "exp_digits"
            i += 1
            continue
        if state == "exp_digits":
            if c in _DIGITS:
                i += 1
                continue
            state = "end"
            continue
        # state == "end": a value just ended
        if c in _SPACE:
            i += 1
            continue
        if not stack:
            return err(c, "after top-level value")
        top = stack[-1]
        if top == "key":
            if c != 0x3A:
                return err(c, "after object key")
            stack[-1] = "value"
            state = "begin"
        elif top == "value":
            if c == 0x2C:
                stack[-1] = "key"
                state = "key"
            elif c == 0x7D:
                stack.pop()
                state = "end"
            else:
                return err(c, "after object key:value pair")
        else:
            if c == 0x2C:
                state = "begin"
            elif c == 0x5D:
                stack.pop()
                state = "end"
            else:
                return err(c, "after array element")
        i += 1
    if stack or state != "end":
        return "unexpected end of JSON input"
    return _go_number_error(raw)


_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _go_number_error(raw: bytes) -> str:
    """A well-formed body Python refused: a number beyond float64 (`1e400`) is Go's
    `UnmarshalTypeError` when it decodes into an `interface {}` or float64."""
    for match in _NUMBER.finditer(raw):
        text = match.group().decode()
        try:
            if math.isinf(float(text)):
                return f"json: cannot unmarshal number {text} into Go value of type float64"
        except ValueError:
            continue
    return ""


def ascii_int(text: str, most: int = 18, *, signed: bool = False) -> int | None:
    """`text` as an integer when it is ASCII digits (after a `-` when `signed`) and at most
    `most` of them, else None. A header, query, path or body value read as a number the way
    Go's strconv and HTTP servers read it: `str.isdigit` also accepts "²" (which `int()`
    refuses) and "٥", and `int()` refuses more than 4300 digits."""
    digits = text[1:] if signed and text.startswith("-") else text
    if 0 < len(digits) <= most and digits.isascii() and digits.isdigit():
        return int(text)
    return None
