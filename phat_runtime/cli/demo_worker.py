"""``phat demo``: a real worker on loopback with the example contracts, driven over RPC.

Starts a standalone worker (simulated TEE — development only) with its HTTP API, attests it,
deploys the examples through the Python client, runs queries and transactions, and checks
every receipt against the attested worker identity. If the price-oracle example is built, it
also serves a price over a local HTTP server and has the contract fetch and sign it.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import ConfigError

PRICE = "123.45"


class _PriceHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"symbol": "PHA", "price": PRICE}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def run_worker_demo(examples: Path) -> int:
    from phat_runtime.cli.serve import _egress
    from phat_runtime.rpc.client import WorkerClient, development_policy
    from phat_runtime.rpc.hosting import ServerThread
    from phat_runtime.worker.service import Worker, WorkerConfig

    console = Console(width=max(Console().width, 130))
    bundles = {n: examples / n / f"{n}.contract" for n in ("flipper", "token", "oracle")}
    for name in ("flipper", "token"):
        if not bundles[name].exists():
            raise ConfigError(f"{bundles[name]} not found: run from a source checkout or pass --examples DIR")
    console.print("[bold]phat_runtime demo[/] — a standalone worker on loopback "
                  "([yellow]simulated TEE: development only, not secure[/])")
    with tempfile.TemporaryDirectory(prefix="phat-demo-") as tmp:
        with console.status("starting the worker…"):
            worker = Worker(WorkerConfig(data_dir=Path(tmp) / "worker", egress=_egress(True)))
        with ServerThread(worker) as url:
            client = WorkerClient(url, policy=development_policy())
            verdict = client.attest()
            info = client.info()
            console.print(f"worker {url}: identity 0x{info.identity.hex()[:16]}…, platform {info.platform}, "
                          f"attestation {'[green]verified[/]' if verdict.ok else '[red]failed[/]'} "
                          "(development policy: simulated quotes accepted)")
            alice, bob = Signer.dev("alice"), Signer.dev("bob")
            table = Table(title="calls over encrypted RPC — every receipt verified against the attested worker")
            for column in ("call", "result", "output", "block", "receipt"):
                table.add_column(column, overflow="fold")

            def row(what: str, result: Any) -> None:
                r = result.verified.receipt
                status = "ok" if result.verified.outcome.success else (
                    "reverted" if result.verified.outcome.reverted else result.verified.outcome.error_kind)
                output = result.output if result.verified.outcome.error_kind is None else "-"
                table.add_row(what, status, _short(output), str(r.block),
                              f"[green]verified[/] 0x{r.signature.hex()[:12]}…")

            with console.status("deploying flipper and token (upload + instantiate transactions)…"):
                flipper = client.deploy(bundles["flipper"], "new", [True], signer=alice)
                token = client.deploy(bundles["token"], "new", {"total_supply": 1_000_000}, signer=alice)
            row("query flipper.get()", flipper.query("get", signer=alice))
            row("tx    flipper.flip()", flipper.transact("flip", signer=alice))
            row("query flipper.get()", flipper.query("get", signer=alice))
            row("tx    token.transfer(bob, 250)",
                token.transact("transfer", {"to": bob.public_key, "value": 250}, signer=alice))
            row("query token.balance_of(bob) as bob", token.query("balance_of", [bob.public_key], signer=bob))
            row("tx    token.transfer(alice, 10^9) as bob",
                token.transact("transfer", [alice.public_key, 10**9], signer=bob))
            if bundles["oracle"].exists():
                _oracle(client, bundles["oracle"], alice, row, console)
            console.print(table)
            client.close()
    console.print("Next: `phat serve` runs a worker you keep; `phat deploy/query/tx --dev` talk to it.")
    return 0


def _oracle(client: Any, bundle: Path, alice: Signer, row: Any, console: Console) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PriceHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with console.status("deploying the price oracle…"):
            oracle = client.deploy(bundle, _constructor(bundle), [], signer=alice)
        url = f"http://127.0.0.1:{server.server_address[1]}/price"
        started = time.perf_counter()
        result = oracle.query("get_price", [url], signer=alice)
        row(f"query oracle.get_price(local {PRICE})", result)
        console.print(f"oracle answered in {(time.perf_counter() - started) * 1e3:.0f} ms; "
                      "its signature is checked in the tests with an independent library")
    finally:
        server.shutdown()


def _constructor(bundle: Path) -> str:
    """The oracle's argument-less constructor."""
    from phat_runtime.codec.metadata import ContractMetadata

    return next(c.label for c in ContractMetadata.load(bundle).constructors if not c.args)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
