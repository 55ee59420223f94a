"""The chain transaction source: every finalized chain block becomes one worker block.

:class:`ChainSource` follows a Substrate chain (``chain.ChainNode.follow``: finalized blocks
only, in order, parent hashes checked, reconnecting with backoff) from the block after the
worker's checkpoint, so a restarted worker — even after ``kill -9`` — resumes exactly where its
committed state ends: no block skipped, none applied twice. For each block it decodes our
remarks in order (extrinsic order, then remark order inside a batch) and turns them into
:class:`~phat_runtime.worker.pipeline.Transaction` s for the block pipeline, with the chain's
block number, hash and ``timestamp.set`` time:

- ``UploadCode`` / ``Instantiate`` → UPLOAD / INSTANTIATE, origin = the extrinsic's signer;
- ``Call`` → its sealed payload is opened with the cluster's ECDH key of the payload's epoch
  (sealed to the cluster, the contract, the epoch *and the signer*, so nobody can replay
  someone else's encrypted call as their own) → CALL;
- ``CheckpointPublished`` → recorded in the journal (public: what workers claim their roots are).

A message that fails validation — does not decode, names another key epoch, does not open,
asks for more gas than the cap — is skipped the same way by every worker and recorded with its
reason (``worker/chain_journal.py``, ``GET /v1/chain/rejections``). Messages for other
clusters are not ours and are ignored silently.

Every ``checkpoint_every`` blocks the worker publishes CheckpointPublished{block, state_root},
signed by its identity (its chain account), from a thread of its own so a slow or unfunded
account never holds up the blocks.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NoReturn

from phat_runtime.chain import (
    Call,
    ChainBlock,
    ChainNode,
    CheckpointPublished,
    Instantiate,
    Message,
    UploadCode,
    decode_message,
    open_call_payload,
)
from phat_runtime.codec.messages import Outcome, RequestKind
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import ChainDiverged, ChainError, PhatError, ProtocolError
from phat_runtime.types import AccountId
from phat_runtime.worker.chain_journal import ChainJournal, Rejection
from phat_runtime.worker.pipeline import BlockPipeline, Transaction, encode_upload

log = logging.getLogger(__name__)

#: Default: publish the state root every 10 blocks.
DEFAULT_CHECKPOINT_EVERY = 10
#: Outcomes of chain transactions kept for their senders to read (in memory only: outputs are
#: private to the sender, so they are never written to disk in the clear).
MAX_KEPT_RESULTS = 100_000


@dataclass(frozen=True)
class ChainResult:
    """What became of one chain transaction: its outcome, the block that applied it, the state
    root after that block, and who sent it (only they may read it)."""

    kind: RequestKind
    outcome: Outcome
    block: int
    state_root: bytes
    sender: bytes
    request_hash: bytes  # blake2_256 of the remark: what the receipt binds


@dataclass
class ChainStatus:
    url: str
    last_block: int = 0
    last_hash: bytes = bytes(32)
    connected: bool = False
    error: str | None = None
    published: int = 0
    publish_error: str | None = None
    started_at: float = field(default_factory=time.time)


class ChainSource:
    """Follows ``url`` and applies cluster ``cluster_id``'s messages through ``pipeline``."""

    def __init__(self, pipeline: BlockPipeline, url: str, cluster_id: bytes, *,
                 ecdh_keys: dict[int, bytes], journal: ChainJournal, publisher: object | None = None,
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, start_block: int = 1) -> None:
        self.pipeline = pipeline
        self.url = url
        self.cluster_id = cluster_id
        #: Cluster ECDH private key per key epoch (what Call payloads are sealed to).
        self.ecdh_keys = ecdh_keys
        self.journal = journal
        self.publisher = publisher  # a ChainSigner (the worker identity), or None: don't publish
        self.checkpoint_every = checkpoint_every
        self.start_block = start_block
        self.status = ChainStatus(url)
        self._results: OrderedDict[tuple[int, int, int], ChainResult] = OrderedDict()
        self._results_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._publish_queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self._publish_thread: threading.Thread | None = None
        self.applied = threading.Condition()

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="phat-chain", daemon=True)
        self._thread.start()
        if self.publisher is not None and self.checkpoint_every > 0:
            self._publish_thread = threading.Thread(target=self._publish_loop, name="phat-checkpoints",
                                                    daemon=True)
            self._publish_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._publish_queue.put(None)
        for thread in (self._thread, self._publish_thread):
            if thread is not None:
                thread.join(timeout=30)
        self._thread = self._publish_thread = None

    def submit(self, tx: Transaction, timeout_s: float) -> NoReturn:
        from phat_runtime.worker.error_codes import RpcError

        raise RpcError("use_chain", f"this worker follows the chain at {self.url}: send transactions "
                       "as chain messages (phat deploy/tx --chain URL --cluster ID, or ChainClient)")

    # --- results -------------------------------------------------------------------------------
    def result(self, block: int, extrinsic: int, position: int) -> ChainResult | None:
        with self._results_lock:
            return self._results.get((block, extrinsic, position))

    def wait_applied(self, block: int, timeout_s: float) -> bool:
        """Wait until ``block`` has been applied; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self.applied:
            while self.status.last_block < block:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.applied.wait(left)
        return True

    # --- following ------------------------------------------------------------------------------
    def _start_point(self) -> tuple[int, bytes | None]:
        checkpoint = self.pipeline.cluster.checkpoint()
        if checkpoint is None or checkpoint.number == 0:  # genesis (block 0) is not a chain block
            return self.start_block, None
        return checkpoint.number + 1, checkpoint.block_hash

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            start, parent = self._start_point()
            node = ChainNode(self.url)
            try:
                for block in node.follow(start, parent_hash=parent, stop=self._stop):
                    self.status.connected, self.status.error = True, None
                    self.apply(block)
                    backoff = 0.5
            except ChainDiverged as exc:
                # Fatal: the chain under us is not the one our state came from.
                self.status.connected, self.status.error = False, str(exc)
                log.error("stopped following the chain: %s", exc)
                return
            except PhatError as exc:
                self.status.connected, self.status.error = False, str(exc)
                log.warning("chain source: %s; retrying in %.1f s", exc, backoff)
            except Exception as exc:  # a bug: keep the worker up, say so, retry
                self.status.connected, self.status.error = False, f"internal error: {exc!r}"
                log.exception("chain source failed; retrying in %.1f s", backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def apply(self, block: ChainBlock) -> None:
        """Apply one finalized chain block (public for tests and the replay bench)."""
        txs: list[Transaction] = []
        where: list[tuple[int, int, bytes, Transaction]] = []  # (extrinsic, position, sender, tx)
        rejections: list[Rejection] = []
        published: list[tuple[bytes, CheckpointPublished]] = []
        cap = self.pipeline.limits.max_tx_gas
        positions: dict[int, int] = {}
        for remark in block.remarks:
            position = positions.get(remark.extrinsic, 0)
            positions[remark.extrinsic] = position + 1

            def reject(kind: str, reason: str, remark=remark, position=position) -> None:  # type: ignore[no-untyped-def]
                rejections.append(Rejection(block.number, remark.extrinsic, position,
                                            remark.signer, kind, reason))

            try:
                message = decode_message(remark.data)
            except ProtocolError as exc:
                reject("?", str(exc))
                continue
            kind = type(message).__name__
            if getattr(message, "cluster", self.cluster_id) != self.cluster_id:
                continue  # another cluster's message
            if isinstance(message, CheckpointPublished):
                published.append((remark.signer, message))
                continue
            gas = getattr(message, "gas_limit", 0)
            if gas > cap:
                reject(kind, f"gas limit {gas} exceeds the per-transaction cap {cap}")
                continue
            try:
                tx = self._transaction(message, remark.signer, remark.data)
            except ProtocolError as exc:
                reject(kind, str(exc))
                continue
            if tx is None:
                reject(kind, f"{kind} is not handled by this worker version")
                continue
            txs.append(tx)
            where.append((remark.extrinsic, position, remark.signer, tx))
        self.journal.record_rejections(rejections)  # before the commit: never lost
        result = self.pipeline.apply_block(txs, number=block.number, block_hash=block.hash,
                                           timestamp_ms=block.timestamp_ms)
        root = result.state_root
        self.journal.record_root(block.number, block.hash, root)
        for signer, message in published:
            self.journal.record_published(signer, message.block, message.state_root, block.number)
        with self._results_lock:
            for (extrinsic, position, sender, tx), entry in zip(where, result.results, strict=False):
                if isinstance(entry, Outcome):
                    self._results[(block.number, extrinsic, position)] = ChainResult(
                        tx.kind, entry, block.number, root, sender, tx.ref)
            while len(self._results) > MAX_KEPT_RESULTS:
                self._results.popitem(last=False)
        with self.applied:
            self.status.last_block, self.status.last_hash = block.number, block.hash
            self.applied.notify_all()
        if rejections:
            log.info("block %d: %d message(s) rejected (GET /v1/chain/rejections)", block.number, len(rejections))
        if self.publisher is not None and self.checkpoint_every > 0 and block.number % self.checkpoint_every == 0:
            self._publish_queue.put((block.number, root))

    def _transaction(self, message: Message, signer: bytes, remark: bytes) -> Transaction | None:
        origin = AccountId(signer)
        ref = blake2_256(remark)
        if isinstance(message, UploadCode):
            return Transaction(origin, RequestKind.UPLOAD, encode_upload(message.wasm, message.metadata or b""),
                               ref=ref)
        if isinstance(message, Instantiate):
            return Transaction(origin, RequestKind.INSTANTIATE, message.input, code_hash=message.code_hash,
                               salt=message.salt, value=message.value, gas_limit=message.gas_limit, ref=ref)
        if isinstance(message, Call):
            key = self.ecdh_keys.get(message.epoch)
            if key is None:
                raise ProtocolError(f"the payload is sealed to key epoch {message.epoch}, which this "
                                    f"cluster does not have (epochs: {sorted(self.ecdh_keys)})")
            payload = open_call_payload(message.sealed_payload, cluster_ecdh_private=key,
                                        cluster=self.cluster_id, contract=message.contract,
                                        epoch=message.epoch, sender=signer)
            return Transaction(origin, RequestKind.CALL, payload.input, contract=message.contract,
                               value=payload.value, gas_limit=message.gas_limit, ref=ref)
        return None

    # --- publishing checkpoints ------------------------------------------------------------------
    def _publish_loop(self) -> None:
        node = ChainNode(self.url)
        try:
            while True:
                item = self._publish_queue.get()
                if item is None or self._stop.is_set():
                    return
                while True:  # publish only the newest pending root
                    try:
                        newer = self._publish_queue.get_nowait()
                    except queue.Empty:
                        break
                    if newer is None:
                        return
                    item = newer
                number, root = item
                try:
                    node.submit([CheckpointPublished(self.cluster_id, number, root)], self.publisher)  # type: ignore[arg-type]
                    self.status.published, self.status.publish_error = number, None
                except ChainError as exc:
                    self.status.publish_error = str(exc)
                    log.warning("could not publish the checkpoint of block %d: %s", number, exc)
        finally:
            node.close()
