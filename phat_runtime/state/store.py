"""The encrypted persistent store: a :class:`~phat_runtime.state.checkpoint.BlockStore` over SQLite.

Shape from py-evm's db layer: the runtime sees one mapping (``get`` / ``set`` / ``delete`` /
``iter_prefix``); writes are buffered — reads see them at once — until
:meth:`EncryptedStore.commit_block` seals them and writes them, the new checkpoint and the new
state root in *one* SQLite transaction. A crash therefore loses nothing committed and applies
nothing twice: after a restart ``checkpoint.number`` is the last block whose every write is on
disk, and ``commit_block`` refuses a number that is not after it.

Rows are sealed by :mod:`~phat_runtime.state.rows`; the state root is the LtHash of
:mod:`~phat_runtime.state.root`, updated from each block's changes (the old value of every
changed key is read back and authenticated, so a tampered row aborts the block). Key rotation
(:meth:`EncryptedStore.rotate`, :meth:`EncryptedStore.reencrypt`) and snapshots live in
``rotation.py`` / ``snapshot.py``.

Queries read through :meth:`EncryptedStore.reader` (or :meth:`EncryptedStore.open_reader` from
another process): read-only WAL snapshots of the last committed block that never wait for
``commit_block`` and never delay it (``views.py``). ``get`` / ``iter_prefix`` on the store itself
are the block pipeline's: they see its pending writes.

Must not: log, repr or put into an error any key or secret; import ``runtime/`` or above.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from phat_runtime.errors import ConfigError, StateError
from phat_runtime.state import meta
from phat_runtime.state.cache import DEFAULT_BYTES as DEFAULT_CACHE_BYTES
from phat_runtime.state.cache import MISS, ValueCache
from phat_runtime.state.checkpoint import Checkpoint, next_block
from phat_runtime.state.root import LtHash, compact_len
from phat_runtime.state.rows import (
    BATCH_ID_LEN,
    MAX_EPOCH,
    NONCE_LEN,
    OWNER_TAG_LEN,
    Row,
    StateKeys,
)
from phat_runtime.state.sqlite import Database
from phat_runtime.state.views import SqliteView, StoreReader, committed_get, committed_scan

Progress = Callable[[int, int], None]
_ABSENT = object()


class EncryptedStore:
    """Sealed key-value state in one SQLite file, committed per block. Thread-safe."""

    def __init__(self, db: Database, keys: StateKeys, epoch: int,
                 checkpoint: Checkpoint | None, lthash: LtHash,
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._db = db
        self._keys = keys
        self._epoch = epoch
        self.checkpoint = checkpoint
        self._lthash = lthash
        self._pending: dict[bytes, bytes | None] = {}
        self._cache = ValueCache(cache_bytes)  # committed values read or written (cache.py)
        self._lock = threading.RLock()
        self._closed = False
        self._readers: StoreReader | None = None
        self._readers_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str], cluster_secret: bytes, *,
             epoch: int | None = None, synchronous: str = "FULL",
             cache_bytes: int = DEFAULT_CACHE_BYTES,
             epoch_secrets: Mapping[int, bytes] | None = None) -> EncryptedStore:
        """Open (or create) the store at ``path``.

        ``epoch`` is the current key epoch from the worker's key ring: a new store starts at
        it (default 0); an existing store at an older epoch is rotated to it; one at a *newer*
        epoch is refused (values must never again be sealed under an old, maybe revoked key).
        A store sealed under another cluster key raises :class:`~phat_runtime.errors.WrongStateKey`.
        ``cache_bytes`` bounds the writer's cache of committed values (``cache.py``; 0: none).
        ``epoch_secrets``: a chain cluster's key ring — each later epoch's own key
        (:class:`~phat_runtime.state.rows.StateKeys`).
        """
        if cache_bytes < 0:
            raise ConfigError("cache_bytes must be 0 (no cache) or more")
        keys = StateKeys(cluster_secret, epoch_secrets)
        db = Database.connect(Path(path), synchronous=synchronous)
        try:
            stored_epoch, checkpoint, lthash = meta.load(db, keys, 0 if epoch is None else epoch)
            store = cls(db, keys, stored_epoch, checkpoint, lthash, cache_bytes)
            if epoch is not None and epoch != stored_epoch:
                store.rotate(epoch)
        except BaseException:
            db.close()
            raise
        return store

    def __repr__(self) -> str:
        block = None if self.checkpoint is None else self.checkpoint.number
        return f"<EncryptedStore {self._db.path} block={block} epoch={self._epoch}>"

    @classmethod
    def open_reader(cls, path: str | os.PathLike[str], cluster_secret: bytes,
                    epoch_secrets: Mapping[int, bytes] | None = None) -> StoreReader:
        """Open the store at ``path`` read-only, e.g. from a query process while the worker's
        block process owns it: ``with r.reader() as view`` gives the last committed block.
        Creates and changes nothing (the file must exist, written by the owner); a reader can
        never write. :class:`~phat_runtime.errors.WrongStateKey` under another cluster key."""
        return StoreReader.open(path, StateKeys(cluster_secret, epoch_secrets))

    def add_epoch_secret(self, epoch: int, secret: bytes) -> None:
        """The key of a new epoch from the worker's key ring (before :meth:`rotate` to it)."""
        self._keys.add_epoch_secret(epoch, secret)

    @contextmanager
    def reader(self) -> Iterator[SqliteView]:
        """``with store.reader() as view:`` — the last committed block as one consistent
        snapshot (``view.checkpoint`` and the data agree), read-only. Never waits for
        :meth:`commit_block` and never delays it; pending writes are invisible; the view keeps
        its block until the ``with`` ends. Thread-safe: any number at once."""
        self._check_open()  # never self._lock: commit_block holds it for the whole commit
        with self._readers_lock:
            if self._readers is None:
                self._readers = StoreReader(self._db.path, self._keys)
            readers = self._readers
        with readers.reader() as view:
            yield view

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                with self._readers_lock:
                    if self._readers is not None:
                        self._readers.close()
                self._db.close()

    def __enter__(self) -> EncryptedStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"state store {self._db.path} is closed")

    # --- KVStore ----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        if type(key) is not bytes:
            key = bytes(key)
        with self._lock:
            pending = self._pending.get(key, _ABSENT)
            if pending is not _ABSENT:
                return pending  # type: ignore[return-value]
            cached = self._cache.lookup(key)
            if cached is not MISS:
                return cached  # type: ignore[return-value]
            if self._closed:
                self._check_open()
            value = committed_get(self._db, self._keys, key)
            self._cache.put(key, value)  # None too: a new key is read several times per transaction
            return value

    def prefetch(self, keys: list[bytes]) -> None:
        """Read the committed values of ``keys`` the cache does not know, in one ``SELECT … IN``,
        into the cache (absent ones as absent): the block pipeline knows some keys every
        transaction of a block reads — the replay record of each nonce — before it runs them."""
        with self._lock:
            self._check_open()
            cache, state_keys = self._cache, self._keys
            wanted = {bytes(k): state_keys.key_hash(bytes(k)) for k in keys
                      if k not in self._pending and cache.lookup(k) is MISS}
            if not wanted:
                return
            rows = self._db.rows_by_hash(list(wanted.values()))
            for key, khash in wanted.items():
                row = rows.get(khash)
                cache.put(key, None if row is None else state_keys.open_value(key, khash, *row))

    def set(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._pending[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        with self._lock:
            self._pending[bytes(key)] = None

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Committed rows under ``prefix`` merged with pending writes, sorted by key."""
        prefix = bytes(prefix)
        with self._lock:
            self._check_open()
            merged: dict[bytes, bytes | None] = dict(committed_scan(self._db, self._keys, prefix))
            merged.update((k, v) for k, v in self._pending.items() if k.startswith(prefix))
        return iter([(k, v) for k, v in sorted(merged.items()) if v is not None])

    # --- blocks -----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """How many keys the open block has written."""
        return len(self._pending)

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def state_root(self) -> bytes:
        """Root of the committed state (pending writes excluded)."""
        with self._lock:
            return self._lthash.root()

    def discard(self) -> None:
        with self._lock:
            self._pending = {}

    @contextmanager
    def block(self, number: int, block_hash: bytes) -> Iterator[EncryptedStore]:
        """``with store.block(n, h) as batch:`` — commit every write at the end, or none if
        the body raises (py-evm's atomic batch)."""
        if self._pending:
            raise StateError("writes are pending outside a block: commit or discard them first")
        try:
            yield self
        except BaseException:
            self.discard()
            raise
        self.commit_block(number, block_hash)

    def commit_block(self, number: int, block_hash: bytes) -> Checkpoint:
        """Seal and write every pending write plus the checkpoint, atomically; the new root."""
        with self._lock:
            self._check_open()
            block_hash = next_block(self.checkpoint, number, block_hash)
            lthash = self._lthash.copy()
            upserts, deletes = self._seal_changes(lthash)
            checkpoint = Checkpoint(number, block_hash, lthash.root())
            with self._db.transaction(f"committing block {number}"):
                self._db.upsert(upserts)
                self._db.delete(deletes)
                meta.put_checkpoint(self._db, self._keys, checkpoint, lthash)
            cache = self._cache
            for key, value in self._pending.items():
                cache.put(key, value)  # None: deleted, no committed row now
            self._pending = {}
            self._lthash = lthash
            self.checkpoint = checkpoint
            return checkpoint

    def _seal_changes(self, lthash: LtHash) -> tuple[list[Row], list[bytes]]:
        """Rows to write and delete for the pending writes; ``lthash`` updated to match.

        The hot loop of a commit: one keyed hash per write; the old entry from the value cache,
        or else read in one ``SELECT … IN`` and authenticated (a tampered row aborts the block);
        one AES-GCM seal of the new entry; the BLAKE3 vectors of the entries added and removed
        (summed natively)."""
        keys, epoch, pending, cache = self._keys, self._epoch, self._pending, self._cache
        khashes = [keys.key_hash(key) for key in pending]
        olds = [cache.lookup(key) for key in pending]  # MISS: read the row
        rows = self._db.rows_by_hash([h for h, o in zip(khashes, olds, strict=True) if o is MISS])
        batch = os.urandom(BATCH_ID_LEN)  # one sub-key per commit and owner (rows.py)
        nonces = os.urandom(NONCE_LEN * len(pending))
        ciphers: dict[bytes, AESGCM] = {}  # owner tag → this batch's sub-key
        upserts: list[Row] = []
        deletes: list[bytes] = []
        added: list[bytes] = []
        removed: list[bytes] = []
        at = 0
        for khash, old, (key, value) in zip(khashes, olds, pending.items(), strict=True):
            head = compact_len(len(key)) + key
            entry = None if value is None else head + compact_len(len(value)) + value
            if old is MISS:
                row = rows.get(khash)
                before: bytes | None = None if row is None else keys.entry_of(key, khash, *row)
            elif old is None:
                before = None  # known to have no committed row
            else:
                assert isinstance(old, bytes)
                before = head + compact_len(len(old)) + old
            if before is not None:
                if before == entry:
                    continue  # unchanged: nothing to write, the root stays
                removed.append(before)
                if entry is None:
                    deletes.append(khash)
                    continue
            elif entry is None:
                continue
            tag = khash[:OWNER_TAG_LEN]
            cipher = ciphers.get(tag)
            if cipher is None:
                cipher = ciphers[tag] = keys.cipher(epoch, tag, batch)
            nonce = nonces[at : at + NONCE_LEN]
            at += NONCE_LEN
            upserts.append((khash, epoch, batch + nonce + cipher.encrypt(nonce, entry, khash)))
            added.append(entry)
        lthash.update_encoded(added, removed)
        return upserts, deletes

    # --- key epochs -------------------------------------------------------------------------
    def rotate(self, new_epoch: int) -> None:
        """Seal every value written from now on under ``new_epoch``; older rows stay readable
        (their epoch is in the row) until rewritten or :meth:`reencrypt`-ed. The root is
        unchanged: it depends on plaintexts only."""
        if not isinstance(new_epoch, int) or not 0 <= new_epoch <= MAX_EPOCH:
            raise ConfigError(f"a key epoch is an integer in 0..{MAX_EPOCH}")
        with self._lock:
            self._check_open()
            if new_epoch <= self._epoch:
                raise StateError(f"key epoch {new_epoch} is not after the current epoch "
                                 f"{self._epoch}: epochs only move forward")
            with self._db.transaction("rotating the key epoch"):
                meta.put_epoch(self._db, self._keys, new_epoch)
            self._epoch = new_epoch

    def reencrypt(self, *, batch_size: int = 1000, progress: Progress | None = None) -> int:
        """Rewrite every row sealed under an older epoch under the current one, one SQLite
        transaction per ``batch_size`` rows. Resumable: run it again after an interruption.
        ``progress(done, total)`` after each batch. Returns how many rows were rewritten."""
        from phat_runtime.state.rotation import reencrypt_rows

        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        with self._lock:
            self._check_open()
            return reencrypt_rows(self._db, self._keys, self._epoch, batch_size, progress)

    # --- integrity and snapshots ------------------------------------------------------------
    def verify(self) -> bytes:
        """Open every committed row and recompute the root from scratch (O(state)): finds rows
        deleted, added or rolled back one by one, which per-row AEAD alone cannot."""
        with self._lock:
            self._check_open()
            with self._db.reading():
                rows = self._db.rows(None)
            fresh = LtHash()
            fresh.update_encoded([self._keys.open_row_entry(row) for row in rows], ())
            if fresh != self._lthash:
                raise meta.root_mismatch(self._db.path, "rows were deleted, added or rolled back")
            return fresh.root()

    def export_snapshot(self, path: str | os.PathLike[str]) -> Checkpoint:
        """Write the committed state and checkpoint to an encrypted snapshot file."""
        from phat_runtime.state.snapshot import export_snapshot

        with self._lock:
            self._check_open()
            return export_snapshot(self, self._db, self._keys, Path(path))

    @classmethod
    def import_snapshot(cls, snapshot: str | os.PathLike[str], path: str | os.PathLike[str],
                        cluster_secret: bytes, *, epoch: int | None = None,
                        synchronous: str = "FULL") -> EncryptedStore:
        """Create the store at ``path`` from ``snapshot`` (the root is verified)."""
        from phat_runtime.state.snapshot import import_snapshot

        store = cls.open(path, cluster_secret, epoch=epoch, synchronous=synchronous)
        try:
            with store._lock:
                if store.checkpoint is not None or store._db.count():
                    raise StateError(f"state store {path} is not empty: import into a new file")
                store.checkpoint, store._lthash = import_snapshot(
                    Path(snapshot), store._db, store._keys, store._epoch)
        except BaseException:
            store.close()
            raise
        return store
