"""Membership state machine (no network): registration verdicts at the block's time, key
epochs, handovers, rotation and revocation — the same answers on every worker."""

from __future__ import annotations

import os
from pathlib import Path

from phat_runtime.chain import (
    ChainBlock,
    ClusterKeyPublished,
    CreateCluster,
    KeyHandover,
    Membership,
    RegisterWorker,
    Remark,
    RevokeWorker,
    RotateClusterKey,
    UpdatePolicy,
    cluster_id,
    seal_cluster_key,
)
from phat_runtime.tee import simulated
from phat_runtime.tee.identity import WorkerIdentity, worker_report_data
from phat_runtime.tee.policy import Policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "attestation"
OWNER = bytes([7]) * 32
SALT = b"salt"
CLUSTER = cluster_id(OWNER, SALT)
T = 1_780_000_000_000  # block time, ms
POLICY = Policy.from_dict({"platforms": ["simulated"],
                           "simulated": {"measurement": [simulated.DEFAULT_MEASUREMENT.hex()]}})


def register(who: WorkerIdentity, *, measurement: bytes = simulated.DEFAULT_MEASUREMENT,
             ecdh: bytes | None = None, url: str = "http://w") -> RegisterWorker:
    quote = simulated.encode_quote(measurement, worker_report_data(who.public_key, who.ecdh_public_key))
    return RegisterWorker(CLUSTER, who.public_key, ecdh or who.ecdh_public_key, "simulated", quote, b"", url)


def block(number: int, *msgs: tuple[bytes, object]) -> ChainBlock:
    return ChainBlock(number, bytes(32), bytes(32), T + number * 6000,
                      tuple(Remark(i, signer, m.encode()) for i, (signer, m) in enumerate(msgs)))  # type: ignore[attr-defined]


def published(secret_of: WorkerIdentity, epoch: int) -> ClusterKeyPublished:
    key = WorkerIdentity.generate()  # stands in for the cluster key's public halves
    return ClusterKeyPublished(CLUSTER, epoch, key.public_key, key.ecdh_public_key)


def test_registration_verdicts_keys_rotation_revocation() -> None:
    g, w2, w3 = (WorkerIdentity.generate() for _ in range(3))
    m = Membership(CLUSTER)
    ev = m.apply_block(block(1, (g.public_key, register(g))))
    assert ev[0].reason and "does not exist" in ev[0].reason
    ev = m.apply_block(block(2, (OWNER, CreateCluster(SALT, POLICY, g.public_key)),
                             (g.public_key, register(g)), (w2.public_key, register(w2)),
                             (w2.public_key, register(w3))))
    assert [e.reason for e in ev[:3]] == [None, None, None]
    assert "signed by the registered identity" in (ev[3].reason or "")
    assert m.owner == OWNER and m.is_trusted(g.public_key) and m.is_trusted(w2.public_key)
    assert m.current_epoch is None and m.leader() is None
    # only the genesis worker publishes epoch 0
    ev = m.apply_block(block(3, (w2.public_key, published(w2, 0)), (g.public_key, published(g, 0))))
    assert "genesis worker" in (ev[0].reason or "") and ev[1].reason is None
    assert m.current_epoch == 0 and m.epoch_at(3) is None and m.epoch_at(4) == 0
    assert m.leader().identity == g.public_key  # type: ignore[union-attr]
    assert m.pending_handovers() == [(w2.public_key, 0)]
    box = seal_cluster_key(os.urandom(64), worker_ecdh_public=w2.ecdh_public_key, cluster=CLUSTER,
                           to_worker=w2.public_key, epoch=0, sender=g.public_key)
    ev = m.apply_block(block(4, (g.public_key, KeyHandover(CLUSTER, w2.public_key, 0, box)),
                             (g.public_key, KeyHandover(CLUSTER, w2.public_key, 0, box))))
    assert ev[0].reason is None and "already holds" in (ev[1].reason or "")
    assert m.pending_handovers() == []
    # w3 fails the policy: wrong measurement → recorded, no key may go to it
    ev = m.apply_block(block(5, (w3.public_key, register(w3, measurement=bytes(32)))))
    assert "measurement" in (ev[0].reason or "") and not m.members[w3.public_key].passed
    ev = m.apply_block(block(6, (g.public_key, KeyHandover(CLUSTER, w3.public_key, 0, box))))
    assert "policy-passing" in (ev[0].reason or "")
    # rotation by the owner only; published by the leader; revoked workers get nothing more
    ev = m.apply_block(block(7, (g.public_key, RotateClusterKey(CLUSTER)),
                             (OWNER, RevokeWorker(CLUSTER, w2.public_key)), (OWNER, RotateClusterKey(CLUSTER))))
    assert "owner" in (ev[0].reason or "") and ev[1].reason is None and ev[2].reason is None
    ev = m.apply_block(block(8, (w2.public_key, published(w2, 1)), (g.public_key, published(g, 1))))
    assert "non-revoked" in (ev[0].reason or "") and ev[1].reason is None
    assert m.epoch_at(9) == 1 and m.pending_handovers() == [] and not m.is_trusted(w2.public_key)
    ev = m.apply_block(block(9, (w2.public_key, register(w2))))
    assert "revoked" in (ev[0].reason or "")
    # owner-only policy update
    ev = m.apply_block(block(10, (g.public_key, UpdatePolicy(CLUSTER, Policy.permissive()))))
    assert "owner" in (ev[0].reason or "")
    # persistence round-trips exactly
    again = Membership.from_json(m.to_json())
    assert again.to_json() == m.to_json() and again.digest() == m.digest() and again.cursor == 10
    assert m.apply_block(block(10)) == [] and m.cursor == 10  # applied blocks are skipped


def test_bad_report_data_binding_and_real_quote_at_block_time() -> None:
    g, other = WorkerIdentity.generate(), WorkerIdentity.generate()
    m = Membership(CLUSTER)
    m.apply_block(block(1, (OWNER, CreateCluster(SALT, POLICY, g.public_key))))
    ev = m.apply_block(block(2, (g.public_key, register(g, ecdh=other.ecdh_public_key))))
    assert "report_data" in (ev[0].reason or "")
    # A real SGX quote, verified at the block's time: its TCB status is not UpToDate, and its
    # report data binds no worker key. Same answer for the same chain, whoever computes it.
    quote = (FIXTURES / "sgx_quote").read_bytes()
    collateral = (FIXTURES / "sgx_quote_collateral.json").read_bytes()
    sgx = Policy.from_dict({"platforms": ["sgx"]})
    reasons = []
    for _ in range(2):
        mm = Membership(CLUSTER)
        mm.apply_block(block(1, (OWNER, CreateCluster(SALT, sgx, g.public_key))))
        pinned = ChainBlock(2, bytes(32), bytes(32), 1752919277_000, (Remark(0, g.public_key, RegisterWorker(
            CLUSTER, g.public_key, g.ecdh_public_key, "sgx", quote, collateral, "http://w").encode()),))
        reasons.append(mm.apply_block(pinned)[0].reason)
    assert reasons[0] == reasons[1]
    assert "tcb_status: ConfigurationAndSWHardeningNeeded not accepted" in (reasons[0] or "")
    assert "report_data" in (reasons[0] or "")
    # the platform field must match the quote
    ev = m.apply_block(block(3, (g.public_key, RegisterWorker(CLUSTER, g.public_key, g.ecdh_public_key,
                                                               "sgx", register(g).quote, b"", "u"))))
    assert "simulated quote" in (ev[0].reason or "")


def _handover(sender: WorkerIdentity, to: WorkerIdentity, epoch: int) -> tuple[bytes, KeyHandover]:
    box = seal_cluster_key(os.urandom(64), worker_ecdh_public=to.ecdh_public_key, cluster=CLUSTER,
                           to_worker=to.public_key, epoch=epoch, sender=sender.public_key)
    return sender.public_key, KeyHandover(CLUSTER, to.public_key, epoch, box)


def test_fallbacks_hand_over_and_the_first_rotated_key_published_wins() -> None:
    """The leader (g) is gone: any other live holder of the epoch may hand it over, and the
    first ClusterKeyPublished of the next epoch by a holder of the current one wins — later ones
    are rejected with the reason, the same way on every applier."""
    g, w2, w3, w4 = (WorkerIdentity.generate() for _ in range(4))
    rival2, rival3 = published(w2, 1), published(w3, 1)
    chain = [
        block(2, (OWNER, CreateCluster(SALT, POLICY, g.public_key)), (g.public_key, register(g)),
              (w2.public_key, register(w2)), (w3.public_key, register(w3))),
        block(3, (g.public_key, published(g, 0))),
        block(4, _handover(g, w2, 0), _handover(g, w3, 0)),
        # g goes offline. A newcomer gets epoch 0 from w2, a fallback; w3's duplicate is harmless.
        block(5, (w4.public_key, register(w4))),
        block(6, _handover(w2, w4, 0), _handover(w3, w4, 0)),
        block(7, (OWNER, RotateClusterKey(CLUSTER))),
        # A revoked member is no holder any more (not in the fallback order).
        block(8, (OWNER, RevokeWorker(CLUSTER, w4.public_key))),
        block(9, (w3.public_key, rival3), (w2.public_key, rival2)),
        block(10, (g.public_key, published(g, 1))),
    ]
    results = []
    for _ in range(2):  # two appliers of the same chain
        m = Membership(CLUSTER)
        events = [e for b in chain for e in m.apply_block(b)]
        results.append((m.digest(), [(e.block, e.position, e.reason) for e in events]))
        if len(results) == 1:
            assert [h.identity for h in m.holders(0)] == [g.public_key, w2.public_key, w3.public_key]
            reasons = {(e.block, e.extrinsic): e.reason for e in events}
            assert reasons[(6, 0)] is None and "already holds key epoch 0" in (reasons[(6, 1)] or "")
            assert reasons[(9, 0)] is None  # w3, at rank 2, published first: its key is epoch 1
            assert "key epoch 1 was already published at block 9" in (reasons[(9, 1)] or "")
            assert "first publication in chain order wins" in (reasons[(9, 1)] or "")
            assert "already published at block 9" in (reasons[(10, 0)] or "")
            assert m.epochs[1].publisher == w3.public_key and m.epochs[1].identity == rival3.identity
            assert m.rotation_requested_at is None and m.current_epoch == 1
            # The winner is the only holder of epoch 1: the leader for its handovers.
            assert m.leader().identity == w3.public_key  # type: ignore[union-attr]
            assert m.pending_handovers() == [(g.public_key, 1), (w2.public_key, 1)]
    assert results[0] == results[1]


def test_a_rotated_key_needs_a_pending_rotation_and_a_holder_of_the_current_epoch() -> None:
    g, w2 = WorkerIdentity.generate(), WorkerIdentity.generate()
    m = Membership(CLUSTER)
    m.apply_block(block(2, (OWNER, CreateCluster(SALT, POLICY, g.public_key)), (g.public_key, register(g)),
                        (w2.public_key, register(w2))))
    m.apply_block(block(3, (g.public_key, published(g, 0))))
    ev = m.apply_block(block(4, (g.public_key, published(g, 1))))
    assert "no rotation is pending" in (ev[0].reason or "")
    ev = m.apply_block(block(5, (OWNER, RotateClusterKey(CLUSTER)), (w2.public_key, published(w2, 1)),
                             (g.public_key, published(g, 2))))
    assert ev[0].reason is None
    assert "a live member holding the current key epoch 0" in (ev[1].reason or "")  # w2 has no key yet
    assert "the next key epoch is 1, not 2" in (ev[2].reason or "")
    assert m.rotation_requested_at == 5
    # In the other order inside one block, the other publisher wins: chain order decides.
    m.apply_block(block(6, _handover(g, w2, 0)))
    ev = m.apply_block(block(7, (w2.public_key, published(w2, 1)), (g.public_key, published(g, 1))))
    assert ev[0].reason is None and "already published at block 7" in (ev[1].reason or "")
    assert m.epochs[1].publisher == w2.public_key and [h.identity for h in m.holders(1)] == [w2.public_key]
