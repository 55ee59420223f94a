"""Resource bounds of the block pipeline, and per-origin quotas in standalone mode.

Every transaction is bounded by gas, which is deterministic (the same on every worker), so the
bounds that decide a transaction's *result* are gas bounds:

- ``max_tx_gas`` — a transaction's gas limit is at most this (0 asks for exactly this);
  a larger limit is refused before anything runs.
- ``max_block_gas`` — what one block's transactions may burn together. On a chain, a
  transaction that finds less left runs with what is left (it may run out of gas — the same
  on every worker); the standalone source moves it to the next block instead.

Wall-clock bounds protect the worker, not consensus:

- ``tx_wall_clock_ms`` — a safety net per transaction. Gas is what should end a transaction;
  a worker that hits this instead is too slow for its cluster's gas cap (on a chain it would
  disagree with faster workers: it is an operator error, reported loudly).
- ``block_wall_clock_ms`` (standalone only) — the standalone source stops adding transactions
  to a block once this much time went into it; the rest wait for the next block.

Quotas (standalone only — on a chain, fees pay for uploads and storage): per origin, the code
bytes it may upload and the net storage bytes its transactions may add. Counters live in the
state (``b"Q" ‖ origin`` → SCALE ``(code_bytes: u64, storage_bytes: u64)``), so they survive
restarts and feed the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from phat_runtime.codec.messages import RequestKind
from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.state.kv import KVStore, Overlay
from phat_runtime.wasm.engine import DEFAULT_TX_GAS

if TYPE_CHECKING:
    from phat_runtime.worker.pipeline import Transaction

QUOTA = b"Q"
#: Namespaces not charged as storage: code (charged by the code quota: wasm, code info,
#: metadata), the quota counters themselves, and applied-request markers.
_NOT_STORAGE = frozenset(b"CcMQR")
#: pink-like: a transaction may burn at most 2.5·10¹² gas (≈ 2.5 s of reference time).
MAX_TX_GAS = DEFAULT_TX_GAS
#: A block holds at most ten full transactions' worth of gas.
MAX_BLOCK_GAS = 10 * MAX_TX_GAS
TX_WALL_CLOCK_MS = 10_000
BLOCK_WALL_CLOCK_MS = 2_000
#: Standalone quotas per origin.
CODE_QUOTA_BYTES = 16 * 1024 * 1024
STORAGE_QUOTA_BYTES = 64 * 1024 * 1024
#: Chain mode: the wall clock only guards against a hung worker.
CHAIN_TX_WALL_CLOCK_MS = 60_000


@dataclass(frozen=True)
class BlockLimits:
    max_tx_gas: int = MAX_TX_GAS
    max_block_gas: int = MAX_BLOCK_GAS
    tx_wall_clock_ms: int = TX_WALL_CLOCK_MS
    block_wall_clock_ms: int = BLOCK_WALL_CLOCK_MS
    #: Per-origin quotas (standalone); False on a chain, where fees do this.
    quotas: bool = True
    code_quota_bytes: int = CODE_QUOTA_BYTES
    storage_quota_bytes: int = STORAGE_QUOTA_BYTES

    @classmethod
    def for_chain(cls) -> BlockLimits:
        return cls(tx_wall_clock_ms=CHAIN_TX_WALL_CLOCK_MS, quotas=False)

    def describe(self) -> dict[str, int | bool]:
        return {"max_tx_gas": self.max_tx_gas, "max_block_gas": self.max_block_gas,
                "tx_wall_clock_ms": self.tx_wall_clock_ms,
                "block_wall_clock_ms": self.block_wall_clock_ms, "quotas": self.quotas,
                "code_quota_bytes": self.code_quota_bytes,
                "storage_quota_bytes": self.storage_quota_bytes}


def _usage(kv: KVStore, origin: bytes) -> tuple[int, int]:
    raw = kv.get(QUOTA + origin)
    if raw is None:
        return 0, 0
    r = Reader(raw)
    code, storage = r.u64(), r.u64()
    r.end()
    return code, storage


def _put(kv: KVStore, origin: bytes, code: int, storage: int) -> None:
    kv.set(QUOTA + origin, Writer().u64(code).u64(storage).finish())


class Quotas:
    """Quota checks of one block, over the block's overlay."""

    def __init__(self, kv: KVStore, limits: BlockLimits) -> None:
        self._kv = kv
        self._limits = limits

    def admit(self, tx: Transaction) -> str | None:
        """Refuse an upload over the origin's code quota, or any transaction of an origin
        whose storage quota is used up. None: admitted."""
        origin = tx.origin
        code, storage = _usage(self._kv, origin)
        if storage >= self._limits.storage_quota_bytes:
            return (f"this origin's transactions already added {storage} bytes of storage, its "
                    f"quota in standalone mode ({self._limits.storage_quota_bytes}); free some "
                    "storage or run on a chain, where fees pay for storage")
        if tx.kind is RequestKind.UPLOAD:
            size = len(tx.payload)
            if code + size > self._limits.code_quota_bytes:
                return (f"uploading {size} more bytes of code would pass this origin's code quota "
                        f"in standalone mode ({code} of {self._limits.code_quota_bytes} bytes used)")
            _put(self._kv, origin, code + size, storage)
        return None

    def charge(self, tx: Transaction, scratch: Overlay) -> str | None:
        """Charge the net storage a finished transaction added (its writes in ``scratch``);
        a message if that passes the quota (the caller then drops the writes)."""
        origin = tx.origin
        parent = self._kv
        grown = 0
        for key, value in scratch.writes.items():
            if key[0] in _NOT_STORAGE:
                continue
            old = parent.get(key)
            before = 0 if old is None else len(key) + len(old)
            after = 0 if value is None else len(key) + len(value)
            grown += after - before
        if grown == 0:
            return None
        code, storage = _usage(parent, origin)
        storage = max(0, storage + grown)
        if grown > 0 and storage > self._limits.storage_quota_bytes:
            return (f"the transaction would bring this origin's storage to {storage} bytes, over its "
                    f"quota in standalone mode ({self._limits.storage_quota_bytes}); its writes were "
                    "dropped")
        _put(scratch, origin, code, storage)
        return None
