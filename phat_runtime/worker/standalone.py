"""The standalone transaction source: the worker orders submitted transactions itself.

The embedded default for one machine (``phat serve``, ``phat demo``): one thread takes what is
pending, up to :data:`MAX_BLOCK_TXS`, and applies it as the next block — stopping early when
the block's wall-clock budget or gas is spent, the rest going first into the next block. It
is **not decentralized**: nobody else can check the order. A chain orders transactions instead
(``worker/chain_source.py``).

Replays are refused before they are queued: an (origin, nonce) already applied (read from the
committed state) or already waiting answers ``replayed_nonce`` at once, so a replayed request
never produces a block.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from phat_runtime.codec.messages import Outcome
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.pipeline import BlockPipeline, Refusal, Transaction

log = logging.getLogger(__name__)

#: Most transactions one standalone block takes.
MAX_BLOCK_TXS = 256
BLOCK_DOMAIN = b"phat_runtime/standalone-block/v1"


@dataclass(frozen=True)
class Included:
    outcome: Outcome
    block: int
    state_root: bytes


_Item = tuple[Transaction, "Future[Included]"]


class StandaloneSource:
    """Orders submitted transactions into blocks on one thread (not decentralized)."""

    def __init__(self, pipeline: BlockPipeline) -> None:
        self.pipeline = pipeline
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._carry: deque[_Item] = deque()  # deferred from the last block: they go first
        self._inflight: set[tuple[bytes, bytes]] = set()
        self._lock = threading.Lock()
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

    @property
    def pending(self) -> int:
        return self._queue.qsize() + len(self._carry)

    def submit(self, tx: Transaction, timeout_s: float) -> Included:
        """Queue ``tx`` and wait for its block. RpcError for a refusal (nothing changed)."""
        if self._thread is None:
            raise RpcError("unavailable", "the block producer is not running")
        key = (bytes(tx.origin), tx.nonce or tx.ref)
        with self._lock:
            if key in self._inflight:
                raise RpcError("replayed_nonce", "this (origin, nonce) is already waiting for a "
                               "block; sign a new request with a fresh nonce")
            self._inflight.add(key)
        future: Future[Included] = Future()
        future.add_done_callback(lambda _: self._release(key))
        self._queue.put((tx, future))
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            raise RpcError("unavailable", f"not included within {timeout_s:.0f} s; it may still be") from None

    def _release(self, key: tuple[bytes, bytes]) -> None:
        with self._lock:
            self._inflight.discard(key)

    def _run(self) -> None:
        while True:
            if self._carry:
                batch = [self._carry.popleft() for _ in range(min(len(self._carry), MAX_BLOCK_TXS))]
            else:
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

    def _produce(self, batch: list[_Item]) -> None:
        pipeline = self.pipeline
        number = pipeline.height + 1
        txs = [tx for tx, _ in batch]
        block_hash = blake2_256(BLOCK_DOMAIN + pipeline.last_hash + number.to_bytes(8, "little")
                                + b"".join(tx.ref for tx in txs))
        budget = pipeline.limits.block_wall_clock_ms / 1000
        try:
            result = pipeline.apply_block(txs, number=number, block_hash=block_hash,
                                          timestamp_ms=int(time.time() * 1000), always_commit=False,
                                          deadline=time.monotonic() + budget)
        except BaseException as exc:  # the block failed as a whole: nothing was committed
            pipeline.cluster.discard_block()
            log.exception("block %d failed and was discarded", number)
            for _, future in batch:
                future.set_exception(RpcError("internal", f"block failed and was discarded: {exc!r}"))
            return
        done = len(result.results)
        self._carry.extendleft(reversed(batch[done:]))
        for (_, future), entry in zip(batch[:done], result.results, strict=True):
            if isinstance(entry, Refusal):
                future.set_exception(RpcError(entry.code, entry.message))
            else:
                future.set_result(Included(entry, result.number, result.state_root))
