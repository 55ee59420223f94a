"""``phat serve``: run a standalone worker (it orders transactions itself; not decentralized)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from phat_runtime.cli.common import console


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run a standalone worker with its RPC server")
    p.add_argument("--data-dir", type=Path, default=Path(".phat-worker"),
                   help="identity, cluster key (sealed) and encrypted state live here (default %(default)s)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--platform", default="simulated", choices=["simulated", "gramine-sgx", "tdx"],
                   help="TEE platform (simulated: development only, NOT SECURE)")
    p.add_argument("--query-timeout-ms", type=int, default=10_000, help="wall clock per query (5000–600000)")
    p.add_argument("--allow-loopback-egress", action="store_true",
                   help="let contracts' HTTP requests reach loopback/private addresses (development)")


def run(args: argparse.Namespace) -> int:
    from phat_runtime.rpc.hosting import serve
    from phat_runtime.worker.service import Worker, WorkerConfig

    if not 5_000 <= args.query_timeout_ms <= 600_000:
        console.print("[red]error:[/] --query-timeout-ms must be within 5000–600000")
        return 2
    egress = _egress(args.allow_loopback_egress)
    with console.status("starting worker (identity, cluster key, state)…"):
        worker = Worker(WorkerConfig(data_dir=args.data_dir, platform=args.platform,
                                     query_wall_clock_ms=args.query_timeout_ms, egress=egress))
    info = worker.info()
    console.print(f"worker [bold]{info['identity']}[/] on {args.platform}; block {info['block']}")
    console.print("[yellow]standalone mode: this worker orders transactions itself — not decentralized[/]")
    console.print(f"serving on http://{args.host}:{args.port}  (OpenAPI docs at /docs)")
    serve(worker, args.host, args.port)
    return 0


def _egress(allow_loopback: bool) -> Any:
    try:
        from phat_runtime.pink.egress import EgressPolicy, HttpxEgress
    except ImportError:
        return None
    policy = EgressPolicy(allow_loopback=True, allow_private=True) if allow_loopback else EgressPolicy()
    return HttpxEgress(policy)
