"""Workers following a real chain (chopsticks): uploads, instantiations and encrypted calls
ordered by the chain, equal state roots on two workers, published checkpoints, rejections."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phat_runtime.chain import (
    Call,
    CallPayload,
    ChainNode,
    CreateCluster,
    Devnet,
    cluster_id,
    seal_call_payload,
)
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.chain_client import ChainClient
from phat_runtime.rpc.client import WorkerClient, WorkerError, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
TOKEN = EXAMPLES / "token" / "token.contract"
#: A distinctive transfer amount: its SCALE bytes must not appear in the chain's extrinsics.
SECRET_AMOUNT = 0x5EC2E7_5EC2E7


def _wait(condition, what, timeout_s: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(devnet: Devnet) -> bytes:
    """A development cluster created on chain by alice (its id is known before it lands)."""
    alice = Signer.dev("alice")
    salt = os.urandom(8)
    with ChainNode(devnet.url) as node:
        node.submit([CreateCluster(salt, Policy.from_dict({"platforms": ["simulated"]}), bytes(32))], alice)
    return cluster_id(alice.public_key, salt)


URLS: dict[int, str] = {}  # id(worker) → its RPC URL (the module's servers run for the whole module)


@pytest.fixture(scope="module")
def workers(devnet: Devnet, cluster: bytes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    with ChainNode(devnet.url) as node:
        start = node.finalized_number()  # earlier blocks hold nothing of this cluster
    made = [Worker(WorkerConfig(data_dir=tmp_path_factory.mktemp(f"w{i}"), chain=ChainConfig(
        devnet.url, cluster, start_block=start, checkpoint_every=2, dev_cluster_key=True)))
        for i in range(2)]
    devnet.fund([w.identity.public_key for w in made])
    with contextlib.ExitStack() as stack:  # each server starts its worker, and stops it at the end
        for i, worker in enumerate(made):
            # The first answers queries from a query process (rpc/processes.py), as on many cores;
            # /v2/result and the rest reach its main process through the query process.
            URLS[id(worker)] = stack.enter_context(ServerThread(worker, query_processes=1 if i == 0 else 0))
        yield made


def test_deploy_and_transact_through_the_chain_with_a_sealed_payload(devnet: Devnet, cluster: bytes,
                                                                       workers: list[Worker]) -> None:
    alice, bob = Signer.dev("alice"), Signer.dev("bob")
    worker = WorkerClient(URLS[id(workers[0])], policy=development_policy())
    client = ChainClient(devnet.url, cluster, worker)
    token = client.deploy(TOKEN, "new", [1_000_000_000_000_000], signer=alice, salt=os.urandom(4))
    sent = token.transact("transfer", {"to": bob.public_key, "value": SECRET_AMOUNT}, signer=alice)
    assert sent.success, sent.verified.outcome
    block = sent.verified.receipt.block
    assert workers[0].cluster.checkpoint().number >= block  # type: ignore[union-attr]
    # A query to the worker sees the new state.
    assert token.query("balance_of", [bob.public_key], signer=bob).output == SECRET_AMOUNT
    # The chain carries the call sealed: neither the amount nor the recipient is readable.
    with ChainNode(devnet.url) as node:
        raw = node._rpc("chain_getBlock", [node._rpc("chain_getBlockHash", [block])])
    extrinsics = "".join(raw["block"]["extrinsics"])
    assert SECRET_AMOUNT.to_bytes(16, "little").hex() not in extrinsics
    assert bob.public_key.hex() not in extrinsics
    selector = ContractMetadata.load(TOKEN).message("transfer").selector
    assert selector.hex() not in extrinsics
    # Transactions sent to the worker's RPC are refused: the chain orders them.
    with pytest.raises(WorkerError) as refused:
        worker.call(token.address, b"\x00", alice)
    assert refused.value.code == "use_chain"
    worker.close()
    client.close()


def test_two_workers_agree_on_every_root_and_their_published_checkpoints(devnet: Devnet, workers: list[Worker]) -> None:
    # Wait until both have applied the same recent block and published at least one checkpoint.
    with ChainNode(devnet.url) as node:
        head = node.finalized_number()
    for worker in workers:
        assert worker.chain is not None
        _wait(lambda w=worker: w.chain.status.last_block >= head,
              lambda: f"both workers at the chain head {head}: {[w.chain.status for w in workers]}")  # type: ignore[union-attr]
    first = workers[0].chain.journal  # type: ignore[union-attr]
    second = workers[1].chain.journal  # type: ignore[union-attr]
    start = workers[0].config.chain.start_block  # type: ignore[union-attr]
    for number in range(start, head + 1):
        assert first.root(number) == second.root(number) is not None, number
    # Publish a checkpoint round: nudge the chain by a couple of blocks so K=2 boundaries pass.
    with ChainNode(devnet.url) as node:
        for _ in range(2):
            node.submit([CreateCluster(os.urandom(4), Policy.from_dict({"platforms": ["simulated"]}),
                                       bytes(32))], Signer.dev("charlie"))
    ids = [w.identity.public_key for w in workers]

    def both_published() -> bool:
        seen = {who for who, _, _ in first.published(limit=1000)}
        return all(i in seen for i in ids)

    _wait(both_published, "checkpoints published by both workers", timeout_s=120)
    for entry in workers[0].checkpoints(limit=1000):
        if entry["local_root"] is not None:
            assert entry["agrees"] is True, entry


def test_a_bad_message_is_skipped_the_same_way_by_every_worker(devnet: Devnet, cluster: bytes,
                                                                workers: list[Worker]) -> None:
    alice, mallory = Signer.dev("alice"), Signer.dev("eve")
    ecdh = bytes.fromhex(workers[0].info()["cluster_ecdh"][2:])
    contract = os.urandom(32)
    # alice's sealed call, copied into eve's own extrinsic: it must not open for eve.
    sealed = seal_call_payload(CallPayload(b"\x01\x02\x03\x04"), cluster_ecdh_public=ecdh, cluster=cluster,
                               contract=contract, epoch=0, sender=alice.public_key)
    with ChainNode(devnet.url) as node:
        stolen = node.submit([Call(cluster, contract, 0, sealed, 0)], mallory)
        garbage = node.submit([b"phat\x01\xee not a message"], mallory)
    for worker in workers:
        _wait(lambda w=worker: w.chain.status.last_block >= garbage.block_number, "the bad blocks applied")  # type: ignore[union-attr]
    seen = [sorted((r["block"], r["extrinsic"], r["reason"]) for r in w.rejections(limit=1000)) for w in workers]
    assert seen[0] == seen[1]
    reasons = {(r["block"], r["extrinsic"]): r for r in workers[0].rejections(limit=1000)}
    assert "does not open" in reasons[(stolen.block_number, stolen.extrinsic_index)]["reason"] or \
        "altered" in reasons[(stolen.block_number, stolen.extrinsic_index)]["reason"]
    assert reasons[(garbage.block_number, garbage.extrinsic_index)]["message"] == "?"
    # Readable over RPC.
    client = WorkerClient(URLS[id(workers[1])], policy=development_policy())
    over_rpc = client.http.get("/v1/chain/rejections", params={"since_block": stolen.block_number}).json()
    assert {(r["block"], r["extrinsic"]) for r in over_rpc["rejections"]} >= {
        (stolen.block_number, stolen.extrinsic_index), (garbage.block_number, garbage.extrinsic_index)}
    info = client.info().raw
    assert info["mode"] == "chain" and info["chain"]["last_block"] >= garbage.block_number
    assert "DEVELOPMENT" in info["note"]
    client.close()
