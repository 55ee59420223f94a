"""The writer's cache of committed plaintext values, bounded by bytes.

:class:`ValueCache` holds values the block pipeline has read or committed, so a hot key (a
balance, a contract's root storage cell) is read without SQLite or AES-GCM, and a commit that
overwrites it needs neither the old row nor its decryption to update the state root (the old
value is the cached one). Only committed values enter, after their commit, and only the writer
uses it: views read SQLite snapshots (``views.py``).

Consequence for tamper detection: a row altered on disk after its value was cached is not
noticed by ``get`` or by the commit that overwrites it (both use the authentic cached value, so
the state root stays right); ``verify()``, scans and every uncached read still see it.

Eviction is first-in first-out once the byte budget is exceeded; values larger than 1/64 of the
budget (code) are not cached. Not thread-safe by itself: the store's lock guards it. Holds
plaintexts: never log it or show it.
"""

from __future__ import annotations

#: Default budget: plaintext bytes of keys and values (plus a fixed per-entry overhead).
DEFAULT_BYTES = 32 << 20
_OVERHEAD = 120  # dict slot, two bytes objects' headers


class ValueCache:
    """key → committed value, at most ``limit`` bytes (FIFO)."""

    __slots__ = ("_items", "_size", "limit")

    def __init__(self, limit: int = DEFAULT_BYTES) -> None:
        self._items: dict[bytes, bytes] = {}
        self._size = 0
        self.limit = limit

    def __repr__(self) -> str:
        return f"<ValueCache {len(self._items)} values, {self._size} of {self.limit} bytes>"

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: bytes) -> bytes | None:
        return self._items.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        cost = len(key) + len(value) + _OVERHEAD
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(key) + len(old) + _OVERHEAD
        if cost * 64 > self.limit:
            return
        self._items[key] = value
        self._size += cost
        while self._size > self.limit:
            first = next(iter(self._items))
            self._size -= len(first) + len(self._items.pop(first)) + _OVERHEAD

    def drop(self, key: bytes) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(key) + len(old) + _OVERHEAD

    def clear(self) -> None:
        self._items.clear()
        self._size = 0
