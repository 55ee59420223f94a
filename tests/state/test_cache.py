"""The writer's value cache (state/cache.py): the same values and roots with and without it,
bounded by bytes, and the documented limit of tamper detection for cached values."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from phat_runtime.errors import ConfigError, StateCorrupted
from phat_runtime.state import EncryptedStore, MemoryBlockStore, state_root
from phat_runtime.state.cache import ValueCache

from .helpers import CONTRACT_A, CONTRACT_B, raw, storage_key


def _workload(seed: int) -> list[dict[bytes, bytes | None]]:
    """Blocks of sets, overwrites, deletes and no-op rewrites over a small key space."""
    rng = random.Random(seed)
    keys = [storage_key(c, bytes([i])) for c in (CONTRACT_A, CONTRACT_B) for i in range(40)]
    keys += [b"B" + bytes([i]) * 32 for i in range(10)] + [b"N"]
    blocks, state = [], {}
    for _ in range(25):
        writes: dict[bytes, bytes | None] = {}
        for key in rng.sample(keys, 30):
            roll = rng.random()
            if roll < 0.2:
                writes[key] = None
            elif roll < 0.3 and key in state:
                writes[key] = state[key]  # rewritten unchanged
            else:
                writes[key] = rng.randbytes(rng.randrange(0, 300))
        for key, value in writes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        blocks.append(writes)
    return blocks


def test_cache_changes_nothing_but_speed(tmp_path: Path, secret: bytes) -> None:
    stores = [EncryptedStore.open(tmp_path / "cached.db", secret),
              EncryptedStore.open(tmp_path / "tiny.db", secret, cache_bytes=4096),
              EncryptedStore.open(tmp_path / "none.db", secret, cache_bytes=0),
              MemoryBlockStore()]
    expected: dict[bytes, bytes] = {}
    for number, writes in enumerate(_workload(7), start=1):
        for key, value in writes.items():
            if value is None:
                expected.pop(key, None)
            else:
                expected[key] = value
        for store in stores:
            for key in list(writes)[:5]:
                store.get(key)  # read-through fills the cache as the pipeline would
            for key, value in writes.items():
                if value is None:
                    store.delete(key)
                else:
                    store.set(key, value)
            store.commit_block(number, number.to_bytes(32, "little"))
        roots = {store.state_root for store in stores}
        assert roots == {state_root(expected.items())}
    for store in stores:
        assert dict(store.iter_prefix(b"")) == expected
        assert all(store.get(k) == v for k, v in expected.items())
        if isinstance(store, EncryptedStore):
            assert store.verify() == store.state_root
            store.close()
    with EncryptedStore.open(tmp_path / "cached.db", secret) as reopened:  # what is on disk
        assert dict(reopened.iter_prefix(b"")) == expected


def test_the_cache_is_bounded_and_skips_large_values(tmp_path: Path) -> None:
    cache = ValueCache(64 * 1024)
    for i in range(1000):
        cache.put(i.to_bytes(4, "big"), bytes(200))
    assert 0 < len(cache) < 1000 and cache.get((999).to_bytes(4, "big")) == bytes(200)
    assert cache.get((0).to_bytes(4, "big")) is None  # the oldest went first
    cache.put(b"code", bytes(2000))  # more than 1/64 of the budget: not kept
    assert cache.get(b"code") is None
    cache.put((999).to_bytes(4, "big"), bytes(2000))  # replacing with a large value drops it
    assert cache.get((999).to_bytes(4, "big")) is None
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ConfigError, match="cache_bytes"):
        EncryptedStore.open(tmp_path / "state.db", os.urandom(64), cache_bytes=-1)
    assert not (tmp_path / "state.db").exists()


def test_a_row_altered_after_caching_is_served_right_and_verify_finds_it(
        tmp_path: Path, secret: bytes) -> None:
    """docs/state.md: a cached value hides a later on-disk alteration from get and from the
    commit that overwrites it (the root stays right); verify() and uncached readers see it."""
    path = tmp_path / "state.db"
    key, other = storage_key(CONTRACT_A, b"k"), storage_key(CONTRACT_A, b"o")
    with EncryptedStore.open(path, secret) as store:
        store.set(key, b"v1")
        store.set(other, b"x")
        store.commit_block(1, bytes(32))
        assert store.get(key) == b"v1"
        with raw(path) as conn:
            conn.execute("UPDATE kv SET sealed = zeroblob(60)")
        assert store.get(key) == b"v1"  # the authentic value, from the cache
        with store.reader() as view, pytest.raises(StateCorrupted):
            view.get(key)  # a view reads the file
        with pytest.raises(StateCorrupted):
            store.verify()
        store.set(key, b"v2")
        store.set(other, b"y")
        store.commit_block(2, bytes(32))  # both old values came from the cache
        assert store.state_root == state_root([(key, b"v2"), (other, b"y")])
        assert store.verify() == store.state_root  # both rows rewritten: whole again


def test_absent_keys_are_remembered_and_forgotten_when_written(tmp_path: Path, secret: bytes) -> None:
    """A read that finds no row is cached as absent (no second SQLite read), a committed write
    replaces that, a committed deletion makes the key absent again; the root is the same as a
    store without the cache."""
    key = storage_key(CONTRACT_A, b"new")
    with EncryptedStore.open(tmp_path / "a.db", secret) as store, \
            EncryptedStore.open(tmp_path / "b.db", secret, cache_bytes=0) as bare:
        for s in (store, bare):
            s.set(storage_key(CONTRACT_B, b"x"), b"1")
            s.commit_block(1, bytes(32))
        assert store.get(key) is None
        with raw(tmp_path / "a.db") as conn:  # a row for the key added behind the writer's back...
            conn.execute("INSERT INTO kv (khash, epoch, sealed) VALUES (?, 0, zeroblob(60))",
                         (store._keys.key_hash(key),))
        assert store.get(key) is None  # ...is not read (it would fail authentication): cached absent
        with store.reader() as view, pytest.raises(StateCorrupted):
            view.get(key)  # a view reads the file
        for number, value in ((2, b"v"), (3, None), (4, b"w")):
            for s in (store, bare):
                if value is None:
                    s.delete(key)
                else:
                    s.set(key, value)
                s.commit_block(number, bytes(32))
                assert s.get(key) == value
            assert store.state_root == bare.state_root


def test_prefetch_reads_many_keys_at_once_into_the_cache(tmp_path: Path, secret: bytes) -> None:
    """prefetch: one read for many keys; present values authenticated, absent ones remembered,
    pending writes and cached keys left alone; gets then answer without reading the file."""
    path = tmp_path / "state.db"
    present, absent, pending = (storage_key(CONTRACT_A, bytes([i])) for i in range(3))
    with EncryptedStore.open(path, secret) as store:
        store.set(present, b"p")
        store.commit_block(1, bytes(32))
        store._cache.clear()
        store.set(pending, b"new")
        store.prefetch([present, absent, pending])
        with raw(path) as conn:  # from now on the file would fail authentication
            conn.execute("UPDATE kv SET sealed = zeroblob(60)")
            conn.execute("INSERT INTO kv (khash, epoch, sealed) VALUES (?, 0, zeroblob(60))",
                         (store._keys.key_hash(absent),))
        assert (store.get(present), store.get(absent), store.get(pending)) == (b"p", None, b"new")
        tampered = storage_key(CONTRACT_B, b"t")
        with raw(path) as conn:
            conn.execute("INSERT INTO kv (khash, epoch, sealed) VALUES (?, 0, zeroblob(60))",
                         (store._keys.key_hash(tampered),))
        store.prefetch([present, absent])  # all cached: the file is not read
        with pytest.raises(StateCorrupted):
            store.prefetch([present, tampered])  # an uncached row is authenticated like any read
