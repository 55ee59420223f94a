"""The state root as docs/state.md defines it (definition v2): LtHash16 over SCALE-encoded
plaintext entries with BLAKE3 vectors, incremental, order-independent, and equal to a
lane-by-lane reference implementation of the definition."""

from __future__ import annotations

import random

import pytest
from blake3 import blake3
from scalecodec.base import RuntimeConfiguration
from scalecodec.type_registry import load_type_registry_preset

from phat_runtime.state import EMPTY_ROOT, LtHash, state_root
from phat_runtime.state.root import (
    LANES,
    VECTOR_BYTES,
    compact_len,
    decode_entry,
    encode_entry,
    entry_vector,
    read_compact,
)

# Pinned vectors (also in docs/state.md): changing the definition must be deliberate.
EMPTY_ROOT_HEX = "f0260ad1b915eea078322c4ac46bafe74a3c7dc57e00b654bb952afd96260d09"
ONE_ENTRY_ROOT_HEX = "3e0b1d54d713ef17b396691f5ccb87e21f81febbb5d55822681e83557661b73c"
STORAGE_KEY = b"S" + bytes(range(32)) + bytes(32) + b"k"
TWO_ENTRY_ROOT_HEX = "20e2c4f5aa98cc3a1608f5394f4991168a01a6de78c6234e0acab0dea3acbd3e"


def reference_root(entries: list[tuple[bytes, bytes]]) -> bytes:
    """docs/state.md, written out literally: scalecodec for SCALE, lanes as a list."""
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    lanes = [0] * LANES
    for key, value in entries:
        encoded = config.create_scale_object("(Vec<u8>, Vec<u8>)").encode(
            ("0x" + key.hex(), "0x" + value.hex()))
        vector = blake3(bytes(encoded.data),
                        derive_key_context="phat_runtime 2026-12-02 state root v2 entry vector"
                        ).digest(VECTOR_BYTES)
        for i in range(LANES):
            lanes[i] = (lanes[i] + int.from_bytes(vector[2 * i : 2 * i + 2], "little")) % 2**16
    packed = b"".join(lane.to_bytes(2, "little") for lane in lanes)
    return blake3(packed, derive_key_context="phat_runtime 2026-12-02 state root v2 root").digest()


def test_pinned_vectors() -> None:
    assert reference_root([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == EMPTY_ROOT_HEX
    assert reference_root([(b"Ba", b"1")]).hex() == ONE_ENTRY_ROOT_HEX
    assert state_root([(b"Ba", b"1")]).hex() == ONE_ENTRY_ROOT_HEX
    two = [(b"Ba", b"1"), (STORAGE_KEY, bytes(100))]
    assert reference_root(two).hex() == state_root(two).hex() == TWO_ENTRY_ROOT_HEX
    assert encode_entry(b"Ba", b"1").hex() == "08426104" "31"  # Compact(2) "Ba" Compact(1) "1"


@pytest.mark.parametrize("length", [0, 1, 63, 64, 16383, 16384, 2**20, 2**30 - 1])
def test_entry_lengths_are_scale_compact(length: int) -> None:
    config = RuntimeConfiguration()
    expected = bytes(config.create_scale_object("Compact<u32>").encode(length).data)
    assert compact_len(length) == expected
    assert read_compact(expected + b"tail", 0) == (length, len(expected))
    if length <= 2**20:
        assert decode_entry(encode_entry(b"k" * (length % 70), b"v" * length)) == (
            b"k" * (length % 70), b"v" * length)


def test_malformed_entries_and_oversized_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        compact_len(2**30)
    for bad in (b"", b"\x08Ba", b"\x08Ba\x04", b"\x08Ba\x0412", b"\x03" + bytes(8)):
        with pytest.raises(ValueError):
            decode_entry(bad)


def test_incremental_updates_match_the_definition() -> None:
    rng = random.Random(3)
    acc = LtHash()
    state: dict[bytes, bytes] = {}
    for _ in range(40_000):  # lanes wrap around 2¹⁶ many times
        key = bytes([rng.randrange(60)])
        if key in state and rng.random() < 0.5:
            acc.remove(key, state.pop(key))
        else:
            if key in state:
                acc.remove(key, state[key])
            state[key] = rng.randbytes(rng.randrange(8))
            acc.add(key, state[key])
    assert acc.root() == reference_root(sorted(state.items())) == state_root(state.items())


def test_order_independent_and_sensitive_to_every_entry() -> None:
    entries = [(bytes([i]), bytes([i]) * i) for i in range(30)]
    shuffled = entries[:]
    random.Random(1).shuffle(shuffled)
    assert state_root(entries) == state_root(shuffled)
    roots = {state_root(entries)}
    roots.add(state_root(entries[1:]))  # one entry missing
    roots.add(state_root([*entries, entries[0]]))  # one entry twice
    roots.add(state_root([(entries[0][0], b"x"), *entries[1:]]))  # one value changed
    roots.add(state_root([(b"\x00\x00", bytes(32)), *entries[1:]]))  # key/value boundary moved
    assert len(roots) == 5


def test_add_then_remove_is_the_identity_and_vectors_round_trip() -> None:
    acc = LtHash()
    acc.add(b"k", b"v")
    copy = LtHash(acc.vector())
    assert copy == acc and copy.root() == acc.root()
    acc.remove(b"k", b"v")
    assert acc.root() == EMPTY_ROOT and acc.vector() == bytes(VECTOR_BYTES)
    assert len(entry_vector(b"k", b"v")) == VECTOR_BYTES


def test_batched_updates_larger_than_a_summing_chunk() -> None:
    rng = random.Random(9)
    entries = [(rng.randbytes(6), rng.randbytes(rng.randrange(20))) for _ in range(20_000)]
    acc = LtHash()
    acc.update(entries, [])
    acc.update([], entries[50:])  # one block removing almost everything
    assert acc.root() == reference_root(entries[:50])
    mixed = LtHash()
    mixed.update(entries[:50], [])
    mixed.update(entries[50:100], entries[:10])
    assert mixed.root() == reference_root(entries[10:100])
