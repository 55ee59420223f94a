"""ChainNode against a real Substrate runtime (chopsticks): messages submitted singly and
batched come back from finalized blocks in order with their signers and block timestamps;
other remarks and mixed extrinsics are ignored; catch-up from a block number; clear errors
for an unfunded account and an unreachable node; a follower survives a chain restart."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from phat_runtime.chain.blocks import ChainBlock
from phat_runtime.chain.devnet import Devnet, free_port
from phat_runtime.chain.node import ChainNode
from phat_runtime.chain.protocol import (
    CheckpointPublished,
    RevokeWorker,
    RotateClusterKey,
    decode_message,
)
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import ChainError, ChainUnavailable, NoFunds
from tests.chain.conftest import WORKER

CLUSTER = bytes([0xC1]) * 32
ALICE = Signer.dev("alice")


@pytest.fixture
def node(devnet: Devnet) -> ChainNode:
    chain = ChainNode(devnet.url)
    yield chain  # type: ignore[misc]
    chain.close()


def _ours(block: ChainBlock) -> list[tuple[int, bytes, object]]:
    return [(r.extrinsic, r.signer, decode_message(r.data)) for r in block.remarks]


def test_single_and_batched_messages_read_back_with_signers(node: ChainNode) -> None:
    one = RotateClusterKey(CLUSTER)
    first = node.submit([one], ALICE)
    batch = [CheckpointPublished(CLUSTER, 7, bytes([1]) * 32), b"not a phat remark",
             RevokeWorker(CLUSTER, bytes([2]) * 32), CheckpointPublished(CLUSTER, 8, bytes([3]) * 32)]
    second = node.submit(batch, WORKER)  # the worker identity signs as its own chain account
    assert second.block_number > first.block_number

    block = node.block(first.block_number)
    assert block.hash == first.block_hash
    assert _ours(block) == [(first.extrinsic_index, ALICE.public_key, one)]
    block2 = node.block(second.block_number)
    assert _ours(block2) == [(second.extrinsic_index, WORKER.public_key, m)
                             for m in (batch[0], batch[2], batch[3])]


def test_blocks_are_finalized_ordered_and_timestamped(node: ChainNode) -> None:
    node.submit([RotateClusterKey(CLUSTER)], ALICE)
    head = node.finalized_number()
    blocks = list(node.blocks(0))
    assert [b.number for b in blocks] == list(range(head + 1))
    for parent, child in itertools.pairwise(blocks):
        assert child.parent_hash == parent.hash
        assert child.timestamp_ms > parent.timestamp_ms
    assert blocks[-1].timestamp_ms > 1_700_000_000_000  # a real unix time in ms
    with pytest.raises(ChainError, match="not finalized yet"):
        node.block(head + 5)


def test_catch_up_from_a_block_number_then_follow(node: ChainNode, devnet: Devnet) -> None:
    start = node.finalized_number() + 1
    stop = threading.Event()
    seen: list[ChainBlock] = []

    def run() -> None:
        for block in ChainNode(devnet.url).follow(start, stop=stop, poll_s=0.1):
            seen.append(block)

    landed = [node.submit([CheckpointPublished(CLUSTER, n, bytes(32))], ALICE).block_number
              for n in range(2)]
    follower = threading.Thread(target=run, daemon=True)
    follower.start()  # starts after both landed: catches up, then follows
    landed.append(node.submit([CheckpointPublished(CLUSTER, 2, bytes(32))], ALICE).block_number)
    _wait(lambda: seen and seen[-1].number >= landed[-1])
    stop.set()
    follower.join(10)
    assert [b.number for b in seen] == list(range(start, seen[-1].number + 1))
    assert [b.hash for b in seen] == [b.hash for b in node.blocks(start, seen[-1].number)]
    blocks = [b for b in seen if b.remarks]
    assert [decode_message(b.remarks[0].data).block for b in blocks] == [0, 1, 2]  # type: ignore[attr-defined]


def test_mixed_and_plain_remark_extrinsics_are_ignored(node: ChainNode, devnet: Devnet) -> None:
    from substrateinterface import Keypair, SubstrateInterface

    api = SubstrateInterface(url=devnet.url, ss58_format=42)
    try:
        alice = Keypair.create_from_uri("//Alice")
        ours = RotateClusterKey(CLUSTER).encode()
        mixed = api.compose_call("Utility", "batch_all", {"calls": [
            api.compose_call("System", "remark_with_event", {"remark": ours}),
            api.compose_call("Balances", "transfer_keep_alive",
                             {"dest": {"Id": "0x" + Signer.dev("bob").public_key.hex()}, "value": 10**12}),
        ]})
        plain = api.compose_call("System", "remark", {"remark": ours})
        numbers = []
        for call in (mixed, plain):
            receipt = api.submit_extrinsic(api.create_signed_extrinsic(call, keypair=alice),
                                           wait_for_finalization=True)
            assert receipt.is_success
            numbers.append(api.get_block_number(receipt.block_hash))
    finally:
        api.close()
    for number in numbers:
        assert node.block(number).remarks == ()


def test_unfunded_account_gets_a_clear_error(node: ChainNode) -> None:
    pauper = Signer.sr25519_from_seed(bytes([0x99]) * 32)
    with pytest.raises(NoFunds, match="no funds to pay the transaction fee.*fund it"):
        node.submit([RotateClusterKey(CLUSTER)], pauper)


def test_unreachable_node_names_the_url_and_what_to_do() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    with pytest.raises(ChainUnavailable, match=f"{url}.*phat devnet"):
        ChainNode(url, timeout_s=5).finalized_number()
    with pytest.raises(ChainUnavailable):  # following gives up only when asked to
        next(ChainNode(url, timeout_s=5).follow(1, give_up_after_s=0.5))


def test_follower_survives_a_chain_restart_without_skipping_or_repeating(
        node: ChainNode, devnet: Devnet) -> None:
    start = node.finalized_number() + 1
    before = node.submit([CheckpointPublished(CLUSTER, 100, bytes(32))], ALICE)
    stop = threading.Event()
    seen: list[ChainBlock] = []

    def run() -> None:
        for block in ChainNode(devnet.url, timeout_s=10).follow(start, stop=stop, poll_s=0.1):
            seen.append(block)

    follower = threading.Thread(target=run, daemon=True)
    follower.start()
    _wait(lambda: seen and seen[-1].number >= before.block_number)
    nonce = devnet._account_info(ALICE.public_key)["nonce"]
    node.close()
    devnet.stop()
    time.sleep(1.0)  # the follower polls a dead node meanwhile
    devnet.start()
    assert devnet._account_info(ALICE.public_key)["nonce"] == nonce  # funding kept the nonce
    after = node.submit([CheckpointPublished(CLUSTER, 101, bytes(32))], ALICE)
    _wait(lambda: seen and seen[-1].number >= after.block_number, timeout=60)
    stop.set()
    follower.join(15)
    numbers = [b.number for b in seen]
    assert numbers == list(range(start, numbers[-1] + 1))  # none skipped, none repeated
    assert all(b.parent_hash == a.hash for a, b in itertools.pairwise(seen))
    published = [decode_message(r.data).block for b in seen for r in b.remarks]  # type: ignore[attr-defined]
    assert published == [100, 101]


def _wait(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the chain")
        time.sleep(0.1)
