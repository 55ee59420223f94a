"""What a chain worker does as a cluster member, besides applying blocks.

:class:`MemberDuties` runs in a thread of its own and, every half second once the worker has
read the chain up to its finalized head, compares the chain's membership with what this
worker is and holds, and submits what is missing (signed by the worker identity, its chain
account):

- **register**: RegisterWorker{identity, ecdh, platform, quote, collateral, rpc_url} when the
  chain has no registration of this identity with these keys and URL;
- **genesis**: the cluster's genesis worker, once its registration passed, proposes key
  epoch 0 (generated and sealed to disk, ``KeyRing.propose``), then publishes its public halves
  (ClusterKeyPublished);
- **rotation**: after the owner's RotateClusterKey, the live holders of the current epoch
  (``Membership.holders``, registration order) propose the next epoch the same way — rank 0
  (the leader) at once, rank k once the rotation has been pending ``k × fallback_s`` seconds
  on this worker's clock; the first publication on chain wins and a losing proposal is
  discarded (``ChainSource``), its worker then receives the winner's key by handover;
- **handover**: every epoch a live member lacks is sealed to that member's ECDH key
  (KeyHandover) by the live holders of that epoch in the same rank order — rank k once the
  (worker, epoch) pair has been pending ``k × fallback_s`` seconds; all in one batch.

So a leader that crashed, is unreachable or was killed does not stall the cluster: its
fallbacks take over its duties after a delay that keeps duplicates rare. Every duty is
idempotent: a submission is not repeated for a while (the chain may simply not have finalized
it yet), and the membership rules make a duplicate harmless (rejected with a reason). Only keys
the chain published are handed over; secrets leave this module only sealed to a registered
worker's attested ECDH key.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from phat_runtime.chain import (
    ChainNode,
    ClusterKeyPublished,
    KeyHandover,
    Message,
    RegisterWorker,
    seal_cluster_key,
)
from phat_runtime.errors import ChainError
from phat_runtime.tee.identity import WorkerIdentity
from phat_runtime.worker.chain_source import ChainSource
from phat_runtime.worker.keyring import public_halves

log = logging.getLogger(__name__)

#: Do not submit the same thing again within this many seconds.
RESUBMIT_AFTER_S = 30.0
POLL_S = 0.5
#: Default fallback delay: the holder at rank k takes over a leader's pending duty (a handover,
#: the rotated key) after k × this many seconds — longer than a healthy leader needs to get its
#: submission finalized, so duplicates stay rare.
DEFAULT_FALLBACK_S = 30.0


@dataclass(frozen=True)
class Registration:
    """What this worker registers with: its platform, quote (binding identity and ECDH key),
    the quote's collateral (dcap-qvl JSON; empty for the simulated platform) and its RPC URL."""

    platform: str
    quote: bytes
    collateral: bytes
    rpc_url: str


class MemberDuties:
    def __init__(self, source: ChainSource, identity: WorkerIdentity, registration: Registration,
                 *, fallback_s: float = DEFAULT_FALLBACK_S) -> None:
        if fallback_s < 0:
            raise ValueError(f"the fallback delay must be >= 0 seconds, not {fallback_s}")
        self.source = source
        self.identity = identity
        self.registration = registration
        self.fallback_s = fallback_s
        self._sent: dict[tuple[object, ...], float] = {}
        self._pending_since: dict[tuple[object, ...], float] = {}  # duty → first seen pending
        self._round: list[tuple[object, ...]] = []  # keys marked sent in this poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="phat-duties", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        node = ChainNode(self.source.url)
        try:
            while not self._stop.wait(POLL_S):
                try:
                    if self.source.membership.cursor < node.finalized_number():
                        continue  # not caught up: what the chain says is not known yet
                    self._round = []
                    messages = self.due()
                    if messages:
                        node.submit(messages, self.identity)
                    self.last_error = None
                except ChainError as exc:
                    self._forget_round()  # not submitted: due again at the next poll
                    self.last_error = str(exc)
                    log.warning("member duties: %s", exc)
                except Exception as exc:  # a bug: keep the worker up, say so
                    self._forget_round()
                    self.last_error = f"internal error: {exc!r}"
                    log.exception("member duties failed")
        finally:
            node.close()

    def _once(self, key: tuple[object, ...]) -> bool:
        """True (and remembered) unless ``key`` was submitted within RESUBMIT_AFTER_S."""
        now = time.monotonic()
        if now - self._sent.get(key, -RESUBMIT_AFTER_S - 1) < RESUBMIT_AFTER_S:
            return False
        self._sent[key] = now
        self._round.append(key)
        return True

    def _forget_round(self) -> None:
        for key in self._round:
            self._sent.pop(key, None)
        self._round = []

    def _turn(self, duty: tuple[object, ...], holders: list[bytes], now: float) -> bool:
        """Whether this worker does ``duty`` now: it is at rank k among ``holders`` and the duty
        has been pending for k × fallback_s seconds since this worker first saw it (rank 0, the
        leader: at once)."""
        since = self._pending_since.setdefault(duty, now)
        me = self.identity.public_key
        if me not in holders:
            return False
        return now - since >= holders.index(me) * self.fallback_s

    def due(self) -> list[Message]:
        """The messages this worker owes the chain now (empty when nothing is due)."""
        source, me, reg = self.source, self.identity.public_key, self.registration
        keyring = source.keyring
        assert keyring is not None
        now = time.monotonic()
        with source.membership_lock:
            m = source.membership
            if not m.created:
                return []
            member = m.members.get(me)
            out: list[Message] = []
            if member is None or (member.ecdh, member.rpc_url) != (self.identity.ecdh_public_key, reg.rpc_url):
                if (member is None or member.revoked_at is None) and self._once(("register", reg.rpc_url)):
                    out.append(RegisterWorker(m.cluster, me, self.identity.ecdh_public_key, reg.platform,
                                              reg.quote, reg.collateral, reg.rpc_url))
                return out
            if not member.live:
                return out
            current = m.current_epoch
            pending: set[tuple[object, ...]] = set()
            if current is None and m.genesis_worker == me:
                out += self._publish(0)
            elif m.rotation_requested_at is not None and current is not None:
                duty: tuple[object, ...] = ("rotate", current + 1)
                pending.add(duty)
                if self._turn(duty, [h.identity for h in m.holders(current)], now):
                    out += self._publish(current + 1)
            for worker, epoch in m.pending_handovers():
                duty = ("handover", worker, epoch)
                pending.add(duty)
                if not self._turn(duty, [h.identity for h in m.holders(epoch)], now):
                    continue
                secret = keyring.get(epoch)
                published = m.epochs[epoch]
                if secret is None or not self._once(duty):
                    continue
                if public_halves(secret) != (published.identity, published.ecdh):
                    log.error("the key of epoch %d this worker holds is not the published one: not "
                              "handing it over", epoch)
                    continue
                target = m.members[worker]
                box = seal_cluster_key(secret, worker_ecdh_public=target.ecdh, cluster=m.cluster,
                                       to_worker=worker, epoch=epoch, sender=me)
                out.append(KeyHandover(m.cluster, worker, epoch, box))
            self._pending_since = {d: t for d, t in self._pending_since.items() if d in pending}
            return out

    def _publish(self, epoch: int) -> list[Message]:
        """Propose this worker's key of ``epoch`` (generated and sealed to disk first, once) and
        publish its public halves. It is held — used for anything — only once the chain accepted
        the publication (``ChainSource`` settles it)."""
        keyring = self.source.keyring
        assert keyring is not None
        if keyring.has(epoch):
            return []
        if keyring.proposal(epoch) is None:
            log.info("generating a proposal for the cluster key of epoch %d", epoch)
        secret = keyring.propose(epoch)  # on disk before anyone hears of it
        if not self._once(("publish", epoch)):
            return []
        identity, ecdh = public_halves(secret)
        return [ClusterKeyPublished(self.source.cluster_id, epoch, identity, ecdh)]
