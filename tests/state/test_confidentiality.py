"""The file alone reveals nothing, and no key ever shows in a repr, an error or a log.

Plaintext values, storage keys, contract addresses, account ids and code written by a test must
not appear anywhere in the SQLite file, its WAL or its shared-memory index — checked while the
WAL still holds the latest blocks and again after close has folded it into the main file. The
same check on a plain SQLite file finds them, so the detector works.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from phat_runtime import LocalCluster
from phat_runtime.crypto.accounts import dev_account
from phat_runtime.crypto.kdf import symmetric_key
from phat_runtime.errors import PhatError
from phat_runtime.state import EncryptedStore

from .helpers import CONTRACT_A, CONTRACT_B, raw, storage_key

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
VALUE = b"PLAINTEXT-VALUE-MARKER-0123456789"
KEY = b"PLAINTEXT-STORAGE-KEY-MARKER"


def _file_bytes(path: Path) -> bytes:
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def _leaks(blob: bytes, secrets: dict[str, bytes]) -> list[str]:
    return [name for name, needle in secrets.items() if needle in blob]


def _write_markers(store: EncryptedStore) -> None:
    for block in range(1, 4):
        for contract in (CONTRACT_A, CONTRACT_B):
            store.set(storage_key(contract, KEY + bytes([block])), VALUE + bytes([block]) * 100)
        store.set(b"B" + CONTRACT_A, VALUE)
        store.commit_block(block, b"\xab" * 32)


MARKERS = {"value": VALUE, "storage key": KEY, "contract A": CONTRACT_A, "contract B": CONTRACT_B}


def test_markers_do_not_appear_in_the_file_or_wal(db_path: Path, secret: bytes) -> None:
    store = EncryptedStore.open(db_path, secret)
    _write_markers(store)
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the blocks are (at least) in the WAL now
    assert _leaks(_file_bytes(db_path), MARKERS) == []
    store.close()
    assert _leaks(_file_bytes(db_path), MARKERS) == []
    assert _leaks(_file_bytes(db_path), {"secret": secret}) == []


def test_the_detector_finds_plaintext_in_a_plain_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    with closing(sqlite3.connect(str(path), isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB)")
        conn.execute("INSERT INTO kv VALUES (?, ?)", (storage_key(CONTRACT_A, KEY), VALUE))
        conn.execute("INSERT INTO kv VALUES (?, ?)", (storage_key(CONTRACT_B, KEY), VALUE))
        assert set(_leaks(_file_bytes(path), MARKERS)) == set(MARKERS)


def test_a_real_cluster_leaves_no_addresses_accounts_or_code(db_path: Path, secret: bytes) -> None:
    store = EncryptedStore.open(db_path, secret)
    cluster = LocalCluster(state=store)
    token = cluster.deploy(EXAMPLES / "token" / "token.contract", "new", [10**12])
    bob = bytes([0x42]) * 32
    assert token.transact("transfer", [bob, 777]).success
    wasm = token.metadata.wasm
    assert wasm is not None and token.metadata.code_hash is not None
    secrets = {"token address": token.address, "alice": dev_account("alice"), "bob": bob,
               "code hash": token.metadata.code_hash, "code": wasm[100:140]}
    assert _leaks(_file_bytes(db_path), secrets) == []
    store.close()
    assert _leaks(_file_bytes(db_path), secrets) == []


def test_keys_never_show_in_reprs_errors_or_logs(db_path: Path, secret: bytes,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = EncryptedStore.open(db_path, secret, cache_bytes=0)  # every get reads the file
    tag = store._keys.owner_tag(b"S" + CONTRACT_A)
    derived = [symmetric_key(secret, b"phat/state/v3", (0).to_bytes(4, "little"), tag),
               symmetric_key(secret, b"phat/state/v3/key-hash"),
               symmetric_key(secret, b"phat/state/v3/meta")]
    needles = [secret, *derived]
    texts: list[str] = []
    _write_markers(store)
    texts += [repr(store), str(store), repr(store._keys), repr(store.checkpoint)]
    snapshot = db_path.with_name("snap")
    store.export_snapshot(snapshot)
    with raw(db_path) as conn:
        conn.execute("UPDATE kv SET sealed = zeroblob(64)")
    errors: list[PhatError] = []
    for attempt in (lambda: store.get(storage_key(CONTRACT_A, KEY + b"\x01")),
                    lambda: list(store.iter_prefix(b"")),
                    lambda: EncryptedStore.open(db_path, os.urandom(64)),
                    lambda: EncryptedStore.import_snapshot(snapshot, db_path.with_name("x.db"),
                                                           os.urandom(64))):
        with pytest.raises(PhatError) as caught:
            attempt()
        errors.append(caught.value)
    store.close()
    texts += [str(e) for e in errors] + [repr(e) for e in errors] + [caplog.text]
    for needle in needles:
        for text in texts:
            assert needle.hex() not in text and repr(needle) not in text
    with pytest.raises(TypeError):
        vars(store._keys)  # __slots__: no __dict__ for a debugger or a generic dumper to print
