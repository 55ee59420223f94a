"""Encrypted state snapshots: export a store's committed state, import it into a new store.

A worker holding the cluster key can start from a snapshot instead of replaying the chain from
genesis. File format (version 2, little-endian; plaintexts are SCALE)::

    header  = b"PHATSNP\\x02" ‖ file_id (16 random bytes)
    frame   = u32 length ‖ nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16)
    key     = symmetric_key(cluster secret, "phat/state/v3/snapshot", file_id)
    AD(i)   = header ‖ u64 i ‖ final flag (1 byte)
    frame 0 = { number: u64, block_hash: [u8; 32], state_root: [u8; 32], entries: u64 }
    frame i = entries (key: Vec<u8>, value: Vec<u8>), back to back; the last frame has flag 1

The AD binds each frame to this file and its position, so frames cannot be reordered, dropped,
spliced from another snapshot, or the file cut short without detection. Import re-seals every
entry under the importing store's epoch, recomputes the state root and installs the checkpoint
in one SQLite transaction only if the root matches. A snapshot that does not decrypt under this
cluster key raises :class:`~phat_runtime.errors.WrongStateKey`. Snapshot files are ``0600``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from phat_runtime.codec.scale import Reader, ScaleError, Writer
from phat_runtime.errors import StateCorrupted, StateError, WrongStateKey
from phat_runtime.state import meta
from phat_runtime.state.checkpoint import HASH_LEN, Checkpoint
from phat_runtime.state.root import LtHash, encode_entry
from phat_runtime.state.rows import BATCH_ID_LEN, NONCE_LEN, TAG_LEN, Row, StateKeys, open_blob
from phat_runtime.state.sqlite import FILE_MODE, Database, make_private_dirs

if TYPE_CHECKING:
    from phat_runtime.state.store import EncryptedStore

MAGIC = b"PHATSNP\x02"
FILE_ID_LEN = 16
#: Plaintext bytes gathered before a frame is sealed; one record may make a frame larger.
FRAME_TARGET = 1 << 20
#: Largest frame accepted on import: code ≤ 2 MiB, value ≤ 1 MiB, plus slack.
MAX_FRAME = 8 << 20
_IMPORT_BATCH = 1000


def _ad(header: bytes, index: int, final: bool) -> bytes:
    return header + index.to_bytes(8, "little") + (b"\x01" if final else b"\x00")


def export_snapshot(store: EncryptedStore, db: Database, keys: StateKeys, path: Path) -> Checkpoint:
    checkpoint = store.checkpoint
    if checkpoint is None:
        raise StateError("nothing committed yet: commit a block before exporting a snapshot")
    header = MAGIC + os.urandom(FILE_ID_LEN)
    cipher = keys.snapshot_cipher(header[len(MAGIC):])
    tmp = path.with_name(path.name + ".tmp")
    lthash = LtHash()
    entries: list[bytes] = []
    index = 0

    def frame(out: BinaryIO, plaintext: bytes, final: bool) -> None:
        nonlocal index
        nonce = os.urandom(NONCE_LEN)
        blob = nonce + cipher.encrypt(nonce, plaintext, _ad(header, index, final))
        out.write(len(blob).to_bytes(4, "little") + blob)
        index += 1

    make_private_dirs(path.parent)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # a leftover .tmp from a crashed export may have another mode
    with db.reading(), os.fdopen(fd, "wb") as out:
        count = db.count()
        out.write(header)
        frame(out, Writer().u64(checkpoint.number).raw(checkpoint.block_hash)
              .raw(checkpoint.state_root).u64(count).finish(), False)
        chunk = io.BytesIO()
        for row in db.iter_rows():
            entry = keys.open_row_entry(row)  # SCALE (key, value): the snapshot's record too
            entries.append(entry)
            chunk.write(entry)
            if chunk.tell() >= FRAME_TARGET:
                frame(out, chunk.getvalue(), False)
                chunk = io.BytesIO()
                lthash.update_encoded(entries, ())
                entries = []
        frame(out, chunk.getvalue(), True)
        lthash.update_encoded(entries, ())
        out.flush()
        os.fsync(out.fileno())
    if lthash.root() != checkpoint.state_root:
        tmp.unlink()
        raise meta.root_mismatch(db.path, "found while exporting a snapshot")
    os.replace(tmp, path)
    return checkpoint


def _frames(src: BinaryIO, keys: StateKeys, path: Path) -> Iterator[tuple[bytes, bool]]:
    header = src.read(len(MAGIC) + FILE_ID_LEN)
    if len(header) != len(MAGIC) + FILE_ID_LEN or not header.startswith(MAGIC):
        if header.startswith(MAGIC[:-1]):
            raise StateError(f"{path} is a phat state snapshot of version {header[len(MAGIC) - 1]}; "
                             f"this version of phat_runtime reads version {MAGIC[-1]} only: export "
                             "a new snapshot with a current worker")
        raise StateError(f"{path} is not a phat state snapshot (version {MAGIC[-1]})")
    cipher = keys.snapshot_cipher(header[len(MAGIC):])
    index = 0
    while True:
        raw_len = src.read(4)
        length = int.from_bytes(raw_len, "little")
        blob = src.read(length) if len(raw_len) == 4 and length <= MAX_FRAME else b""
        if len(raw_len) < 4 or length < NONCE_LEN + TAG_LEN or len(blob) != length:
            raise StateCorrupted(f"snapshot {path} is truncated at frame {index}",
                                 owner="snapshot", what="truncated")
        for final in (False, True):
            plain = open_blob(cipher, blob, _ad(header, index, final))
            if plain is not None:
                break
        else:
            if index == 0:
                raise WrongStateKey(f"snapshot {path} cannot be decrypted with this cluster key "
                                    "(it was made by another cluster, or the file is damaged)")
            raise StateCorrupted(f"snapshot {path}: frame {index} failed authentication "
                                 "(altered, reordered or spliced)", owner="snapshot", what="frame")
        yield plain, final
        index += 1
        if final:
            return


def _records(path: Path, plain: bytes) -> Iterator[tuple[bytes, bytes]]:
    reader = Reader(plain)
    try:
        while reader.pos < len(plain):
            yield reader.blob(), reader.blob()
    except ScaleError as exc:
        raise StateCorrupted(f"snapshot {path}: malformed record ({exc})",
                             owner="snapshot", what="record") from exc


def import_snapshot(path: Path, db: Database, keys: StateKeys, epoch: int) -> tuple[Checkpoint, LtHash]:
    """Fill the empty store ``db`` from ``path``; the checkpoint and LtHash it ends at."""
    try:
        src = path.open("rb")  # closed by the `with` below; OSError translated here
    except OSError as exc:
        raise StateError(f"cannot read snapshot {path}: {exc.strerror}") from exc
    with src:
        frames = _frames(src, keys, path)
        head, final = next(frames)
        try:
            reader = Reader(head)
            checkpoint = Checkpoint(reader.u64(), reader.array(HASH_LEN), reader.array(HASH_LEN))
            expected = reader.u64()
            reader.end()
        except ScaleError as exc:
            raise StateCorrupted(f"snapshot {path}: malformed header frame",
                                 owner="snapshot", what="header") from exc
        lthash = LtHash()
        count = 0
        with db.transaction("importing a snapshot"):
            rows: list[Row] = []
            entries: list[bytes] = []
            batch = os.urandom(BATCH_ID_LEN)
            for plain, last in frames:
                final = last
                for key, value in _records(path, plain):
                    entry = encode_entry(key, value)
                    entries.append(entry)
                    khash = keys.key_hash(key)
                    rows.append((khash, epoch, keys.seal(khash, entry, epoch, batch,
                                                         os.urandom(NONCE_LEN))))
                    count += 1
                    if len(rows) >= _IMPORT_BATCH:
                        db.upsert(rows)
                        lthash.update_encoded(entries, ())
                        rows, entries = [], []
                        batch = os.urandom(BATCH_ID_LEN)
            db.upsert(rows)
            lthash.update_encoded(entries, ())
            if not final:
                raise StateCorrupted(f"snapshot {path} ends without its final frame",
                                     owner="snapshot", what="truncated")
            if count != expected or lthash.root() != checkpoint.state_root:
                raise StateCorrupted(
                    f"snapshot {path}: {count} entries with root 0x{lthash.root().hex()} do not "
                    f"match its checkpoint ({expected} entries, root 0x{checkpoint.state_root.hex()})",
                    owner="snapshot", what="state root")
            meta.put_checkpoint(db, keys, checkpoint, lthash)
    return checkpoint, lthash
