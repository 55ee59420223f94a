"""What a chain worker does as a cluster member, besides applying blocks.

:class:`MemberDuties` runs in a thread of its own and, every half second once the worker has
read the chain up to its finalized head, compares the chain's membership with what this
worker is and holds, and submits what is missing (signed by the worker identity, its chain
account):

- **register**: RegisterWorker{identity, ecdh, platform, quote, collateral, rpc_url} when the
  chain has no registration of this identity with these keys and URL;
- **genesis**: the cluster's genesis worker, once its registration passed, generates key
  epoch 0, seals it to disk, then publishes its public halves (ClusterKeyPublished);
- **rotation**: after the owner's RotateClusterKey, the rotation leader (the earliest-registered
  live member holding the current key) generates the next epoch the same way;
- **handover**: the leader seals every epoch a live member lacks to that member's ECDH key
  (KeyHandover), all in one batch.

Every duty is idempotent: a submission is not repeated for a while (the chain may simply not
have finalized it yet), and the membership rules make a duplicate harmless (rejected with a
reason). Secrets leave this module only sealed to a registered worker's attested ECDH key.
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
from phat_runtime.worker.keyring import generate_cluster_key, public_halves

log = logging.getLogger(__name__)

#: Do not submit the same thing again within this many seconds.
RESUBMIT_AFTER_S = 30.0
POLL_S = 0.5


@dataclass(frozen=True)
class Registration:
    """What this worker registers with: its platform, quote (binding identity and ECDH key),
    the quote's collateral (dcap-qvl JSON; empty for the simulated platform) and its RPC URL."""

    platform: str
    quote: bytes
    collateral: bytes
    rpc_url: str


class MemberDuties:
    def __init__(self, source: ChainSource, identity: WorkerIdentity, registration: Registration) -> None:
        self.source = source
        self.identity = identity
        self.registration = registration
        self._sent: dict[tuple[object, ...], float] = {}
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

    def due(self) -> list[Message]:
        """The messages this worker owes the chain now (empty when nothing is due)."""
        source, me, reg = self.source, self.identity.public_key, self.registration
        keyring = source.keyring
        assert keyring is not None
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
            if current is None and m.genesis_worker == me:
                out += self._publish(0)
            elif m.rotation_requested_at is not None and current is not None:
                leader = m.leader()
                if leader is not None and leader.identity == me:
                    out += self._publish(current + 1)
            leader = m.leader()
            if leader is not None and leader.identity == me:
                for worker, epoch in m.pending_handovers():
                    secret = keyring.get(epoch)
                    if secret is None or not self._once(("handover", worker, epoch)):
                        continue
                    target = m.members[worker]
                    box = seal_cluster_key(secret, worker_ecdh_public=target.ecdh, cluster=m.cluster,
                                           to_worker=worker, epoch=epoch, sender=me)
                    out.append(KeyHandover(m.cluster, worker, epoch, box))
            return out

    def _publish(self, epoch: int) -> list[Message]:
        keyring = self.source.keyring
        assert keyring is not None
        secret = keyring.get(epoch)
        if secret is None:
            secret = generate_cluster_key()
            keyring.add(epoch, secret)  # on disk before anyone hears of it
            self.source.key_added(epoch, secret)
            log.info("generated the cluster key of epoch %d", epoch)
        if not self._once(("publish", epoch)):
            return []
        identity, ecdh = public_halves(secret)
        return [ClusterKeyPublished(self.source.cluster_id, epoch, identity, ecdh)]
