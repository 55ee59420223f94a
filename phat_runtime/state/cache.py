"""The writer's cache of committed plaintext values, bounded by bytes.

:class:`ValueCache` holds values the block pipeline has read or committed, so a hot key (a
balance, a contract's root storage cell) is read without SQLite or AES-GCM, and a commit that
overwrites it needs neither the old row nor its decryption to update the state root (the old
value is the cached one). Only committed values enter, after their commit, and only the writer
uses it: views read SQLite snapshots (``views.py``).

Consequence for tamper detection: a row altered (or added) on disk after its value (or its
absence) was cached is not noticed by ``get`` or by the commit that overwrites it (both use the authentic cached value, so
the state root stays right); ``verify()``, scans and every uncached read still see it.

It also remembers keys known to have **no** committed row (a read that found none, or a
committed deletion): a transaction reads a new key several times — the contract's read, the
old value ``set_storage`` returns, the quota's size check — and the commit needs its old row;
each would otherwise be a SQLite miss. The writer is the only process that writes the file, so
what it committed is what the file holds.

Eviction is first-in first-out once the byte budget is exceeded; values larger than 1/64 of the
budget (code) are not cached. Not thread-safe by itself: the store's lock guards it. Holds
plaintexts: never log it or show it.
"""

from __future__ import annotations

#: Default budget: plaintext bytes of keys and values (plus a fixed per-entry overhead).
DEFAULT_BYTES = 32 << 20
_OVERHEAD = 120  # dict slot, two bytes objects' headers
#: :meth:`ValueCache.lookup` of a key the cache knows nothing about.
MISS = object()


class ValueCache:
    """key → committed value (None: no committed row), at most ``limit`` bytes (FIFO)."""

    __slots__ = ("_items", "_size", "limit")

    def __init__(self, limit: int = DEFAULT_BYTES) -> None:
        self._items: dict[bytes, bytes | None] = {}
        self._size = 0
        self.limit = limit

    def __repr__(self) -> str:
        return f"<ValueCache {len(self._items)} values, {self._size} of {self.limit} bytes>"

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: bytes) -> bytes | None:
        """The cached value; None if absent or unknown (:meth:`lookup` tells them apart)."""
        return self._items.get(key)

    def lookup(self, key: bytes) -> object:
        """The cached value, None if the key is known to have no committed row, else MISS."""
        return self._items.get(key, MISS)

    def put(self, key: bytes, value: bytes | None) -> None:
        """Remember ``key``'s committed value (None: it has no committed row)."""
        cost = len(key) + _OVERHEAD + (0 if value is None else len(value))
        self.drop(key)
        if cost * 64 > self.limit:
            return
        self._items[key] = value
        self._size += cost
        while self._size > self.limit:
            first = next(iter(self._items))
            old = self._items.pop(first)
            self._size -= len(first) + _OVERHEAD + (0 if old is None else len(old))

    def drop(self, key: bytes) -> None:
        if key in self._items:
            old = self._items.pop(key)
            self._size -= len(key) + _OVERHEAD + (0 if old is None else len(old))

    def clear(self) -> None:
        self._items.clear()
        self._size = 0
