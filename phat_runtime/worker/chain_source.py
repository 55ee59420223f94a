"""The chain transaction source: every finalized chain block becomes one worker block.

:class:`ChainSource` follows a Substrate chain (``chain.ChainNode.follow``: finalized blocks
only, in order, parent hashes checked, reconnecting with backoff). Each block is read twice
over, by two cursors that usually move together:

1. **Membership** (public, needs no key): the cluster's CreateCluster, RegisterWorker,
   KeyHandover, ClusterKeyPublished, RotateClusterKey, RevokeWorker and UpdatePolicy messages
   go through :class:`~phat_runtime.chain.membership.Membership` — the same verdicts on every
   worker (``docs/protocol.md`` "Membership"); a KeyHandover addressed to this worker is opened
   and, once it matches the key's published public halves, kept in the sealed key ring. A key
   this worker proposed (genesis, rotation) is settled when its epoch is published: held if
   the published halves are its own, discarded if another member's publication came first.
2. **State** (needs the cluster key of the block's epoch): our remarks become
   :class:`~phat_runtime.worker.pipeline.Transaction` s for the block pipeline, with the chain's
   block number, hash and ``timestamp.set`` time — ``UploadCode`` / ``Instantiate`` → UPLOAD /
   INSTANTIATE, ``Call`` → its payload opened with the cluster ECDH key of the epoch in force
   (sealed to the cluster, contract, epoch *and signer*) → CALL. The cluster's state begins
   after the block that published key epoch 0; a worker that lacks the key of a block's epoch
   (it joined later, or was revoked and not given a rotated key) stops applying state there,
   keeps following membership, and — when the key arrives by handover — replays from its last
   committed block. A restarted worker (even after ``kill -9``) resumes where its committed
   state ends: no block skipped, none applied twice.

A message that fails validation — does not decode, names another key epoch, does not open,
asks for more gas than the cap, is sent before the cluster has a key, fails membership rules —
is skipped the same way by every worker and recorded with its reason (``worker/chain_journal.py``,
``GET /v1/chain/rejections``). Messages for other clusters are ignored silently.

Every ``checkpoint_every`` blocks the worker publishes CheckpointPublished{block, state_root},
signed by its identity; its other duties as a member (registering itself, proposing,
publishing and handing over keys — the leader first, its fallbacks after a delay) run in
``worker/chain_duties.py``. Both submit from threads
of their own, so a slow or unfunded account never holds up the blocks.

Development clusters (``dev_secret``): every worker derives one key from the public cluster id;
there is no membership gating — state is applied from ``start_block`` with that key as epoch 0.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from phat_runtime.chain import (
    Call,
    ChainBlock,
    ChainNode,
    CheckpointPublished,
    Instantiate,
    KeyHandover,
    Membership,
    MembershipEvent,
    Message,
    UploadCode,
    decode_message,
    open_call_payload,
    open_cluster_key,
)
from phat_runtime.chain.membership import is_membership
from phat_runtime.codec.messages import Outcome, RequestKind
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.crypto.kdf import cluster_ecdh
from phat_runtime.errors import ChainDiverged, ChainError, PhatError, ProtocolError
from phat_runtime.tee.identity import WorkerIdentity
from phat_runtime.types import AccountId
from phat_runtime.worker.chain_journal import ChainJournal, Rejection
from phat_runtime.worker.keyring import KeyRing, public_halves
from phat_runtime.worker.pipeline import BlockPipeline, Transaction, encode_upload

log = logging.getLogger(__name__)

#: Default: publish the state root every 10 blocks.
DEFAULT_CHECKPOINT_EVERY = 10
#: Outcomes of chain transactions kept for their senders to read (in memory only: outputs are
#: private to the sender, so they are never written to disk in the clear).
MAX_KEPT_RESULTS = 100_000
#: The membership digest's row in the state (part of the state root): b"W" → blake2_256.
MEMBERSHIP_ROW = b"W"


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
    last_block: int = 0  # the last block whose state this worker applied
    last_hash: bytes = bytes(32)
    membership_block: int = 0  # the last block whose membership messages it applied
    connected: bool = False
    error: str | None = None
    waiting: str | None = None  # why state is not being applied (no key yet, revoked, …)
    published: int = 0
    publish_error: str | None = None
    started_at: float = field(default_factory=time.time)


class ChainSource:
    """Follows ``url`` and applies cluster ``cluster_id``'s messages.

    ``open_state(keys, owner)`` is called (from the follower thread) once this worker holds the
    cluster key of epoch 0 and returns the block pipeline over the opened state (genesis deployed
    by the cluster's owner); a development
    cluster passes ``pipeline`` directly with ``dev_secret``.
    """

    def __init__(self, url: str, cluster_id: bytes, *, journal: ChainJournal, identity: WorkerIdentity,
                 keyring: KeyRing | None = None, open_state: Callable[[dict[int, bytes], bytes | None], BlockPipeline] | None = None,
                 pipeline: BlockPipeline | None = None, dev_secret: bytes | None = None,
                 publisher: object | None = None, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
                 start_block: int = 1) -> None:
        self.url = url
        self.cluster_id = cluster_id
        self.journal = journal
        self.identity = identity
        self.keyring = keyring
        self.dev = dev_secret is not None
        self._dev_ecdh = cluster_ecdh(dev_secret)[0] if dev_secret is not None else None
        self._open_state = open_state
        self.pipeline = pipeline
        self.publisher = publisher  # a ChainSigner (the worker identity), or None: don't publish
        self.checkpoint_every = checkpoint_every
        self.start_block = start_block
        self.membership = journal.load_membership() or Membership(cluster_id)
        self.membership_lock = threading.RLock()
        self.status = ChainStatus(url, membership_block=self.membership.cursor)
        self._results: OrderedDict[tuple[int, int, int], ChainResult] = OrderedDict()
        self._results_lock = threading.Lock()
        self._stop = threading.Event()
        self._replay = False  # a key arrived: follow again from the state's checkpoint
        self._thread: threading.Thread | None = None
        self._publish_queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self._publish_thread: threading.Thread | None = None
        self.applied = threading.Condition()
        self.on_key: Callable[[int, bytes], None] | None = None  # the worker: a key was added
        self._settle_proposals()  # a crash may have come between publication and settling
        if self.pipeline is None:
            self._maybe_open_state()
        if self.pipeline is not None:
            checkpoint = self.pipeline.cluster.checkpoint()
            if checkpoint is not None:
                self.status.last_block, self.status.last_hash = checkpoint.number, checkpoint.block_hash

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

    # --- keys ----------------------------------------------------------------------------------
    def ecdh_keys(self) -> dict[int, bytes]:
        """Cluster ECDH private key per epoch this worker holds."""
        if self._dev_ecdh is not None:
            return {0: self._dev_ecdh}
        assert self.keyring is not None
        return {e: cluster_ecdh(s)[0] for e, s in self.keyring.all().items()}

    def _first_state_block(self) -> int | None:
        """The first chain block of the cluster's state (None: the cluster has no key yet)."""
        if self.dev:
            return self.start_block
        with self.membership_lock:
            epoch0 = self.membership.epochs.get(0)
        return None if epoch0 is None else epoch0.published_at + 1

    def _keys_for(self, number: int) -> str | None:
        """None if this worker can apply block ``number``'s state, else why not."""
        if self.dev:
            return None
        assert self.keyring is not None
        with self.membership_lock:
            epoch = self.membership.epoch_at(number)
            me = self.membership.members.get(self.identity.public_key)
        if epoch is None:
            return "the cluster has no key yet"
        missing = [e for e in range(epoch + 1) if not self.keyring.has(e)]
        if not missing:
            return None
        if me is not None and me.revoked_at is not None:
            return f"this worker was revoked at block {me.revoked_at} and holds no key of epoch {missing[0]}"
        return f"waiting for the cluster key of epoch {missing[0]} (handover from a member)"

    def _maybe_open_state(self) -> None:
        if self.pipeline is not None or self._open_state is None or self.keyring is None:
            return
        secret = self.keyring.get(0)
        with self.membership_lock:
            published = self.membership.epochs.get(0)
        if secret is None or published is None:
            return
        if public_halves(secret) != (published.identity, published.ecdh):
            log.error("the cluster key of epoch 0 this worker holds does not match the one published "
                      "on chain; not applying state")
            self.status.waiting = "the held epoch-0 key does not match the published one"
            return
        self.pipeline = self._open_state(self.keyring.all(), self.membership.owner)
        self._replay = True

    # --- following ------------------------------------------------------------------------------
    def _start_point(self) -> tuple[int, bytes | None]:
        with self.membership_lock:
            cursor = self.membership.cursor
        member_next = max(cursor + 1, self.start_block)
        state_next = None
        if self.pipeline is not None:
            checkpoint = self.pipeline.cluster.checkpoint()
            if checkpoint is not None and checkpoint.number > 0:
                state_next = checkpoint.number + 1
            else:
                state_next = self._first_state_block()
            if state_next is not None and self._keys_for(state_next) is not None:
                state_next = None
        start = member_next if state_next is None else min(member_next, state_next)
        return start, self.journal.block_hash(start - 1)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            start, parent = self._start_point()
            node = ChainNode(self.url)
            self._replay = False
            try:
                for block in node.follow(start, parent_hash=parent, stop=self._stop):
                    self.status.connected, self.status.error = True, None
                    self.apply(block)
                    backoff = 0.5
                    if self._replay:  # a key arrived: apply the state we could not before
                        break
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
            finally:
                node.close()
            if self._replay:
                continue
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def apply(self, block: ChainBlock) -> None:
        """Apply one finalized chain block (public for tests and the replay bench)."""
        if block.number > self.membership.cursor:
            self._apply_membership(block)
        if self.pipeline is None:
            return
        first = self._first_state_block()
        if first is None or block.number < first:
            return
        checkpoint = self.pipeline.cluster.checkpoint()
        expected = checkpoint.number + 1 if checkpoint is not None and checkpoint.number > 0 else first
        if block.number != expected:
            if block.number > expected:  # state is behind (a key just arrived): replay from it
                self._replay = True
            return
        why_not = self._keys_for(block.number)
        if why_not is not None:
            if self.status.waiting != why_not:
                log.warning("not applying state from block %d: %s", block.number, why_not)
            self.status.waiting = why_not
            return
        self.status.waiting = None
        self._apply_state(block)

    # --- membership ---------------------------------------------------------------------------------
    def _apply_membership(self, block: ChainBlock) -> None:
        with self.membership_lock:
            before = self.membership.digest()
            events = self.membership.apply_block(block)
            after = self.membership.digest()
            keyless = self.membership.epoch_at(block.number) is None and not self.dev
        rejections = [Rejection(e.block, e.extrinsic, e.position, e.signer, type(e.message).__name__, e.reason)
                      for e in events if e.reason is not None]
        if keyless:  # the cluster has no key: its state messages cannot run anywhere
            rejections += self._keyless_rejections(block)
        self.journal.record_rejections(rejections)
        self.journal.save_membership(self.membership, block.hash, None if after == before else after)
        self.status.membership_block = block.number
        self._settle_proposals()
        for event in events:
            if event.reason is None and isinstance(event.message, KeyHandover):
                self._receive(event)
        self._maybe_open_state()

    def _settle_proposals(self) -> None:
        """Settle this worker's key proposals whose epoch the chain published: its own key →
        held (and given to the state); another member's (it published first) → the proposal is
        discarded, and the published key arrives by handover."""
        if self.keyring is None:
            return
        for epoch in self.keyring.proposed_epochs():
            with self.membership_lock:
                published = self.membership.epochs.get(epoch)
            if published is None:
                continue
            secret = self.keyring.settle(epoch, published.identity, published.ecdh)
            if secret is None:
                log.warning("another member published key epoch %d first (block %d): this worker's "
                            "proposal is discarded; the published key comes by handover",
                            epoch, published.published_at)
                continue
            log.info("key epoch %d is this worker's key, published at block %d", epoch, published.published_at)
            if self.on_key is not None:
                self.on_key(epoch, secret)

    def _keyless_rejections(self, block: ChainBlock) -> list[Rejection]:
        out = []
        for position, remark in block.numbered():
            try:
                message = decode_message(remark.data)
            except ProtocolError:
                continue
            if is_membership(message) or isinstance(message, CheckpointPublished):
                continue
            if getattr(message, "cluster", None) != self.cluster_id:
                continue
            out.append(Rejection(block.number, remark.extrinsic, position, remark.signer,
                                 type(message).__name__, "the cluster has no key yet (its genesis worker "
                                 "has not published key epoch 0): nothing can run before it"))
        return out

    def _receive(self, event: MembershipEvent) -> None:
        message = event.message
        assert isinstance(message, KeyHandover)
        if message.to_worker != self.identity.public_key or self.keyring is None:
            return
        try:
            secret = open_cluster_key(message.sealed_key, worker_ecdh_private=self.identity.ecdh_private_bytes(),
                                      cluster=self.cluster_id, to_worker=message.to_worker,
                                      epoch=message.epoch, sender=event.signer)
        except ProtocolError as exc:
            log.error("the key handover of epoch %d at block %d does not open: %s", message.epoch, event.block, exc)
            return
        with self.membership_lock:
            published = self.membership.epochs.get(message.epoch)
        if published is None or public_halves(secret) != (published.identity, published.ecdh):
            log.error("the key handed over for epoch %d does not match its published public halves; "
                      "ignored", message.epoch)
            return
        self.keyring.add(message.epoch, secret)
        log.info("received the cluster key of epoch %d by handover (block %d)", message.epoch, event.block)
        if self.on_key is not None:
            self.on_key(message.epoch, secret)
        self._replay = True

    # --- state ----------------------------------------------------------------------------------------
    def _apply_state(self, block: ChainBlock) -> None:
        assert self.pipeline is not None
        txs: list[Transaction] = []
        where: list[tuple[int, int, bytes, Transaction]] = []  # (extrinsic, position, sender, tx)
        rejections: list[Rejection] = []
        published: list[tuple[bytes, CheckpointPublished]] = []
        cap = self.pipeline.limits.max_tx_gas
        epoch = 0 if self.dev else self.membership.epoch_at(block.number)
        keys = self.ecdh_keys()
        for position, remark in block.numbered():

            def reject(kind: str, reason: str, remark=remark, position=position) -> None:  # type: ignore[no-untyped-def]
                rejections.append(Rejection(block.number, remark.extrinsic, position,
                                            remark.signer, kind, reason))

            try:
                message = decode_message(remark.data)
            except ProtocolError as exc:
                reject("?", str(exc))
                continue
            kind = type(message).__name__
            if is_membership(message):
                continue  # applied (and any rejection recorded) by the membership pass
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
                tx = self._transaction(message, remark.signer, remark.data, epoch, keys)
            except ProtocolError as exc:
                reject(kind, str(exc))
                continue
            if tx is None:
                reject(kind, f"{kind} is not handled by this worker version")
                continue
            txs.append(tx)
            where.append((remark.extrinsic, position, remark.signer, tx))
        self.journal.record_rejections(rejections)  # before the commit: never lost
        store = self.pipeline.cluster.state
        if epoch and getattr(store, "epoch", epoch) < epoch:
            store.rotate(epoch)  # type: ignore[attr-defined]  # values written from now on
        digest = None if self.dev else self.journal.membership_digest(block.number)
        writes = {MEMBERSHIP_ROW: digest} if digest is not None else None
        result = self.pipeline.apply_block(txs, number=block.number, block_hash=block.hash,
                                           timestamp_ms=block.timestamp_ms, state_writes=writes)
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

    def _transaction(self, message: Message, signer: bytes, remark: bytes, epoch: int | None,
                     keys: dict[int, bytes]) -> Transaction | None:
        origin = AccountId(signer)
        ref = blake2_256(remark)
        if isinstance(message, UploadCode):
            return Transaction(origin, RequestKind.UPLOAD, encode_upload(message.wasm, message.metadata or b""),
                               ref=ref)
        if isinstance(message, Instantiate):
            return Transaction(origin, RequestKind.INSTANTIATE, message.input, code_hash=message.code_hash,
                               salt=message.salt, value=message.value, gas_limit=message.gas_limit, ref=ref)
        if isinstance(message, Call):
            if message.epoch != epoch:
                raise ProtocolError(f"the payload is sealed to key epoch {message.epoch}; the cluster's "
                                    f"key epoch at this block is {epoch} (seal to the current epoch's "
                                    "published ECDH key)")
            key = keys[message.epoch]
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
