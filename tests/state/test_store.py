"""EncryptedStore as a KVStore and a BlockStore: reads see pending writes, one commit per block,
persistence across reopen, prefix scans agree with MemoryBackend."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from phat_runtime.errors import ConfigError, StateError
from phat_runtime.state import (
    EMPTY_ROOT,
    BlockStore,
    EncryptedStore,
    MemoryBackend,
    Overlay,
    state_root,
)

from .helpers import CONTRACT_A, CONTRACT_B, raw, storage_key


def test_is_a_block_store_and_memory_is_not(store: EncryptedStore) -> None:
    assert isinstance(store, BlockStore)
    assert not isinstance(MemoryBackend(), BlockStore)


def test_reads_see_pending_writes_and_commit_makes_them_durable(
        store: EncryptedStore, db_path: Path, secret: bytes) -> None:
    key = storage_key(CONTRACT_A, b"k")
    assert store.get(key) is None and store.checkpoint is None and store.state_root == EMPTY_ROOT
    store.set(key, b"v1")
    assert store.get(key) == b"v1" and store.pending == 1
    with raw(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0] == 0  # nothing on disk yet
    checkpoint = store.commit_block(1, b"\x01" * 32)
    assert store.pending == 0 and store.get(key) == b"v1"
    assert checkpoint.number == 1 and checkpoint.block_hash == b"\x01" * 32
    assert checkpoint.state_root == state_root([(key, b"v1")]) != EMPTY_ROOT
    store.delete(key)
    assert store.get(key) is None  # a pending delete hides the committed value
    store.close()
    with EncryptedStore.open(db_path, secret) as again:
        assert again.get(key) == b"v1"  # the delete was never committed
        assert again.checkpoint == checkpoint and again.state_root == checkpoint.state_root


def test_block_context_commits_or_drops_everything(store: EncryptedStore) -> None:
    with store.block(1, b"\x01" * 32) as batch:
        batch.set(b"Bx", b"1")
        batch.set(b"By", b"2")
    assert store.checkpoint is not None and store.checkpoint.number == 1
    with pytest.raises(RuntimeError), store.block(2, b"\x02" * 32) as batch:
        batch.set(b"Bx", b"changed")
        raise RuntimeError("the block failed")
    assert store.get(b"Bx") == b"1" and store.pending == 0 and store.checkpoint.number == 1
    store.set(b"Bz", b"stray")
    with pytest.raises(StateError, match="pending outside a block"), store.block(3, b"\x03" * 32):
        pass


def test_a_block_is_never_committed_twice(store: EncryptedStore) -> None:
    store.commit_block(5, bytes(32))
    for number in (5, 4):
        with pytest.raises(StateError, match="refusing to apply a block twice"):
            store.commit_block(number, bytes(32))
    store.commit_block(6, bytes(32))


def test_unchanged_and_deleted_values_keep_the_root_consistent(store: EncryptedStore) -> None:
    store.set(b"Ba", b"1")
    store.set(b"Bb", b"2")
    root = store.commit_block(1, bytes(32)).state_root
    store.set(b"Ba", b"1")  # rewriting the same value changes nothing
    assert store.commit_block(2, bytes(32)).state_root == root
    store.delete(b"Bb")
    store.delete(b"Bnever")  # deleting a missing key is a no-op
    assert store.commit_block(3, bytes(32)).state_root == state_root([(b"Ba", b"1")])
    store.set(b"Bb", b"2")
    assert store.commit_block(4, bytes(32)).state_root == root
    assert store.verify() == root


def test_prefix_scans_match_a_memory_backend(store: EncryptedStore) -> None:
    rng = random.Random(7)
    memory = MemoryBackend()
    keys = [storage_key(c, bytes([i])) for c in (CONTRACT_A, CONTRACT_B) for i in range(12)]
    keys += [b"B" + bytes([i]) * 32 for i in range(5)] + [b"N", b"C" + b"\x01" * 32, b"S", b"S\x01"]
    for block in range(1, 7):
        for _ in range(15):
            key = rng.choice(keys)
            if rng.random() < 0.25:
                store.delete(key)
                memory.delete(key)
            else:
                value = rng.randbytes(rng.randint(0, 40))
                store.set(key, value)
                memory.set(key, value)
        prefixes = [b"", b"S", b"B", b"N", b"C", b"K", b"S" + CONTRACT_A, b"S" + CONTRACT_B[:5],
                    storage_key(CONTRACT_A, bytes(32)), storage_key(CONTRACT_B, b"\x03")]
        for prefix in prefixes:  # pending writes merged in...
            assert list(store.iter_prefix(prefix)) == list(memory.iter_prefix(prefix)), prefix
        store.commit_block(block, bytes(32))
        for prefix in prefixes:  # ...and after the commit
            assert list(store.iter_prefix(prefix)) == list(memory.iter_prefix(prefix)), prefix
        assert store.state_root == state_root(memory.iter_prefix(b""))


def test_overlays_stack_on_the_store(store: EncryptedStore) -> None:
    store.set(b"Ba", b"1")
    store.commit_block(1, bytes(32))
    frame = Overlay(store)
    frame.set(b"Bb", b"2")
    frame.delete(b"Ba")
    assert list(frame.iter_prefix(b"B")) == [(b"Bb", b"2")]
    assert store.get(b"Bb") is None
    frame.commit()
    assert store.get(b"Bb") == b"2" and store.get(b"Ba") is None


def test_concurrent_readers_during_a_block(store: EncryptedStore) -> None:
    for i in range(50):
        store.set(b"B" + bytes([i]), bytes([i]) * 10)
    store.commit_block(1, bytes(32))
    errors: list[str] = []

    def reader() -> None:
        for _ in range(20):
            for i in range(50):
                if store.get(b"B" + bytes([i])) not in (bytes([i]) * 10, b"new"):
                    errors.append(f"key {i}")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for block in range(2, 6):
        store.set(b"B\x00", b"new")
        store.commit_block(block, bytes(32))
    for t in threads:
        t.join()
    assert errors == []


def test_closed_store_and_bad_arguments(db_path: Path, secret: bytes) -> None:
    store = EncryptedStore.open(db_path, secret)
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.get(b"Bx")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        EncryptedStore.open(db_path, b"short")
    with pytest.raises(StateError, match="synchronous"):
        EncryptedStore.open(db_path, secret, synchronous="OFF")


def test_not_a_state_store(tmp_path: Path, secret: bytes) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="junk.db"):
        EncryptedStore.open(junk, secret)


def test_normal_synchronous_mode_is_accepted(db_path: Path, secret: bytes) -> None:
    with EncryptedStore.open(db_path, secret, synchronous="NORMAL") as store:
        store.set(b"Ba", b"1")
        store.commit_block(1, bytes(32))
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
