"""``phat deploy | query | tx | logs | keys``: talk to a running worker like cargo-contract /
polkadot-js talk to a chain — JSON arguments in, decoded results and verified receipts out."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from phat_runtime.cli.common import (
    add_connection_args,
    connect,
    console,
    emit,
    parse_args_json,
    signer_from,
)
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.errors import ConfigError


def add_parsers(sub: Any) -> None:
    deploy = sub.add_parser("deploy", help="upload and instantiate a .contract bundle")
    deploy.add_argument("bundle", type=Path)
    deploy.add_argument("--constructor", default=None, help="constructor label (default: the default one)")
    deploy.add_argument("--args", default=None, help="constructor arguments as JSON (list or object)")
    deploy.add_argument("--salt", default="", help="salt (text) for the contract address")
    deploy.add_argument("--value", type=int, default=0)
    add_connection_args(deploy)

    for name, helptext in (("query", "run a message as a query (nothing is committed)"),
                           ("tx", "run a message as a transaction (committed in a block)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("address", help="contract address (SS58 or 0x-hex)")
        p.add_argument("message", help="message label, e.g. get or transfer")
        p.add_argument("--args", default=None, help="message arguments as JSON")
        p.add_argument("--value", type=int, default=0)
        p.add_argument("--metadata", type=Path, default=None,
                       help="metadata (.contract/.json) if the worker has none for this contract")
        add_connection_args(p)

    logs = sub.add_parser("logs", help="a contract's logs (deployer only)")
    logs.add_argument("address")
    logs.add_argument("--follow", action="store_true", help="keep polling for new records")
    add_connection_args(logs)

    keys = sub.add_parser("keys", help="generate or inspect sr25519 accounts")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("generate", help="a new random account (prints the secret seed once)")
    inspect = keys_sub.add_parser("inspect", help="public key and SS58 of a dev URI or seed")
    inspect.add_argument("suri")


def run(args: argparse.Namespace) -> int:
    command = {"deploy": _deploy, "query": _call, "tx": _call, "logs": _logs, "keys": _keys}[args.command]
    return command(args)


def _deploy(args: argparse.Namespace) -> int:
    signer = signer_from(args.suri)
    client = connect(args)
    with console.status(f"uploading and instantiating {args.bundle.name}…"):
        metadata = ContractMetadata.load(args.bundle)
        constructor = args.constructor or _default_constructor(metadata)
        contract = client.deploy(args.bundle, constructor, parse_args_json(args.args), signer=signer,
                                 salt=args.salt.encode(), value=args.value)
    data = {"address": to_ss58(contract.address), "address_hex": "0x" + contract.address.hex(),
            "code_hash": "0x" + (metadata.code_hash or b"").hex(), "contract": metadata.name}
    emit(args, data, f"deployed [bold]{metadata.name}[/] at [green]{data['address']}[/]\n  code hash {data['code_hash']}")
    return 0


def _default_constructor(metadata: ContractMetadata) -> str:
    spec = metadata.default_constructor()
    if spec is None:
        labels = ", ".join(c.label for c in metadata.constructors)
        raise ConfigError(f"{metadata.name} has several constructors ({labels}); pass --constructor")
    return spec.label


def _address(text: str) -> bytes:
    from phat_runtime.crypto.accounts import parse_account

    try:
        return parse_account(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _call(args: argparse.Namespace) -> int:
    signer = signer_from(args.suri)
    client = connect(args)
    address = _address(args.address)
    if args.metadata is not None:
        metadata = ContractMetadata.load(args.metadata)
    else:
        doc = client.contract_info(address).get("metadata")
        if doc is None:
            raise ConfigError("the worker has no metadata for this contract; pass --metadata BUNDLE")
        metadata = ContractMetadata.from_json(doc)
    contract = client.contract(address, metadata)
    call = contract.query if args.command == "query" else contract.transact
    result = call(args.message, parse_args_json(args.args), signer=signer, value=args.value)
    receipt, outcome = result.verified.receipt, result.verified.outcome
    data = {
        "value": result.value, "output": result.output if outcome.error_kind is None else None,
        "success": outcome.success, "reverted": outcome.reverted, "error": outcome.error_kind,
        "events": [{"label": getattr(e, "label", None), "args": getattr(e, "args", None)} for e in result.events],
        "gas_used": outcome.gas_used, "debug_message": outcome.debug_message,
        "receipt": {"worker": receipt.worker, "block": receipt.block, "state_root": receipt.state_root,
                    "request_hash": receipt.request_hash, "output_hash": receipt.output_hash,
                    "signature": receipt.signature, "verified": True},
    }
    table = Table(show_header=False, title=f"{metadata.name}.{args.message} ({args.command})")
    status = "ok" if outcome.success else ("reverted" if outcome.reverted else f"failed: {outcome.error_kind}")
    table.add_row("result", status)
    table.add_row("output", repr(data["output"]))
    for event in data["events"]:
        table.add_row("event", f"{event['label']} {event['args']}")
    table.add_row("gas used", f"{outcome.gas_used:,}")
    table.add_row("receipt", f"block {receipt.block}, state root 0x{receipt.state_root.hex()[:16]}…, "
                  f"signed by worker 0x{receipt.worker.hex()[:16]}… [green]verified[/]")
    emit(args, data, table)
    return 0 if outcome.error_kind is None else 1


def _logs(args: argparse.Namespace) -> int:
    signer = signer_from(args.suri)
    client = connect(args)
    address = _address(args.address)
    since = 0
    while True:
        for record in client.logs(address, signer, since=since):
            since = record["sequence"]
            if args.json:
                emit(args, record, "")
            else:
                console.print(f"{record['timestamp_ms']} {record['level']:>5} [{record['mode']}] {record['message']}")
        if not args.follow:
            return 0
        time.sleep(1.0)


def _keys(args: argparse.Namespace) -> int:
    import os

    from phat_runtime.crypto.signer import Signer

    if args.keys_command == "generate":
        seed = os.urandom(32)
        signer = Signer.sr25519_from_seed(seed)
        console.print("[yellow]keep this seed secret; it is shown once:[/]")
        print(f"seed:       0x{seed.hex()}")
    else:
        signer = signer_from(args.suri)
    print(f"public key: 0x{signer.public_key.hex()}")
    print(f"ss58:       {to_ss58(signer.public_key)}")
    return 0
