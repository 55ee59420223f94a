"""The state root as docs/state.md defines it: LtHash16 over plaintext entries, incremental,
order-independent, and equal to a lane-by-lane reference implementation of the definition."""

from __future__ import annotations

import hashlib
import random

from phat_runtime.state import EMPTY_ROOT, LtHash, state_root
from phat_runtime.state.root import LANES, VECTOR_BYTES, entry_vector

# Pinned vectors (also in docs/state.md): changing the definition must be deliberate.
EMPTY_ROOT_HEX = "273b38c41ab30ade5af7f3cc931e957b5f3c8b12a5129a2a24cec2b1890714ab"
ONE_ENTRY_ROOT_HEX = "ba991efe94e5637b479c7a510e66ce80b6dde9a215d9b3f3bd4d25ec4595243b"


def reference_root(entries: list[tuple[bytes, bytes]]) -> bytes:
    """docs/state.md, written out literally: lanes as a list, no integer tricks."""
    lanes = [0] * LANES
    for key, value in entries:
        digest = hashlib.blake2b(len(key).to_bytes(4, "little") + key + value, digest_size=32,
                                 person=b"phat-state-ent").digest()
        vector = hashlib.shake_128(b"phat/state/v1/entry\x00" + digest).digest(VECTOR_BYTES)
        for i in range(LANES):
            lanes[i] = (lanes[i] + int.from_bytes(vector[2 * i : 2 * i + 2], "little")) % 2**16
    packed = b"".join(lane.to_bytes(2, "little") for lane in lanes)
    return hashlib.blake2b(packed, digest_size=32, person=b"phat-state-root").digest()


def test_pinned_vectors() -> None:
    assert reference_root([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == EMPTY_ROOT_HEX
    assert state_root([(b"Ba", b"1")]).hex() == ONE_ENTRY_ROOT_HEX


def test_incremental_updates_match_the_definition() -> None:
    rng = random.Random(3)
    acc = LtHash()
    state: dict[bytes, bytes] = {}
    for _ in range(40_000):  # more than the fold interval: lane headroom is exercised
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


def test_batched_updates_larger_than_a_fold_interval() -> None:
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
