"""Benchmark: a new worker joins a running cluster and serves — registration, key handover and
catch-up of ``--blocks`` chain blocks.

Starts a chopsticks devnet, creates a cluster whose genesis worker runs in this process, deploys
the token example and sends ``--transfers`` sealed transfers (batched ``--per-block`` to a
block), pads the chain to ``--blocks`` blocks with ``dev_newBlock`` (inherents only), waits for
the genesis worker to apply them, then starts a fresh worker and times each phase until it
answers a query with the same state root:

    registered   its RegisterWorker is on chain and passed (every worker verified its quote)
    key          the leader's KeyHandover arrived and matched the published key
    caught up    it applied every block from the cluster's first state block to the head
    first query  an encrypted query over RPC answered from that state

    python bench/bench_join.py [--blocks 1000] [--transfers 200] [--per-block 20] [--json]

Numbers go to docs/benchmarks.md.
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
    free_port,
    seal_call_payload,
)
from phat_runtime.codec.metadata import ContractMetadata  # noqa: E402
from phat_runtime.crypto.signer import Signer  # noqa: E402
from phat_runtime.rpc.chain_client import ChainClient  # noqa: E402
from phat_runtime.rpc.client import WorkerClient, development_policy  # noqa: E402
from phat_runtime.rpc.hosting import ServerThread  # noqa: E402
from phat_runtime.tee import simulated  # noqa: E402
from phat_runtime.tee.policy import Policy  # noqa: E402
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig  # noqa: E402

TOKEN = ROOT / "contracts_examples" / "token" / "token.contract"


def wait(condition, what: str, timeout_s: float = 1800) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=1000)
    parser.add_argument("--transfers", type=int, default=200)
    parser.add_argument("--per-block", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="phat-bench-join-"))
    alice, bob = Signer.dev("alice"), Signer.dev("bob")
    policy = Policy.from_dict({"platforms": ["simulated"],
                               "simulated": {"measurement": [simulated.DEFAULT_MEASUREMENT.hex()]}})
    with Devnet(tmp / "chain", progress=lambda m: print(f"chain: {m}", file=sys.stderr)) as net, \
            ChainNode(net.url) as node:
        salt = os.urandom(8)
        cluster = cluster_id(alice.public_key, salt)
        start = node.finalized_number() + 1

        def worker(name: str) -> tuple[Worker, int]:
            port = free_port()
            w = Worker(WorkerConfig(data_dir=tmp / name, chain=ChainConfig(
                net.url, cluster, start_block=start, checkpoint_every=0, rpc_url=f"http://127.0.0.1:{port}")))
            net.fund([w.identity.public_key])
            return w, port

        genesis, gport = worker("genesis")
        with ServerThread(genesis, port=gport) as gurl:
            node.submit([CreateCluster(salt, policy, genesis.identity.public_key)], alice)
            wait(lambda: genesis.info()["ready"], "the genesis worker's key")
            member = WorkerClient(gurl, policy=development_policy())
            client = ChainClient(net.url, cluster, member)
            token = client.deploy(TOKEN, "new", [10**18], signer=alice, salt=salt)
            info = genesis.info()
            ecdh, epoch = bytes.fromhex(info["cluster_ecdh"][2:]), info["cluster_epoch"]
            transfer = ContractMetadata.load(TOKEN).encode_message("transfer", {"to": bob.public_key, "value": 1})
            print(f"recording {args.transfers} transfers…", file=sys.stderr)
            for i in range(0, args.transfers, args.per_block):
                batch = [Call(cluster, token.address, epoch, seal_call_payload(
                    CallPayload(transfer), cluster_ecdh_public=ecdh, cluster=cluster, contract=token.address,
                    epoch=epoch, sender=alice.public_key), 0) for _ in range(min(args.per_block, args.transfers - i))]
                node.submit(batch, alice)
            head = node.finalized_number()
            pad = max(0, start + args.blocks - 1 - head)
            if pad:
                print(f"padding the chain with {pad} empty blocks…", file=sys.stderr)
                for _ in range(0, pad, 100):
                    net.rpc("dev_newBlock", [{"count": min(100, pad)}], timeout_s=600)
                    pad -= min(100, pad)
            head = node.finalized_number()
            wait(lambda: genesis.chain.status.last_block >= head, "the genesis worker at the head")  # type: ignore[union-attr]
            root = genesis.chain.journal.root(head)  # type: ignore[union-attr]
            print(f"chain: {head - start + 1} blocks; a new worker joins…", file=sys.stderr)
            joiner, jport = worker("joiner")
            t0 = time.monotonic()
            with ServerThread(joiner, port=jport) as jurl:
                me = joiner.identity.public_key
                registered = wait(lambda: (m := genesis.chain.membership.members.get(me)) is not None  # type: ignore[union-attr]
                                  and m.passed, "the registration")
                key = wait(lambda: joiner.keyring.has(0), "the key") + registered  # type: ignore[union-attr]
                caught = wait(lambda: joiner.chain.status.last_block >= head, "the catch-up") + key  # type: ignore[union-attr]
                assert joiner.chain.journal.root(head) == root, "the joiner's root differs"  # type: ignore[union-attr]
                asked = WorkerClient(jurl, policy=development_policy())
                balance = ChainClient(net.url, cluster, asked).contract(token.address, TOKEN).query(
                    "balance_of", [bob.public_key], signer=bob).output
                first_query = time.monotonic() - t0
                asked.close()
            assert balance == args.transfers, balance
            replayed = head - start + 1
            member.close()
            client.close()
    result = {"blocks": replayed, "transfers": args.transfers, "registered_s": round(registered, 2),
              "key_s": round(key, 2), "caught_up_s": round(caught, 2), "first_query_s": round(first_query, 2),
              "catch_up_blocks_per_s": round(replayed / max(caught - key, 1e-9), 1)}
    print(json.dumps(result) if args.json else "\n".join(f"{k:>22}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
