"""Benchmark: the worker's CPU per encrypted query vs per ``GET /health``, with the server in its
own process (``phat serve`` on loopback) and the load generator in this one.

For each concurrency (default 1, 8, 32) and each kind (``health``, ``query``) the generator
opens one keep-alive connection per client thread and sends pre-built requests: the signed,
encrypted queries of flipper ``get`` are made before the timed part (the protocol allows it:
each carries its own nonce and deadline), so the timed part is just HTTP on raw sockets.
The server's CPU is read from ``/proc/<pid>/stat`` (utime + stime, all threads) before and
after each run; every query response is opened and its receipt verified after the run.

For scale, the same query is also run in this process straight through ``Worker.query`` (no
HTTP, no encryption; CPU of the calling thread): server CPU per encrypted query minus that is
what the transport costs (HTTP, thread hand-off, session crypto, framing).

    python bench/bench_rpc.py [--requests N] [--concurrency 1,8,32] [--rounds R] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.crypto.signer import Signer  # noqa: E402
from phat_runtime.rpc.client import WorkerClient, development_policy  # noqa: E402
from phat_runtime.rpc.hosting import free_port  # noqa: E402
from phat_runtime.worker.service import Worker, WorkerConfig  # noqa: E402

FLIPPER = ROOT / "contracts_examples" / "flipper" / "flipper.contract"
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_cpu_s(pid: int) -> float:
    """utime + stime of every thread of ``pid`` and of its child processes (the query
    processes of ``--query-processes``), in seconds."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(entry.name)
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


@dataclass
class Run:
    kind: str
    concurrency: int
    requests: int = 0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, other: Run) -> None:
        self.requests += other.requests
        self.wall_s += other.wall_s
        self.server_cpu_s += other.server_cpu_s
        self.latencies += other.latencies

    @property
    def cpu_us(self) -> float:
        return self.server_cpu_s / self.requests * 1e6

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s

    def pct_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3


class Connection:
    """A minimal HTTP/1.1 keep-alive client on a raw socket (cheap for the load generator)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def exchange(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        status = int(self.reader.readline().split()[1])
        length = 0
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, self.reader.read(length)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def http_request(method: str, path: str, body: bytes = b"", content_type: str = "application/octet-stream") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
    if body or method == "POST":
        head += f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


# A load is: per client thread, a list of raw requests and a check for each (status, body).
Load = list[list[tuple[bytes, Callable[[int, bytes], None]]]]


def health_load(threads: int, per_thread: int) -> Load:
    raw = http_request("GET", "/health")

    def check(status: int, body: bytes) -> None:
        assert status == 200 and json.loads(body)["ok"] is True, (status, body[:200])

    return [[(raw, check)] * per_thread for _ in range(threads)]


def query_load(client: WorkerClient, flipper: Any, signer: Signer, threads: int, per_thread: int) -> Load:
    payload = flipper.metadata.encode_message("get")
    load: Load = []
    for _ in range(threads):
        prepared = client.prepare_queries(flipper.address, payload, signer, count=per_thread)
        load.append([(http_request("POST", p.path, p.body, p.content_type), _query_check(p)) for p in prepared])
    return load


def _query_check(prepared: Any) -> Callable[[int, bytes], None]:
    def check(status: int, body: bytes) -> None:
        assert status == 200, (status, body[:300])
        verified = prepared.finish(body)  # opens the response, verifies the receipt
        assert verified.outcome.success and verified.outcome.data == b"\x00\x01", verified.outcome

    return check


def run_load(kind: str, port: int, pid: int, load: Load) -> Run:
    connections = [Connection(port) for _ in load]
    answers: list[list[tuple[int, bytes]]] = [[] for _ in load]
    latencies: list[list[float]] = [[] for _ in load]
    start_gate = threading.Barrier(len(load) + 1)

    def client(i: int) -> None:
        conn, out, lat = connections[i], answers[i], latencies[i]
        start_gate.wait()
        for raw, _ in load[i]:
            t = time.perf_counter()
            out.append(conn.exchange(raw))
            lat.append(time.perf_counter() - t)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(len(load))]
    for w in workers:
        w.start()
    cpu0 = server_cpu_s(pid)
    t0 = time.perf_counter()
    start_gate.wait()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    cpu = server_cpu_s(pid) - cpu0
    for conn in connections:
        conn.close()
    for requests, got in zip(load, answers, strict=True):  # verified outside the timed part
        for (_, check), (status, body) in zip(requests, got, strict=True):
            check(status, body)
    return Run(kind, len(load), sum(map(len, load)), wall, cpu, [x for lat in latencies for x in lat])


def in_process_query_cpu_us(data_dir: Path, n: int) -> float:
    """Mean CPU (µs, calling thread) of ``Worker.query`` for flipper ``get``."""
    from phat_runtime.codec.messages import RequestKind, SignedRequest
    from phat_runtime.codec.metadata import ContractMetadata
    from phat_runtime.worker.pipeline import encode_upload

    worker = Worker(WorkerConfig(data_dir=data_dir))  # simulated TEE: development only
    worker.start()
    try:
        alice = Signer.dev("alice")
        meta = ContractMetadata.load(FLIPPER)
        assert meta.wasm is not None

        def signed(kind: RequestKind, **kw: Any) -> SignedRequest:
            fields = {"contract": bytes(32), "code_hash": bytes(32), "payload": b"", **kw}
            return SignedRequest(kind, worker.identity.public_key, fields["contract"], fields["code_hash"],
                                 fields["payload"], b"", 0, 0, os.urandom(32), int((time.time() + 600) * 1000),
                                 alice.scheme, alice.public_key).signed_by(alice)

        code_hash = worker.submit(signed(RequestKind.UPLOAD, payload=encode_upload(meta.wasm)))[0].code_hash
        made = worker.submit(signed(RequestKind.INSTANTIATE, code_hash=code_hash,
                                    payload=meta.encode_constructor("new", [True])))[0]
        assert made.contract is not None
        requests = [signed(RequestKind.QUERY, contract=made.contract, payload=meta.encode_message("get"))
                    for _ in range(n + 50)]
        for request in requests[:50]:
            worker.query(request)
        start = time.thread_time()
        for request in requests[50:]:
            worker.query(request)
        return (time.thread_time() - start) / n * 1e6
    finally:
        worker.stop()


def start_server(data_dir: Path, port: int, query_processes: int | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    extra = [] if query_processes is None else ["--query-processes", str(query_processes)]
    server = subprocess.Popen(
        [sys.executable, "-m", "phat_runtime.cli.main", "serve", "--data-dir", str(data_dir), "--port", str(port),
         *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = Connection(port)
            status, _ = conn.exchange(http_request("GET", "/health"))
            conn.close()
            if status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("phat serve did not start")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=640, help="requests per kind, concurrency and round")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=5,
                        help="health and query alternate this many times (noise on a shared machine hits both)")
    parser.add_argument("--query-processes", type=int, default=None,
                        help="phat serve --query-processes N (default: its default, one per core)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]

    results: dict[str, Any] = {"levels": {}}
    with tempfile.TemporaryDirectory(prefix="phat-bench-rpc-") as tmp:
        port = free_port()
        server = start_server(Path(tmp) / "worker", port, args.query_processes)  # simulated TEE: development only
        try:
            client = WorkerClient(f"http://127.0.0.1:{port}", policy=development_policy())
            alice = Signer.dev("alice")
            flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
            for c in levels:
                per_thread = max(1, args.requests // c)
                runs = {"health": Run("health", c), "query": Run("query", c)}
                run_load("query", port, server.pid, query_load(client, flipper, alice, c, max(2, per_thread // 10)))
                for _ in range(args.rounds):
                    runs["health"].add(run_load("health", port, server.pid, health_load(c, per_thread)))
                    load = query_load(client, flipper, alice, c, per_thread)
                    runs["query"].add(run_load("query", port, server.pid, load))
                results["levels"][c] = {
                    kind: {"requests": r.requests, "server_cpu_us": r.cpu_us, "rps": r.rps,
                           "p50_ms": r.pct_ms(0.5), "p99_ms": r.pct_ms(0.99)}
                    for kind, r in runs.items()
                }
                # None when /health used less than one clock tick in all (tiny --requests).
                health_cpu = runs["health"].cpu_us
                results["levels"][c]["cpu_ratio"] = runs["query"].cpu_us / health_cpu if health_cpu else None
                if not args.json:
                    _print_level(c, results["levels"][c])
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
        results["in_process_query_cpu_us"] = in_process_query_cpu_us(Path(tmp) / "in-process", args.requests)
    inner = results["in_process_query_cpu_us"]
    for level in results["levels"].values():
        level["transport_us"] = level["query"]["server_cpu_us"] - inner
    if not args.json:
        print(f"in-process Worker.query (same query, no HTTP, no encryption): {inner:.0f} µs CPU; "
              "server CPU per query minus that: " + ", ".join(
                  f"{level['transport_us']:.0f} µs (c={c})" for c, level in results["levels"].items()))
    if args.json:
        print(json.dumps(results, indent=2))
    return results


def _print_level(c: int, level: dict[str, Any]) -> None:
    print(f"concurrency {c}:")
    for kind in ("health", "query"):
        r = level[kind]
        print(f"  {kind:6}  server CPU {r['server_cpu_us']:7.0f} µs/req   {r['rps']:7.0f} req/s   "
              f"p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms   ({r['requests']} requests)")
    ratio = level["cpu_ratio"]
    print(f"  query / health server CPU: {'too few requests to tell' if ratio is None else f'{ratio:.2f}x'}")


if __name__ == "__main__":
    main()
