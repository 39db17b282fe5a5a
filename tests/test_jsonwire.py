"""Request bodies are decoded as Go's encoding/json decodes them, and refused in its words.

The expected messages are what `json.Unmarshal` returns (Go's scanner.go: `quoteChar`, the
step functions' contexts, `eof` stepping one more space); the decoding rules are its documented
ones (NaN and Infinity are not JSON; invalid UTF-8 and lone surrogates become U+FFFD).
"""

from __future__ import annotations

import json

import pytest

from mockserver.jsonwire import NotJSON, ascii_int, decode, go_error, quote_char, verbatim

GO_ERRORS = [
    (b'{"a": NaN}', "invalid character 'N' looking for beginning of value"),
    (b'{"a": Infinity}', "invalid character 'I' looking for beginning of value"),
    (b'{"a": -Infinity}', "invalid character 'I' in numeric literal"),
    (b"{x", "invalid character 'x' looking for beginning of object key string"),
    (b"{", "unexpected end of JSON input"),
    (b"", "unexpected end of JSON input"),
    (b"-", "invalid character ' ' in numeric literal"),
    (b"1.", "invalid character ' ' after decimal point in numeric literal"),
    (b"1e+", "invalid character ' ' in exponent of numeric literal"),
    (b"tru", "invalid character ' ' in literal true (expecting 'e')"),
    (b"nulx", "invalid character 'x' in literal null (expecting 'l')"),
    (b"[1,]", "invalid character ']' looking for beginning of value"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b"1 2", "invalid character '2' after top-level value"),
    (b"\xef\xbb\xbf{}", "invalid character '\u00ef' looking for beginning of value"),
    (b'"\x01"', "invalid character '\\x01' in string literal"),
    (b'"\\q"', "invalid character 'q' in string escape code"),
    (b'"\\u12g4"', "invalid character 'g' in \\u hexadecimal character escape"),
    (b"'a'", "invalid character '\\'' looking for beginning of value"),
    (b"--boundary\r\n", "invalid character '-' in numeric literal"),
    (b'{"a":1e400}', "json: cannot unmarshal number 1e400 into Go value of type float64"),
]


@pytest.mark.parametrize(("raw", "message"), GO_ERRORS, ids=[m for _, m in GO_ERRORS])
def test_go_error_is_encoding_json_text_and_decode_refuses(raw, message):
    assert go_error(raw) == message
    with pytest.raises(NotJSON):
        decode(raw)


@pytest.mark.parametrize("raw", [b'{"a":1}', b'[1, 2.5, "x", true, null]', b' 0 ', b'"\xff"'])
def test_go_accepts_what_decode_accepts(raw):
    assert go_error(raw) == ""
    decode(raw)


def test_quote_char_escapes_as_strconv_quote():
    assert [quote_char(c) for c in (0x0A, 0x00, 0x7F, 0x85, 0xA0, 0xE9)] == [
        "'\\n'", "'\\x00'", "'\\x7f'", "'\\u0085'", "'\\u00a0'", "'\u00e9'"]


def test_decode_agrees_with_json_on_ordinary_bodies():
    body = {"model": "wan2.6-t2v", "input": {"prompt": "un chat é 😀"},
            "parameters": {"seed": 10**12, "x": 1.5, "y": [True, None]}}
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert decode(raw) == json.loads(raw) == body
    assert verbatim(raw)


def test_surrogates_and_invalid_utf8_become_replacement_characters():
    assert decode(b'{"a":"x\\ud800y\\udc00\\ud83d\\ude00"}') == {"a": "x\ufffdy\ufffd\U0001F600"}
    assert decode(b'{"\\ud800":1}') == {"\ufffd": 1}
    # Go replaces byte by byte (utf8.DecodeRune gives (RuneError, 1)).
    assert decode(b'{"a":"\xe2\x82z"}') == {"a": "\ufffd\ufffdz"}
    assert not verbatim(b'{"a":"\\ud800"}') and not verbatim(b'{"a":"\xff"}')
    with pytest.raises(NotJSON):
        decode(b'{"a":"\xff"}', invalid_utf8="reject")


@pytest.mark.parametrize("raw", [
    '{"a":1}'.encode("utf-16"), '{"a":1}'.encode("utf-32"), b"\xef\xbb\xbf{}",
])
def test_only_utf8_without_bom_is_json(raw):  # Python's json.loads(bytes) takes all three
    with pytest.raises(NotJSON):
        decode(raw)


@pytest.mark.parametrize(("text", "read"), [
    ("0", 0), ("42", 42), ("9" * 18, int("9" * 18)), ("9" * 19, None), ("9" * 5000, None),
    ("²", None), ("٥", None), ("-1", None), ("+1", None), (" 1", None), ("", None), ("1.0", None),
])
def test_ascii_int_reads_what_go_reads_and_never_raises(text, read):
    assert ascii_int(text) == read


@pytest.mark.parametrize(("text", "read"), [
    ("-3", -3), ("-0", 0), ("7", 7), ("-", None), ("--5", None), ("+5", None), ("-²", None),
    ("-" + "9" * 19, -int("9" * 19)), ("-" + "9" * 20, None),
])
def test_ascii_int_signed(text, read):
    assert ascii_int(text, 19, signed=True) == read
