"""Benchmark: transaction apply rate — blocks of pre-signed token ``transfer`` calls through
:meth:`BlockPipeline.apply_block` over the encrypted store.

The token example is uploaded and instantiated first; then each block is ``--block-size``
(default 256) ``transfer`` calls from 16 funded accounts to random receivers, each a
:class:`~phat_runtime.worker.pipeline.Transaction` with its own nonce (as the standalone source
makes them: the origin's signature was checked when the request arrived, before the block).
Timed: ``apply_block`` from the first transaction to the committed block (the store's fsync
included). Reported: transactions per second (median of blocks, wall and thread CPU), and the
flipper ``flip`` rate for comparison.

    python bench/bench_tx.py [--blocks N] [--block-size N] [--json]

Target (issue 12): token ``transfer`` ≥ 4,000 tx/s.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.codec.messages import RequestKind  # noqa: E402
from phat_runtime.codec.metadata import ContractMetadata  # noqa: E402
from phat_runtime.runtime.cluster import Cluster  # noqa: E402
from phat_runtime.state import EncryptedStore  # noqa: E402
from phat_runtime.types import AccountId  # noqa: E402
from phat_runtime.wasm.engine import Engine, EngineConfig  # noqa: E402
from phat_runtime.worker.pipeline import BlockPipeline, Transaction, encode_upload  # noqa: E402

EXAMPLES = ROOT / "contracts_examples"
TARGET = 4000
SENDERS = 16


class Chain:
    """A cluster over a fresh encrypted store with a block counter."""

    def __init__(self, path: Path) -> None:
        self.store = EncryptedStore.open(path / "state.sqlite", os.urandom(64))
        self.cluster = Cluster(self.store, engine=Engine(EngineConfig(cache_dir=path / "modules")))
        self.pipeline = BlockPipeline(self.cluster)
        self.number = 0

    def block(self, txs: list[Transaction]) -> tuple[float, float, list[Any]]:
        self.number += 1
        wall, cpu = time.perf_counter(), time.thread_time()
        result = self.pipeline.apply_block(txs, number=self.number, block_hash=self.number.to_bytes(32, "little"),
                                           timestamp_ms=int(time.time() * 1000))
        return time.perf_counter() - wall, time.thread_time() - cpu, result.results

    def deploy(self, name: str, constructor: str, args: list[Any], origin: AccountId) -> tuple[bytes, ContractMetadata]:
        meta = ContractMetadata.load(EXAMPLES / name / f"{name}.contract")
        assert meta.wasm is not None
        _, _, (up,) = self.block([tx(origin, RequestKind.UPLOAD, encode_upload(meta.wasm))])
        _, _, (made,) = self.block([tx(origin, RequestKind.INSTANTIATE, meta.encode_constructor(constructor, args),
                                       code_hash=up.code_hash)])
        assert made.contract is not None and made.error_kind is None, made
        return made.contract, meta

    def close(self) -> None:
        self.store.close()


def tx(origin: AccountId, kind: RequestKind, payload: bytes, **kw: Any) -> Transaction:
    return Transaction(origin=origin, kind=kind, payload=payload, nonce=os.urandom(32),
                       deadline_ms=int((time.time() + 3600) * 1000), **kw)


def measure(chain: Chain, blocks: list[list[Transaction]]) -> dict[str, Any]:
    walls, cpus = [], []
    for txs in blocks:
        wall, cpu, results = chain.block(txs)
        failed = [r for r in results if getattr(r, "error_kind", "refused") is not None or r.flags]
        assert not failed, failed[:3]
        walls.append(len(txs) / wall)
        cpus.append(len(txs) / cpu)
    return {"tx_per_s": statistics.median(walls), "tx_per_cpu_s": statistics.median(cpus), "blocks": len(blocks)}


def run(blocks: int = 10, block_size: int = 256) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="phat-bench-tx-") as tmp:
        chain = Chain(Path(tmp))
        try:
            senders = [AccountId(bytes([i + 1]) * 32) for i in range(SENDERS)]
            token, meta = chain.deploy("token", "new", [10**12], senders[0])
            fund = [tx(senders[0], RequestKind.CALL, meta.encode_message("transfer", [s, 10**9]), contract=token)
                    for s in senders[1:]]
            chain.block(fund)
            flipper, fmeta = chain.deploy("flipper", "new", [True], senders[0])

            def transfers() -> list[Transaction]:
                return [tx(senders[i % SENDERS], RequestKind.CALL,
                           meta.encode_message("transfer", [os.urandom(32), 1]), contract=token)
                        for i in range(block_size)]

            def flips() -> list[Transaction]:
                return [tx(senders[i % SENDERS], RequestKind.CALL, fmeta.encode_message("flip"), contract=flipper)
                        for i in range(block_size)]

            measure(chain, [transfers()])  # warm-up: compiled modules, caches
            transfer = measure(chain, [transfers() for _ in range(blocks)])
            flip = measure(chain, [flips() for _ in range(max(2, blocks // 2))])
        finally:
            chain.close()
    return {"block_size": block_size, "transfer": transfer, "flip": flip, "target_tx_per_s": TARGET}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.blocks, args.block_size)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in ("transfer", "flip"):
            r = result[name]
            print(f"{name:8} {r['tx_per_s']:7.0f} tx/s (wall)  {r['tx_per_cpu_s']:7.0f} tx/CPU-s  "
                  f"blocks of {args.block_size} × {r['blocks']}")
    return result


if __name__ == "__main__":
    main()
