"""Blocks of state: the checkpoint a store commits with every block, and the protocol of a
store that commits per block.

A :class:`BlockStore` is a :class:`~phat_runtime.state.kv.KVStore` whose writes are buffered
until :meth:`BlockStore.commit_block` makes all of them — and the new :class:`Checkpoint` —
durable at once. The runtime checks for it (``isinstance``) and works over plain stores
(``MemoryBackend``) too, where there is nothing to commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from phat_runtime.state.kv import KVStore


@dataclass(frozen=True)
class Checkpoint:
    """Where a store stands: the last committed block and the state root after it."""

    number: int
    block_hash: bytes
    state_root: bytes

    def __repr__(self) -> str:
        return (f"Checkpoint(number={self.number}, block_hash=0x{self.block_hash.hex()}, "
                f"state_root=0x{self.state_root.hex()})")


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
