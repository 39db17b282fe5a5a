"""Seeded ids and tokens (moto's MotoRandom): same seed, same ids."""

from __future__ import annotations

import functools
import hashlib
import random
import string
import threading
from typing import Protocol

_ALNUM = string.ascii_letters + string.digits
# What uuid.UUID(version=4) does to the bits: RFC 4122 variant, version 4.
_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_V4_SET = (0x8000 << 48) | (4 << 76)


def uuid4_text(bits: int) -> str:
    """128 random bits as a version-4 UUID string, as `str(uuid.UUID(int=bits, version=4))`
    spells it (without building the UUID object)."""
    h = "%032x" % ((bits & _V4_CLEAR) | _V4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class IdSource(Protocol):
    """Ids and tokens: seeded (reproducible) or random (`Ids`; a shared store's `SharedIds`)."""

    def uuid(self) -> str: ...

    def token(self, length: int = 32) -> str: ...

    def fraction(self) -> float: ...


class Ids:
    """A seeded source of task ids, request ids and tokens; unseeded means system randomness."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Start the seeded sequence again (what a fresh fake with this seed would give)."""
        with self._lock:
            self._rng = random.Random(self.seed) if self.seed is not None else (
                random.SystemRandom())

    def uuid(self) -> str:
        """A version-4 UUID string, as `str(uuid.UUID(int=bits, version=4))` spells it."""
        with self._lock:
            bits = self._rng.getrandbits(128)
        return uuid4_text(bits)

    def token(self, length: int = 32) -> str:
        with self._lock:
            return "".join(self._rng.choice(_ALNUM) for _ in range(length))

    def fraction(self) -> float:
        with self._lock:
            return self._rng.random()


KEY_DIGEST = "sha256:"


def key_digest(api_key: str | None) -> str | None:
    """What the fake keeps of an API key: its SHA-256, enough to scope tasks, rate windows and
    concurrency to their key, never the key (a shared store's file or dump holds no key).
    A digest given again is kept as is."""
    if api_key is None or (api_key.startswith(KEY_DIGEST) and len(api_key) == 71):
        return api_key
    return _digest(api_key)


@functools.lru_cache(maxsize=256)
def _digest(api_key: str) -> str:
    # Every request of a task's key asks again (submit, poll, list): a test run uses a few keys.
    return KEY_DIGEST + hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def key_id(api_key: str) -> str:
    """A stable, non-secret id for an API key (DashScope's `api_key_id`): a digest, never the
    key. Same key, same id, in every process; nothing about the key can be read back from it."""
    digest = key_digest(api_key) or ""  # the same id from the key or the digest tasks keep
    return hashlib.sha256(b"wanmock-api-key-id:" + digest.encode()).hexdigest()[:16]
