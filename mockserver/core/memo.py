"""One bounded memo for the hot paths' caches (header sets, redactions, poll bodies, URL
signatures).

Every memo belongs to one object of one fake (a `Backend`, its journal, its signer, a family's
routes), never to a module, so two apps in one process never share what they remember. A memo
holds at most `size` entries and forgets them all at once when full: cheaper than LRU
bookkeeping on every hit, and what a client repeats (its headers, the task it polls) is back at
the next request.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A dict bounded to `size` entries: `get(key)` (None when absent), `put(key, value)`."""

    __slots__ = ("_data", "get", "size")

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError("a memo holds at least one entry")
        self._data: dict[K, V] = {}
        self.size = size
        self.get = self._data.get  # the hit path is one dict lookup

    def put(self, key: K, value: V) -> V:
        data = self._data
        if len(data) >= self.size:
            data.clear()
        data[key] = value
        return value

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data
