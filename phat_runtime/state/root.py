"""The state root: an LtHash16 multiset hash of the plaintext ``(key, value)`` entries.

Owns :class:`LtHash` and :func:`state_root`; ``docs/state.md`` defines the root and argues its
security. In short: each entry maps to a vector of 1024 lanes of 16 bits (SHAKE-128 of a
domain tag and a BLAKE2b-256 digest of the key's length, the key and the value); the state's
vector is the lane-wise sum
of its entries' vectors mod 2¹⁶; the root is BLAKE2b-256 of that vector. Adding, removing or
changing one entry costs O(1) lane arithmetic, so a block costs O(its changes), and the root
depends only on the set of plaintext entries — never on the file layout, row order, nonces or
key epoch.

Lane arithmetic uses Python integers: the 2048-byte vector is read as one little-endian
integer and split into even and odd lanes, each lane in a 32-bit slot with 16 bits of headroom,
so one integer addition adds 512 lanes at once without carries crossing lanes; a block's
changes are summed first and folded once.

Must not: do I/O; know anything about encryption.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

LANES = 1024
LANE_BITS = 16
VECTOR_BYTES = LANES * LANE_BITS // 8
ENTRY_DOMAIN = b"phat/state/v1/entry\x00"
ENTRY_PERSON = b"phat-state-ent"
ROOT_PERSON = b"phat-state-root"
# Lanes 0, 2, 4, … of a vector read as an integer: the low 16 bits of every 32-bit slot.
_LOW_LANES = int.from_bytes(b"\xff\xff\x00\x00" * (LANES // 2), "little")
# 2¹⁶ in every slot: "slot + BIAS - lane" subtracts a lane without borrowing from the next slot.
_BIAS = int.from_bytes(b"\x00\x00\x01\x00" * (LANES // 2), "little")
# Lanes summed per slot between folds back to 16 bits: slots stay < 2³² (no carry between
# slots) while fewer than 2¹⁵ lanes of < 2¹⁶ (plus as many biases of 2¹⁶) meet in one.
_FOLD_EVERY = 2**14


def _sums(entries: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """(even-lane sums, odd-lane sums) of the entries' vectors, each lane in a 32-bit slot.

    Σ w and Σ (w & LOW) are the only per-entry work: Σ w − Σ (w & LOW) is exactly the odd lanes
    shifted up by 16, because no slot of either sum overflows (fewer than 2¹⁵ entries)."""
    total = low = 0
    for key, value in entries:
        whole = int.from_bytes(entry_vector(key, value), "little")
        total += whole
        low += whole & _LOW_LANES
    return low, (total - low) >> LANE_BITS


_ENTRY_HASHER = hashlib.blake2b(digest_size=32, person=ENTRY_PERSON)  # copied per entry


def entry_digest(key: bytes, value: bytes) -> bytes:
    """BLAKE2b-256(u32le(len(key)) ‖ key ‖ value), personalised ``phat-state-ent``."""
    h = _ENTRY_HASHER.copy()
    h.update(len(key).to_bytes(4, "little"))
    h.update(key)
    h.update(value)
    return h.digest()


def entry_vector(key: bytes, value: bytes) -> bytes:
    """SHAKE-128(ENTRY_DOMAIN ‖ entry digest), 2048 bytes = 1024 little-endian u16 lanes.

    Hashing the entry to 32 bytes first keeps the XOF's input short whatever the value's size
    (the 2 KiB squeeze is the fixed cost), at 128-bit collision resistance for entries."""
    return hashlib.shake_128(ENTRY_DOMAIN + entry_digest(key, value)).digest(VECTOR_BYTES)


class LtHash:
    """A multiset hash: add and remove entries in any order; equal multisets, equal roots."""

    __slots__ = ("_even", "_odd")

    def __init__(self, vector: bytes = bytes(VECTOR_BYTES)) -> None:
        if len(vector) != VECTOR_BYTES:
            raise ValueError(f"an LtHash vector is {VECTOR_BYTES} bytes")
        whole = int.from_bytes(vector, "little")
        self._even = whole & _LOW_LANES
        self._odd = (whole >> LANE_BITS) & _LOW_LANES

    def copy(self) -> LtHash:
        twin = LtHash.__new__(LtHash)
        twin._even, twin._odd = self._even, self._odd
        return twin

    def add(self, key: bytes, value: bytes) -> None:
        self.update(((key, value),), ())

    def remove(self, key: bytes, value: bytes) -> None:
        self.update((), ((key, value),))

    def update(self, added: Iterable[tuple[bytes, bytes]],
               removed: Iterable[tuple[bytes, bytes]]) -> None:
        """Add and remove many entries at once (a block's changes)."""
        added, removed = list(added), list(removed)
        for start in range(0, max(len(added), len(removed)), _FOLD_EVERY // 2):
            plus_even, plus_odd = _sums(added[start : start + _FOLD_EVERY // 2])
            minus_even, minus_odd = _sums(removed[start : start + _FOLD_EVERY // 2])
            # BIAS × n ≥ every slot of the removed sums: no borrow crosses a slot.
            bias = _BIAS * len(removed[start : start + _FOLD_EVERY // 2])
            self._even = (self._even + plus_even + bias - minus_even) & _LOW_LANES
            self._odd = (self._odd + plus_odd + bias - minus_odd) & _LOW_LANES

    def vector(self) -> bytes:
        """The 1024 lanes, each reduced mod 2¹⁶, as 2048 little-endian bytes."""
        return (self._even | (self._odd << LANE_BITS)).to_bytes(VECTOR_BYTES, "little")

    def root(self) -> bytes:
        """BLAKE2b-256(vector), personalised ``phat-state-root``: the published state root."""
        return hashlib.blake2b(self.vector(), digest_size=32, person=ROOT_PERSON).digest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LtHash) and self.vector() == other.vector()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"<LtHash root={self.root().hex()}>"


def state_root(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root of a whole state, from scratch (any KVStore: ``state_root(kv.iter_prefix(b""))``)."""
    acc = LtHash()
    for key, value in entries:
        acc.add(key, value)
    return acc.root()


EMPTY_ROOT = LtHash().root()
