"""What a chain worker keeps beside its state: public facts about the blocks it applied.

``<data dir>/chain.sqlite`` (0600), plain SQLite — everything in it is public (it is on the
chain, or derived from it by every worker alike):

- ``rejections`` — protocol messages every worker skipped, and why (a remark that does not
  decode, a Call that does not open, a gas limit over the cap, …): ``GET /v1/chain/rejections``;
- ``roots`` — this worker's state root after each applied block (the state store keeps only
  the last checkpoint), to compare with what workers published;
- ``published`` — CheckpointPublished messages seen on chain: (worker, block, root);
- ``membership`` — the cluster's membership (``chain/membership.py``, canonical JSON) as of
  the last block its messages were applied from, with that block's hash, and the membership
  digest of every block that changed it (written into the state at that block).

Nothing here is secret. Losing the file loses rejections and published roots of blocks applied
before (they are not read again); the membership is read again from ``start_block``.
Rejections are written *before* the block's state commits (so a crash in between cannot lose
them; re-applying the block rewrites the same rows), roots after.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from phat_runtime.chain.membership import Membership
from phat_runtime.errors import StateError

JOURNAL_FILE = "chain.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rejections (
    block INTEGER NOT NULL, extrinsic INTEGER NOT NULL, position INTEGER NOT NULL,
    signer BLOB NOT NULL, message TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (block, extrinsic, position));
CREATE TABLE IF NOT EXISTS roots (block INTEGER PRIMARY KEY, hash BLOB NOT NULL, root BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS published (
    worker BLOB NOT NULL, block INTEGER NOT NULL, root BLOB NOT NULL, seen_in INTEGER NOT NULL,
    PRIMARY KEY (worker, block));
CREATE TABLE IF NOT EXISTS membership (
    id INTEGER PRIMARY KEY CHECK (id = 0), json TEXT NOT NULL, cursor INTEGER NOT NULL, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS membership_digests (block INTEGER PRIMARY KEY, digest BLOB NOT NULL);
"""


@dataclass(frozen=True)
class Rejection:
    """A protocol message skipped by every worker: where it was, who sent it, why."""

    block: int
    extrinsic: int
    position: int  # the remark's place among the extrinsic's remarks (batches hold several)
    signer: bytes
    message: str  # the message's kind, or "?" if it did not decode
    reason: str

    def to_json(self) -> dict[str, object]:
        from phat_runtime.crypto.accounts import to_ss58

        return {"block": self.block, "extrinsic": self.extrinsic, "position": self.position,
                "signer": to_ss58(self.signer), "signer_hex": "0x" + self.signer.hex(),
                "message": self.message, "reason": self.reason}


class ChainJournal:
    """The worker-local record of a chain worker. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fresh = not path.exists()
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StateError(f"chain journal {path}: {exc}; move the file away to start a new one "
                             "(it holds only public data)") from exc
        if fresh:
            os.chmod(path, 0o600)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record_rejections(self, rejections: list[Rejection]) -> None:
        if not rejections:
            return
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO rejections VALUES (?, ?, ?, ?, ?, ?)",
                [(r.block, r.extrinsic, r.position, r.signer, r.message, r.reason) for r in rejections])

    def rejections(self, *, since_block: int = 0, limit: int = 100) -> list[Rejection]:
        with self._lock:
            rows = self._db.execute(
                "SELECT block, extrinsic, position, signer, message, reason FROM rejections "
                "WHERE block >= ? ORDER BY block DESC, extrinsic DESC, position DESC LIMIT ?",
                (since_block, limit)).fetchall()
        return [Rejection(*row) for row in rows]

    def record_root(self, block: int, block_hash: bytes, root: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO roots VALUES (?, ?, ?)", (block, block_hash, root))

    def root(self, block: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT root FROM roots WHERE block = ?", (block,)).fetchone()
        return None if row is None else bytes(row[0])

    def record_published(self, worker: bytes, block: int, root: bytes, seen_in: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO published VALUES (?, ?, ?, ?)",
                             (worker, block, root, seen_in))

    def published(self, *, worker: bytes | None = None, limit: int = 100) -> list[tuple[bytes, int, bytes]]:
        """(worker, block, root) published on chain, newest first."""
        with self._lock:
            if worker is None:
                rows = self._db.execute("SELECT worker, block, root FROM published ORDER BY block DESC "
                                        "LIMIT ?", (limit,)).fetchall()
            else:
                rows = self._db.execute("SELECT worker, block, root FROM published WHERE worker = ? "
                                        "ORDER BY block DESC LIMIT ?", (worker, limit)).fetchall()
        return [(bytes(w), int(b), bytes(r)) for w, b, r in rows]

    # --- membership ---------------------------------------------------------------------------
    def load_membership(self) -> Membership | None:
        with self._lock:
            row = self._db.execute("SELECT json FROM membership WHERE id = 0").fetchone()
        return None if row is None else Membership.from_json(row[0])

    def save_membership(self, membership: Membership, block_hash: bytes, digest: bytes | None) -> None:
        """The membership after block ``membership.cursor`` (hash ``block_hash``); ``digest``
        if that block changed it. One transaction: both or neither."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("INSERT OR REPLACE INTO membership VALUES (0, ?, ?, ?)",
                                 (membership.to_json(), membership.cursor, block_hash))
                if digest is not None:
                    self._db.execute("INSERT OR REPLACE INTO membership_digests VALUES (?, ?)",
                                     (membership.cursor, digest))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def membership_digest(self, block: int) -> bytes | None:
        """The membership digest after ``block`` if that block changed the membership."""
        with self._lock:
            row = self._db.execute("SELECT digest FROM membership_digests WHERE block = ?", (block,)).fetchone()
        return None if row is None else bytes(row[0])

    def block_hash(self, block: int) -> bytes | None:
        """The hash of chain block ``block`` if this worker applied it (state or membership)."""
        with self._lock:
            row = self._db.execute("SELECT hash FROM roots WHERE block = ?", (block,)).fetchone()
            if row is None:
                row = self._db.execute("SELECT hash FROM membership WHERE id = 0 AND cursor = ?",
                                       (block,)).fetchone()
        return None if row is None else bytes(row[0])
