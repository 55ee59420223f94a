"""``phat workers`` (a cluster's members as the chain records them, with their verdicts) and
``phat verify-receipt`` (a saved answer checked against the chain: membership → signature →
output hash)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from phat_runtime.cli.common import (
    add_chain_cluster_args,
    cluster_of,
    console,
    read_directory,
    show_address,
)


def add_parsers(sub: Any) -> None:
    w = sub.add_parser("workers", help="a cluster's workers as the chain records them: verdicts, revocations, keys")
    add_chain_cluster_args(w, "the chain node (ws://…; env PHAT_CHAIN)", required=True)
    w.add_argument("--json", action="store_true", help="machine-readable output")
    w.add_argument("--hex", action="store_true", help="print identities as 0x-hex instead of SS58")

    v = sub.add_parser("verify-receipt", help="check a saved receipt file against the chain: the signing "
                                              "worker's membership, the signature, the output hash")
    v.add_argument("file", type=Path, help="a receipt file (`phat query … --save FILE` or `--json` output)")
    add_chain_cluster_args(v, "the chain node (ws://…; env PHAT_CHAIN)", required=True)
    v.add_argument("--metadata", type=Path, default=None, metavar="BUNDLE",
                   help="the contract's metadata (.contract/.json): also check the readable value")
    v.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from phat_runtime.rpc.cluster_directory import ClusterDirectory

    directory = ClusterDirectory(args.chain, cluster_of(args), since=args.since)
    try:
        return _workers(args, directory) if args.command == "workers" else _verify(args, directory)
    finally:
        directory.close()


def _workers(args: argparse.Namespace, directory: Any) -> int:
    from rich.table import Table

    from phat_runtime.crypto.accounts import to_ss58

    read_directory(directory)
    m = directory.membership
    assert m.policy is not None and m.owner is not None
    development = "simulated" in m.policy.platforms
    epochs = [{"epoch": e.epoch, "identity": "0x" + e.identity.hex(), "ecdh": "0x" + e.ecdh.hex(),
               "published_at": e.published_at, "publisher": to_ss58(e.publisher)}
              for e in sorted(m.epochs.values(), key=lambda e: e.epoch)]
    if args.json:
        print(json.dumps({"cluster": "0x" + m.cluster.hex(), "owner": to_ss58(m.owner), "created_at": m.created_at,
                          "as_of_block": m.cursor, "policy": m.policy.to_dict(), "development": development,
                          "current_epoch": m.current_epoch, "epochs": epochs,
                          "key_holders": [to_ss58(h.identity) for h in m.holders(m.current_epoch)],
                          "members": [member.to_json() for member in m.members.values()]}, indent=2))
        return 0
    console.print(f"cluster 0x{m.cluster.hex()} — owner {show_address(m.owner, args)}, created at block "
                  f"{m.created_at}; chain read up to block {m.cursor}", highlight=False, soft_wrap=True)
    console.print(f"policy: platforms {', '.join(sorted(m.policy.platforms))}"
                  + ("  [yellow]DEVELOPMENT cluster: accepts the simulated TEE (not secure)[/]" if development else ""),
                  highlight=False, soft_wrap=True)
    current = m.current_epoch
    console.print("key: " + (f"epoch {current}, Call payloads sealed to 0x{m.epochs[current].ecdh.hex()}"
                             if current is not None else "no cluster key published yet"), highlight=False)
    holders = m.holders(current)
    if holders:
        console.print("key holders: leader " + ", then ".join(show_address(h.identity, args) for h in holders)
                      + (" (fallbacks in this order)" if len(holders) > 1 else ""),
                      highlight=False, soft_wrap=True)
    table = Table(title=f"{len(m.live_members())} live of {len(m.members)} registered")
    for column in ("worker", "platform", "verdict", "revoked", "epochs", "URL", "registered"):
        table.add_column(column, overflow="fold")
    for member in m.members.values():
        verdict = "[green]passed[/]" if member.passed else f"[red]failed[/]: {member.reason}"
        if member.passed and member.tcb_status:
            verdict += f" ({member.tcb_status})"
        table.add_row(show_address(member.identity, args), member.platform, verdict,
                      "[red]block " + str(member.revoked_at) + "[/]" if member.revoked_at is not None else "no",
                      ", ".join(map(str, sorted(member.epochs))) or "—", member.rpc_url,
                      f"block {member.registered_at}")
    console.print(table)
    return 0


def _verify(args: argparse.Namespace, directory: Any) -> int:
    from phat_runtime.codec.metadata import ContractMetadata
    from phat_runtime.rpc.receipt_file import verify_receipt_file

    text = args.file.read_text()
    metadata = ContractMetadata.load(args.metadata) if args.metadata is not None else None
    with console.status(f"reading cluster membership from {args.chain}…"):
        check = verify_receipt_file(text, directory, metadata)
    if args.json:
        print(json.dumps(check.to_json(), indent=2))
        return 0
    receipt = check.receipt
    print(f"receipt verified: worker {show_address(receipt.worker, args)}, chain block {receipt.block}, "
          f"state root 0x{receipt.state_root.hex()}")
    for item in check.checked:
        print(f"  ok   {item}")
    for item in check.unchecked:
        print(f"  --   {item}")
    return 0
