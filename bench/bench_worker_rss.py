"""Benchmark: a worker's resident memory over many queries.

A standalone :class:`~phat_runtime.worker.service.Worker` (simulated TEE — development only —
over its encrypted SQLite store, in this process) deploys the example flipper; after a warm-up
of ``--warmup`` queries it answers ``--queries`` (default 10,000) signed flipper ``get`` QUERY
requests through ``Worker.query`` (signature, nonce, deadline, argument checks, the run, the
signed receipt). Reported: RSS before and after, growth per query, and the live wasmtime
``Store`` objects after ``gc.collect()`` (a leak shows in both). Target (issue 11/12): growth
≤ 2 KB per query, no Store left alive.

    python bench/bench_worker_rss.py [--queries N] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402

from phat_runtime.codec.messages import RequestKind, SignedRequest  # noqa: E402
from phat_runtime.codec.metadata import ContractMetadata  # noqa: E402
from phat_runtime.crypto.signer import Signer  # noqa: E402
from phat_runtime.worker.pipeline import encode_upload  # noqa: E402
from phat_runtime.worker.service import Worker, WorkerConfig  # noqa: E402

FLIPPER = ROOT / "contracts_examples" / "flipper" / "flipper.contract"
TARGET_BYTES_PER_QUERY = 2048


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live_stores() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, wasmtime.Store))


def run(queries: int = 10_000, warmup: int = 500) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="phat-bench-rss-") as tmp:
        worker = Worker(WorkerConfig(data_dir=Path(tmp) / "worker"))  # simulated TEE: development only
        worker.start()
        try:
            alice = Signer.dev("alice")
            meta = ContractMetadata.load(FLIPPER)
            assert meta.wasm is not None

            def signed(kind: RequestKind, **kw: Any) -> SignedRequest:
                fields = {"contract": bytes(32), "code_hash": bytes(32), "payload": b"", **kw}
                return SignedRequest(kind, worker.identity.public_key, fields["contract"], fields["code_hash"],
                                     fields["payload"], b"", 0, 0, os.urandom(32),
                                     int((time.time() + 300) * 1000), alice.scheme,
                                     alice.public_key).signed_by(alice)

            code_hash = worker.submit(signed(RequestKind.UPLOAD, payload=encode_upload(meta.wasm)))[0].code_hash
            made = worker.submit(signed(RequestKind.INSTANTIATE, code_hash=code_hash,
                                        payload=meta.encode_constructor("new", [True])))[0]
            assert made.contract is not None
            get = meta.encode_message("get")

            def query() -> None:
                outcome, _ = worker.query(signed(RequestKind.QUERY, contract=made.contract, payload=get))
                assert outcome.success and outcome.data == b"\x00\x01", outcome

            for _ in range(warmup):
                query()
            gc.collect()
            before, stores = rss_bytes(), live_stores()
            start = time.perf_counter()
            for _ in range(queries):
                query()
            seconds = time.perf_counter() - start
            gc.collect()
            after = rss_bytes()
            return {"queries": queries, "warmup": warmup, "rss_before_mb": before / 2**20,
                    "rss_after_mb": after / 2**20,
                    "rss_growth_bytes_per_query": (after - before) / queries,
                    "live_stores_added": live_stores() - stores, "queries_per_s": queries / seconds,
                    "target_bytes_per_query": TARGET_BYTES_PER_QUERY}
        finally:
            worker.stop()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.queries, args.warmup)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"worker RSS over {result['queries']} signed flipper queries (after {result['warmup']} warm-up): "
              f"{result['rss_before_mb']:.1f} → {result['rss_after_mb']:.1f} MB, "
              f"{result['rss_growth_bytes_per_query']:.0f} B/query (target ≤ {TARGET_BYTES_PER_QUERY}); "
              f"live Stores added: {result['live_stores_added']}")
    return result


if __name__ == "__main__":
    main()
