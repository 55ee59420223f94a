"""Read-only views of an encrypted store's last committed block, in any process.

:class:`StoreReader` reads one store file through a small pool of read-only SQLite connections
(``mode=ro``: SQLite itself refuses writes). ``with reader.reader() as view:`` takes a
connection, opens a WAL read transaction, reads the checkpoint record *first* — that read pins
the snapshot, so the view's checkpoint and its rows are the same committed block — and ends the
transaction when the ``with`` ends. WAL gives the two guarantees the worker needs: the writer's
``COMMIT`` never waits for readers and readers never wait for the writer; a reader sees
neither the writer's pending writes nor a half-written block, and keeps its block until it ends
however many blocks are committed meanwhile.

The writer's process gets one through :meth:`EncryptedStore.reader`; a query process opens the
same file with :meth:`EncryptedStore.open_reader` (nothing is created or changed, and there is
no way from a reader to write). A long reader only delays WAL truncation (the file's WAL grows
until no reader needs its old frames), never a commit.

Must not: write to the store; hold the writer's lock; log or show a key or a value.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from phat_runtime.errors import StateError
from phat_runtime.state import meta
from phat_runtime.state.checkpoint import Checkpoint, read_only
from phat_runtime.state.root import EMPTY_ROOT
from phat_runtime.state.rows import StateKeys, scope_of_prefix
from phat_runtime.state.sqlite import Database

#: Idle read-only connections kept per store; more are opened on demand and closed after use.
POOL_SIZE = 8


def committed_get(db: Database, keys: StateKeys, key: bytes) -> bytes | None:
    """The committed value of ``key`` (authenticated), or None."""
    khash = keys.key_hash(key)
    row = db.row(khash)
    return None if row is None else keys.open_value(key, khash, *row)


def committed_scan(db: Database, keys: StateKeys, prefix: bytes) -> dict[bytes, bytes]:
    """Every committed ``key: value`` under ``prefix`` (authenticated, unsorted).

    Rows are found by the owner tag of the prefix's scope (one contract, or one cluster
    namespace); a prefix shorter than a scope (``b""``, ``b"S"``) visits every row."""
    scope = scope_of_prefix(prefix)
    found: dict[bytes, bytes] = {}
    for row in db.rows(None if scope is None else keys.owner_tag(scope)):
        key, value = keys.open_row(row, scope)
        if key.startswith(prefix):
            found[key] = value
    return found


class SqliteView:
    """One committed block of an encrypted store (a :class:`CommittedView`)."""

    __slots__ = ("_db", "_keys", "_live", "checkpoint")

    def __init__(self, db: Database, keys: StateKeys, checkpoint: Checkpoint | None) -> None:
        self._db = db
        self._keys = keys
        self.checkpoint = checkpoint
        self._live = True

    def __repr__(self) -> str:
        block = None if self.checkpoint is None else self.checkpoint.number
        return f"<SqliteView {self._db.path} block={block}{'' if self._live else ' ended'}>"

    @property
    def state_root(self) -> bytes:
        return EMPTY_ROOT if self.checkpoint is None else self.checkpoint.state_root

    def _check_live(self) -> None:
        if not self._live:
            raise StateError(f"this view of {self._db.path} has ended (its `with` block is "
                             "over): take a new one with reader()")

    def get(self, key: bytes) -> bytes | None:
        if not self._live:
            self._check_live()
        return committed_get(self._db, self._keys, key if type(key) is bytes else bytes(key))

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._check_live()
        return iter(sorted(committed_scan(self._db, self._keys, bytes(prefix)).items()))

    def set(self, key: bytes, value: bytes) -> None:
        raise read_only("a committed view")

    def delete(self, key: bytes) -> None:
        raise read_only("a committed view")


class StoreReader:
    """Read-only access to the committed blocks of one store file. Thread-safe.

    Made by :meth:`EncryptedStore.open_reader` (another process) or inside
    :meth:`EncryptedStore.reader` (the writer's process)."""

    def __init__(self, path: Path, keys: StateKeys) -> None:
        self._path = path
        self._keys = keys
        self._free: list[Database] = []
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: str | os.PathLike[str], keys: StateKeys) -> StoreReader:
        """Check that ``path`` is an initialised store sealed under ``keys`` (read-only)."""
        reader = cls(Path(path), keys)
        db = reader._acquire()
        try:
            meta.check_readable(db, keys)
        except BaseException:
            db.close()
            raise
        reader._release(db)
        return reader

    def __repr__(self) -> str:
        return f"<StoreReader {self._path}{' closed' if self._closed else ''}>"

    def _acquire(self) -> Database:
        with self._lock:
            if self._closed:
                raise StateError(f"the reader of {self._path} is closed")
            if self._free:
                return self._free.pop()
        return Database.connect_readonly(self._path)

    def _release(self, db: Database) -> None:
        with self._lock:
            if not self._closed and len(self._free) < POOL_SIZE:
                self._free.append(db)
                return
        db.close()

    @contextmanager
    def reader(self) -> Iterator[SqliteView]:
        """``with r.reader() as view:`` — the last committed block, until the ``with`` ends."""
        db = self._acquire()
        try:
            with db.reading():
                view = SqliteView(db, self._keys, meta.read_checkpoint(db, self._keys))
                try:
                    yield view
                finally:
                    view._live = False
        finally:
            if db.conn.in_transaction:
                db.close()  # the read transaction failed to end: never reuse that connection
            else:
                self._release(db)

    def add_epoch_secret(self, epoch: int, secret: bytes) -> None:
        """The key of a key epoch the writer's process received after this reader opened (a
        chain cluster's rotation or handover): rows sealed under it read from now on."""
        self._keys.add_epoch_secret(epoch, secret)

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The last committed block right now (a fresh read each time)."""
        with self.reader() as view:
            return view.checkpoint

    def close(self) -> None:
        """Close idle connections; views still open close theirs when they end."""
        with self._lock:
            self._closed = True
            idle, self._free = self._free, []
        for db in idle:
            db.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
