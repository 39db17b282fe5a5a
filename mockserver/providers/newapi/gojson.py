"""Go's encoding/json as new-api meets it, over values Python already decoded (no Starlette).

new-api decodes request bodies into Go structs with `encoding/json` (common/json.go at both
releases), built with Go >= 1.25 (go.mod): a value of the wrong JSON type is skipped and the
earliest such error is reported as `json: cannot unmarshal <what> into Go struct field
<Struct>.<path> of type <type>`, where the path names embedded structs too (Go 1.24's
UnmarshalTypeError.Field); `null` leaves a value alone, except pointers, maps and slices, which
it sets to nil. A `map[string]any` is re-marshalled with sorted keys and float64 numbers, so
`5.0` reads as an int there and `5.5` does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

INT64 = (-(2**63), 2**63 - 1)
_ATOI = re.compile(r"[+-]?[0-9]+\Z")


def atoi(text: str) -> tuple[int | None, str | None]:
    """Go's strconv.Atoi: (the int64, None), or (None, "invalid syntax" | "value out of
    range"). ASCII digits only, after an optional sign (Python's int() also reads "٥", " 5"
    and "5_0", and refuses more than 4300 digits)."""
    if not _ATOI.match(text):
        return None, "invalid syntax"
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > 19:
        return None, "value out of range"
    value = int(digits or "0") * (-1 if text.startswith("-") else 1)
    if not INT64[0] <= value <= INT64[1]:
        return None, "value out of range"
    return value, None


@dataclass(frozen=True, slots=True)
class GoTypeError(Exception):
    """One UnmarshalTypeError: `what` is Go's description of the JSON value (`string`,
    `number`, `number 5.5`, `bool`, `array`, `object`)."""

    what: str
    struct: str
    field: str
    go_type: str

    def __str__(self) -> str:
        if self.struct or self.field:
            return (f"json: cannot unmarshal {self.what} into Go struct field "
                    f"{self.struct}.{self.field} of type {self.go_type}")
        return f"json: cannot unmarshal {self.what} into Go value of type {self.go_type}"


def kind(value: Any) -> str:
    """The JSON kind Go names in a type error (`number` without its literal)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def float_text(value: float) -> str:
    """A float64 as Go's json.Marshal writes it (`5`, `5.5`, `1e+21`)."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        sign = "-" if exponent.startswith("-") else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits.zfill(2)}"
    return text


def number_literal(value: int | float, *, via_float: bool) -> str:
    """The literal Go sees: the body's own (`5.0` stays `5.0`), or after a float64
    round trip through a `map[string]any` (`5.0` becomes `5`)."""
    if isinstance(value, bool):
        return str(value).lower()
    if via_float:
        try:
            return float_text(float(value))
        except OverflowError:  # an int beyond float64: Go would have refused the body
            return str(value)
    return str(value) if isinstance(value, int) else repr(value)


def as_int(value: Any, struct: str, field: str, *, via_float: bool = False) -> int | None:
    """A Go `int` field: the value, None for `null`, or GoTypeError."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = number_literal(value, via_float=via_float)
        try:
            number = int(text)
        except ValueError:
            number = None
        if number is not None and INT64[0] <= number <= INT64[1]:
            return number
        raise GoTypeError(f"number {text}", struct, field, "int")
    raise GoTypeError(kind(value), struct, field, "int")


def as_string(value: Any, struct: str, field: str) -> str | None:
    """A Go `string` field: the value, None for `null` (no effect), or GoTypeError."""
    if value is None or isinstance(value, str):
        return value
    raise GoTypeError(kind(value), struct, field, "string")


def as_bool(value: Any, struct: str, field: str, go_type: str = "bool") -> bool | None:
    """A Go `bool` (or `*bool`) field: the value, None for `null`, or GoTypeError."""
    if value is None or isinstance(value, bool):
        return value
    raise GoTypeError(kind(value), struct, field, go_type)


def as_strings(value: Any, struct: str, field: str) -> list[str] | None:
    """A Go `[]string` field: the list (`null` items are ""), None for `null`, or
    GoTypeError (the element type for a bad item, as Go words it)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise GoTypeError(kind(value), struct, field, "[]string")
    out = []
    for item in value:
        if item is not None and not isinstance(item, str):
            raise GoTypeError(kind(item), struct, field, "string")
        out.append(item or "")
    return out


def fold(name: str) -> str:
    """How Go matches an object key to a struct field when no key matches exactly."""
    return name.lower()
