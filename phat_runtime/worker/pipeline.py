"""The block pipeline: an ordered list of transactions in, one committed block out.

:class:`BlockPipeline` applies :class:`Transaction` s — from the standalone source
(``worker/standalone.py``, the worker orders RPC requests itself) or from the chain
(``worker/chain_source.py``, a finalized chain block) — as one block: every transaction runs
in TRANSACTION mode on an overlay of the committed state, then the block ends (OnBlockEnd hooks
and system events, ``runtime/block_end.py``) and the store commits writes + checkpoint + state
root in one atomic write. Queries read committed blocks through the store's read views, so they
never see half a block and never wait for this pipeline (nor it for them).

Bounds (``worker/limits.py``): a transaction's gas limit is capped, a block's gas is capped,
and — standalone only — a block stops taking transactions once its wall-clock budget is
spent (the rest go into the next block) and each origin has quotas for code and storage.

A transaction refused *before* it runs (a replayed or expired request, a gas limit over the
cap, an exhausted quota) is a :class:`Refusal`: it changes nothing, and a standalone block made
only of refusals is not produced at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from phat_runtime.codec.messages import EventRecord, Outcome, RequestKind
from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.errors import ExecutionError, ModuleError, PhatError
from phat_runtime.runtime.cluster import Cluster, ExecResult
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.state.checkpoint import Checkpoint
from phat_runtime.state.kv import Overlay
from phat_runtime.types import AccountId, CodeHash, ExecutionMode
from phat_runtime.worker.contract_meta import METADATA
from phat_runtime.worker.limits import BlockLimits, Quotas

log = logging.getLogger(__name__)

#: Applied requests: b"R" ‖ origin ‖ nonce → deadline (u64 LE). Part of the state root.
APPLIED = b"R"


@dataclass(frozen=True)
class Transaction:
    """One state change to apply, whatever ordered it.

    ``payload``: SCALE ``(wasm, metadata)`` for UPLOAD, the constructor input for INSTANTIATE,
    the message input for CALL. ``nonce`` (standalone) makes (origin, nonce) apply once;
    a chain orders and deduplicates its own extrinsics (``nonce`` None). ``ref`` identifies the
    transaction to its source (request hash, or chain block ‖ extrinsic index).
    """

    origin: AccountId
    kind: RequestKind
    payload: bytes
    contract: bytes = bytes(32)
    code_hash: bytes = bytes(32)
    salt: bytes = b""
    value: int = 0
    gas_limit: int = 0  # 0: the cap
    nonce: bytes | None = None
    deadline_ms: int | None = None
    ref: bytes = b""


@dataclass(frozen=True)
class Refusal:
    """A transaction refused before it ran: nothing changed. ``code`` is an RPC error code."""

    code: str
    message: str


@dataclass
class BlockResult:
    """What :meth:`BlockPipeline.apply_block` did. ``results[i]`` belongs to ``txs[i]`` for the
    first ``len(results)`` transactions; the rest were *deferred* (standalone: the block's
    budget ran out before them). ``checkpoint`` is None when no block was produced."""

    number: int
    checkpoint: Checkpoint | None
    results: list[Outcome | Refusal] = field(default_factory=list)

    @property
    def state_root(self) -> bytes:
        return self.checkpoint.state_root if self.checkpoint is not None else bytes(32)


def outcome_of(raw: ExecResult, code_hash: bytes | None = None) -> Outcome:
    error = raw.error
    return Outcome(
        flags=raw.flags,
        data=raw.data,
        gas_used=raw.gas_used,
        events=tuple(EventRecord(e.contract, e.topics, e.data) for e in raw.events),
        debug_message=raw.debug_message,
        error_kind=error.kind if error is not None else None,
        error_message=str(error) if error is not None else None,
        contract=raw.contract,
        code_hash=code_hash if code_hash is not None else raw.code_hash,
    )


def _failed(kind: str, message: str, *, contract: bytes | None = None, code_hash: bytes | None = None) -> Outcome:
    return Outcome(0, b"", 0, error_kind=kind, error_message=message, contract=contract, code_hash=code_hash)


def encode_upload(wasm: bytes, metadata_json: bytes = b"") -> bytes:
    """UPLOAD payload: SCALE (wasm: Vec<u8>, metadata: Vec<u8>) — metadata may be empty."""
    return Writer().blob(wasm).blob(metadata_json).finish()


def decode_upload(payload: bytes) -> tuple[bytes, bytes]:
    r = Reader(payload)
    wasm, metadata = r.blob(), r.blob()
    r.end()
    return wasm, metadata


class BlockPipeline:
    """Applies blocks to one cluster's store. One thread applies at a time (the source's)."""

    def __init__(self, cluster: Cluster, limits: BlockLimits | None = None) -> None:
        self.cluster = cluster
        self.limits = limits or BlockLimits()
        self._plain_height = 0  # stores without checkpoints (MemoryBackend) count here
        #: Called with every committed block, on the applying thread, after the commit (the
        #: dashboard's ring of recent blocks, ``rpc/dashboard.py``). Must be quick; an
        #: observer that raises is logged and changes nothing.
        self.observers: list[Callable[[BlockResult], None]] = []

    @property
    def height(self) -> int:
        checkpoint = self.cluster.checkpoint()
        return checkpoint.number if checkpoint else self._plain_height

    @property
    def last_hash(self) -> bytes:
        checkpoint = self.cluster.checkpoint()
        return checkpoint.block_hash if checkpoint else bytes(32)

    def apply_block(self, txs: list[Transaction], *, number: int, block_hash: bytes,
                    timestamp_ms: int, always_commit: bool = True,
                    deadline: float | None = None,
                    state_writes: dict[bytes, bytes] | None = None) -> BlockResult:
        """Apply ``txs`` in order as block ``number``.

        ``deadline`` (``time.monotonic()``, standalone only): stop taking transactions once it
        has passed (at least one runs). ``always_commit=False`` (standalone): produce no block
        when every transaction was refused before it ran. A chain block always commits, empty
        or not, so the worker's blocks are the chain's. ``state_writes``: rows the source writes
        after the transactions (a chain worker's membership digest), part of the state root.
        """
        overlay = Overlay(self.cluster.state)
        view = Cluster(overlay, cluster_id=self.cluster.cluster_id, engine=self.cluster.engine,
                       extension=self.cluster.extensions, services=self.cluster.services)
        block = BlockContext(number, timestamp_ms)
        result = BlockResult(number, None)
        gas_left = self.limits.max_block_gas
        quotas = Quotas(overlay, self.limits) if self.limits.quotas else None
        prefetch = getattr(self.cluster.state, "prefetch", None)  # EncryptedStore: one query, not one per tx
        if prefetch is not None:
            prefetch([APPLIED + tx.origin + tx.nonce for tx in txs if tx.nonce is not None])
        for tx in txs:
            if deadline is not None and result.results and time.monotonic() > deadline:
                break
            limit = tx.gas_limit or self.limits.max_tx_gas
            if limit > gas_left and deadline is not None and result.results:
                break  # standalone: the rest goes into the next block
            entry = self._apply(view, overlay, tx, block, min(limit, gas_left), quotas)
            if isinstance(entry, Outcome):
                gas_left = max(0, gas_left - entry.gas_used)
            result.results.append(entry)
        if not always_commit and not any(isinstance(r, Outcome) for r in result.results):
            self.cluster.discard_block()
            return result
        for key, value in (state_writes or {}).items():
            overlay.set(key, value)
        view.end_block(block)  # hooks, then the system contract's PinkEvents (runtime/block_end.py)
        overlay.commit()
        result.checkpoint = self.cluster.commit_block(number, block_hash)
        if result.checkpoint is None:
            self._plain_height = number
        for observe in self.observers:
            try:
                observe(result)
            except Exception:
                log.exception("a block observer failed on block %d (the block is committed)", number)
        return result

    def _apply(self, view: Cluster, overlay: Overlay, tx: Transaction, block: BlockContext,
               gas_limit: int, quotas: Quotas | None) -> Outcome | Refusal:
        if tx.gas_limit > self.limits.max_tx_gas:
            return Refusal("gas_limit_too_high", f"gas limit {tx.gas_limit} exceeds the per-transaction "
                           f"cap {self.limits.max_tx_gas}; pass at most that (0 = the cap)")
        if tx.nonce is not None:
            applied_key = APPLIED + tx.origin + tx.nonce
            if overlay.get(applied_key) is not None:
                return Refusal("replayed_nonce", "this (origin, nonce) was already applied; sign a "
                               "new request with a fresh nonce")
            deadline_ms = tx.deadline_ms or 0
            if deadline_ms < block.timestamp_ms:
                return Refusal("expired", "the deadline passed before the transaction was ordered; "
                               "sign a new request")
        if quotas is not None:
            refusal = quotas.admit(tx)
            if refusal is not None:
                return Refusal("quota_exceeded", refusal)
        if tx.nonce is not None:
            overlay.set(APPLIED + tx.origin + tx.nonce, (tx.deadline_ms or 0).to_bytes(8, "little"))
        if quotas is None:
            return self._run(view, overlay, tx, block, gas_limit)
        scratch = Overlay(overlay)  # measure the transaction's storage growth before keeping it
        mark = view.pending_mark()
        outcome = self._run(view.over(scratch), scratch, tx, block, gas_limit)
        refusal = quotas.charge(tx, scratch)
        if refusal is not None:
            view.drop_pending_since(mark)
            return _failed("StorageQuotaExceeded", refusal, contract=outcome.contract,
                           code_hash=outcome.code_hash)
        scratch.commit()
        return outcome

    def _run(self, view: Cluster, overlay: Overlay, tx: Transaction, block: BlockContext,
             gas_limit: int) -> Outcome:
        origin = tx.origin
        wall_ms = self.limits.tx_wall_clock_ms
        try:
            if tx.kind is RequestKind.UPLOAD:
                wasm, metadata = decode_upload(tx.payload)
                code_hash = view.upload_code(wasm, origin)
                if metadata:
                    overlay.set(METADATA + code_hash, metadata)
                return Outcome(0, b"", 0, code_hash=code_hash)
            if tx.kind is RequestKind.INSTANTIATE:
                raw = view.instantiate(origin, tx.code_hash, tx.payload, salt=tx.salt, value=tx.value,
                                       mode=ExecutionMode.TRANSACTION, block=block,
                                       gas_limit=gas_limit, wall_clock_ms=wall_ms)
                return outcome_of(raw, CodeHash(tx.code_hash))
            if tx.kind is RequestKind.CALL:
                raw = view.call(origin, tx.contract, tx.payload, value=tx.value,
                                mode=ExecutionMode.TRANSACTION, block=block, gas_limit=gas_limit,
                                wall_clock_ms=wall_ms)
                return outcome_of(raw)
            return _failed("BadRequest", f"a {tx.kind.name} request is not a transaction")
        except ModuleError as exc:
            return _failed("InvalidCode", str(exc))
        except ExecutionError as exc:
            return _failed(exc.kind, str(exc), contract=tx.contract if tx.kind is RequestKind.CALL else None)
        except PhatError as exc:
            return _failed(type(exc).__name__, str(exc))
