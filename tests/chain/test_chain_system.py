"""A chain cluster as Phala runs it (issue 14), on two workers following one real chain
(chopsticks) and over their RPC: the system contract from genesis (the same on both), a contract
whose constructor reaches SystemRef, admin granted by the cluster owner, an OnBlockEnd hook
that runs on every later block, drivers, balance_of in queries and transactions, a contract
weight reaching each worker's query pool — with equal state roots throughout."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phat_runtime.chain import ChainNode, CreateCluster, Devnet, cluster_id
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.accounts import dev_account, parse_account
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.chain_client import ChainClient
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.runtime.genesis import GENESIS_BLOCK
from phat_runtime.runtime.records import contract_address
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
SYSTEM = EXAMPLES / "system" / "system.contract"
TICKER = EXAMPLES / "ticker" / "ticker.contract"
HOOK_GAS = 10**10
#: The cluster owner the workers are configured with: not the cluster's creator (alice), to
#: show the owner is the workers' setting, whoever submitted CreateCluster.
OWNER = "bob"


def _wait(condition, what, timeout_s: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(devnet: Devnet) -> bytes:
    alice = Signer.dev("alice")
    salt = os.urandom(8)
    with ChainNode(devnet.url) as node:
        node.submit([CreateCluster(salt, Policy.from_dict({"platforms": ["simulated"]}), bytes(32))], alice)
    return cluster_id(alice.public_key, salt)


@pytest.fixture(scope="module")
def served(devnet: Devnet, cluster: bytes,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Worker, WorkerClient]]]:
    with ChainNode(devnet.url) as node:
        start = node.finalized_number()
    workers = [Worker(WorkerConfig(
        data_dir=tmp_path_factory.mktemp(f"sys{i}"), cluster_owner=dev_account(OWNER),
        chain=ChainConfig(devnet.url, cluster, start_block=start, checkpoint_every=0, dev_cluster_key=True)))
        for i in range(2)]
    with contextlib.ExitStack() as stack:  # each server starts its worker, and stops it at the end
        made = []
        for worker in workers:
            url = stack.enter_context(ServerThread(worker))
            client = WorkerClient(url, policy=development_policy())
            stack.callback(client.close)
            made.append((worker, client))
        yield made


def test_both_workers_start_from_the_same_genesis(cluster: bytes, tmp_path: Path) -> None:
    """Block 0 of a chain cluster depends on the cluster id, the system code and the owner only —
    not on the worker (identity, data dir): the same system contract address and root."""
    roots, systems = [], []
    for name in ("a", "b"):
        worker = Worker(WorkerConfig(data_dir=tmp_path / name, cluster_owner=dev_account(OWNER),
                                     chain=ChainConfig("ws://127.0.0.1:1", cluster, dev_cluster_key=True)))
        try:
            checkpoint = worker.cluster.checkpoint()
            assert checkpoint is not None and checkpoint.number == GENESIS_BLOCK.number
            roots.append(checkpoint.state_root)
            systems.append(worker.system_contract)
            assert worker.info()["cluster_owner"]["address_hex"] == "0x" + dev_account(OWNER).hex()
        finally:
            worker.stop()
    code_hash = ContractMetadata.load(SYSTEM).code_hash
    assert code_hash is not None
    assert systems[0] == systems[1] == contract_address(dev_account(OWNER), code_hash, cluster, b"")
    assert roots[0] == roots[1] != bytes(32)


def test_system_contract_hooks_drivers_balances_and_weights_through_the_chain(
        devnet: Devnet, cluster: bytes, served: list[tuple[Worker, WorkerClient]]) -> None:
    alice, owner = Signer.dev("alice"), Signer.dev(OWNER)
    (first, rpc_one), (second, rpc_two) = served
    info = rpc_one.info().raw
    assert info["system_contract"] == rpc_two.info().raw["system_contract"]
    assert info["cluster_owner"]["address_hex"] == "0x" + owner.public_key.hex()
    system_address = parse_account(info["system_contract"]["address"])
    chain = ChainClient(devnet.url, cluster, rpc_one)
    try:
        system = chain.contract(system_address, SYSTEM)
        assert system.query("System::version", signer=alice).output == [1, 0, 0]

        # A constructor that reaches SystemRef::instance() deploys through the chain.
        ticker = chain.deploy(TICKER, "new", signer=alice, salt=os.urandom(4))
        # Only the configured owner may grant admin: alice created the cluster but is not it.
        assert system.transact("System::grant_admin", [ticker.address], signer=alice).output == {
            "Err": "PermisionDenied"}
        assert system.transact("System::grant_admin", [ticker.address], signer=owner).output == {"Ok": None}
        registered = ticker.transact("register_hook", [HOOK_GAS], signer=alice)
        assert registered.output == {"Ok": None}
        hooked_at = registered.verified.receipt.block
        for worker in (first, second):
            _wait(lambda w=worker: w.chain.status.last_block >= hooked_at, "both workers at the hook's block")  # type: ignore[union-attr]
            assert [h.contract for h in worker.cluster.settings.hooks()] == [ticker.address]

        # Drivers: set through the chain, read from the other worker; later blocks run the hook.
        assert system.transact("System::grant_admin", [owner.public_key], signer=owner).output == {"Ok": None}
        driver = system.transact("System::set_driver", ["Feed", ticker.address], signer=owner)
        assert driver.output == {"Ok": None}
        weighed = system.transact("System::set_contract_weight", [ticker.address, 3], signer=owner)
        assert weighed.output == {"Ok": None}
        last = weighed.verified.receipt.block
        for worker in (first, second):
            _wait(lambda w=worker: w.chain.status.last_block >= last, "both workers at the last block")  # type: ignore[union-attr]
        on_two = rpc_two.contract(system_address, SYSTEM)
        assert parse_account(on_two.query("System::get_driver", ["Feed"], signer=alice).output) == ticker.address

        # The hook ran at the end of every block after the one that set it, on both workers.
        ticker_two = rpc_two.contract(ticker.address, TICKER)
        expected = [last - hooked_at, last]
        assert chain.contract(ticker.address, TICKER).query("ticks", signer=alice).output == expected
        assert ticker_two.query("ticks", signer=alice).output == expected
        # balance_of from an ordinary contract, in a query, through the system contract, and in
        # a transaction: served (not BadOrigin), the same on both workers. A chain cluster has no
        # way to endow an account yet (no deposit message), so every balance is 0 here;
        # tests/rpc/test_system_contract_rpc.py reads non-zero ones from a standalone worker.
        for contract in (chain.contract(ticker.address, TICKER), ticker_two):
            balance = contract.query("balance_of", [alice.public_key], signer=alice)
            assert balance.success and balance.output == [0, 0]
            assert contract.query("system_total_balance_of", [alice.public_key], signer=alice).output == 0
        in_tx = ticker.transact("balance_of", [alice.public_key], signer=alice)
        assert in_tx.success and in_tx.output == [0, 0]

        # The weight reached both workers' query pools; the same settings and roots everywhere.
        end = in_tx.verified.receipt.block
        for worker in (first, second):
            _wait(lambda w=worker: w.chain.status.last_block >= end, "both workers at the end")  # type: ignore[union-attr]
            assert worker.pool.weight(ticker.address) == 3
            assert worker.cluster.settings.weights() == {ticker.address: 3}
        count, at = chain.contract(ticker.address, TICKER).query("ticks", signer=alice).output
        assert at == end and count == end - hooked_at
        journals = [w.chain.journal for w in (first, second)]  # type: ignore[union-attr]
        start = first.config.chain.start_block  # type: ignore[union-attr]
        for number in range(start, end + 1):
            assert journals[0].root(number) == journals[1].root(number) is not None, number
    finally:
        chain.close()
