"""Result videos: real, playable H.264 MP4s made with PyAV, and the signed URLs that serve them.

A video matches its task: width, height and duration, and an AAC track when the task has audio.
It is deterministic (same parameters, same bytes), made once and cached on disk. URLs are signed
with an HMAC and carry their expiry, like the providers' OSS links (`?Expires=...&Signature=...`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import tempfile
import threading
from array import array
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from mockserver.core.memo import Memo

FPS = 8
AUDIO_RATE = 16000


@dataclass(frozen=True, slots=True)
class VideoKey:
    """Everything a result video depends on."""

    width: int
    height: int
    duration: int
    audio: bool
    tint: int  # 0..255, from the task seed: different tasks look different

    @property
    def filename(self) -> str:
        a = "a" if self.audio else "s"
        return f"wan_{self.width}x{self.height}_{self.duration}s_{a}_{self.tint:03d}.mp4"


def render_mp4(key: VideoKey, path: Path) -> None:
    """Encode the video for `key` into `path` (H.264 yuv420p, AAC mono when audio)."""
    import av  # imported here: PyAV is heavy and only needed when a video is asked for

    w, h = key.width, key.height
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with av.open(str(tmp), "w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=FPS)
        vstream.width, vstream.height = w, h
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"preset": "ultrafast", "tune": "stillimage", "crf": "35",
                           "threads": "1"}
        astream = None
        if key.audio:
            astream = container.add_stream("aac", rate=AUDIO_RATE)
            astream.layout = "mono"
        background = 40 + key.tint % 160
        u_plane = bytes([128 + (key.tint % 64) - 32]) * ((w // 2) * (h // 2))
        v_plane = bytes([128 - (key.tint % 48) + 24]) * ((w // 2) * (h // 2))
        bar = max(2, (w // 16) & ~1)
        frames = key.duration * FPS
        for i in range(frames):
            x = ((w - bar) * i // max(1, frames - 1)) & ~1
            row = bytes([background]) * x + b"\xeb" * bar + bytes([background]) * (w - x - bar)
            frame = av.VideoFrame(w, h, "yuv420p")
            frame.planes[0].update(row * h) if frame.planes[0].line_size == w else _fill(
                frame.planes[0], row, h)
            _fill(frame.planes[1], u_plane[: w // 2], h // 2)
            _fill(frame.planes[2], v_plane[: w // 2], h // 2)
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is not None:
            _encode_tone(container, astream, key.duration)
    os.replace(tmp, path)


def _fill(plane: object, row: bytes, rows: int) -> None:
    stride = plane.line_size  # type: ignore[attr-defined]
    padded = row + b"\x00" * (stride - len(row))
    plane.update(padded * rows)  # type: ignore[attr-defined]


def _encode_tone(container: object, stream: object, duration: int) -> None:
    import av

    total = duration * AUDIO_RATE
    chunk = 1024
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        samples = array("f", (0.2 * math.sin(2 * math.pi * 440 * (start + k) / AUDIO_RATE)
                             for k in range(n)))
        frame = av.AudioFrame(format="fltp", layout="mono", samples=n)
        frame.planes[0].update(samples.tobytes() + b"\x00" * (frame.planes[0].buffer_size
                                                              - 4 * n))
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        for packet in stream.encode(frame):  # type: ignore[attr-defined]
            container.mux(packet)  # type: ignore[attr-defined]
    for packet in stream.encode():  # type: ignore[attr-defined]
        container.mux(packet)  # type: ignore[attr-defined]


class VideoCache:
    """Makes each distinct video once; concurrent requests for the same one wait for it."""

    def __init__(self, directory: Path | str | None = None) -> None:
        base = Path(directory) if directory else Path(tempfile.gettempdir()) / "wanmock-videos"
        base.mkdir(parents=True, exist_ok=True)
        self.directory = base
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, key: VideoKey) -> Path:
        """The file for `key`, rendering it first if needed."""
        target = self.directory / key.filename
        if target.exists():
            return target
        with self._guard:
            lock = self._locks.setdefault(key.filename, threading.Lock())
        with lock:
            if not target.exists():
                render_mp4(key, target)
        return target


_ANY_KEY = object()  # Signer.check without an OSSAccessKeyId to compare


class Signer:
    """Signs and checks result URLs as OSS signs its presigned links:
    `?OSSAccessKeyId=<id>&Expires=<epoch>&Signature=<hmac>` (the id is a digest of the secret,
    never the secret)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._cache: Memo[tuple[str, int], str] = Memo(4096)  # a polled task asks for the same URL
        digest = hmac.new(secret, b"OSSAccessKeyId", hashlib.sha256).hexdigest()
        # Shaped like an Alibaba Cloud AccessKey id (`LTAI` + 20 characters).
        self.access_key_id = "LTAI5t" + digest[:18]

    def signature(self, path: str, expires: int) -> str:
        key = (path, expires)
        sig = self._cache.get(key)
        if sig is None:
            msg = f"{path}\n{expires}".encode()
            sig = self._cache.put(key,
                                  hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32])
        return sig

    def sign(self, path: str, expires: int) -> str:
        return (f"{path}?OSSAccessKeyId={self.access_key_id}&Expires={expires}"
                f"&Signature={self.signature(path, expires)}")

    def check(self, path: str, expires: str | None, signature: str | None,
              now: float, access_key_id: str | None | object = _ANY_KEY) -> str | None:
        """None when valid; otherwise why not: `missing signature`, `bad access key`,
        `bad signature` or `expired`. `access_key_id` is the URL's OSSAccessKeyId (omit it to
        check only the signature and expiry)."""
        if not expires or not signature or (access_key_id is not _ANY_KEY and not access_key_id):
            return "missing signature"
        if access_key_id is not _ANY_KEY and access_key_id != self.access_key_id:
            return "bad access key"
        try:
            when = int(expires)
        except ValueError:
            return "bad signature"
        if not hmac.compare_digest(self.signature(path, when), signature):
            return "bad signature"
        if now >= when:
            return "expired"
        return None


# How OSS answers a presigned GET it refuses: status, code, message (XML `<Error>` bodies).
# Sources: Alibaba Cloud OSS error pages (0002-00000039: signature in both the Authorization
# header and the query string; SignatureDoesNotMatch; expired) and coderhaoxin/aliyun-oss#31
# (missing query parameters). contracts/dashscope.yaml decision `result-url-oss`.
OSS_REFUSALS: dict[str, tuple[int, str, str, str | None]] = {
    "both": (400, "InvalidArgument",
             "Only one auth mechanism allowed; only the Signature query string parameter or "
             "the Authorization header should be specified", "0002-00000039"),
    "header": (400, "InvalidArgument", "Authorization header is invalid.", None),
    "missing signature": (403, "AccessDenied",
                          "Query string authentication requires the Signature, Expires and "
                          "OSSAccessKeyId parameters", None),
    "bad access key": (403, "InvalidAccessKeyId",
                       "The OSS Access Key Id you provided does not exist in our records.", None),
    "bad signature": (403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your key and signing method.", None),
    "expired": (403, "AccessDenied", "Request has expired.", None),
    "no such key": (404, "NoSuchKey", "The specified key does not exist.", None),
}


def oss_error(why: str, request_id: str, host: str = "") -> tuple[int, str]:
    """The status and XML body OSS answers for a refusal (`OSS_REFUSALS` key)."""
    status, code, message, ec = OSS_REFUSALS[why]
    parts = [f"<Code>{code}</Code>", f"<Message>{message}</Message>",
             f"<RequestId>{request_id}</RequestId>"]
    if host:
        parts.append(f"<HostId>{xml_escape(host)}</HostId>")
    if ec:
        parts.append(f"<EC>{ec}</EC>")
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  ' + "\n  ".join(parts)
            + "\n</Error>\n")
    return status, body


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
