"""Benchmark: reading already-finalized chain blocks — fetch, parse, decode protocol messages.

Records first, then measures: starts a chopsticks devnet (cold start timed; npm install time
reported separately), submits ``--blocks`` extrinsics, each a ``utility.batch_all`` of
``--per-block`` Call messages with sealed 100-byte payloads (one signature per block: signing
in Python is the slow part of recording, not of what is measured), then times only
``ChainNode.blocks(start, end)`` + ``decode_message`` over the recorded range, ``--repeat``
times, each on a fresh connection. As many blocks without messages (``dev_newBlock``:
inherents only) are timed the same way.
What a worker then does with the messages is measured by the worker's replay benchmark.

    python bench/bench_chain_replay.py [--blocks 20] [--per-block 50] [--repeat 3] [--json]
                                       [--data-dir DIR]   # keep the chain (each run records anew)

Prints blocks/s and messages/s for fetching + decoding. Numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    Devnet,
    decode_message,
    seal_call_payload,
)
from phat_runtime.crypto.signer import Signer  # noqa: E402

CLUSTER = bytes([0xBE]) * 32
CONTRACT = bytes([0xC0]) * 32
PAYLOAD_LEN = 100


def record(node: ChainNode, blocks: int, per_block: int) -> tuple[int, int, float]:
    """Submit the messages; returns (first block, last block, seconds spent recording)."""
    alice = Signer.dev("alice")
    cluster_public = os.urandom(32)  # any X25519 point works for sealing; nobody opens these
    started = time.monotonic()
    numbers = []
    for b in range(blocks):
        messages = [
            Call(CLUSTER, CONTRACT, 0, seal_call_payload(
                CallPayload(os.urandom(PAYLOAD_LEN), value=b), cluster_ecdh_public=cluster_public,
                cluster=CLUSTER, contract=CONTRACT, epoch=0, sender=alice.public_key), 10**9)
            for _ in range(per_block)
        ]
        numbers.append(node.submit(messages, alice).block_number)
        print(f"  recorded block {numbers[-1]} ({b + 1}/{blocks}, {per_block} messages)", flush=True)
    return numbers[0], numbers[-1], time.monotonic() - started


def replay(url: str, start: int, end: int) -> tuple[float, int, int]:
    """(seconds, blocks, messages) to fetch and decode blocks start..end on a fresh connection."""
    with ChainNode(url) as node:
        node.block(start - 1)  # connect and decode the runtime metadata (~2 s) outside the timing
        began = time.perf_counter()
        blocks = messages = 0
        for block in node.blocks(start, end):
            blocks += 1
            for remark in block.remarks:
                decode_message(remark.data)
                messages += 1
        return time.perf_counter() - began, blocks, messages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--per-block", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="phat-bench-chain-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        cold = not (data_dir / "chain.sqlite").exists()
        net = Devnet(data_dir, progress=lambda m: print(f"  {m}", flush=True))
        with net:
            with ChainNode(net.url) as node:
                start, end, recording = record(node, args.blocks, args.per_block)
                net.rpc("dev_newBlock", [{"count": args.blocks}], timeout_s=600)  # inherents only
                head = node.finalized_number()
            runs = [replay(net.url, start, end) for _ in range(args.repeat)]
            empty = [replay(net.url, end + 1, head) for _ in range(args.repeat)]
        seconds = statistics.median(r[0] for r in runs)
        _, blocks, messages = runs[0]
        result = {
            "devnet_start_s": round(net.start_seconds, 2), "devnet_cold": cold,
            "npm_install_s": round(net.npm_seconds, 1),
            "recorded_blocks": blocks, "messages_per_block": args.per_block,
            "recording_s": round(recording, 1),
            "replay_s": round(seconds, 4),
            "blocks_per_s": round(blocks / seconds, 1), "messages_per_s": round(messages / seconds),
        }
        if empty[0][1]:
            e_seconds = statistics.median(r[0] for r in empty)
            result["empty_blocks"] = empty[0][1]
            result["empty_blocks_per_s"] = round(empty[0][1] / e_seconds, 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"devnet start: {result['devnet_start_s']} s ({'cold' if cold else 'resumed'}); "
          f"npm install this run: {result['npm_install_s']} s")
    print(f"recorded {blocks} blocks × {args.per_block} Call messages in {result['recording_s']} s")
    print(f"fetch + decode: {result['blocks_per_s']} blocks/s, {result['messages_per_s']} messages/s "
          f"(median of {args.repeat}: {seconds:.3f} s)")
    if "empty_blocks" in result:
        print(f"blocks without messages: {result['empty_blocks_per_s']} blocks/s")


if __name__ == "__main__":
    main()
