"""Result videos and their URLs: real H.264 MP4s matching the task, made once, signed links."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av
import pytest

from mockserver.core import artifacts
from mockserver.core.artifacts import FPS, Signer, VideoCache, VideoKey, render_mp4

SILENT = VideoKey(width=160, height=96, duration=2, audio=False, tint=7)
WITH_AUDIO = VideoKey(width=96, height=160, duration=3, audio=True, tint=200)


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return {
            "codec": video.codec_context.name,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "pix_fmt": video.codec_context.pix_fmt,
            "duration": float(container.duration) / av.time_base,  # type: ignore[operator]
            "frames": frames,
            "audio": [(a.codec_context.name, a.codec_context.sample_rate)
                      for a in container.streams.audio],
        }


@pytest.mark.parametrize("key", [SILENT, WITH_AUDIO], ids=["silent", "audio"])
def test_render_mp4_makes_a_video_that_matches_its_key(tmp_path: Path, key: VideoKey) -> None:
    path = tmp_path / key.filename
    render_mp4(key, path)
    assert path.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    info = probe(path)
    assert info["codec"] == "h264"
    assert (info["width"], info["height"]) == (key.width, key.height)
    assert info["pix_fmt"] == "yuv420p"
    assert info["frames"] == key.duration * FPS
    assert info["duration"] == pytest.approx(key.duration, abs=0.25)
    if key.audio:
        assert info["audio"] == [("aac", artifacts.AUDIO_RATE)]
    else:
        assert info["audio"] == []
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_render_mp4_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    render_mp4(WITH_AUDIO, first)
    render_mp4(WITH_AUDIO, second)
    assert first.read_bytes() == second.read_bytes()
    other = tmp_path / "c.mp4"
    render_mp4(VideoKey(96, 160, 3, True, tint=201), other)  # another task looks different
    assert other.read_bytes() != first.read_bytes()


def test_video_key_filename_names_every_parameter() -> None:
    assert SILENT.filename == "wan_160x96_2s_s_007.mp4"
    assert WITH_AUDIO.filename == "wan_96x160_3s_a_200.mp4"


class CountingRender:
    """Wraps the real renderer and counts calls."""

    def __init__(self) -> None:
        self.calls: list[VideoKey] = []
        self._lock = threading.Lock()

    def __call__(self, key: VideoKey, path: Path) -> None:
        with self._lock:
            self.calls.append(key)
        render_mp4(key, path)


def test_video_cache_renders_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingRender()
    monkeypatch.setattr(artifacts, "render_mp4", counter)
    cache = VideoCache(tmp_path / "videos")
    assert cache.directory.is_dir()
    first = cache.path(SILENT)
    mtime = first.stat().st_mtime_ns
    again = cache.path(SILENT)
    assert again == first and first.stat().st_mtime_ns == mtime
    assert counter.calls == [SILENT]
    # A second cache over the same directory finds the file too.
    assert VideoCache(tmp_path / "videos").path(SILENT) == first
    assert counter.calls == [SILENT]
    assert probe(first)["frames"] == SILENT.duration * FPS


def test_video_cache_is_safe_under_concurrent_calls(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingRender()
    monkeypatch.setattr(artifacts, "render_mp4", counter)
    cache = VideoCache(tmp_path)
    keys = [SILENT, WITH_AUDIO]
    threads_per_key = 6
    barrier = threading.Barrier(len(keys) * threads_per_key)
    results: list[tuple[VideoKey, Path]] = []
    errors: list[BaseException] = []

    def fetch(key: VideoKey) -> None:
        try:
            barrier.wait(timeout=10)
            results.append((key, cache.path(key)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(k,)) for k in keys
               for _ in range(threads_per_key)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(results) == len(threads)
    assert sorted(counter.calls, key=lambda k: k.filename) == sorted(keys,
                                                                     key=lambda k: k.filename)
    for key in keys:
        paths = {p for k, p in results if k == key}
        assert paths == {tmp_path / key.filename}
        assert probe(tmp_path / key.filename)["frames"] == key.duration * FPS
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(k.filename for k in keys)


# -- signed URLs -----------------------------------------------------------------------------
PATH = "/_wanmock/videos/task-1.mp4"


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    q = parse_qs(split.query)
    return split.path, q["Expires"][0], q["Signature"][0]


def test_a_signed_url_is_valid_until_it_expires() -> None:
    signer = Signer(b"secret")
    url = signer.sign(PATH, 2000)
    path, expires, signature = parts(url)
    assert (path, expires) == (PATH, "2000")
    assert signer.check(path, expires, signature, now=1999.9) is None
    assert signer.check(path, expires, signature, now=2000) == "expired"
    assert signer.check(path, expires, signature, now=10**9) == "expired"


def test_signatures_are_deterministic_per_secret() -> None:
    assert Signer(b"a").sign(PATH, 5) == Signer(b"a").sign(PATH, 5)
    assert Signer(b"a").sign(PATH, 5) != Signer(b"b").sign(PATH, 5)


@pytest.mark.parametrize("tamper", ["path", "expires", "signature", "secret", "not-a-number"])
def test_a_tampered_url_is_refused(tamper: str) -> None:
    signer = Signer(b"secret")
    path, expires, signature = parts(signer.sign(PATH, 2000))
    checker = signer
    if tamper == "path":
        path = "/_wanmock/videos/task-2.mp4"
    elif tamper == "expires":
        expires = "999999"  # pushing the expiry out breaks the signature
    elif tamper == "signature":
        signature = ("0" if signature[0] != "0" else "1") + signature[1:]
    elif tamper == "secret":
        checker = Signer(b"other secret")
    else:
        expires = "2000abc"
    assert checker.check(path, expires, signature, now=1000) == "bad signature"


@pytest.mark.parametrize(("expires", "signature"), [(None, "abc"), ("2000", None), (None, None),
                                                    ("", "abc"), ("2000", "")])
def test_a_url_without_its_signature_is_refused(expires, signature) -> None:
    assert Signer(b"secret").check(PATH, expires, signature, now=0) == "missing signature"
