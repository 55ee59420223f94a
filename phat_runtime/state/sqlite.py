"""The SQLite file under the encrypted store: connection, schema, transactions, raw rows.

Only this module speaks SQL; it sees sealed rows and never a key or a plaintext. Tables::

    kv   (khash BLOB PRIMARY KEY, epoch INTEGER, sealed BLOB)   -- khash = owner tag ‖ key hash
    meta (name TEXT PRIMARY KEY, value BLOB)                   -- format tag + sealed records

One contract's (or namespace's) rows are the khash range of its 16-byte owner tag, so a prefix
scan is a range scan of the primary key: no secondary index to maintain per write.

Durability: WAL journal with ``synchronous=FULL`` by default — every COMMIT (one per block)
fsyncs the WAL, so a committed block survives power loss as well as a killed process.
``synchronous=NORMAL`` is allowed: in WAL mode a commit is still atomic and survives a process
crash (the OS holds the written pages), but after a *power* loss the last blocks may roll back.
That is safe for a worker because blocks are replayed from the chain and applying them is
deterministic — the store goes back to an older, self-consistent checkpoint and the worker
re-applies from there — but it is only safe if nothing derived from the lost blocks (signed
receipts, published checkpoints) left the worker before the next WAL checkpoint; hence FULL by
default. sqlite3 errors are translated to :class:`~phat_runtime.errors.StateError`.

File modes: the database is created ``0600`` before SQLite opens it (SQLite gives its ``-wal``
and ``-shm`` files the database's mode), an existing store's files are narrowed to ``0600``, and
every directory the store creates for it is ``0700``. Contents are sealed; the modes keep even
the sealed bytes and their sizes to the worker's user, as for the TEE-sealed key files.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from phat_runtime.errors import StateError
from phat_runtime.state.rows import Row

FORMAT = b"phat-state/3"
SYNC_MODES = ("FULL", "NORMAL")
#: Host parameters per ``IN (...)`` lookup (SQLite's historical limit is 999).
_CHUNK = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    khash BLOB PRIMARY KEY,
    epoch INTEGER NOT NULL,
    sealed BLOB NOT NULL
);
"""
#: How long a reader retries SQLite's rare transient SQLITE_BUSY (WAL-index recovery).
READ_BUSY_TIMEOUT_S = 5.0
FILE_MODE = 0o600
DIR_MODE = 0o700
#: Files of one store beside the database (SQLite's WAL and shared-memory index).
SIDE_FILES = ("-wal", "-shm")
_ROW = "SELECT khash, epoch, sealed FROM kv"


def _successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix`` (None: none)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each ``0700`` (existing ones untouched)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for made in reversed(missing):
        try:
            made.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass  # made concurrently: leave its mode to whoever made it
        else:
            os.chmod(made, DIR_MODE)  # the umask may have narrowed it; never widened


def private_files(path: Path) -> None:
    """Create the store's database file ``0600`` if it is missing; narrow it and its WAL and
    shared-memory files to ``0600`` if they exist with a wider mode."""
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
    for name in (path, *(path.with_name(path.name + side) for side in SIDE_FILES)):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, FILE_MODE)
        except FileNotFoundError:
            pass


@contextmanager
def _translated(path: Path, doing: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StateError(f"state store {path}: {doing} failed: {exc}") from exc


class Database:
    """One SQLite connection (the store serialises access with its own lock)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def connect(cls, path: str | Path, *, synchronous: str = "FULL") -> Database:
        path = Path(path)
        if synchronous not in SYNC_MODES:
            raise StateError(f"synchronous must be one of {SYNC_MODES}, not {synchronous!r}")
        try:
            private_files(path)
        except OSError as exc:
            raise StateError(f"state store {path}: cannot create or protect the file "
                             f"({exc.strerror}); check the directory's owner and permissions") from exc
        with _translated(path, "opening"):
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StateError(f"state store {path}: cannot switch to WAL journaling ({mode})")
                conn.execute(f"PRAGMA synchronous={synchronous}")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
        return cls(conn, path)

    @classmethod
    def connect_readonly(cls, path: str | Path) -> Database:
        """A read-only connection (``mode=ro``: SQLite itself refuses every write) to an existing
        WAL store; creates and changes nothing but SQLite's shared-memory read marks."""
        path = Path(path)
        if not path.is_file() or path.stat().st_size == 0:
            raise StateError(f"no initialised state store at {path}: open it with the writer "
                             "first (the process that owns the store creates it)")
        uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
        with _translated(path, "opening read-only"):
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                   timeout=READ_BUSY_TIMEOUT_S)
            try:
                conn.execute("PRAGMA query_only=ON")
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StateError(f"state store {path} is not in WAL mode ({mode}): readers "
                                     "need WAL so that they never block the writer")
            except BaseException:
                conn.close()
                raise
        return cls(conn, path)

    def close(self) -> None:
        with _translated(self.path, "closing"):
            self.conn.close()

    @contextmanager
    def transaction(self, doing: str) -> Iterator[None]:
        """One atomic write transaction: everything inside commits together or not at all."""
        with _translated(self.path, doing):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A consistent read view over several statements (WAL snapshot isolation): the snapshot
        is taken by the first read inside and held until the block ends."""
        with _translated(self.path, "reading"):
            self.conn.execute("BEGIN")
            try:
                yield
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    # --- meta ---------------------------------------------------------------------------
    def get_meta(self, name: str) -> bytes | None:
        with _translated(self.path, "reading metadata"):
            row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], bytes):
            raise StateError(f"state store {self.path}: metadata {name!r} is malformed")
        return row[0]

    def put_meta(self, name: str, value: bytes) -> None:
        """Within a :meth:`transaction`."""
        self.conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    # --- rows -----------------------------------------------------------------------------
    def row(self, khash: bytes) -> tuple[object, object] | None:
        """(epoch, sealed entry) of one row."""
        try:  # the hot path: no context manager
            found = self.conn.execute(
                "SELECT epoch, sealed FROM kv WHERE khash = ?", (khash,)).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"state store {self.path}: reading failed: {exc}") from exc
        return found

    def rows_by_hash(self, khashes: list[bytes]) -> dict[bytes, tuple[object, object]]:
        """khash → (epoch, sealed entry) of every row among ``khashes`` that exists."""
        found: dict[bytes, tuple[object, object]] = {}
        with _translated(self.path, "reading"):
            for start in range(0, len(khashes), _CHUNK):
                chunk = khashes[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT khash, epoch, sealed FROM kv WHERE khash IN ({marks})"
                for khash, epoch, sealed in self.conn.execute(query, chunk):
                    found[khash] = (epoch, sealed)
        return found

    def rows(self, owner_tag: bytes | None) -> list[Row]:
        """Every row whose khash starts with ``owner_tag``, or every row (``None``)."""
        with _translated(self.path, "scanning"):
            if owner_tag is None:
                return list(self.conn.execute(_ROW))
            after = _successor(owner_tag)
            if after is None:
                return list(self.conn.execute(_ROW + " WHERE khash >= ?", (owner_tag,)))
            return list(self.conn.execute(_ROW + " WHERE khash >= ? AND khash < ?",
                                          (owner_tag, after)))

    def iter_rows(self) -> Iterator[Row]:
        """Every row, streamed (inside :meth:`reading` for a consistent view)."""
        with _translated(self.path, "scanning"):
            yield from self.conn.execute(_ROW)

    def rows_after(self, khash: bytes, not_epoch: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows past ``khash`` (in khash order) sealed under another epoch."""
        with _translated(self.path, "scanning"):
            return list(self.conn.execute(
                _ROW + " WHERE khash > ? AND epoch != ? ORDER BY khash LIMIT ?",
                (khash, not_epoch, limit)))

    def count(self, not_epoch: int | None = None) -> int:
        with _translated(self.path, "counting"):
            if not_epoch is None:
                return int(self.conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0])
            return int(self.conn.execute(
                "SELECT COUNT(*) FROM kv WHERE epoch != ?", (not_epoch,)).fetchone()[0])

    def upsert(self, rows: Iterable[Row]) -> None:
        """Within a :meth:`transaction`."""
        # An upsert rewrites a changed row in place (same rowid): cheaper than REPLACE, which
        # deletes the row and its index entries and inserts them again.
        self.conn.executemany(
            "INSERT INTO kv (khash, epoch, sealed) VALUES (?, ?, ?) "
            "ON CONFLICT (khash) DO UPDATE SET epoch = excluded.epoch, sealed = excluded.sealed",
            rows)

    def delete(self, khashes: Iterable[bytes]) -> None:
        """Within a :meth:`transaction`."""
        self.conn.executemany("DELETE FROM kv WHERE khash = ?", ((k,) for k in khashes))
