"""Where the fake's state lives: `memory` (default), SQLite or Redis (see base.py)."""

from mockserver.core.store.base import Store, StoreUnavailable, open_store, store_label

__all__ = ["Store", "StoreUnavailable", "open_store", "store_label"]
