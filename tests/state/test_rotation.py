"""Key rotation: new writes use the new epoch, old rows stay readable until re-encrypted, the
re-encryption pass is resumable, and the state root never changes because of rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from phat_runtime.errors import ConfigError, StateError
from phat_runtime.state import EncryptedStore

from .helpers import CONTRACT_A, CONTRACT_B, raw, storage_key


def _epochs(path: Path) -> dict[int, int]:
    with raw(path) as conn:
        return dict(conn.execute("SELECT epoch, COUNT(*) FROM kv GROUP BY epoch").fetchall())


def _fill(store: EncryptedStore, n: int, block: int) -> dict[bytes, bytes]:
    data = {storage_key(CONTRACT_A if i % 2 else CONTRACT_B, bytes([i])): bytes([i]) * 20 for i in range(n)}
    data[b"Bbalance"] = b"\x01" * 16
    for key, value in data.items():
        store.set(key, value)
    store.commit_block(block, bytes(32))
    return data


def test_rotation_seals_new_writes_only_and_keeps_the_root(store: EncryptedStore, db_path: Path,
                                                          secret: bytes) -> None:
    data = _fill(store, 10, 1)
    root = store.state_root
    store.rotate(1)
    assert store.epoch == 1 and store.state_root == root
    new_key = storage_key(CONTRACT_A, b"new")
    store.set(new_key, b"after rotation")
    store.set(storage_key(CONTRACT_B, b"\x00"), b"rewritten")
    store.commit_block(2, bytes(32))
    assert _epochs(db_path) == {0: 10, 1: 2}
    store.close()
    with EncryptedStore.open(db_path, secret) as again:
        assert again.epoch == 1  # the rotation persisted
        assert again.get(new_key) == b"after rotation"
        assert again.get(storage_key(CONTRACT_A, b"\x01")) == data[storage_key(CONTRACT_A, b"\x01")]
        assert again.get(b"Bbalance") == data[b"Bbalance"]


def test_reencrypt_rewrites_old_rows_with_progress(store: EncryptedStore, db_path: Path) -> None:
    data = _fill(store, 9, 1)
    root = store.state_root
    with raw(db_path) as conn:
        before = dict(conn.execute("SELECT khash, sealed FROM kv").fetchall())
    store.rotate(3)
    seen: list[tuple[int, int]] = []
    assert store.reencrypt(batch_size=4, progress=lambda done, total: seen.append((done, total))) == 10
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert _epochs(db_path) == {3: 10}
    with raw(db_path) as conn:
        after = dict(conn.execute("SELECT khash, sealed FROM kv").fetchall())
    assert before.keys() == after.keys() and all(before[k] != after[k] for k in before)
    assert store.state_root == root and store.verify() == root
    assert all(store.get(k) == v for k, v in data.items())
    assert store.reencrypt() == 0


def test_an_interrupted_reencrypt_resumes(store: EncryptedStore, db_path: Path, secret: bytes) -> None:
    data = _fill(store, 11, 1)
    store.rotate(1)

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the worker is stopped after the first batch

    with pytest.raises(KeyboardInterrupt):
        store.reencrypt(batch_size=5, progress=stop)
    assert _epochs(db_path) == {0: 7, 1: 5}
    assert all(store.get(k) == v for k, v in data.items())  # mixed epochs read fine
    store.close()
    with EncryptedStore.open(db_path, secret) as again:
        assert again.reencrypt(batch_size=5) == 7
        assert _epochs(db_path) == {1: 12}
        assert again.verify() == again.state_root


def test_same_content_same_root_whatever_the_epoch(tmp_path: Path, secret: bytes) -> None:
    with EncryptedStore.open(tmp_path / "a.db", secret) as a, \
            EncryptedStore.open(tmp_path / "b.db", secret, epoch=7) as b:
        _fill(a, 6, 1)
        _fill(b, 6, 1)
        assert a.state_root == b.state_root


def test_epochs_only_move_forward(db_path: Path, secret: bytes) -> None:
    with EncryptedStore.open(db_path, secret, epoch=2) as store:
        for bad in (2, 1):
            with pytest.raises(StateError, match="epochs only move forward"):
                store.rotate(bad)
        with pytest.raises(ConfigError):
            store.rotate(2**32)
        with pytest.raises(ConfigError):
            store.reencrypt(batch_size=0)
    with pytest.raises(StateError, match="epochs only move forward"):
        EncryptedStore.open(db_path, secret, epoch=1)  # never back to an old (maybe revoked) key
    with EncryptedStore.open(db_path, secret, epoch=5) as store:
        assert store.epoch == 5  # the key ring is ahead: rotate on open
