"""The state root (definition v2): an LtHash16 multiset hash of the plaintext entries.

Owns :class:`LtHash`, :func:`state_root` and the entry encoding; ``docs/state.md`` defines the
root exactly and argues its security. In short: an entry ``(key, value)`` is encoded in SCALE as
``(Vec<u8>, Vec<u8>)``; its vector is the first 2,048 bytes of the BLAKE3 XOF of that encoding
in derive-key mode (context :data:`ENTRY_CONTEXT`), read as 1024 little-endian u16 lanes; the
state's vector is the lane-wise sum of its entries' vectors mod 2¹⁶; the root is BLAKE3 of that
vector (context :data:`ROOT_CONTEXT`). Adding, removing or changing one entry costs O(1), so a
block costs O(its changes), and the root depends only on the set of plaintext entries — never on
the file layout, row order, nonces or key epoch.

Native work: the XOF is the ``blake3`` package (the Rust crate's bindings), the lane sums are
``numpy`` uint16 arithmetic (wrapping mod 2¹⁶ is exactly the group operation); a block's
vectors are summed in chunks, then folded into the accumulator once.

Must not: do I/O; know anything about encryption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from blake3 import blake3

LANES = 1024
LANE_BITS = 16
VECTOR_BYTES = LANES * LANE_BITS // 8
#: BLAKE3 derive-key contexts (hard-coded, globally unique, as BLAKE3 asks). Changing either
#: changes every root: that is a new root definition, with new vectors in docs/state.md.
ENTRY_CONTEXT = "phat_runtime 2026-12-02 state root v2 entry vector"
ROOT_CONTEXT = "phat_runtime 2026-12-02 state root v2 root"
_LANE = np.dtype("<u2")
#: Entry vectors joined per numpy sum (8 MiB): bounds the memory of a huge block.
_CHUNK = 4096
_COMPACT_MAX = 2**30  # keys and values stay far below: 4-byte compact covers them


def compact_len(n: int) -> bytes:
    """SCALE ``Compact<u32>`` of a length below 2³⁰."""
    if n < 64:
        return bytes((n << 2,))
    if n < 16384:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < _COMPACT_MAX:
        return ((n << 2) | 2).to_bytes(4, "little")
    raise ValueError(f"a state key or value of {n} bytes is too large (limit {_COMPACT_MAX - 1})")


def read_compact(data: bytes, at: int) -> tuple[int, int]:
    """(length, offset after it) of a ``Compact<u32>`` below 2³⁰ at ``at``; ValueError if not."""
    if at >= len(data):
        raise ValueError("truncated length")
    mode = data[at] & 3
    if mode == 0:
        return data[at] >> 2, at + 1
    if mode == 1 and at + 2 <= len(data):
        return int.from_bytes(data[at : at + 2], "little") >> 2, at + 2
    if mode == 2 and at + 4 <= len(data):
        return int.from_bytes(data[at : at + 4], "little") >> 2, at + 4
    raise ValueError("truncated or oversized length")


def encode_entry(key: bytes, value: bytes) -> bytes:
    """SCALE ``(Vec<u8>, Vec<u8>)`` of the entry: what the root hashes (and a row seals)."""
    return compact_len(len(key)) + key + compact_len(len(value)) + value


def decode_entry(entry: bytes) -> tuple[bytes, bytes]:
    """The inverse of :func:`encode_entry`; ValueError if ``entry`` is not exactly one entry."""
    klen, at = read_compact(entry, 0)
    key = entry[at : at + klen]
    vlen, at = read_compact(entry, at + klen)
    if len(key) != klen or len(entry) - at != vlen:
        raise ValueError("lengths do not match the entry's size")
    return key, entry[at:]


def entry_vector(key: bytes, value: bytes) -> bytes:
    """BLAKE3-XOF(derive_key(ENTRY_CONTEXT), SCALE (key, value))[0..2048]: 1024 u16 lanes."""
    return blake3(encode_entry(key, value), derive_key_context=ENTRY_CONTEXT).digest(VECTOR_BYTES)


def _lane_sum(entries: Sequence[bytes]) -> np.ndarray:
    """Σ of the encoded entries' vectors, lane by lane, mod 2¹⁶."""
    total = np.zeros(LANES, dtype=np.uint16)
    for start in range(0, len(entries), _CHUNK):
        vectors = b"".join([blake3(e, derive_key_context=ENTRY_CONTEXT).digest(VECTOR_BYTES)
                            for e in entries[start : start + _CHUNK]])
        lanes = np.frombuffer(vectors, dtype=_LANE).reshape(-1, LANES)
        total += lanes.sum(axis=0, dtype=np.uint16)  # uint16 wraps: the sum is mod 2¹⁶
    return total


class LtHash:
    """A multiset hash: add and remove entries in any order; equal multisets, equal roots."""

    __slots__ = ("_lanes",)

    def __init__(self, vector: bytes = bytes(VECTOR_BYTES)) -> None:
        if len(vector) != VECTOR_BYTES:
            raise ValueError(f"an LtHash vector is {VECTOR_BYTES} bytes")
        self._lanes = np.frombuffer(vector, dtype=_LANE).astype(np.uint16)  # a private copy

    def copy(self) -> LtHash:
        twin = LtHash.__new__(LtHash)
        twin._lanes = self._lanes.copy()
        return twin

    def add(self, key: bytes, value: bytes) -> None:
        self.update_encoded((encode_entry(key, value),), ())

    def remove(self, key: bytes, value: bytes) -> None:
        self.update_encoded((), (encode_entry(key, value),))

    def update(self, added: Iterable[tuple[bytes, bytes]],
               removed: Iterable[tuple[bytes, bytes]]) -> None:
        """Add and remove many entries at once (a block's changes)."""
        self.update_encoded([encode_entry(k, v) for k, v in added],
                            [encode_entry(k, v) for k, v in removed])

    def update_encoded(self, added: Sequence[bytes], removed: Sequence[bytes]) -> None:
        """The same from entries already in :func:`encode_entry` form (the store's rows)."""
        if added:
            self._lanes += _lane_sum(added)
        if removed:
            self._lanes -= _lane_sum(removed)

    def vector(self) -> bytes:
        """The 1024 lanes as 2048 little-endian bytes (SCALE ``[u16; 1024]``)."""
        return self._lanes.astype(_LANE, copy=False).tobytes()

    def root(self) -> bytes:
        """BLAKE3(derive_key(ROOT_CONTEXT), vector), 32 bytes: the published state root."""
        return blake3(self.vector(), derive_key_context=ROOT_CONTEXT).digest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LtHash) and bool(np.array_equal(self._lanes, other._lanes))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"<LtHash root={self.root().hex()}>"


def state_root(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root of a whole state, from scratch (any KVStore: ``state_root(kv.iter_prefix(b""))``)."""
    acc = LtHash()
    acc.update(entries, ())
    return acc.root()


EMPTY_ROOT = LtHash().root()
