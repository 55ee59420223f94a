"""Benchmark: HTTP egress overhead per request against a direct httpx call, same server, same run.

Four ways to GET the same tiny response from a local keep-alive server (a canned-response
socket server in its own process, so neither its work nor its GIL lands on the client side):

- ``httpx``   a direct ``httpx.Client.get`` (trust_env=False) — the baseline;
- ``egress``  our ``HttpxEgress.send`` alone (pink's checks, policy-guarded pool, deadline,
              streamed body with the 2 MiB limit, pink's HttpResponse);
- ``query``   a QUERY of a WAT contract that calls chain-extension id 1 (SCALE in and out,
              fresh wasmtime store, the extension dispatch, then the egress);
- ``noop``    the same QUERY path with a contract that makes no HTTP call, so
              ``query − noop`` is what id 1 costs inside a query.

    python bench/bench_http.py [--iterations N] [--json]

Samples alternate method by method so machine noise hits all alike. Numbers go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.codec.scale import Reader, Writer  # noqa: E402
from phat_runtime.pink.egress import EgressPolicy, HttpxEgress  # noqa: E402
from phat_runtime.pink.services import PinkServices  # noqa: E402
from phat_runtime.pink.structs import HttpRequest, HttpResponse  # noqa: E402
from phat_runtime.runtime.cluster import Cluster  # noqa: E402
from phat_runtime.testing.harness import ALICE, GENESIS_BLOCK, WatHarness, wat  # noqa: E402
from phat_runtime.types import ExecutionMode  # noqa: E402

BODY = b'{"price": 42}'
CANNED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)
IN, IN_LEN, OUT_LEN, RES, CAP = 0x100, 0x0, 0x10100, 0x10200, 0x10000


def serve_canned(listener: socket.socket) -> None:
    """A keep-alive HTTP/1.1 server answering every request with CANNED (no request bodies)."""

    def connection(conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                _, buffer = buffer.split(b"\r\n\r\n", 1)
                conn.sendall(CANNED)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=connection, args=(conn,), daemon=True).start()

    accept()


def contract(http: bool) -> str:
    call = (
        f"(i32.store (i32.const {OUT_LEN}) (i32.const {CAP}))"
        f"(i32.store (i32.const {RES}) (call $seal0.call_chain_extension (i32.const 1) (i32.const {IN}) "
        f"(i32.load (i32.const {IN_LEN})) (i32.const {RES + 4}) (i32.const {OUT_LEN})))"
    ) if http else f"(i32.store (i32.const {OUT_LEN}) (i32.const 0))"
    return wat(
        f"(i32.store (i32.const {IN_LEN}) (i32.const {CAP}))(call $seal0.input (i32.const {IN}) (i32.const {IN_LEN}))"
        + call
        + f"(call $seal0.seal_return (i32.const 0) (i32.const {RES}) (i32.add (i32.const 4) (i32.load (i32.const {OUT_LEN}))))",
        memory="(memory 4 4)",
    )


def runners(url: str, egress: HttpxEgress) -> dict[str, Callable[[], object]]:
    client = httpx.Client(trust_env=False)
    request = HttpRequest(url, "GET")
    payload = request.write(Writer()).finish()
    harness = WatHarness()
    cluster: Cluster = harness.cluster
    cluster.services = PinkServices(egress=egress)
    with_http, without = harness.deploy(contract(True)), harness.deploy(contract(False))

    def direct() -> object:
        response = client.get(url)
        assert response.status_code == 200 and response.content == BODY
        return response

    def alone() -> object:
        response = egress.send(request, 10.0)
        assert response.status_code == 200 and response.body == BODY
        return response

    def query() -> object:
        result = cluster.call(ALICE, with_http, payload, mode=ExecutionMode.QUERY, block=GENESIS_BLOCK)
        assert result.error is None and result.data[:4] == bytes(4), result.error
        response = HttpResponse.read(Reader(result.data[4:]))
        assert response.body == BODY
        return response

    def noop() -> object:
        result = cluster.call(ALICE, without, payload, mode=ExecutionMode.QUERY, block=GENESIS_BLOCK)
        assert result.error is None
        return result

    return {"httpx": direct, "egress": alone, "query": query, "noop": noop}


def measure(fns: dict[str, Callable[[], object]], iterations: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for _ in range(max(50, iterations // 20)):  # warm-up: connections, module cache, JIT-free paths
        for fn in fns.values():
            fn()
    for i in range(iterations):
        for name in names[i % len(names):] + names[: i % len(names)]:
            start = time.perf_counter_ns()
            fns[name]()
            samples[name].append((time.perf_counter_ns() - start) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    server = multiprocessing.get_context("fork").Process(target=serve_canned, args=(listener,), daemon=True)
    server.start()
    try:
        with HttpxEgress(EgressPolicy(allow_loopback=True)) as egress:
            samples = measure(runners(f"http://127.0.0.1:{port}/price", egress), args.iterations)
    finally:
        server.terminate()
        listener.close()
    med = {name: statistics.median(values) for name, values in samples.items()}
    p90 = {name: statistics.quantiles(values, n=10)[-1] for name, values in samples.items()}
    report = {
        "iterations": args.iterations,
        "median_us": {k: round(v, 1) for k, v in med.items()},
        "p90_us": {k: round(v, 1) for k, v in p90.items()},
        "ratio_egress_vs_httpx": round(med["egress"] / med["httpx"], 2),
        "ratio_query_vs_httpx": round(med["query"] / med["httpx"], 2),
        "id1_in_query_vs_httpx": round((med["query"] - med["noop"]) / med["httpx"], 2),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.iterations} iterations, local keep-alive server, medians (p90):")
    for name in samples:
        print(f"  {name:7s} {med[name]:8.1f} µs  ({p90[name]:.1f})")
    print(f"  egress alone / httpx          {report['ratio_egress_vs_httpx']:.2f}")
    print(f"  query with id 1 / httpx       {report['ratio_query_vs_httpx']:.2f}")
    print(f"  (query − noop query) / httpx  {report['id1_in_query_vs_httpx']:.2f}")


if __name__ == "__main__":
    main()
