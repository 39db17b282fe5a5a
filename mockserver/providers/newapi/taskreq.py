"""new-api's `TaskSubmitReq`: a submit body as its task relay decodes it, per release
(no Starlette).

Sources at the tag commits (github.com/QuantumNous/new-api; R = v1.0.0-rc.25 f1164142,
L = v0.10.0 ee53a7b6): relay/common/relay_info.go TaskSubmitReq and its UnmarshalJSON
(R :868-934, L :504-555), relay/common/relay_utils.go ValidateMultipartDirect (R :199-245,
L :121-160). Both decode through an anonymous struct that embeds `*Alias`, so Go >= 1.24 names
a bad field `.Alias.<name>`; `metadata` is read as raw JSON (an object, or a string holding one;
anything else is dropped without an error); R also reads `duration` that way (a number or a
numeric string; anything else is 0), where L's `duration` is a Go int.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mockserver import jsonwire
from mockserver.providers.newapi import gojson
from mockserver.providers.newapi.releases import Release

_STRINGS = ("prompt", "model", "mode", "image", "size", "seconds", "input_reference")
MAX_SECONDS = 3600  # relay/common/relay_utils.go MaxTaskDurationSeconds (R :146)


@dataclass(slots=True)
class TaskRequest:
    """The decoded request (Go zero values for what the body did not set)."""

    prompt: str = ""
    model: str = ""
    mode: str = ""
    image: str = ""
    images: list[str] = field(default_factory=list)
    size: str = ""
    duration: int = 0
    seconds: str = ""
    input_reference: str = ""
    metadata: dict[str, Any] | None = None
    present: set[str] = field(default_factory=set)  # the fields the body set (not null)

    def stored_images(self, release: Release) -> list[str]:
        """`Images` as ValidateMultipartDirect leaves them for the adaptor: `input_reference`
        replaces them; R also takes a lone `image` (relay_utils.go R :218-223, L :140-142)."""
        if self.input_reference:
            return [self.input_reference]
        if release.image_is_generate and not self.images and self.image.strip():
            return [self.image.strip()]
        return self.images

    def action(self, release: Release) -> str:
        """`generate` when the request carries an image, else `textGenerate`."""
        return "generate" if self.stored_images(release) else "textGenerate"

    def seconds_for_bounds(self) -> int:
        """What R's invalid_seconds check reads: `duration`, else atoi(`seconds`) (junk is 0)."""
        if self.duration:
            return self.duration
        return gojson.atoi(self.seconds)[0] or 0


def _metadata(raw: Any) -> dict[str, Any] | None:
    """`metadata`: an object, or a non-empty string holding one; anything else is dropped."""
    if isinstance(raw, str) and raw:
        try:
            parsed = jsonwire.decode(raw.encode("utf-8", "surrogatepass"))
        except jsonwire.NotJSON:
            return None
        return parsed if isinstance(parsed, dict) else None
    return raw if isinstance(raw, dict) else None


def _duration(raw: Any, release: Release) -> int | None:
    if release.lenient_duration:  # R: a number, a numeric string, else nothing
        if isinstance(raw, int) and not isinstance(raw, bool) and gojson.INT64[0] <= raw <= \
                gojson.INT64[1]:
            return raw
        if isinstance(raw, str):
            return gojson.atoi(raw)[0]
        return None
    return gojson.as_int(raw, "", "Alias.duration")


def decode(body: Any, release: Release) -> TaskRequest:
    """The body as TaskSubmitReq, or `gojson.GoTypeError` (the earliest bad field)."""
    req = TaskRequest()
    if not isinstance(body, Mapping):  # only a remix reaches here with one (no distributor)
        raise gojson.GoTypeError(gojson.kind(body), "", "", _aux_type(release))
    first: gojson.GoTypeError | None = None
    for key, raw in body.items():
        name = key if key in _FIELDS else gojson.fold(key)
        if name not in _FIELDS:
            continue  # Go skips what the struct has no field for
        if raw is not None:
            req.present.add(name)
        try:
            if name == "metadata":
                req.metadata = _metadata(raw)
            elif name == "duration":
                duration = _duration(raw, release)
                if duration is not None:
                    req.duration = duration
            elif name == "images":
                req.images = gojson.as_strings(raw, "", "Alias.images") or []
            else:
                value = gojson.as_string(raw, "", f"Alias.{name}")
                if value is not None:
                    setattr(req, name, value)
        except gojson.GoTypeError as err:
            first = first or err
    if first is not None:
        raise first
    return req


_FIELDS = frozenset({*_STRINGS, "images", "duration", "metadata"})


def _aux_type(release: Release) -> str:
    """The anonymous struct UnmarshalJSON decodes into, as reflect spells it."""
    duration = ('; Duration json.RawMessage "json:\\"duration,omitempty\\""'
                if release.lenient_duration else "")
    return (f'struct {{ Metadata json.RawMessage "json:\\"metadata,omitempty\\""{duration}; '
            "*common.Alias }")
