"""The store's metadata records: format tag, key check, key epoch and checkpoint.

All but the format tag are sealed with the cluster's meta key (AES-256-GCM, the record name as
associated data), so the file shows neither the block height nor the root, and a store opened
with another cluster key fails on the key check with a clear
:class:`~phat_runtime.errors.WrongStateKey` instead of on the first row it reads.

Every record is SCALE (``codec/scale.py``), never a general-purpose serializer: the checkpoint
carries the state root's accumulator, and its bytes must not depend on a library version::

    epoch       u32
    checkpoint  { number: u64, block_hash: [u8; 32], state_root: [u8; 32], lthash: [u16; 1024] }

On open the root is recomputed from the LtHash lanes and must match. A file in another format
(an older pre-release layout) is refused with a message that says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from phat_runtime.codec.scale import Reader, ScaleError, Writer
from phat_runtime.errors import StateCorrupted, StateError, WrongStateKey
from phat_runtime.state.checkpoint import HASH_LEN, Checkpoint
from phat_runtime.state.root import VECTOR_BYTES, LtHash
from phat_runtime.state.rows import MAX_EPOCH, NONCE_LEN, StateKeys, open_blob
from phat_runtime.state.sqlite import FORMAT, Database

_KEY_CHECK = b"phat_runtime state key check v1"


def _ad(name: str) -> bytes:
    return b"phat/state/v1/meta\x00" + name.encode()


def _seal(keys: StateKeys, name: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_LEN)
    return nonce + keys.meta_cipher.encrypt(nonce, plaintext, _ad(name))


def _open(db: Database, keys: StateKeys, name: str) -> bytes | None:
    blob = db.get_meta(name)
    if blob is None:
        return None
    plain = open_blob(keys.meta_cipher, blob, _ad(name))
    if plain is None:
        raise StateCorrupted(f"state store {db.path}: the {name} record failed authentication "
                             "(altered file)", owner="cluster", what=f"{name} record")
    return plain


def root_mismatch(path: Path, why: str) -> StateCorrupted:
    return StateCorrupted(f"state store {path}: the state root does not match the rows ({why})",
                          owner="cluster", what="state root")


def load(db: Database, keys: StateKeys, new_epoch: int) -> tuple[int, Checkpoint | None, LtHash]:
    """(epoch, checkpoint, lthash) of the store; a new file is initialised at ``new_epoch``."""
    fmt = db.get_meta("format")
    if fmt is None:
        if db.count():
            raise StateError(f"{db.path} holds rows but no format record: not a phat state store")
        with db.transaction("initialising the store"):
            db.put_meta("format", FORMAT)
            db.put_meta("keycheck", _seal(keys, "keycheck", _KEY_CHECK))
            put_epoch(db, keys, new_epoch)
        return new_epoch, None, LtHash()
    _check_format_and_key(db, keys, fmt)
    raw_epoch = _open(db, keys, "epoch")
    if raw_epoch is None or len(raw_epoch) != 4:
        raise StateCorrupted(f"state store {db.path}: the epoch record is missing",
                             owner="cluster", what="epoch record")
    epoch = Reader(raw_epoch).u32()
    raw = _open(db, keys, "checkpoint")
    if raw is None:
        return epoch, None, LtHash()
    checkpoint, lthash = _decode_checkpoint(db.path, raw)
    return epoch, checkpoint, lthash


def _check_format_and_key(db: Database, keys: StateKeys, fmt: bytes) -> None:
    if fmt != FORMAT:
        raise StateError(
            f"state store {db.path} is in format {fmt.decode(errors='replace')!r}, and this "
            f"version of phat_runtime reads {FORMAT.decode()!r} only (pre-release formats are "
            "not migrated): move the file away and let the worker re-apply its blocks from the "
            "chain, or start a new store")
    blob = db.get_meta("keycheck")
    if blob is None or open_blob(keys.meta_cipher, blob, _ad("keycheck")) != _KEY_CHECK:
        raise WrongStateKey(f"state store {db.path} was sealed under another cluster key "
                            "(or its key-check record is damaged): it cannot be read with this key")


def check_readable(db: Database, keys: StateKeys) -> None:
    """For a read-only opener: the file is an initialised store of this format and this key."""
    fmt = db.get_meta("format")
    if fmt is None:
        raise StateError(f"{db.path} is not an initialised phat state store (yet): open it with "
                         "the writer first")
    _check_format_and_key(db, keys, fmt)


def read_checkpoint(db: Database, keys: StateKeys) -> Checkpoint | None:
    """The committed checkpoint (inside a read transaction, it is that snapshot's)."""
    raw = _open(db, keys, "checkpoint")
    return None if raw is None else _decode_checkpoint(db.path, raw)[0]


def _decode_checkpoint(path: Path, raw: bytes) -> tuple[Checkpoint, LtHash]:
    try:
        reader = Reader(raw)
        number, block_hash = reader.u64(), reader.array(HASH_LEN)
        root, vector = reader.array(HASH_LEN), reader.array(VECTOR_BYTES)
        reader.end()
    except ScaleError as exc:
        raise StateCorrupted(f"state store {path}: the checkpoint record is malformed ({exc})",
                             owner="cluster", what="checkpoint record") from exc
    lthash = LtHash(vector)
    if lthash.root() != root:
        raise root_mismatch(path, "checkpoint record inconsistent")
    return Checkpoint(number, block_hash, root), lthash


def encode_checkpoint(checkpoint: Checkpoint, lthash: LtHash) -> bytes:
    """SCALE ``{ number: u64, block_hash: [u8; 32], state_root: [u8; 32], lthash: [u16; 1024] }``."""
    return (Writer().u64(checkpoint.number).raw(checkpoint.block_hash)
            .raw(checkpoint.state_root).raw(lthash.vector()).finish())


def put_checkpoint(db: Database, keys: StateKeys, checkpoint: Checkpoint, lthash: LtHash) -> None:
    """Within a transaction."""
    db.put_meta("checkpoint", _seal(keys, "checkpoint", encode_checkpoint(checkpoint, lthash)))


def put_epoch(db: Database, keys: StateKeys, epoch: int) -> None:
    """Within a transaction."""
    if not 0 <= epoch <= MAX_EPOCH:
        raise StateError(f"a key epoch is in 0..{MAX_EPOCH}")
    db.put_meta("epoch", _seal(keys, "epoch", Writer().u32(epoch).finish()))
