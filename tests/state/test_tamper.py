"""Tampering with the file is detected on read: a StateCorrupted naming the contract and what
failed — never silent garbage, never a crash.

The store is a real one: a LocalCluster ran the example token and flipper over it (code,
contract registry, balances, nonce and contract storage rows). The tests edit the SQLite file
through a second connection, as an attacker with the disk would, and restore it after each edit.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from phat_runtime import LocalCluster
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.errors import StateCorrupted, StateError
from phat_runtime.state import EncryptedStore
from phat_runtime.state.rows import BATCH_ID_LEN, NONCE_LEN, TAG_LEN, owner_of, scope_of

from .helpers import raw

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"


@dataclass
class RealStore:
    path: Path
    secret: bytes
    contracts: list[bytes]


@pytest.fixture(scope="module")
def real_store_file(tmp_path_factory: pytest.TempPathFactory) -> RealStore:
    path = tmp_path_factory.mktemp("real") / "state.db"
    secret = os.urandom(64)
    with EncryptedStore.open(path, secret) as store:
        cluster = LocalCluster(state=store)
        token = cluster.deploy(EXAMPLES / "token" / "token.contract", "new", [10**12])
        for i in range(3):
            assert token.transact("transfer", [bytes([i + 1]) * 32, 100 + i]).success
        flipper = cluster.deploy(EXAMPLES / "flipper" / "flipper.contract", "new", [True])
        assert flipper.transact("flip").success
        system = cluster.runtime.system_contract  # installed at genesis
        assert system is not None
    return RealStore(path, secret, [system, token.address, flipper.address])


@pytest.fixture()
def real(real_store_file: RealStore, tmp_path: Path) -> Iterator[tuple[EncryptedStore, RealStore]]:
    path = tmp_path / "state.db"
    shutil.copy(real_store_file.path, path)
    # No value cache: every read goes to the file (cached values are covered in test_cache.py).
    with EncryptedStore.open(path, real_store_file.secret, cache_bytes=0) as store:
        yield store, RealStore(path, real_store_file.secret, real_store_file.contracts)


def _rows(store: EncryptedStore) -> dict[bytes, bytes]:
    """khash → plaintext key of every committed row."""
    return {store._keys.key_hash(key): key for key, _ in store.iter_prefix(b"")}


def _who(key: bytes) -> str:
    owner = owner_of(key)
    return to_ss58(owner) if len(owner) == 32 else "cluster namespace"


def _positions(blob: bytes) -> list[int]:
    """Every byte of short blobs; batch id, nonce, tag and a stride through the ciphertext of
    long ones."""
    if len(blob) <= 256:
        return list(range(len(blob)))
    head = BATCH_ID_LEN + NONCE_LEN
    body = range(head, len(blob) - TAG_LEN, max(1, (len(blob) - head - TAG_LEN) // 48))
    return sorted({*range(head), *body, *range(len(blob) - TAG_LEN, len(blob))})


def _flipped(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]


def test_every_row_is_covered(real: tuple[EncryptedStore, RealStore]) -> None:
    store, info = real
    keys = list(_rows(store).values())
    namespaces = {k[:1] for k in keys}
    # Y: cluster settings (runtime/settings.py) — the genesis system contract's address
    assert namespaces == {b"B", b"C", b"c", b"K", b"N", b"S", b"Y"}
    assert {owner_of(k) for k in keys if k[:1] == b"S"} == set(info.contracts)


def test_flipping_any_byte_of_a_sealed_entry_is_detected(real: tuple[EncryptedStore, RealStore]) -> None:
    store, info = real
    flips = 0
    with raw(info.path) as conn:
        for khash, key in _rows(store).items():
            (blob,) = conn.execute("SELECT sealed FROM kv WHERE khash = ?", (khash,)).fetchone()
            for at in _positions(blob):
                conn.execute("UPDATE kv SET sealed = ? WHERE khash = ?", (_flipped(blob, at), khash))
                with pytest.raises(StateCorrupted) as caught:
                    store.get(key)
                assert _who(key) in str(caught.value) and "value failed authentication" in str(caught.value)
                if len(owner_of(key)) == 32:
                    assert owner_of(key).hex() in str(caught.value)
                flips += 1
            with pytest.raises(StateCorrupted) as caught:  # a scan finds it too
                list(store.iter_prefix(scope_of(key)))
            assert _who(key) in str(caught.value) and "sealed entry failed" in str(caught.value)
            with pytest.raises(StateCorrupted, match="sealed entry failed"):
                store.verify()
            conn.execute("UPDATE kv SET sealed = ? WHERE khash = ?", (blob, khash))
    assert flips > 1000
    assert store.verify() == store.state_root  # restored: everything reads again


def test_swapping_two_rows_entries_is_detected(real: tuple[EncryptedStore, RealStore]) -> None:
    store, info = real
    rows = list(_rows(store).items())
    with raw(info.path) as conn:
        for (h1, k1), (h2, k2) in zip(rows, rows[1:] + rows[:1], strict=True):
            v1 = conn.execute("SELECT sealed FROM kv WHERE khash = ?", (h1,)).fetchone()[0]
            v2 = conn.execute("SELECT sealed FROM kv WHERE khash = ?", (h2,)).fetchone()[0]
            conn.execute("UPDATE kv SET sealed = ? WHERE khash = ?", (v2, h1))
            conn.execute("UPDATE kv SET sealed = ? WHERE khash = ?", (v1, h2))
            for key in (k1, k2):
                with pytest.raises(StateCorrupted, match="swapped in from another row") as caught:
                    store.get(key)
                assert _who(key) in str(caught.value)
            conn.execute("UPDATE kv SET sealed = ? WHERE khash = ?", (v1, h1))
            conn.execute("UPDATE kv SET sealed = ? WHERE khash = ?", (v2, h2))
    assert store.verify() == store.state_root


def test_moving_a_row_to_another_contract_is_detected(real: tuple[EncryptedStore, RealStore]) -> None:
    store, info = real
    _system, token, flipper = info.contracts
    rows = _rows(store)
    token_row, token_key = next((h, k) for h, k in rows.items()
                                if k[:1] == b"S" and owner_of(k) == token)
    flipper_row, flipper_key = next((h, k) for h, k in rows.items() if owner_of(k) == flipper)
    with raw(info.path) as conn:
        # 1. the token's sealed entry written over the flipper's row
        (sealed,) = conn.execute("SELECT sealed FROM kv WHERE khash = ?", (token_row,)).fetchone()
        (saved,) = conn.execute("SELECT sealed FROM kv WHERE khash = ?", (flipper_row,)).fetchone()
        conn.execute("UPDATE kv SET sealed = ? WHERE khash = ?", (sealed, flipper_row))
        with pytest.raises(StateCorrupted) as caught:
            store.get(flipper_key)
        assert to_ss58(flipper) in str(caught.value)
        with pytest.raises(StateCorrupted, match="sealed entry failed") as caught:
            list(store.iter_prefix(scope_of(flipper_key)))
        assert to_ss58(flipper) in str(caught.value)
        conn.execute("UPDATE kv SET sealed = ? WHERE khash = ?", (saved, flipper_row))
        # 2. the token's whole row re-tagged as the flipper's (its khash moved into the
        #    flipper's range): the flipper's scan finds it and refuses it; the token's key no
        #    longer finds its row — a missing row, which verify() reports.
        moved = flipper_row[:16] + token_row[16:]
        conn.execute("UPDATE kv SET khash = ? WHERE khash = ?", (moved, token_row))
        with pytest.raises(StateCorrupted, match="sealed entry failed") as caught:
            list(store.iter_prefix(scope_of(flipper_key)))
        assert to_ss58(flipper) in str(caught.value)
        assert store.get(token_key) is None
        with pytest.raises(StateCorrupted):
            store.verify()
        conn.execute("UPDATE kv SET khash = ? WHERE khash = ?", (token_row, moved))
    assert store.verify() == store.state_root


def test_other_column_edits_are_detected(real: tuple[EncryptedStore, RealStore]) -> None:
    store, info = real
    khash, key = next((h, k) for h, k in _rows(store).items() if k[:1] == b"S")
    with raw(info.path) as conn:
        for column, bad in (("epoch", 1), ("epoch", -5), ("epoch", "zero"), ("sealed", "text"),
                            ("sealed", bytes(32)), ("sealed", b"short")):
            saved = conn.execute(f"SELECT {column} FROM kv WHERE khash = ?", (khash,)).fetchone()[0]
            conn.execute(f"UPDATE kv SET {column} = ? WHERE khash = ?", (bad, khash))
            with pytest.raises(StateCorrupted, match=to_ss58(owner_of(key))):
                list(store.iter_prefix(scope_of(key)))
            with pytest.raises(StateCorrupted, match=to_ss58(owner_of(key))):
                store.get(key)
            conn.execute(f"UPDATE kv SET {column} = ? WHERE khash = ?", (saved, khash))
    assert store.verify() == store.state_root


def test_deleted_or_rolled_back_rows_are_caught_by_verify(real: tuple[EncryptedStore, RealStore]) -> None:
    store, info = real
    token = info.contracts[1]
    key = next(k for k in _rows(store).values() if owner_of(k) == token)
    khash = store._keys.key_hash(key)
    with raw(info.path) as conn:
        old_row = conn.execute("SELECT * FROM kv WHERE khash = ?", (khash,)).fetchone()
    before = store.get(key)
    assert before is not None
    store.set(key, before + b"\x00")
    store.commit_block(store.checkpoint.number + 1 if store.checkpoint else 1, bytes(32))
    with raw(info.path) as conn:
        conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", old_row)  # per-row rollback
    assert store.get(key) == before  # a valid old row authenticates: AEAD alone cannot tell...
    with pytest.raises(StateCorrupted, match="state root does not match"):
        store.verify()  # ...the state root can
    with raw(info.path) as conn:
        conn.execute("DELETE FROM kv WHERE khash = ?", (khash,))
    with pytest.raises(StateCorrupted, match="state root does not match"):
        store.verify()


def test_a_tampered_old_value_aborts_the_block_that_overwrites_it(real: tuple[EncryptedStore, RealStore]) -> None:
    store, info = real
    key = next(k for k in _rows(store).values() if k[:1] == b"B")
    khash = store._keys.key_hash(key)
    checkpoint = store.checkpoint
    assert checkpoint is not None
    with raw(info.path) as conn:
        conn.execute("UPDATE kv SET sealed = zeroblob(40) WHERE khash = ?", (khash,))
    store.set(key, b"\x01" * 16)
    with pytest.raises(StateCorrupted, match="balances"):
        store.commit_block(checkpoint.number + 1, bytes(32))
    assert store.checkpoint == checkpoint  # nothing committed


def test_tampered_metadata_is_detected_on_open(real_store_file: RealStore, tmp_path: Path) -> None:
    for name in ("checkpoint", "epoch"):
        path = tmp_path / f"{name}.db"
        shutil.copy(real_store_file.path, path)
        with raw(path) as conn:
            (blob,) = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            conn.execute("UPDATE meta SET value = ? WHERE name = ?", (_flipped(blob, len(blob) - 1), name))
        with pytest.raises(StateCorrupted, match=f"{name} record failed authentication"):
            EncryptedStore.open(path, real_store_file.secret)
    path = tmp_path / "format.db"
    shutil.copy(real_store_file.path, path)
    with raw(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (b"other/9",))
    with pytest.raises(StateError, match="is in format 'other/9'.*reads 'phat-state/3' only"):
        EncryptedStore.open(path, real_store_file.secret)
