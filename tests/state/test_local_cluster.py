"""The runtime over the encrypted store: LocalCluster commits each transaction (or each
``new_block()``) as one block, survives a restart with the same cluster key, refuses another
key, and reaches the same state root as the same run over a MemoryBackend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phat_runtime import LocalCluster
from phat_runtime.crypto.accounts import dev_account
from phat_runtime.errors import ConfigError, WrongStateKey
from phat_runtime.runtime.local import DEV_ENDOWMENT
from phat_runtime.state import EncryptedStore, MemoryBackend, state_root

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
TOKEN = EXAMPLES / "token" / "token.contract"
FLIPPER = EXAMPLES / "flipper" / "flipper.contract"
BOB = bytes([0x0B]) * 32


def _script(cluster: LocalCluster) -> tuple[bytes, bytes]:
    token = cluster.deploy(TOKEN, "new", [10**12])
    flipper = cluster.deploy(FLIPPER, "new", [True])
    assert token.transact("transfer", [BOB, 1234]).success
    assert flipper.transact("flip").success
    with cluster.new_block():
        for amount in (1, 2, 3):
            assert token.transact("transfer", [BOB, amount]).success
    return token.address, flipper.address


def test_contract_state_survives_a_restart(db_path: Path, secret: bytes) -> None:
    with EncryptedStore.open(db_path, secret) as store:
        cluster = LocalCluster(state=store)
        token_address, flipper_address = _script(cluster)
        # genesis 0, two deploys, two transactions, one grouped block of three
        assert store.checkpoint is not None and store.checkpoint.number == 5
        root = store.state_root
        alice = dev_account("alice")
        cluster.runtime.records.set_balance(alice, 5)  # spend (almost) all of Alice's endowment
        with cluster.new_block():
            pass
    with EncryptedStore.open(db_path, secret) as store:
        assert store.checkpoint is not None and store.checkpoint.number == 6
        cluster = LocalCluster(state=store)
        assert cluster.block.number == 6  # resumed, not a new genesis...
        assert cluster.balance("alice") == 5  # ...so no second endowment
        assert cluster.balance("bob") == DEV_ENDOWMENT
        token = cluster.contract(token_address, cluster.upload(TOKEN))
        flipper = cluster.contract(flipper_address, cluster.upload(FLIPPER))
        assert store.checkpoint.number == 6  # re-uploading known code writes no block
        assert token.query("balance_of", [BOB]).output == 1240
        assert flipper.query("get").output is False
        assert store.verify() == store.state_root != root  # block 6 changed Alice's balance
        assert token.transact("transfer", [BOB, 10]).success
        assert cluster.block.number == store.checkpoint.number == 7


def test_a_wrong_cluster_key_cannot_read_the_state(db_path: Path, secret: bytes) -> None:
    with EncryptedStore.open(db_path, secret) as store:
        LocalCluster(state=store).deploy(FLIPPER, "new", [True])
    with pytest.raises(WrongStateKey, match="sealed under another cluster key"):
        EncryptedStore.open(db_path, os.urandom(64))


def test_same_transactions_same_root_as_memory(db_path: Path, secret: bytes) -> None:
    memory = MemoryBackend()
    _script(LocalCluster(state=memory))
    with EncryptedStore.open(db_path, secret, epoch=9) as store:
        _script(LocalCluster(state=store))
        assert store.state_root == state_root(memory.iter_prefix(b""))
        assert list(store.iter_prefix(b"")) == list(memory.iter_prefix(b""))


def test_a_failed_block_leaves_no_trace(db_path: Path, secret: bytes) -> None:
    with EncryptedStore.open(db_path, secret) as store:
        cluster = LocalCluster(state=store)
        token = cluster.deploy(TOKEN, "new", [10**12])
        checkpoint, block = store.checkpoint, cluster.block
        with pytest.raises(RuntimeError), cluster.new_block():
            assert token.transact("transfer", [BOB, 99]).success
            raise RuntimeError("the block's pipeline failed")
        assert store.checkpoint == checkpoint and cluster.block == block
        assert token.query("balance_of", [BOB]).output == 0
        with pytest.raises(ConfigError, match="do not nest"), cluster.new_block(), cluster.new_block():
            pass


def test_uploading_new_code_is_a_block_of_its_own(db_path: Path, secret: bytes) -> None:
    with EncryptedStore.open(db_path, secret) as store:
        cluster = LocalCluster(state=store)
        cluster.upload(FLIPPER)
        assert store.checkpoint is not None and store.checkpoint.number == 1 and store.pending == 0
        cluster.upload(FLIPPER)
        assert store.checkpoint.number == 1
