"""An in-memory block store with the same block and snapshot semantics as the encrypted store.

:class:`MemoryBlockStore` buffers writes until :meth:`~MemoryBlockStore.commit_block`, keeps a
checkpoint whose state root is the same LtHash root (``root.py``) the encrypted store computes
for the same entries, and hands out read-only :class:`MemoryView`\\ s of the last committed block
(``with store.reader() as view``). Committed data is copy-on-commit: each commit builds a new
dict off to the side and publishes it with the checkpoint in one step, so a view holds an
immutable block for as long as it lives, never waits for a commit beyond that one step, and
never sees pending writes. For tests and development: it forgets everything at exit, and each
commit costs O(state).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from phat_runtime.errors import StateError
from phat_runtime.state.checkpoint import Checkpoint, next_block, read_only
from phat_runtime.state.root import EMPTY_ROOT, LtHash

_ABSENT = object()


class MemoryView:
    """One committed block of a :class:`MemoryBlockStore` (a :class:`CommittedView`)."""

    __slots__ = ("_data", "_live", "checkpoint")

    def __init__(self, data: dict[bytes, bytes], checkpoint: Checkpoint | None) -> None:
        self._data = data  # never mutated: commits publish a new dict
        self.checkpoint = checkpoint
        self._live = True

    @property
    def state_root(self) -> bytes:
        return EMPTY_ROOT if self.checkpoint is None else self.checkpoint.state_root

    def _check_live(self) -> None:
        if not self._live:
            raise StateError("this view has ended (its `with` block is over): take a new one "
                             "with reader()")

    def get(self, key: bytes) -> bytes | None:
        self._check_live()
        return self._data.get(bytes(key))

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._check_live()
        prefix = bytes(prefix)
        return iter(sorted((k, v) for k, v in self._data.items() if k.startswith(prefix)))

    def set(self, key: bytes, value: bytes) -> None:
        raise read_only("a committed view")

    def delete(self, key: bytes) -> None:
        raise read_only("a committed view")


class MemoryBlockStore:
    """A :class:`~phat_runtime.state.checkpoint.SnapshotStore` in a dict. Thread-safe."""

    def __init__(self) -> None:
        self._committed: dict[bytes, bytes] = {}
        self._pending: dict[bytes, bytes | None] = {}
        self._lthash = LtHash()
        self.checkpoint: Checkpoint | None = None
        self._lock = threading.Lock()  # guards the pending dict and the published block
        self._commit = threading.Lock()  # one commit at a time

    def __repr__(self) -> str:
        block = None if self.checkpoint is None else self.checkpoint.number
        return f"<MemoryBlockStore block={block} entries={len(self._committed)}>"

    # --- KVStore (the writer's view: pending writes first) -----------------------------------
    def get(self, key: bytes) -> bytes | None:
        key = bytes(key)
        with self._lock:
            pending = self._pending.get(key, _ABSENT)
            if pending is not _ABSENT:
                return pending  # type: ignore[return-value]
            return self._committed.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._pending[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        with self._lock:
            self._pending[bytes(key)] = None

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        prefix = bytes(prefix)
        with self._lock:
            merged: dict[bytes, bytes | None] = {
                k: v for k, v in self._committed.items() if k.startswith(prefix)}
            merged.update((k, v) for k, v in self._pending.items() if k.startswith(prefix))
        return iter([(k, v) for k, v in sorted(merged.items()) if v is not None])

    # --- blocks --------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def state_root(self) -> bytes:
        """Root of the committed state (pending writes excluded)."""
        return self._lthash.root()

    def discard(self) -> None:
        with self._lock:
            self._pending = {}

    def commit_block(self, number: int, block_hash: bytes) -> Checkpoint:
        """Publish every pending write and the new checkpoint in one step."""
        with self._commit:
            with self._lock:
                block_hash = next_block(self.checkpoint, number, block_hash)
                pending, base = dict(self._pending), self._committed
            lthash = self._lthash.copy()
            data = dict(base)  # built off to the side: readers keep the old dict
            added: list[tuple[bytes, bytes]] = []
            removed: list[tuple[bytes, bytes]] = []
            for key, value in pending.items():
                before = data.get(key)
                if before == value:
                    continue
                if before is not None:
                    removed.append((key, before))
                    del data[key]
                if value is not None:
                    added.append((key, value))
                    data[key] = value
            lthash.update(added, removed)
            checkpoint = Checkpoint(number, block_hash, lthash.root())
            with self._lock:
                # Writes made while this block was being built belong to the next block.
                self._pending = {k: v for k, v in self._pending.items()
                                 if pending.get(k, _ABSENT) is not v}
                self._committed, self._lthash, self.checkpoint = data, lthash, checkpoint
            return checkpoint

    @contextmanager
    def block(self, number: int, block_hash: bytes) -> Iterator[MemoryBlockStore]:
        """``with store.block(n, h):`` — commit at the end, or drop the writes if it raises."""
        if self._pending:
            raise StateError("writes are pending outside a block: commit or discard them first")
        try:
            yield self
        except BaseException:
            self.discard()
            raise
        self.commit_block(number, block_hash)

    @contextmanager
    def reader(self) -> Iterator[MemoryView]:
        """``with store.reader() as view:`` — the last committed block, read-only."""
        with self._lock:
            view = MemoryView(self._committed, self.checkpoint)
        try:
            yield view
        finally:
            view._live = False
