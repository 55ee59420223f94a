"""Benchmark: encrypted query latency and throughput over loopback vs the same server's plain
``/health`` endpoint, in the same run.

A standalone worker (simulated TEE) serves on 127.0.0.1; the client encrypts + signs each
query of flipper ``get``, the worker decrypts, checks, runs it, signs a receipt and encrypts
the reply; the client opens it and verifies the receipt. The baseline is a GET of ``/health``
on the same server through the same HTTP client (same uvicorn, same connection pool).

    python bench/bench_rpc.py [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.crypto.signer import Signer  # noqa: E402
from phat_runtime.rpc.client import WorkerClient, development_policy  # noqa: E402
from phat_runtime.rpc.hosting import ServerThread  # noqa: E402
from phat_runtime.worker.service import Worker, WorkerConfig  # noqa: E402

FLIPPER = ROOT / "contracts_examples" / "flipper" / "flipper.contract"


def _latencies(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _throughput(fn: Callable[[], Any], n: int, concurrency: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: fn(), range(n)))
    return n / (time.perf_counter() - start)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="phat-bench-rpc-") as tmp:
        worker = Worker(WorkerConfig(data_dir=Path(tmp) / "worker"))
        with ServerThread(worker) as url:
            client = WorkerClient(url, policy=development_policy())
            alice = Signer.dev("alice")
            flipper = client.deploy(FLIPPER, "new", [True], signer=alice)

            def query() -> None:
                assert flipper.query("get", signer=alice).output is True

            def health() -> None:
                client.http.get("/health").raise_for_status()

            for _ in range(20):
                query()
                health()
            q_lat, h_lat = [], []
            for _ in range(args.requests):  # interleaved, so noise hits both alike
                q_lat += _latencies(query, 1)
                h_lat += _latencies(health, 1)
            q_tput = _throughput(query, args.requests, args.concurrency)
            h_tput = _throughput(health, args.requests, args.concurrency)
            client.close()
    result = {
        "query_p50_ms": _pct(q_lat, 0.50), "query_p99_ms": _pct(q_lat, 0.99),
        "health_p50_ms": _pct(h_lat, 0.50), "health_p99_ms": _pct(h_lat, 0.99),
        "query_rps": q_tput, "health_rps": h_tput,
    }
    result["p50_ratio"] = result["query_p50_ms"] / result["health_p50_ms"]
    result["throughput_ratio"] = result["query_rps"] / result["health_rps"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"encrypted query (flipper get, verified receipt) vs GET /health — {args.requests} each, loopback")
        print(f"  latency  query  p50 {result['query_p50_ms']:7.2f} ms  p99 {result['query_p99_ms']:7.2f} ms")
        print(f"           health p50 {result['health_p50_ms']:7.2f} ms  p99 {result['health_p99_ms']:7.2f} ms"
              f"   ratio p50 {result['p50_ratio']:.1f}x")
        print(f"  throughput ({args.concurrency} client threads): query {result['query_rps']:.0f}/s, "
              f"health {result['health_rps']:.0f}/s   ratio {result['throughput_ratio']:.2f}")
    return result


if __name__ == "__main__":
    main()
