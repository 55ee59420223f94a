"""``phat worker`` (a worker following a chain), ``phat devnet`` (a chain and N workers on this
machine), ``phat checkpoints`` / ``phat rejections`` (what a chain worker saw)."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from phat_runtime.cli.common import (
    DEFAULT_URL,
    add_cluster_args,
    add_platform_args,
    cluster_config,
    console,
    non_negative_int,
    platform_config,
    port_number,
    positive_int,
    worker_url,
)
from phat_runtime.errors import ConfigError
from phat_runtime.tee.policy import Policy

DEFAULT_DEVNET_DIR = Path(".phat-devnet")
DEVNET_FILE = "devnet.json"
#: The development cluster's salt: `phat devnet` creates cluster_id(alice, salt).
DEVNET_CLUSTER_SALT = b"phat devnet"


def add_parsers(sub: Any) -> None:
    w = sub.add_parser("worker", help="run a worker that follows a chain (chain mode)")
    w.add_argument("--chain", required=True, metavar="WS", help="the chain node (ws://…)")
    w.add_argument("--cluster", required=True, metavar="ID", help="the cluster id (0x-hex)")
    w.add_argument("--data-dir", type=Path, default=Path(".phat-chain-worker"), metavar="DIR",
                   help="identity and encrypted state of this worker")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on")
    w.add_argument("--port", type=port_number, default=8000, help="port to listen on")
    w.add_argument("--platform", default="simulated", choices=["simulated", "gramine-sgx", "tdx"],
                   help="TEE platform (simulated: development only, NOT SECURE)")
    add_platform_args(w)
    add_cluster_args(w)
    w.add_argument("--start-block", type=positive_int, default=1, metavar="N",
                   help="first chain block a fresh worker applies (the block that created the cluster)")
    w.add_argument("--checkpoint-every", type=int, default=10, metavar="K",
                   help="publish the state root on chain every K blocks (0: never)")
    w.add_argument("--public-url", default=None, metavar="URL",
                   help="the URL clients reach this worker at, registered on chain "
                        "(default: http://HOST:PORT, with 127.0.0.1 for 0.0.0.0)")
    w.add_argument("--collateral", type=Path, default=None, metavar="FILE",
                   help="dcap-qvl collateral JSON of this worker's quote (SGX/TDX; the workers "
                        "verify the registration with it at the block's time)")
    w.add_argument("--fallback-s", type=float, default=None, metavar="S",
                   help="when the leader (the first key holder) is offline, the key holder at rank k "
                        "hands keys over and publishes a rotated key after k × S seconds (default 30)")
    w.add_argument("--dev-cluster-key", action="store_true",
                   help="DEVELOPMENT ONLY: derive the cluster key from the public cluster id "
                        "(every worker shares it without a handover; protects nothing)")
    w.add_argument("--query-timeout-ms", type=int, default=10_000, metavar="MS",
                   help="wall clock per query (5000–600000)")
    w.add_argument("--query-processes", type=non_negative_int, default=0, metavar="N",
                   help="processes answering queries on every core, as `phat serve --query-processes` "
                        "(default 0: queries in the worker's process)")

    d = sub.add_parser("devnet", help="a local Substrate chain (chopsticks) with N workers following it")
    d.add_argument("--workers", type=positive_int, default=2, metavar="N", help="how many workers")
    d.add_argument("--data-dir", type=Path, default=DEFAULT_DEVNET_DIR, metavar="DIR",
                   help="the chain's database and every worker's data dir (kept: run again to resume)")
    d.add_argument("--port", type=port_number, default=9944, metavar="P",
                   help="chain RPC port; workers listen on P+1, P+2, …")

    for name, helptext in (("checkpoints", "state roots published on chain next to the worker's own"),
                           ("rejections", "chain messages the workers skipped, and why")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--url", type=worker_url, default=DEFAULT_URL, help="a chain worker's URL")
        p.add_argument("--limit", type=positive_int, default=20, help="how many, newest first")
        p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    if args.command == "worker":
        return _worker(args)
    if args.command == "devnet":
        return _devnet(args)
    return _show(args)


def _cluster_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"--cluster {text!r} is not a 0x-hex 32-byte cluster id")
    return raw


# --- phat worker ---------------------------------------------------------------------------------


def _worker(args: argparse.Namespace) -> int:
    from phat_runtime.cli.serve import (
        check_port_free,
        prepare_data_dir,
        print_cluster,
        warn_simulated_once,
    )
    from phat_runtime.crypto.accounts import to_ss58
    from phat_runtime.rpc.hosting import serve
    from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig

    if not args.chain.startswith(("ws://", "wss://")):
        raise ConfigError(f"--chain {args.chain!r} must be a ws:// or wss:// URL")
    if not 5_000 <= args.query_timeout_ms <= 600_000:
        raise ConfigError(f"--query-timeout-ms {args.query_timeout_ms} is outside 5000–600000")
    if args.fallback_s is not None and not 0 <= args.fallback_s <= 3600:
        raise ConfigError(f"--fallback-s {args.fallback_s} is outside 0–3600 seconds")
    cluster = _cluster_id(args.cluster)
    genesis = cluster_config(args)
    check_port_free(args.host, args.port)
    prepare_data_dir(args.data_dir)
    warn_simulated_once()
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    public_url = args.public_url or f"http://{host}:{args.port}"
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError(f"--public-url {public_url!r} must start with http:// or https://")
    collateral = b""
    if args.collateral is not None:
        try:
            collateral = args.collateral.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read --collateral {args.collateral}: {exc.strerror}") from None
    chain = ChainConfig(args.chain, cluster, start_block=args.start_block,
                        checkpoint_every=max(0, args.checkpoint_every), dev_cluster_key=args.dev_cluster_key,
                        rpc_url=public_url, collateral=collateral,
                        **({} if args.fallback_s is None else {"fallback_s": args.fallback_s}))
    with console.status("starting worker (identity, cluster key, state)…"):
        worker = Worker(WorkerConfig(data_dir=args.data_dir, platform=args.platform,
                                     platform_config=platform_config(args, args.data_dir),
                                     query_wall_clock_ms=args.query_timeout_ms, chain=chain,
                                     **genesis))
    info = worker.info()
    console.print(f"worker [bold]{to_ss58(worker.identity.public_key)}[/] on {args.platform}; "
                  f"cluster 0x{cluster.hex()}; state at block {info['block']}", highlight=False, soft_wrap=True)
    console.print(f"following {args.chain} from block {max(args.start_block, info['block'] + 1)}"
                  + ("; [red]DEVELOPMENT cluster key (anyone can derive it)[/]" if args.dev_cluster_key else
                     f"; registering as {public_url} and waiting for the cluster key by handover"
                     if not info["ready"] else ""), highlight=False, soft_wrap=True)
    print_cluster(info)
    console.print(f"serving on http://{args.host}:{args.port}  (dashboard at /; Ctrl-C stops)", highlight=False)
    try:
        serve(worker, args.host, args.port, log_level="warning", query_processes=args.query_processes)
    except KeyboardInterrupt:
        pass
    console.print(f"worker stopped; state kept in {args.data_dir}", highlight=False, soft_wrap=True)
    return 0


# --- phat devnet ---------------------------------------------------------------------------------


def _devnet(args: argparse.Namespace) -> int:
    from phat_runtime.chain import ChainNode, CreateCluster, Devnet, cluster_id
    from phat_runtime.crypto.accounts import to_ss58
    from phat_runtime.crypto.signer import Signer

    root: Path = args.data_dir
    root.mkdir(parents=True, exist_ok=True)
    state_file = root / DEVNET_FILE
    previous = json.loads(state_file.read_text()) if state_file.exists() else {}
    started = time.monotonic()
    chain = Devnet(root / "chain", args.port, progress=lambda m: console.print(f"[dim]chain:[/] {m}"))
    chain.start()
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        alice = Signer.dev("alice")
        cluster = cluster_id(alice.public_key, DEVNET_CLUSTER_SALT)
        start_block = previous.get("start_block") if previous.get("cluster") == "0x" + cluster.hex() else None
        if start_block is None:
            with ChainNode(chain.url) as node:
                start_block = node.finalized_number() + 1  # the cluster is created after this
        workers: list[dict[str, Any]] = []
        commands: list[list[str]] = []  # each worker's `phat worker …` arguments

        def launch(i: int) -> None:
            port = args.port + 1 + i
            data_dir = root / f"worker-{i}"
            log_file = open(root / f"worker-{i}.log", "ab")  # noqa: SIM115 — lives as long as the worker
            commands.append(["worker", "--chain", chain.url, "--cluster", "0x" + cluster.hex(),
                             "--data-dir", str(data_dir), "--port", str(port), "--start-block", str(start_block)])
            cmd = [sys.executable, "-m", "phat_runtime.cli.main", *commands[-1]]
            procs.append(subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            workers.append({"url": f"http://127.0.0.1:{port}", "pid": procs[-1].pid, "data_dir": str(data_dir),
                            "log": str(root / f"worker-{i}.log")})
            with console.status(f"starting worker {i}…"):
                workers[-1]["identity"] = _wait_worker(workers[-1]["url"], procs[-1], Path(workers[-1]["log"]))
            chain.fund([bytes.fromhex(workers[-1]["identity"][2:])])  # it signs its own chain messages

        launch(0)
        if "start_block" not in previous or previous.get("cluster") != "0x" + cluster.hex():
            with console.status("creating the development cluster on chain (worker 0 makes its key)…"), \
                    ChainNode(chain.url) as node:
                node.submit([CreateCluster(DEVNET_CLUSTER_SALT, devnet_policy(),
                                           bytes.fromhex(workers[0]["identity"][2:]))], alice)
        for i in range(1, args.workers):
            launch(i)
        with console.status(f"workers registering and receiving the cluster key ({args.workers})…"):
            for entry, proc in zip(workers, procs, strict=True):
                _wait_ready(entry["url"], proc, Path(entry["log"]))
        summary = {"chain": chain.url, "cluster": "0x" + cluster.hex(), "start_block": start_block,
                   "owner": to_ss58(alice.public_key),
                   "workers": [{key: w[key] for key in ("url", "identity", "pid", "data_dir", "log")}
                               for w in workers]}
        partial = state_file.with_suffix(".json.tmp")  # whoever waits for the file reads it whole
        partial.write_text(json.dumps(summary, indent=2) + "\n")
        partial.replace(state_file)
        console.print(json.dumps(summary, indent=2), highlight=False, soft_wrap=True)
        console.print(f"[green]devnet ready in {time.monotonic() - started:.1f} s[/]"
                      + (f" (npm install took {chain.npm_seconds:.0f} s)" if chain.npm_seconds else "")
                      + f"; written to {state_file}. [yellow]Development cluster: simulated TEE, not secure.[/] "
                      "Ctrl-C stops everything (data kept: run again to resume).")
        exited: set[int] = set()
        try:
            while not stop.is_set():
                for i, proc in enumerate(procs):
                    if i not in exited and proc.poll() is not None:
                        exited.add(i)
                        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                               else f"exited ({proc.returncode})")
                        console.print(f"[red]worker {i} {how}; see {workers[i]['log']}.[/] The others keep "
                                      f"serving; restart it with: phat {shlex.join(commands[i])}",
                                      highlight=False, soft_wrap=True)
                if len(exited) == len(procs):
                    console.print("[red]every worker exited; stopping the devnet[/]")
                    stop.set()
                stop.wait(1.0)
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        chain.stop()
        console.print("devnet stopped; chain and workers kept in " + str(root))


def devnet_policy() -> Policy:
    """The development cluster's policy: the simulated platform (development only, NOT SECURE)
    with its default measurement."""
    from phat_runtime.tee import simulated

    return Policy.from_dict({"platforms": ["simulated"],
                             "simulated": {"measurement": [simulated.DEFAULT_MEASUREMENT.hex()]}})


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 180) -> None:
    """Until the worker holds the cluster key and has state (``ready`` in /v1/info)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise ConfigError(f"the worker for {url} exited ({proc.returncode}): " + " | ".join(tail))
        try:
            last = httpx.get(url + "/v1/info", timeout=2, trust_env=False).json()
            if last.get("ready"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    waiting = (last.get("chain") or {}).get("waiting") or (last.get("chain") or {}).get("duties_error")
    raise ConfigError(f"the worker for {url} has no cluster key after {timeout_s:.0f} s"
                      + (f" ({waiting})" if waiting else "") + f"; see {log}")


def _wait_worker(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> str:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise ConfigError(f"the worker for {url} exited ({proc.returncode}): " + " | ".join(tail))
        try:
            info = httpx.get(url + "/v1/info", timeout=2, trust_env=False).json()
            return str(info["identity"])
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(0.3)
    raise ConfigError(f"the worker for {url} did not answer within {timeout_s:.0f} s; see {log}")


# --- phat checkpoints / rejections ----------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    import httpx
    from rich.table import Table

    path = "/v1/chain/checkpoints" if args.command == "checkpoints" else "/v1/chain/rejections"
    try:
        response = httpx.get(args.url + path, params={"limit": args.limit}, timeout=30, trust_env=False)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach the worker at {args.url} ({exc}); is `phat worker` running?") from None
    body = response.json()
    if response.status_code != 200:
        raise ConfigError(body.get("error", {}).get("message", f"HTTP {response.status_code}"))
    records = body[args.command]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    if not records:
        console.print(f"no {args.command} yet")
        return 0
    table = Table(title=f"{args.command} at {args.url}")
    if args.command == "checkpoints":
        for col in ("block", "worker", "published root", "local root", "agrees"):
            table.add_column(col)
        for r in records:
            agrees = {True: "[green]yes[/]", False: "[red]NO[/]", None: "?"}[r["agrees"]]
            table.add_row(str(r["block"]), r["worker"], r["published_root"][:18] + "…",
                          (r["local_root"] or "—")[:18] + "…", agrees)
    else:
        for col in ("block", "extrinsic", "signer", "message", "reason"):
            table.add_column(col, overflow="fold")
        for r in records:
            table.add_row(str(r["block"]), f"{r['extrinsic']}.{r['position']}", r["signer"], r["message"], r["reason"])
    console.print(table)
    return 0
