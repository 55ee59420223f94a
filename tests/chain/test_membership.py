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
