"""Input images given inline as `data:` URIs: decoded locally (never fetched) and measured.

The providers accept JPEG/JPG, PNG without transparency, BMP and WEBP, within side and size
limits that differ by provider and revision (contracts/catalogue.yaml `image_limits`).
Only the header is read (Pillow's lazy `Image.open`), so a large or hostile image costs no
decoding: a `data:` URI whose encoded length already exceeds the byte limit is refused before
it is decoded at all.
"""

from __future__ import annotations

import binascii
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
# A valid inline image (480x360 grey PNG, 4:3) within every family's limits, for strategies
# and examples.
SAMPLE_PNG_DATA_URI = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAeAAAAFoCAAAAACqXHf8AAACKElEQVR42u3RQREAAAjDMEDm/AvBBC8uldB0Sp8b"
    "CwALsAALsAALsAADFmABFmABFmABBizAAizAAizAAizAgAVYgAVYgAVYgAELsAALsAALsAADFmABFmABFmABFmDA"
    "AizAAizAAizAgAVYgAVYgAVYgAELsAALsAALsAALMGABFmABFmABFmDAAizAAizAAizAAgxYgAVYgAVYgAUYsAAL"
    "sAALsAALMGABFmABFmABFmABBizAAizAAizAAgxYgAVYgAVYgAUYsAALsAALsAALsAADFmABFmABFmABBizAAizA"
    "AizAAizAgAVYgAVYgAVYgAELsAALsAALsAADFmABFmABFmABFmDAAizAAizAAizAgAVYgAVYgAVYgAELsAALsAAL"
    "sAALMGABFmABFmABFmDAAizAAizAAizAAgxYgAVYgAVYgAUYsAALsAALsAALMGABFmABFmABFmABBizAAizAAizA"
    "AgxYgAVYgAVYgAUYsAALsAALsAALsAADFmABFmABFmABBizAAizAAizAAgzYAsACLMACLMACLMCABViABViABViA"
    "AQuwAAuwAAuwAAswYAEWYAEWYAEWYMACLMACLMACLMCABViABViABViABRiwAAuwAAuwAAswYAEWYAEWYAEWYMAC"
    "LMACLMACLMACDFiABViABViABRiwAAuwAAuwAAuwAAMWYAEWYAEWYAEGLMACLMACLMACDFiABViABViXLeinAyqf"
    "ObGmAAAAAElFTkSuQmCC"
)


@dataclass(frozen=True, slots=True)
class DataImage:
    """What a `data:` image is: its format, sides and decoded size (or why it is no image)."""

    format: str | None
    width: int = 0
    height: int = 0
    size: int = 0
    alpha: bool = False
    problem: str | None = None  # "base64", "not an image", "format", "alpha", "too large"


def is_data_uri(value: object) -> bool:
    return isinstance(value, str) and value[:5].lower() == "data:"


def estimated_size(uri: str) -> int:
    """The decoded size of a base64 `data:` URI, from its length alone."""
    payload = uri.partition(",")[2]
    return len(payload) * 3 // 4


def inspect(uri: str, max_bytes: int) -> DataImage:
    """Decode a `data:[mime];base64,...` image (header only) and say what it is."""
    if len(uri) <= 256 * 1024:
        return _inspect_small(uri, max_bytes)
    return _inspect(uri, max_bytes)  # large ones are not cached: the cache would hold them


@lru_cache(maxsize=64)  # the same inline image is often sent again (retries, several models)
def _inspect_small(uri: str, max_bytes: int) -> DataImage:
    return _inspect(uri, max_bytes)


def _inspect(uri: str, max_bytes: int) -> DataImage:
    head, sep, payload = uri.partition(",")
    if not sep or ";base64" not in head.lower():
        return DataImage(None, problem="base64")
    if estimated_size(uri) > max_bytes + 3:
        return DataImage(None, size=estimated_size(uri), problem="too large")
    try:
        data = binascii.a2b_base64(payload.strip().encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return DataImage(None, problem="base64")
    if len(data) > max_bytes:
        return DataImage(None, size=len(data), problem="too large")
    from PIL import Image  # imported here: only inline images need it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: we only read the header
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height), mode, info = img.format, img.size, img.mode, img.info
    except Exception:  # any decoder complaint means "not an image we accept"
        return DataImage(None, size=len(data), problem="not an image")
    alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in info
    problem = None
    if fmt not in FORMATS:
        problem = "format"
    elif fmt == "PNG" and alpha:
        problem = "alpha"
    return DataImage(fmt, width, height, len(data), alpha, problem)


def keep_aspect(width: int, height: int, tier_w: int, tier_h: int) -> tuple[int, int]:
    """Output geometry for an input image: its aspect ratio at about the tier's pixel count
    ("the model will attempt to maintain the aspect ratio ... consistent with the input image"),
    each side a multiple of 16 as video encoders want."""
    area = tier_w * tier_h
    ratio = width / height
    out_w = (area * ratio) ** 0.5
    out_h = out_w / ratio
    return max(16, int(round(out_w / 16)) * 16), max(16, int(round(out_h / 16)) * 16)
