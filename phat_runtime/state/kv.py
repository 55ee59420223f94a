"""The key-value interface every state backend implements, and per-frame overlays.

Shape taken from py-evm's db layer: one small mapping interface (``get`` / ``set`` /
``delete``), a memory backend, and an :class:`Overlay` (journal) that records writes over a
parent and either commits them into it or is dropped. Call frames stack overlays: a REVERT or a
trap drops the frame's overlay; success commits it into the caller's.

Keys are flat ``bytes``; the runtime namespaces them (see ``runtime/keys.py``). The encrypted
SQLite store of a later issue implements :class:`KVStore` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class KVStore(Protocol):
    """What the runtime needs from state: read, write, delete, and a prefix scan."""

    def get(self, key: bytes) -> bytes | None: ...

    def set(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


class MemoryBackend:
    """A plain dict. Development and tests; forgets everything when the process ends."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._data[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        self._data.pop(key, None)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self._data if k.startswith(prefix)):
            yield key, self._data[key]

    def __len__(self) -> int:
        return len(self._data)


class Overlay:
    """Writes buffered over a parent store; ``commit()`` applies them, dropping discards them.

    ``None`` in ``writes`` is a deletion. Reading falls through to the parent for keys this
    overlay has not touched.
    """

    __slots__ = ("_parent", "writes")

    def __init__(self, parent: KVStore) -> None:
        self._parent = parent
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self._parent.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.writes[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        self.writes[bytes(key)] = None

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        merged: dict[bytes, bytes | None] = dict(self._parent.iter_prefix(prefix))
        merged.update((k, v) for k, v in self.writes.items() if k.startswith(prefix))
        for key in sorted(merged):
            value = merged[key]
            if value is not None:
                yield key, value

    def child(self) -> Overlay:
        return Overlay(self)

    def commit(self) -> None:
        """Apply every buffered write to the parent and forget them."""
        parent = self._parent
        for key, value in self.writes.items():
            if value is None:
                parent.delete(key)
            else:
                parent.set(key, value)
        self.writes = {}
