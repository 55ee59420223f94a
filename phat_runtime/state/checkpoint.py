"""Blocks of state: the checkpoint a store commits with every block, the protocol of a store
that commits per block, and read-only views of its last committed block.

A :class:`BlockStore` is a :class:`~phat_runtime.state.kv.KVStore` whose writes are buffered
until :meth:`BlockStore.commit_block` makes all of them — and the new :class:`Checkpoint` —
durable at once. The runtime checks for it (``isinstance``) and works over plain stores
(``MemoryBackend``) too, where there is nothing to commit.

A :class:`SnapshotStore` also hands out :class:`CommittedView`\\ s: ``with store.reader() as
view:`` reads the last committed block as one consistent snapshot — its checkpoint and its data
from the same instant — and neither waits for the writer nor makes it wait. Pending writes are
invisible to views; a view keeps its block until its ``with`` ends, whatever is committed
meanwhile.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from phat_runtime.errors import StateError
from phat_runtime.state.kv import KVStore

HASH_LEN = 32
MAX_BLOCK = 2**64 - 1


@dataclass(frozen=True)
class Checkpoint:
    """Where a store stands: the last committed block and the state root after it."""

    number: int
    block_hash: bytes
    state_root: bytes

    def __repr__(self) -> str:
        return (f"Checkpoint(number={self.number}, block_hash=0x{self.block_hash.hex()}, "
                f"state_root=0x{self.state_root.hex()})")


def next_block(last: Checkpoint | None, number: int, block_hash: bytes) -> bytes:
    """Check that block ``number`` may be committed after ``last``; its hash as ``bytes``."""
    block_hash = bytes(block_hash)
    if len(block_hash) != HASH_LEN:
        raise StateError(f"a block hash is {HASH_LEN} bytes (H256), not {len(block_hash)}: "
                         "pass the block's 32-byte hash")
    if not 0 <= number <= MAX_BLOCK:
        raise StateError(f"block number {number} is not a u64")
    if last is not None and number <= last.number:
        raise StateError(f"block {number} is not after the last committed block "
                         f"{last.number}: refusing to apply a block twice")
    return block_hash


def read_only(what: str) -> StateError:
    return StateError(f"{what} is read-only: write through the store itself (set/delete, then "
                      "commit_block) in the process that owns the store")


@runtime_checkable
class BlockStore(KVStore, Protocol):
    """A KVStore that commits per block. ``checkpoint`` is a plain attribute (no I/O)."""

    checkpoint: Checkpoint | None

    def commit_block(self, number: int, block_hash: bytes) -> Checkpoint:
        """Write every buffered write and the checkpoint in one atomic transaction."""
        ...

    def discard(self) -> None:
        """Drop every buffered write (the block failed)."""
        ...


class CommittedView(KVStore, Protocol):
    """One committed block, read-only: ``get`` / ``iter_prefix`` see exactly that block;
    ``set`` / ``delete`` raise :class:`~phat_runtime.errors.StateError`. ``checkpoint`` is the
    block it shows (None: nothing committed yet). Valid until its ``with`` block ends; use it
    from one thread at a time."""

    checkpoint: Checkpoint | None

    @property
    def state_root(self) -> bytes: ...


@runtime_checkable
class SnapshotStore(BlockStore, Protocol):
    """A BlockStore whose committed blocks can be read while the next one is written."""

    def reader(self) -> AbstractContextManager[CommittedView]:
        """``with store.reader() as view:`` — a consistent view of the last committed block."""
        ...
