"""Benchmark: how many chain messages per second one worker applies from already-finalized
blocks — the worker's part only.

Records first: on a chopsticks devnet, a development cluster's worker deploys the token
example through the chain, then ``--blocks`` extrinsics each carry a ``utility.batch_all`` of
``--per-block`` sealed ``transfer`` Calls. The recorded range is fetched into memory, and a
*fresh* worker of the same cluster (its own data dir and encrypted state) applies it block by
block with ``ChainSource.apply`` — opening each sealed payload, running the contract, committing
the block — while the clock runs. Fetching blocks is ``bench_chain_replay.py``'s number.

    python bench/bench_chain_apply.py [--blocks 10] [--per-block 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.chain import (  # noqa: E402
    Call,
    CallPayload,
    ChainNode,
    CreateCluster,
    Devnet,
    cluster_id,
    seal_call_payload,
)
from phat_runtime.codec.metadata import ContractMetadata  # noqa: E402
from phat_runtime.crypto.kdf import cluster_ecdh  # noqa: E402
from phat_runtime.crypto.signer import Signer  # noqa: E402
from phat_runtime.rpc.chain_client import ChainClient  # noqa: E402
from phat_runtime.rpc.client import WorkerClient, development_policy  # noqa: E402
from phat_runtime.rpc.hosting import ServerThread  # noqa: E402
from phat_runtime.tee.policy import Policy  # noqa: E402
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig, dev_cluster_secret  # noqa: E402

TOKEN = ROOT / "contracts_examples" / "token" / "token.contract"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--per-block", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="phat-bench-apply-"))
    alice, bob = Signer.dev("alice"), Signer.dev("bob")
    with Devnet(tmp / "chain", progress=lambda m: print(f"chain: {m}", file=sys.stderr)) as net, \
            ChainNode(net.url) as node:
        salt = os.urandom(8)
        cluster = cluster_id(alice.public_key, salt)
        start = node.submit([CreateCluster(salt, Policy.from_dict({"platforms": ["simulated"]}), bytes(32))],
                            alice).block_number

        def worker(name: str) -> Worker:
            return Worker(WorkerConfig(data_dir=tmp / name, chain=ChainConfig(
                net.url, cluster, start_block=start, checkpoint_every=0, dev_cluster_key=True)))

        recorder = worker("recorder")
        with ServerThread(recorder) as url:
            member = WorkerClient(url, policy=development_policy())
            client = ChainClient(net.url, cluster, member)
            token = client.deploy(TOKEN, "new", [10**18], signer=alice, salt=salt)
            member.close()
            client.close()
        transfer = ContractMetadata.load(TOKEN).encode_message("transfer", {"to": bob.public_key, "value": 1})
        ecdh = cluster_ecdh(dev_cluster_secret(cluster))[1]
        print(f"recording {args.blocks} blocks × {args.per_block} transfers…", file=sys.stderr)
        for _ in range(args.blocks):
            node.submit([Call(cluster, token.address, 0, seal_call_payload(
                CallPayload(transfer), cluster_ecdh_public=ecdh, cluster=cluster, contract=token.address,
                epoch=0, sender=alice.public_key), 0) for _ in range(args.per_block)], alice)
        head = node.finalized_number()
        blocks = list(node.blocks(start, head))
    fresh = worker("fresh")
    assert fresh.chain is not None
    started = time.perf_counter()
    for block in blocks:
        fresh.chain.apply(block)
    seconds = time.perf_counter() - started
    assert fresh.chain.status.last_block == head
    messages = args.blocks * args.per_block
    fresh.stop()
    result = {"blocks": len(blocks), "transfers": messages, "seconds": round(seconds, 3),
              "transfers_per_s": round(messages / seconds, 1), "blocks_per_s": round(len(blocks) / seconds, 1)}
    print(json.dumps(result) if args.json else "\n".join(f"{k:>16}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
