"""The sealed key ring: held keys versus this worker's proposals, settled against the chain's
publication — a winning proposal becomes held, a losing one is gone, both durably."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from phat_runtime.tee.backends import PlatformConfig, make_platform
from phat_runtime.worker.keyring import KEYRING_FILE, KeyRing, generate_cluster_key, public_halves


def test_proposals_are_settled_by_the_published_halves_and_survive_restarts(tmp_path: Path) -> None:
    platform = make_platform("simulated", PlatformConfig(tmp_path))
    path = tmp_path / KEYRING_FILE
    ring = KeyRing(path, platform)
    mine = ring.propose(1)
    assert ring.propose(1) == mine and ring.proposal(1) == mine  # one proposal per epoch
    assert not ring.has(1) and ring.get(1) is None and ring.all() == {}  # not held: used for nothing
    assert "proposed=[1]" in repr(ring) and mine.hex() not in repr(ring)
    assert KeyRing(path, platform).proposal(1) == mine  # on disk before it is published
    # Another member's key was published first: the proposal is discarded, for good.
    winner = generate_cluster_key()
    assert ring.settle(1, *public_halves(winner)) is None
    assert ring.proposed_epochs() == [] and not ring.has(1)
    assert KeyRing(path, platform).proposed_epochs() == []
    ring.add(1, winner)  # the winner's key, by handover
    # This worker's proposal is the published one: held from now on.
    second = ring.propose(2)
    assert ring.settle(2, *public_halves(second)) == second
    again = KeyRing(path, platform)
    assert again.all() == {1: winner, 2: second} and again.proposed_epochs() == []
    with pytest.raises(ValueError, match="held already"):
        again.propose(2)
    # A handed-over key replaces a pending proposal of its epoch.
    again.propose(3)
    third = generate_cluster_key()
    again.add(3, third)
    assert again.get(3) == third and again.proposed_epochs() == []


def test_a_key_ring_of_the_earlier_format_reads_as_held_keys(tmp_path: Path) -> None:
    platform = make_platform("simulated", PlatformConfig(tmp_path))
    secret = generate_cluster_key()
    (tmp_path / KEYRING_FILE).write_bytes(platform.seal(msgpack.packb({0: secret})))
    ring = KeyRing(tmp_path / KEYRING_FILE, platform)
    assert ring.all() == {0: secret} and ring.proposed_epochs() == []
