"""Shared helpers for the encrypted-store tests: contract ids, key layout, raw file access."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Two contracts and a storage key layout like runtime/records.py: S ‖ address ‖ trie id ‖ key.
CONTRACT_A = bytes(range(1, 33))
CONTRACT_B = bytes(range(101, 133))
TRIE = b"\x07" * 32


def storage_key(contract: bytes, key: bytes) -> bytes:
    return b"S" + contract + TRIE + key


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection straight to the file: what an attacker with the disk sees."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # the attacker needs no durability: fast edits
        yield conn
    finally:
        conn.close()
