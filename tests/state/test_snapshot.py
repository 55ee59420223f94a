"""Encrypted snapshots: another worker with the cluster key starts from a known block; a wrong
key, a damaged, truncated or forged file are refused with a clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phat_runtime.errors import StateCorrupted, StateError, WrongStateKey
from phat_runtime.state import EncryptedStore, snapshot
from phat_runtime.state.rows import NONCE_LEN, StateKeys
from phat_runtime.state.snapshot import FILE_ID_LEN, MAGIC

from .helpers import CONTRACT_A, CONTRACT_B, storage_key

VALUE = b"SNAPSHOT-PLAINTEXT-MARKER"


def _source(path: Path, secret: bytes, blocks: int = 3) -> EncryptedStore:
    store = EncryptedStore.open(path, secret)
    for block in range(1, blocks + 1):
        for i in range(40):
            store.set(storage_key(CONTRACT_A if i % 2 else CONTRACT_B, bytes([i, block])),
                      VALUE + os.urandom(300))
        store.set(b"N", block.to_bytes(8, "little"))
        store.commit_block(block, bytes([block]) * 32)
    return store


def test_round_trip_preserves_state_checkpoint_and_root(tmp_path: Path, secret: bytes) -> None:
    source = _source(tmp_path / "a.db", secret)
    snap = tmp_path / "state.snap"
    checkpoint = source.export_snapshot(snap)
    assert VALUE not in snap.read_bytes() and CONTRACT_A not in snap.read_bytes()
    with EncryptedStore.import_snapshot(snap, tmp_path / "b.db", secret, epoch=4) as copy:
        assert copy.checkpoint == checkpoint == source.checkpoint
        assert list(copy.iter_prefix(b"")) == list(source.iter_prefix(b""))
        assert copy.verify() == checkpoint.state_root and copy.epoch == 4
        for store in (source, copy):  # both continue from the same block, to the same root
            store.set(b"Bnew", b"1")
            store.delete(storage_key(CONTRACT_A, bytes([1, 1])))
            store.commit_block(checkpoint.number + 1, bytes(32))
        assert copy.state_root == source.state_root
    source.close()


def test_wrong_key_is_a_clear_error(tmp_path: Path, secret: bytes) -> None:
    with _source(tmp_path / "a.db", secret) as source:
        source.export_snapshot(tmp_path / "s")
    with pytest.raises(WrongStateKey, match="cannot be decrypted with this cluster key"):
        EncryptedStore.import_snapshot(tmp_path / "s", tmp_path / "b.db", os.urandom(64))


def _frame_offsets(data: bytes) -> list[int]:
    offsets, at = [], len(MAGIC) + FILE_ID_LEN
    while at < len(data):
        offsets.append(at)
        at += 4 + int.from_bytes(data[at : at + 4], "little")
    return offsets


@pytest.mark.parametrize("damage", ["flip header", "flip frame", "truncate", "drop final",
                                    "swap frames", "not a snapshot"])
def test_damaged_snapshots_are_refused(tmp_path: Path, secret: bytes, damage: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "FRAME_TARGET", 4096)  # many small frames
    with _source(tmp_path / "a.db", secret) as source:
        source.export_snapshot(tmp_path / "s")
    data = (tmp_path / "s").read_bytes()
    offsets = _frame_offsets(data)
    assert len(offsets) >= 3  # header frame + several record frames
    error: type[StateError]
    if damage == "flip header":  # the file id: no frame opens, as under a wrong key
        data, error = data[:10] + bytes([data[10] ^ 1]) + data[11:], WrongStateKey
    elif damage == "flip frame":
        at = offsets[1] + 100
        data, error = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :], StateCorrupted
    elif damage == "truncate":
        data, error = data[: len(data) - 7], StateCorrupted
    elif damage == "drop final":
        data, error = data[: offsets[-1]], StateCorrupted
    elif damage == "swap frames":
        one, two = data[offsets[1] : offsets[2]], data[offsets[2] : offsets[3] if len(offsets) > 3 else len(data)]
        data = data[: offsets[1]] + two + one + data[offsets[1] + len(one) + len(two) :]
        error = StateCorrupted
    else:
        data, error = b"SQLite format 3\x00" + data[16:], StateError
    (tmp_path / "s").write_bytes(data)
    with pytest.raises(error):
        EncryptedStore.import_snapshot(tmp_path / "s", tmp_path / "b.db", secret)
    if (tmp_path / "b.db").exists():  # nothing half-imported
        with EncryptedStore.open(tmp_path / "b.db", secret) as partial:
            assert partial.checkpoint is None and list(partial.iter_prefix(b"")) == []


def test_a_well_sealed_snapshot_with_a_wrong_root_is_refused(tmp_path: Path, secret: bytes) -> None:
    with _source(tmp_path / "a.db", secret) as source:
        source.export_snapshot(tmp_path / "s")
    data = (tmp_path / "s").read_bytes()
    header = data[: len(MAGIC) + FILE_ID_LEN]
    cipher = StateKeys(secret).snapshot_cipher(header[len(MAGIC) :])
    first = _frame_offsets(data)[0]
    length = int.from_bytes(data[first : first + 4], "little")
    blob = data[first + 4 : first + 4 + length]
    ad = header + (0).to_bytes(8, "little") + b"\x00"
    head = cipher.decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], ad)  # SCALE: u64, hash, root, u64
    assert len(head) == 8 + 32 + 32 + 8
    forged = head[:40] + bytes(32) + head[72:]  # someone with the key lies about the root
    nonce = os.urandom(NONCE_LEN)
    blob = nonce + cipher.encrypt(nonce, forged, ad)
    data = header + len(blob).to_bytes(4, "little") + blob + data[first + 4 + length :]
    (tmp_path / "s").write_bytes(data)
    with pytest.raises(StateCorrupted, match="do not match its checkpoint"):
        EncryptedStore.import_snapshot(tmp_path / "s", tmp_path / "b.db", secret)


def test_import_needs_an_empty_target_and_export_a_committed_block(tmp_path: Path, secret: bytes) -> None:
    with EncryptedStore.open(tmp_path / "empty.db", secret) as empty, pytest.raises(StateError, match="nothing committed"):
        empty.export_snapshot(tmp_path / "s")
    with _source(tmp_path / "a.db", secret) as source:
        source.export_snapshot(tmp_path / "s")
        with pytest.raises(StateError, match="not empty"):
            EncryptedStore.import_snapshot(tmp_path / "s", tmp_path / "a.db", secret)
    with pytest.raises(StateError, match="cannot read snapshot"):
        EncryptedStore.import_snapshot(tmp_path / "missing", tmp_path / "c.db", secret)
