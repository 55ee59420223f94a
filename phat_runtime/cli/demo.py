"""``phat demo``: a local cluster with the example contracts, called the way users will.

No chain and no TEE: everything runs in this process (the in-process API of
``phat_runtime.LocalCluster``). Shows deploys, queries, transactions, decoded events,
a reverted call with its decoded error, and a cross-contract factory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from phat_runtime.codec.metadata import DecodedEvent
from phat_runtime.crypto.accounts import dev_account, to_ss58
from phat_runtime.errors import ConfigError
from phat_runtime.runtime.local import CallResult, LocalCluster


def _fmt(value: Any) -> str:
    """Short form for a table cell: long strings (addresses) shortened in the middle."""
    if isinstance(value, str) and len(value) > 40:
        return f"{value[:6]}…{value[-4:]}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return repr(value)


def _row(table: Table, what: str, result: CallResult, started: float) -> None:
    status = "ok" if result.success else ("reverted" if result.reverted else f"failed: {result.raw.error}")
    events = "; ".join(
        f"{e.label}({', '.join(f'{k}={_fmt(v)}' for k, v in e.args.items())})"
        if isinstance(e, DecodedEvent) else "undecoded event"
        for e in result.events
    )
    table.add_row(what, status, _fmt(result.output), events or "-", f"{result.gas_used / 1e6:,.1f}M",
                  f"{(time.perf_counter() - started) * 1e3:.2f}")


def run_demo(examples: Path) -> int:
    console = Console(width=max(Console().width, 130))
    bundles = {name: examples / name / f"{name}.contract" for name in ("flipper", "token", "factory")}
    missing = [str(p) for p in bundles.values() if not p.exists()]
    if missing:
        raise ConfigError(f"example bundles not found: {', '.join(missing)}; run from a source "
                          "checkout or pass --examples DIR (rebuild with `python contracts_examples/build.py`)")

    console.print("[bold]phat_runtime demo[/] — local cluster, in-process "
                  "(no chain, no TEE: development mode)")
    with console.status("starting a local cluster and deploying the examples..."):
        cluster = LocalCluster()
        flipper = cluster.deploy(bundles["flipper"], "new", [True])
        token = cluster.deploy(bundles["token"], "new", {"total_supply": 1_000_000})
        flipper_code = cluster.upload(bundles["flipper"]).code_hash
        assert flipper_code is not None
        factory = cluster.deploy(bundles["factory"], "new", ["0x" + flipper_code.hex()])

    deployed = Table(title="deployed contracts")
    for column in ("contract", "address", "code hash"):
        deployed.add_column(column)
    for contract in (flipper, token, factory):
        info = cluster.runtime.records.contract(contract.address)
        assert info is not None
        deployed.add_row(contract.metadata.name, contract.ss58, "0x" + info.code_hash.hex()[:16] + "…")
    console.print(deployed)

    alice, bob = to_ss58(dev_account("alice")), to_ss58(dev_account("bob"))
    table = Table(title="calls (alice is the caller)")
    for column in ("call", "result", "output", "events", "gas", "ms"):
        table.add_column(column, overflow="fold", no_wrap=column in ("call", "gas", "ms"))
    steps: list[tuple[str, Any]] = [
        ("query flipper.get()", lambda: flipper.query("get")),
        ("tx    flipper.flip()", lambda: flipper.transact("flip")),
        ("query flipper.get()", lambda: flipper.query("get")),
        ("query token.balance_of(alice)", lambda: token.query("balance_of", {"owner": alice})),
        ("tx    token.transfer(bob, 250)", lambda: token.transact("transfer", {"to": bob, "value": 250})),
        ("query token.balance_of(bob)", lambda: token.query("balance_of", [bob])),
        ("tx    token.transfer(alice, 10^9) by bob",
         lambda: token.transact("transfer", [alice, 10**9], caller="bob")),
        ("tx    factory.create(false, salt)", lambda: factory.transact("create", [False, "0x64656d6f"])),
    ]
    child: Any = None
    for what, step in steps:
        started = time.perf_counter()
        result = step()
        _row(table, what, result, started)
        if what.startswith("tx    factory.create"):
            child = result.output
    if child is not None:
        for what, step in [
            ("tx    factory.flip_child(child)", lambda: factory.transact("flip_child", [child])),
            ("query factory.get_child(child)", lambda: factory.query("get_child", [child])),
        ]:
            started = time.perf_counter()
            _row(table, what, step(), started)
    console.print(table)
    console.print("Next: `pytest` runs the test suite; `phat bench` measures query overhead.")
    return 0
