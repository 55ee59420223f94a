"""``phat serve``: run a standalone worker (it orders transactions itself; not decentralized)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from phat_runtime.cli.common import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    add_cluster_args,
    add_platform_args,
    cluster_config,
    console,
    non_negative_int,
    platform_config,
    port_number,
)
from phat_runtime.errors import ConfigError, TeeError

_LISTEN = urlsplit(DEFAULT_URL)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run a standalone worker with its RPC server")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
                   help="identity, cluster key (sealed) and encrypted state (env PHAT_DATA_DIR)")
    p.add_argument("--host", default=_LISTEN.hostname or "127.0.0.1",
                   help="address to listen on (PHAT_URL's host when set)")
    p.add_argument("--port", type=port_number, default=_LISTEN.port or 8000,
                   help="port to listen on (PHAT_URL's port when set)")
    p.add_argument("--platform", default="simulated", choices=["simulated", "gramine-sgx", "tdx"],
                   help="TEE platform (simulated: development only, NOT SECURE)")
    add_platform_args(p)
    add_cluster_args(p)
    p.add_argument("--query-timeout-ms", type=int, default=10_000, metavar="MS", help="wall clock per query (5000–600000)")
    p.add_argument("--query-processes", type=non_negative_int, default=os.cpu_count() or 1, metavar="N",
                   help="processes answering queries on every core (0: in the worker's process)")
    p.add_argument("--allow-loopback-egress", action="store_true",
                   help="let contracts' HTTP requests reach loopback/private addresses (development)")


def run(args: argparse.Namespace) -> int:
    from phat_runtime.rpc.hosting import serve
    from phat_runtime.worker.service import Worker, WorkerConfig

    if not 5_000 <= args.query_timeout_ms <= 600_000:
        raise ConfigError(f"--query-timeout-ms {args.query_timeout_ms} is outside 5000–600000")
    genesis = cluster_config(args)
    check_port_free(args.host, args.port)
    prepare_data_dir(args.data_dir)
    warn_simulated_once()
    egress = _egress(args.allow_loopback_egress)
    first_start = not (args.data_dir / "identity.sealed").exists()
    try:
        with console.status("starting worker (identity, cluster key, state)…"):
            worker = Worker(WorkerConfig(data_dir=args.data_dir, platform=args.platform,
                                         platform_config=platform_config(args, args.data_dir),
                                         query_wall_clock_ms=args.query_timeout_ms, egress=egress,
                                         **genesis))
    except TeeError as exc:
        if not first_start:
            raise
        raise ConfigError(f"{exc} — the {args.platform} platform is not usable here: point "
                          "--gramine-dir / --tsm-dir / --tdx-seal-key at its files, or use "
                          "--platform simulated (development only)") from None
    info = worker.info()
    from phat_runtime.crypto.accounts import to_ss58

    console.print(f"worker [bold]{to_ss58(worker.identity.public_key)}[/] on {args.platform}; "
                  f"block {info['block']}; data in {args.data_dir}", highlight=False, soft_wrap=True)
    console.print("[yellow]standalone mode: this worker orders transactions itself — not decentralized[/]")
    print_cluster(info)
    console.print(f"serving on http://{args.host}:{args.port}  (dashboard at /, OpenAPI docs at /docs; Ctrl-C stops)",
                  highlight=False)
    if args.query_processes:
        console.print(f"{args.query_processes} query processes answer queries; this process applies blocks",
                      highlight=False)
    try:
        serve(worker, args.host, args.port, log_level="warning", query_processes=args.query_processes,
              allow_loopback_egress=args.allow_loopback_egress)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a worker is stopped; serve() has stopped it cleanly
    console.print(f"worker stopped; state kept in {args.data_dir}", highlight=False, soft_wrap=True)
    return 0


def print_cluster(info: dict[str, Any]) -> None:
    """The system contract and the cluster owner, with a warning when the owner's key is public."""
    from phat_runtime.crypto.accounts import dev_account

    system, owner = info.get("system_contract"), info.get("cluster_owner")
    if system is None or owner is None:
        console.print("no system contract in this cluster")
        return
    console.print(f"system contract {system['address']}; cluster owner {owner['address']}",
                  highlight=False, soft_wrap=True)
    if owner["address_hex"] == "0x" + dev_account("alice").hex():
        console.print("[yellow]the cluster owner is the development account alice, whose key is "
                      "public: pass --cluster-owner for anything but development[/]")


def check_port_free(host: str, port: int) -> None:
    """Fail before creating anything if ``host:port`` cannot be bound (uvicorn binds the same
    way, with SO_REUSEADDR)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r} does not resolve ({exc.strerror}): use an IP address "
                          "such as 127.0.0.1 or 0.0.0.0") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"{host}:{port} is already in use (another `phat serve`?): stop it "
                                  "or pass --port N") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; pass --host/--port") from None


def prepare_data_dir(path: Path) -> None:
    """The data directory exists (created if missing) and is a writable directory."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--data-dir {path} is a file, not a directory: pass a directory "
                          "(it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --data-dir {path}: {exc.strerror}; pass a directory "
                          "you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--data-dir {path} is not writable: pass a directory you can write to")


class _OnceFilter(logging.Filter):
    """Lets the simulated TEE's warning through once; later repeats of it are dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        from phat_runtime.tee.simulated import WARNING

        if not record.getMessage().startswith(WARNING):
            return True
        if self.seen:
            return False
        self.seen = True
        return True


def warn_simulated_once() -> None:
    logger = logging.getLogger("phat_runtime.tee.simulated")
    if not any(isinstance(f, _OnceFilter) for f in logger.filters):
        logger.addFilter(_OnceFilter())


def _egress(allow_loopback: bool) -> Any:
    try:
        from phat_runtime.pink.egress import EgressPolicy, HttpxEgress
    except ImportError:
        return None
    policy = EgressPolicy(allow_loopback=True, allow_private=True) if allow_loopback else EgressPolicy()
    return HttpxEgress(policy)
