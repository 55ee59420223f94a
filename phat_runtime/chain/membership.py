"""Cluster membership as the chain defines it: who owns a cluster, which workers passed its
attestation policy, which key epochs exist and who holds them (v1, ``docs/protocol.md``
"Membership").

:class:`Membership` is a pure, deterministic state machine over one cluster's membership
messages — CreateCluster, UpdatePolicy, RegisterWorker, KeyHandover, ClusterKeyPublished,
RotateClusterKey, RevokeWorker — in chain order. Every worker runs it on every finalized block
(before it holds any key: membership is public), and so does a client that wants to know which
workers it may trust, so all of them reach the same verdicts for the same chain:

- a registration is verified with ``tee.verify_worker_quote`` at the *block's* timestamp
  (never the local clock) against the policy in force, and must be sent by the identity it
  registers; the verdict (pass, or every failing check) is kept;
- the genesis worker publishes epoch 0's public halves once it passed; after the owner's
  RotateClusterKey, the first ClusterKeyPublished of the next epoch (chain order) by any live
  member holding the current epoch wins — a later one is rejected, so a leader that went
  offline cannot stall a rotation (its fallbacks publish instead, ``worker/chain_duties.py``);
- handovers are accepted only from a live member holding that epoch, to a passed, non-revoked
  worker, once per (worker, epoch);
- a revoked worker keeps nothing it did not hold already and can never register again.

:meth:`Membership.apply` answers ``None`` for an accepted message or the reason it was
rejected (what every worker records). Must not: touch the network, hold any secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from phat_runtime.chain.blocks import ChainBlock
from phat_runtime.chain.protocol import (
    ClusterKeyPublished,
    CreateCluster,
    KeyHandover,
    Message,
    RegisterWorker,
    RevokeWorker,
    RotateClusterKey,
    UpdatePolicy,
    cluster_id,
    decode_message,
)
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import ProtocolError
from phat_runtime.tee.policy import Policy
from phat_runtime.tee.verify import detect_kind, verify_worker_quote

MEMBERSHIP_MESSAGES = (CreateCluster, UpdatePolicy, RegisterWorker, KeyHandover,
                       ClusterKeyPublished, RotateClusterKey, RevokeWorker)


def is_membership(message: Message) -> bool:
    return isinstance(message, MEMBERSHIP_MESSAGES)


@dataclass
class Member:
    """A worker's registration and what became of it."""

    identity: bytes
    ecdh: bytes
    platform: str
    rpc_url: str
    registered_at: int  # chain block of the (latest) registration
    passed: bool
    reason: str = ""  # every failing check, when not passed
    tcb_status: str | None = None
    measurement: str = ""  # the platform's main measurement, hex
    revoked_at: int | None = None
    epochs: set[int] = field(default_factory=set)  # key epochs it holds (published or received)

    @property
    def live(self) -> bool:
        """Passed the policy and not revoked: may receive keys and serve."""
        return self.passed and self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        from phat_runtime.crypto.accounts import to_ss58

        return {"identity": to_ss58(self.identity), "identity_hex": "0x" + self.identity.hex(),
                "ecdh": "0x" + self.ecdh.hex(), "platform": self.platform, "rpc_url": self.rpc_url,
                "registered_at": self.registered_at, "passed": self.passed, "reason": self.reason,
                "tcb_status": self.tcb_status, "measurement": self.measurement,
                "revoked_at": self.revoked_at, "epochs": sorted(self.epochs), "live": self.live}


@dataclass(frozen=True)
class EpochKey:
    """The public halves of one cluster key epoch, as published on chain."""

    epoch: int
    identity: bytes  # sr25519 public key of the cluster key
    ecdh: bytes  # X25519 public key: what Call payloads are sealed to
    published_at: int  # chain block; the epoch is in force for blocks after it
    publisher: bytes


@dataclass(frozen=True)
class MembershipEvent:
    """What became of one membership message: where it was, who sent it, and ``reason`` —
    None if it was accepted."""

    block: int
    extrinsic: int
    position: int
    signer: bytes
    message: Message
    reason: str | None


class Membership:
    """The membership of cluster ``cluster`` as of chain block :attr:`cursor`."""

    def __init__(self, cluster: bytes) -> None:
        self.cluster = cluster
        self.owner: bytes | None = None
        self.policy: Policy | None = None
        self.genesis_worker: bytes | None = None
        self.created_at: int | None = None
        self.members: dict[bytes, Member] = {}  # in registration order
        self.epochs: dict[int, EpochKey] = {}
        self.rotation_requested_at: int | None = None
        self.cursor = 0  # the last chain block applied

    # --- reading -------------------------------------------------------------------------------
    @property
    def created(self) -> bool:
        return self.owner is not None

    @property
    def current_epoch(self) -> int | None:
        return max(self.epochs) if self.epochs else None

    def epoch_at(self, block: int) -> int | None:
        """The key epoch in force for chain block ``block`` (published strictly before it)."""
        live = [e.epoch for e in self.epochs.values() if e.published_at < block]
        return max(live) if live else None

    def live_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.live]

    def holders(self, epoch: int | None) -> list[Member]:
        """The live members holding key epoch ``epoch``, in registration order: rank 0 hands
        that epoch over at once, rank k once a handover has been pending k × the fallback
        delay (``worker/chain_duties.py``; the same order on every worker)."""
        if epoch is None:
            return []
        return [m for m in self.members.values() if m.live and epoch in m.epochs]

    def leader(self) -> Member | None:
        """The earliest-registered live member holding the current epoch: rank 0 of
        :meth:`holders` — the one that publishes a rotated key at once and hands keys over
        first (deterministic on every worker)."""
        holders = self.holders(self.current_epoch)
        return holders[0] if holders else None

    def pending_handovers(self) -> list[tuple[bytes, int]]:
        """(worker, epoch) pairs a live member still needs: every epoch, so it can replay
        state and payloads sealed under any of them."""
        return [(m.identity, e) for m in self.live_members() for e in sorted(self.epochs)
                if e not in m.epochs]

    def is_trusted(self, worker: bytes) -> bool:
        member = self.members.get(worker)
        return member is not None and member.live

    # --- applying ------------------------------------------------------------------------------
    def apply_block(self, block: ChainBlock) -> list[MembershipEvent]:
        """Apply every membership message of this cluster in ``block`` (in extrinsic order, then
        remark order), and advance :attr:`cursor`. Blocks at or before the cursor are skipped
        (already applied). Returns what happened to each message, accepted or not."""
        out: list[MembershipEvent] = []
        if block.number <= self.cursor:
            return out
        for position, remark in block.numbered():
            try:
                message = decode_message(remark.data)
            except ProtocolError:
                continue  # the state side records undecodable remarks
            if not is_membership(message) or not self._ours(message, remark.signer):
                continue
            reason = self.apply(message, remark.signer, block.number, block.timestamp_ms)
            out.append(MembershipEvent(block.number, remark.extrinsic, position, remark.signer, message, reason))
        self.cursor = block.number
        return out

    def _ours(self, message: Message, signer: bytes) -> bool:
        if isinstance(message, CreateCluster):
            return cluster_id(signer, message.salt) == self.cluster
        return getattr(message, "cluster", None) == self.cluster

    def apply(self, message: Message, signer: bytes, block: int, timestamp_ms: int) -> str | None:
        """Apply one membership message sent by ``signer`` in chain block ``block``; None if
        accepted, else the reason every worker records for skipping it."""
        if isinstance(message, CreateCluster):
            return self._create(message, signer, block)
        if not self.created:
            return "the cluster does not exist yet (no CreateCluster before this block)"
        if isinstance(message, UpdatePolicy):
            if signer != self.owner:
                return "only the cluster owner may update the policy"
            self.policy = message.policy
            return None
        if isinstance(message, RegisterWorker):
            return self._register(message, signer, block, timestamp_ms)
        if isinstance(message, ClusterKeyPublished):
            return self._published(message, signer, block)
        if isinstance(message, KeyHandover):
            return self._handover(message, signer)
        if isinstance(message, RotateClusterKey):
            if signer != self.owner:
                return "only the cluster owner may rotate the cluster key"
            if self.current_epoch is None:
                return "the cluster has no key yet: nothing to rotate"
            if self.rotation_requested_at is not None:
                return f"a rotation requested at block {self.rotation_requested_at} is still pending"
            self.rotation_requested_at = block
            return None
        if isinstance(message, RevokeWorker):
            if signer != self.owner:
                return "only the cluster owner may revoke a worker"
            member = self.members.get(message.worker)
            if member is None:
                return "no such worker is registered in this cluster"
            if member.revoked_at is not None:
                return f"the worker was already revoked at block {member.revoked_at}"
            member.revoked_at = block
            return None
        return f"{type(message).__name__} is not a membership message"

    def _create(self, message: CreateCluster, signer: bytes, block: int) -> str | None:
        if self.created:
            return "the cluster already exists"
        if cluster_id(signer, message.salt) != self.cluster:  # pragma: no cover - filtered by id
            return "this CreateCluster makes another cluster"
        self.owner, self.policy = signer, message.policy
        self.genesis_worker, self.created_at = message.genesis_worker, block
        return None

    def _register(self, message: RegisterWorker, signer: bytes, block: int, timestamp_ms: int) -> str | None:
        if signer != message.identity:
            return "a worker registers itself: the extrinsic must be signed by the registered identity"
        previous = self.members.get(message.identity)
        if previous is not None and previous.revoked_at is not None:
            return f"the worker was revoked at block {previous.revoked_at} and may not register again"
        if previous is not None and previous.passed and previous.ecdh != message.ecdh:
            return "the worker is registered with another ECDH key; a new key needs a new identity"
        kind = detect_kind(message.quote)
        if kind != message.platform:
            verdict_reason = (f"the quote is a {kind or 'unrecognisable'} quote, the registration "
                              f"says {message.platform}")
            self._record(message, block, passed=False, reason=verdict_reason, previous=previous)
            return f"attestation failed: {verdict_reason}"
        assert self.policy is not None
        collateral = message.collateral.decode("utf-8", "replace") if message.collateral else None
        verdict = verify_worker_quote(message.quote, collateral, identity_pk=message.identity,
                                      ecdh_pk=message.ecdh, at=timestamp_ms // 1000, policy=self.policy)
        measurement = next((v.hex() for v in verdict.measurements.values() if isinstance(v, bytes)), "")
        if not verdict.ok:
            reason = "; ".join(f"{c.name}: {c.detail}" for c in verdict.failures)
            self._record(message, block, passed=False, reason=reason, previous=previous,
                         tcb=verdict.tcb_status, measurement=measurement)
            return f"attestation failed: {reason}"
        self._record(message, block, passed=True, reason="", previous=previous, tcb=verdict.tcb_status,
                     measurement=measurement)
        return None

    def _record(self, message: RegisterWorker, block: int, *, passed: bool, reason: str,
                previous: Member | None, tcb: str | None = None, measurement: str = "") -> None:
        keep = previous is not None and previous.passed
        if keep and not passed:
            return  # a failed re-registration does not undo a passed one
        member = Member(message.identity, message.ecdh, message.platform, message.rpc_url, block,
                        passed, reason, tcb, measurement,
                        epochs=set(previous.epochs) if previous is not None else set())
        self.members[message.identity] = member

    def _published(self, message: ClusterKeyPublished, signer: bytes, block: int) -> str | None:
        member = self.members.get(signer)
        if member is None or not member.live:
            return "only a registered, policy-passing, non-revoked worker publishes cluster keys"
        current = self.current_epoch
        first = self.epochs.get(message.epoch)
        if first is not None:
            return (f"key epoch {message.epoch} was already published at block {first.published_at} "
                    "(the first publication in chain order wins; a later one is discarded)")
        if current is None:
            if message.epoch != 0:
                return f"the first cluster key is epoch 0, not {message.epoch}"
            if signer != self.genesis_worker:
                return "epoch 0 is published by the cluster's genesis worker"
        else:
            if self.rotation_requested_at is None:
                return "no rotation is pending: a new key epoch needs the owner's RotateClusterKey"
            if message.epoch != current + 1:
                return f"the next key epoch is {current + 1}, not {message.epoch}"
            if current not in member.epochs:
                return f"a rotated key is published by a live member holding the current key epoch {current}"
            self.rotation_requested_at = None
        self.epochs[message.epoch] = EpochKey(message.epoch, message.identity, message.ecdh, block, signer)
        member.epochs.add(message.epoch)
        return None

    def _handover(self, message: KeyHandover, signer: bytes) -> str | None:
        sender = self.members.get(signer)
        if sender is None or not sender.live or message.epoch not in sender.epochs:
            return f"the sender is not a live member holding key epoch {message.epoch}"
        target = self.members.get(message.to_worker)
        if target is None or not target.live:
            return "keys go only to registered, policy-passing, non-revoked workers"
        if message.epoch in target.epochs:
            return f"the worker already holds key epoch {message.epoch}"
        target.epochs.add(message.epoch)
        return None

    # --- persistence (public data) ----------------------------------------------------------------
    def to_json(self) -> str:
        from phat_runtime.chain.policy_codec import encode_policy
        from phat_runtime.codec.scale import Writer

        policy = None
        if self.policy is not None:
            w = Writer()
            encode_policy(w, self.policy)
            policy = w.finish().hex()
        doc = {
            "cluster": self.cluster.hex(), "owner": _hex(self.owner), "policy": policy,
            "genesis_worker": _hex(self.genesis_worker), "created_at": self.created_at,
            "rotation_requested_at": self.rotation_requested_at, "cursor": self.cursor,
            "members": [{**vars(m), "identity": m.identity.hex(), "ecdh": m.ecdh.hex(),
                         "epochs": sorted(m.epochs)} for m in self.members.values()],
            "epochs": [{"epoch": e.epoch, "identity": e.identity.hex(), "ecdh": e.ecdh.hex(),
                        "published_at": e.published_at, "publisher": e.publisher.hex()}
                       for e in sorted(self.epochs.values(), key=lambda e: e.epoch)],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Membership:
        from phat_runtime.chain.policy_codec import decode_policy
        from phat_runtime.codec.scale import Reader

        doc = json.loads(text)
        out = cls(bytes.fromhex(doc["cluster"]))
        out.owner, out.genesis_worker = _unhex(doc["owner"]), _unhex(doc["genesis_worker"])
        if doc["policy"] is not None:
            r = Reader(bytes.fromhex(doc["policy"]))
            out.policy = decode_policy(r)
        out.created_at, out.cursor = doc["created_at"], doc["cursor"]
        out.rotation_requested_at = doc["rotation_requested_at"]
        for m in doc["members"]:
            member = Member(**{**m, "identity": bytes.fromhex(m["identity"]),
                               "ecdh": bytes.fromhex(m["ecdh"]), "epochs": set(m["epochs"])})
            out.members[member.identity] = member
        for e in doc["epochs"]:
            out.epochs[e["epoch"]] = EpochKey(e["epoch"], bytes.fromhex(e["identity"]),
                                              bytes.fromhex(e["ecdh"]), e["published_at"],
                                              bytes.fromhex(e["publisher"]))
        return out

    def digest(self) -> bytes:
        """blake2_256 of the canonical JSON: equal on every worker that applied the same blocks."""
        return blake2_256(self.to_json().encode())


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)
