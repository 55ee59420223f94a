"""Member duties and key settling over hand-made blocks (no chain): the duties a worker owes
are computed by the real ``MemberDuties.due()``, put in blocks in a chosen order, and applied
by each worker's real ``ChainSource`` (membership, key ring, encrypted state).

The leader is offline: its fallbacks wait their turn, two of them race to publish the rotated
key, and the loser must discard its own key — durably, never sealing state or opening payloads
with it — and take the winner's by handover."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from phat_runtime.chain import (
    Call,
    CallPayload,
    ChainBlock,
    ClusterKeyPublished,
    CreateCluster,
    KeyHandover,
    Message,
    Remark,
    RotateClusterKey,
    cluster_id,
    seal_call_payload,
)
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.tee import simulated
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.keyring import public_halves
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig

OWNER = bytes([9]) * 32
SALT = b"fallback"
CLUSTER = cluster_id(OWNER, SALT)
T = 1_780_000_000_000
POLICY = Policy.from_dict({"platforms": ["simulated"],
                           "simulated": {"measurement": [simulated.DEFAULT_MEASUREMENT.hex()]}})


class Chain:
    """Blocks made by hand, applied to the workers that are 'online'."""

    def __init__(self) -> None:
        self.number = itertools.count(1)

    def block(self, workers: list[Worker], *msgs: tuple[bytes, Message]) -> int:
        number = next(self.number)
        b = ChainBlock(number, blake2_256(number.to_bytes(8, "little")), bytes(32), T + number * 6000,
                       tuple(Remark(i, signer, m.encode()) for i, (signer, m) in enumerate(msgs)))
        for w in workers:
            assert w.chain is not None
            w.chain.apply(b)
        return number


def _worker(root: Path, name: str, fallback_s: float) -> Worker:
    return Worker(WorkerConfig(data_dir=root / name, chain=ChainConfig(
        "ws://127.0.0.1:9", CLUSTER, checkpoint_every=0, rpc_url=f"http://{name}", fallback_s=fallback_s)))


def _due(w: Worker) -> list[tuple[bytes, Message]]:
    assert w.duties is not None
    return [(w.identity.public_key, m) for m in w.duties.due()]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    made = [_worker(tmp_path, "a", 30.0), _worker(tmp_path, "b", 60.0), _worker(tmp_path, "c", 0.0)]
    yield made
    for w in made:
        w.stop()


def test_fallbacks_take_over_and_a_losing_rotated_key_is_discarded(workers: list[Worker], tmp_path: Path) -> None:
    a, b, c = workers
    chain = Chain()
    chain.block(workers, (OWNER, CreateCluster(SALT, POLICY, a.identity.public_key)))
    chain.block(workers, *[d for w in workers for d in _due(w)])  # three registrations
    assert [_due(w) for w in (b, c)] == [[], []]
    published = chain.block(workers, *_due(a))  # the genesis worker publishes epoch 0
    assert a.keyring.has(0) and a.keyring.proposed_epochs() == []  # type: ignore[union-attr]
    assert published and a.ready
    handovers = _due(a)
    assert sorted(type(m).__name__ for _, m in handovers) == ["KeyHandover", "KeyHandover"]
    assert _due(b) == [] and _due(c) == []  # no key yet: nothing to hand over
    chain.block(workers, *handovers)
    assert b.ready and c.ready

    # The leader a goes offline. The owner rotates the key.
    online = [b, c]
    rotation = chain.block(online, (OWNER, RotateClusterKey(CLUSTER)))
    # b is rank 1 with a 60 s fallback: not its turn, and it generates nothing yet.
    assert _due(b) == [] and b.keyring.proposed_epochs() == []  # type: ignore[union-attr]
    # c is rank 2 with a 0 s fallback: its turn at once. It proposes a key (on disk), not held.
    (c_pub,) = _due(c)
    assert isinstance(c_pub[1], ClusterKeyPublished) and c_pub[1].epoch == 1
    assert c.keyring.proposal(1) is not None and not c.keyring.has(1)  # type: ignore[union-attr]
    # b's turn comes (its 60 s passed): it proposes its own key for epoch 1 too — a race.
    b.duties.fallback_s = 0.0  # type: ignore[union-attr]
    (b_pub,) = _due(b)
    assert isinstance(b_pub[1], ClusterKeyPublished) and b_pub[1].identity != c_pub[1].identity
    losing = b.keyring.proposal(1)  # type: ignore[union-attr]
    assert losing is not None and not b.keyring.has(1)  # type: ignore[union-attr]
    # Chain order: c's publication first. c holds epoch 1; b's proposal is discarded.
    race = chain.block(online, c_pub, b_pub)
    assert race == rotation + 1
    for w in online:
        assert [(r["extrinsic"], r["signer_hex"], r["reason"]) for r in w.rejections(since_block=race)] == [
            (1, "0x" + b.identity.public_key.hex(), f"key epoch 1 was already published at block {race} "
             "(the first publication in chain order wins; a later one is discarded)")]
    assert c.keyring.has(1) and c.keyring.get(1) == c.keyring.all()[1]  # type: ignore[union-attr]
    assert public_halves(c.keyring.get(1)) == (c_pub[1].identity, c_pub[1].ecdh)  # type: ignore[union-attr,arg-type]
    assert not b.keyring.has(1) and b.keyring.proposed_epochs() == []  # type: ignore[union-attr]
    assert b.chain._keys_for(race + 1) == "waiting for the cluster key of epoch 1 (handover from a member)"  # type: ignore[union-attr]
    # c is now the only holder of epoch 1, so the leader for its handovers: at once (rank 0).
    # b holds no epoch-1 key, so it hands nothing over (and never its discarded one).
    assert _due(b) == []
    handovers = _due(c)
    assert sorted((m.to_worker, m.epoch) for _, m in handovers if isinstance(m, KeyHandover)) == sorted(
        [(a.identity.public_key, 1), (b.identity.public_key, 1)])
    chain.block(online, *handovers)
    assert b.keyring.get(1) == c.keyring.get(1) != losing  # type: ignore[union-attr]
    assert b.chain.status.waiting is None  # type: ignore[union-attr]
    # A Call sealed to the published epoch-1 key opens on both; both roots agree.
    sender = bytes([5]) * 32
    system = c.system_contract
    assert system is not None
    sealed = seal_call_payload(CallPayload(b"\x00"), cluster_ecdh_public=c_pub[1].ecdh, cluster=CLUSTER,
                               contract=system, epoch=1, sender=sender)
    call = chain.block(online, (sender, Call(CLUSTER, system, 1, sealed, 10**9)))
    for w in online:
        assert w.rejections(since_block=call) == []
        assert w.chain.status.last_block == call  # type: ignore[union-attr]
    assert b.chain.journal.root(call) == c.chain.journal.root(call) is not None  # type: ignore[union-attr]
    with b.store.reader() as view:  # every value, those sealed under epoch 1 included, opens
        assert list(view.iter_prefix(b""))

    # Durable: b restarted from its data dir holds the winner's key and no proposal.
    b.stop()
    again = _worker(tmp_path, "b", 0.0)
    try:
        assert again.keyring.get(1) == c.keyring.get(1) and again.keyring.proposed_epochs() == []  # type: ignore[union-attr]
        assert again.ready and again.height == call
        with again.store.reader() as view:
            assert list(view.iter_prefix(b""))
    finally:
        again.stop()
    workers.remove(b)
