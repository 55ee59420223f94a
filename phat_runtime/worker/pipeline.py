"""The block pipeline and the standalone transaction source.

:class:`BlockPipeline` applies an ordered list of signed transactions as one block: every
transaction runs in TRANSACTION mode on an overlay of the committed state, then — under the
write lock, so no query sees half a block — the overlay is flushed into the store and the
store commits the block (writes + checkpoint + state root in one atomic write). Replayed
(origin, nonce) pairs are refused deterministically from state, so a restarted worker never
applies a transaction twice. Any source of ordered transactions feeds this pipeline: the
standalone source below, or the chain source of a later issue.

:class:`StandaloneSource` is the embedded default for one machine: it orders submitted
transactions itself, one block per batch of whatever is pending. It is **not decentralized**.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from phat_runtime.codec.messages import EventRecord, Outcome, RequestKind, SignedRequest
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import ExecutionError, ModuleError, PhatError
from phat_runtime.runtime.cluster import Cluster, ExecResult
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.state.kv import Overlay
from phat_runtime.types import AccountId, CodeHash, ExecutionMode
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.rwlock import RWLock

#: Applied requests: b"R" ‖ origin ‖ nonce → deadline (u64). Part of the state root.
APPLIED = b"R"
#: Contract metadata uploaded with code: b"M" ‖ code hash → JSON bytes.
METADATA = b"M"
#: Most transactions one standalone block takes.
MAX_BLOCK_TXS = 256


@dataclass(frozen=True)
class Included:
    outcome: Outcome
    block: int
    state_root: bytes


def outcome_of(raw: ExecResult, code_hash: bytes | None) -> Outcome:
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
        code_hash=code_hash,
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
    def __init__(self, cluster: Cluster, lock: RWLock) -> None:
        self.cluster = cluster
        self.lock = lock
        checkpoint = cluster.checkpoint()
        self.last_hash = checkpoint.block_hash if checkpoint else bytes(32)
        self._metadata: dict[bytes, ContractMetadata | None] = {}
        self._plain_height = 0  # stores without checkpoints (MemoryBackend) count here

    @property
    def height(self) -> int:
        checkpoint = self.cluster.checkpoint()
        return checkpoint.number if checkpoint else self._plain_height

    def metadata(self, code_hash: bytes) -> Any:
        """The metadata JSON uploaded with ``code_hash``, if any."""
        raw = self.cluster.records.kv.get(METADATA + code_hash)
        return json.loads(raw) if raw else None

    def contract_metadata(self, code_hash: bytes) -> ContractMetadata | None:
        """Loaded metadata for ``code_hash`` (cached), or None if none was uploaded."""
        if code_hash not in self._metadata:
            doc = self.metadata(code_hash)
            try:
                self._metadata[code_hash] = ContractMetadata.from_json(doc) if doc else None
            except PhatError:
                self._metadata[code_hash] = None
        return self._metadata[code_hash]

    def apply_block(self, requests: list[SignedRequest], timestamp_ms: int) -> tuple[list[Outcome], int, bytes]:
        """Apply ``requests`` in order as the next block; returns outcomes, number, state root."""
        number = self.height + 1
        overlay = Overlay(self.cluster.state)
        view = Cluster(overlay, cluster_id=self.cluster.cluster_id, engine=self.cluster.engine,
                       extension=self.cluster.extensions, services=self.cluster.services)
        block = BlockContext(number, timestamp_ms)
        outcomes = [self._apply(view, overlay, req, block) for req in requests]
        view.end_block(block)  # hooks, then the system contract's PinkEvents (runtime/block_end.py)
        block_hash = blake2_256(
            b"phat_runtime/standalone-block/v1" + self.last_hash + number.to_bytes(8, "little")
            + b"".join(r.request_hash for r in requests)
        )
        with self.lock.write():
            overlay.commit()
            checkpoint = self.cluster.commit_block(number, block_hash)
            if checkpoint is None:
                self._plain_height = number
        self.last_hash = block_hash
        root = checkpoint.state_root if checkpoint else bytes(32)
        return outcomes, number, root

    def _apply(self, view: Cluster, overlay: Overlay, req: SignedRequest, block: BlockContext) -> Outcome:
        applied_key = APPLIED + req.origin + req.nonce
        if overlay.get(applied_key) is not None:
            return _failed("ReplayedNonce", "this (origin, nonce) was already applied")
        if req.deadline_ms < block.timestamp_ms:
            return _failed("Expired", "the deadline passed before the transaction was ordered")
        overlay.set(applied_key, req.deadline_ms.to_bytes(8, "little"))
        origin = AccountId(req.origin)
        try:
            if req.kind is RequestKind.UPLOAD:
                wasm, metadata = decode_upload(req.payload)
                code_hash = view.upload_code(wasm, origin)
                if metadata:
                    overlay.set(METADATA + code_hash, metadata)
                return Outcome(0, b"", 0, code_hash=code_hash)
            if req.kind is RequestKind.INSTANTIATE:
                raw = view.instantiate(origin, req.code_hash, req.payload, salt=req.salt, value=req.value,
                                       mode=ExecutionMode.TRANSACTION, block=block,
                                       gas_limit=req.gas_limit or None)
                return outcome_of(raw, CodeHash(req.code_hash))
            raw = view.call(origin, req.contract, req.payload, value=req.value,
                            mode=ExecutionMode.TRANSACTION, block=block, gas_limit=req.gas_limit or None)
            info = view.records.contract(req.contract)
            return outcome_of(raw, info.code_hash if info else None)
        except ModuleError as exc:
            return _failed("InvalidCode", str(exc))
        except ExecutionError as exc:
            return _failed(exc.kind, str(exc), contract=req.contract if req.kind is RequestKind.CALL else None)
        except PhatError as exc:
            return _failed(type(exc).__name__, str(exc))


class StandaloneSource:
    """Orders submitted transactions into blocks on one thread (not decentralized)."""

    def __init__(self, pipeline: BlockPipeline) -> None:
        self.pipeline = pipeline
        self._queue: queue.Queue[tuple[SignedRequest, Future[Included]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="phat-blocks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, request: SignedRequest, timeout_s: float) -> Included:
        if self._thread is None:
            raise RpcError("unavailable", "the block producer is not running")
        future: Future[Included] = Future()
        self._queue.put((request, future))
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            raise RpcError("unavailable", f"not included within {timeout_s:.0f} s; it may still be") from None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BLOCK_TXS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            self._produce(batch)

    def _produce(self, batch: list[tuple[SignedRequest, Future[Included]]]) -> None:
        try:
            outcomes, number, root = self.pipeline.apply_block([r for r, _ in batch], int(time.time() * 1000))
        except BaseException as exc:  # the block failed as a whole: nothing was committed
            self.pipeline.cluster.discard_block()
            for _, future in batch:
                future.set_exception(RpcError("internal", f"block failed and was discarded: {exc!r}"))
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            future.set_result(Included(outcome, number, root))
