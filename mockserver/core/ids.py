"""Seeded ids and tokens (moto's MotoRandom): same seed, same ids."""

from __future__ import annotations

import random
import string
import threading
import uuid

_ALNUM = string.ascii_letters + string.digits


class Ids:
    """A seeded source of task ids, request ids and tokens; unseeded means system randomness."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._lock = threading.Lock()

    def uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def token(self, length: int = 32) -> str:
        with self._lock:
            return "".join(self._rng.choice(_ALNUM) for _ in range(length))

    def fraction(self) -> float:
        with self._lock:
            return self._rng.random()
