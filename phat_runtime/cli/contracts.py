"""``phat deploy | query | tx | logs | keys``: talk to a running worker like cargo-contract /
polkadot-js talk to a chain — JSON arguments in, decoded results and verified receipts out.

Addresses print as SS58 (``--hex`` for ``0x``-hex); accounts are accepted as SS58, ``0x``-hex
or dev names (``alice``, ``//Bob``), also inside ``--args``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from phat_runtime.cli.common import (
    DEFAULT_URL,
    add_connection_args,
    add_subcommands,
    connect,
    console,
    emit,
    parse_address,
    parse_args_json,
    show_address,
    signer_from,
)
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.errors import ConfigError, SourceHashMismatch

#: Records asked for per logs request (the worker's page size).
LOG_PAGE = 100


def add_parsers(sub: Any) -> None:
    deploy = sub.add_parser("deploy", help="upload and instantiate a .contract bundle")
    deploy.add_argument("bundle", type=Path, help="the .contract bundle cargo contract built")
    deploy.add_argument("--constructor", default=None,
                        help="constructor label (default: the one that takes the --args given; "
                             "then the metadata's default; then `new`)")
    deploy.add_argument("--args", default=None, help="constructor arguments as JSON (list or object)")
    deploy.add_argument("--salt", default="",
                        help="text mixed into the address (= hash of deployer, code hash, cluster "
                             "and salt): deploying the same code again needs a new salt")
    deploy.add_argument("--value", type=int, default=0, help="balance to endow the contract with")
    deploy.add_argument("--strict", action="store_true",
                        help="refuse metadata from another build (source.hash is not the wasm's "
                             "hash) instead of warning")
    add_connection_args(deploy)

    for name, helptext in (("query", "run a message as a query (writes are discarded)"),
                           ("tx", "run a message as a transaction (committed in a block)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("address", help="contract address (SS58 or 0x-hex)")
        p.add_argument("message", help="message label, e.g. get or transfer")
        p.add_argument("--args", default=None,
                       help="message arguments as JSON; accounts as SS58, 0x-hex or dev names (alice)")
        p.add_argument("--value", type=int, default=0, help="balance sent with the call")
        p.add_argument("--metadata", type=Path, default=None,
                       help="metadata (.contract/.json) if the worker has none for this contract")
        p.add_argument("--save", type=Path, default=None, metavar="FILE",
                       help="also write the result with its receipt as JSON to FILE (a receipt file "
                            "`phat verify-receipt` checks)")
        add_connection_args(p)

    logs = sub.add_parser("logs", help="a contract's logs, kept in the worker's memory (deployer only)")
    logs.add_argument("address", help="contract address (SS58 or 0x-hex)")
    logs.add_argument("--follow", action="store_true", help="keep polling for new records")
    add_connection_args(logs)

    keys = sub.add_parser("keys", help="generate or inspect sr25519 accounts")
    keys_sub = add_subcommands(keys, "keys_command")
    keys_sub.add_parser("generate", help="a new random account (prints the secret seed once)")
    inspect = keys_sub.add_parser("inspect", help="public key and SS58 of a dev account or seed")
    inspect.add_argument("suri", help="alice, //Bob or a 0x-hex 32-byte seed")
    sign_in = keys_sub.add_parser("sign-in", help="sign the worker dashboard's sign-in text (signs nothing else)")
    sign_in.add_argument("text", help="the text the dashboard shows: phat_runtime/dashboard-sign-in/v1:0x…:0x…")
    sign_in.add_argument("--suri", default=os.environ.get("PHAT_SURI", "//Alice"),
                         help="the deployer: a dev account (alice, //Bob) or a 0x-hex 32-byte sr25519 seed "
                              "(env PHAT_SURI)")


def run(args: argparse.Namespace) -> int:
    command = {"deploy": _deploy, "query": _call, "tx": _call, "logs": _logs, "keys": _keys}[args.command]
    from phat_runtime.rpc.client import WorkerError
    from phat_runtime.rpc.cluster_client import ClusterUnreachable

    try:
        return command(args)
    except WorkerError as exc:
        if exc.code != "unknown_contract" or not hasattr(args, "address"):
            raise
        shown = show_address(parse_address(args.address), args)
        where = args.url or ("cluster " + args.cluster if args.chain else DEFAULT_URL)
        raise ConfigError(f"no contract at {shown} on {where}: check the address (`phat deploy` "
                          "prints it) and --url / --cluster") from None
    except ClusterUnreachable as exc:
        if "simulated" in str(exc) and not getattr(args, "dev", False):
            raise ConfigError(f"{exc}; the cluster's workers run the simulated TEE: pass --dev to accept "
                              "them (development only) or --policy FILE") from None
        raise
    finally:
        for name in ("client", "chain_client"):
            client = getattr(args, name, None)
            if client is not None:
                client.close()


# --- deploy ----------------------------------------------------------------------------------


def _deploy(args: argparse.Namespace) -> int:
    signer = signer_from(args.suri)
    metadata = load_bundle(args.bundle, strict=args.strict)
    if metadata.wasm is None:
        raise ConfigError(f"{args.bundle} carries no code: pass the .contract bundle (metadata + wasm)")
    call_args = parse_args_json(args.args)
    constructor = args.constructor or choose_constructor(metadata, call_args)
    client = connect(args)
    with console.status(f"uploading and instantiating {args.bundle.name}…"), warnings.catch_warnings():
        warnings.simplefilter("ignore", SourceHashMismatch)  # said once, by load_bundle
        contract = client.deploy(args.bundle, constructor, call_args, signer=signer,
                                 salt=args.salt.encode(), value=args.value)
    data = {"address": to_ss58(contract.address), "address_hex": "0x" + contract.address.hex(),
            "code_hash": "0x" + (metadata.code_hash or b"").hex(), "contract": metadata.name,
            "constructor": constructor}
    emit(args, data, f"deployed [bold]{metadata.name}[/] ({constructor}) at "
                     f"[green]{show_address(contract.address, args)}[/]\n  code hash {data['code_hash']}")
    return 0


def load_bundle(path: Path, *, strict: bool = False) -> ContractMetadata:
    """A bundle's metadata; metadata from another build (``source.hash`` is not the wasm's
    hash) is one ``warning:`` line on stderr, or the error with ``strict``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SourceHashMismatch)
        metadata = ContractMetadata.load(path, strict=strict)
    for warning in caught:
        if isinstance(warning.message, SourceHashMismatch):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return metadata


def choose_constructor(metadata: ContractMetadata, call_args: Any) -> str:
    """The constructor a deploy without ``--constructor`` means.

    Among the constructors that take the arguments given (as many as in a list, the same
    labels as in an object, none without ``--args``): the only one; else the one the metadata
    marks default; else ``new``. Anything else is ambiguous and names the candidates.
    """
    def fits(spec: Any) -> bool:
        labels = [a.label for a in spec.args]
        if call_args is None:
            return not labels
        if isinstance(call_args, dict):
            return sorted(call_args) == sorted(labels)
        return isinstance(call_args, list) and len(call_args) == len(labels)

    candidates = [c for c in metadata.constructors if fits(c)]
    if len(candidates) == 1:
        return str(candidates[0].label)
    marked = [c for c in candidates if c.default]
    if marked:
        return str(marked[0].label)
    if any(c.label == "new" for c in candidates):
        return "new"
    shown = ", ".join(f"{c.label}({', '.join(a.label for a in c.args)})" for c in metadata.constructors)
    given = "no --args" if call_args is None else f"--args {call_args!r}"
    raise ConfigError(f"{metadata.name}: no single constructor fits {given} (constructors: {shown}); "
                      "pass --constructor LABEL")


# --- query / tx ------------------------------------------------------------------------------


def _metadata_for(args: argparse.Namespace, client: Any, address: bytes) -> ContractMetadata:
    if args.metadata is not None:
        return ContractMetadata.load(args.metadata)
    doc = client.contract_info(address).get("metadata")
    if doc is None:
        raise ConfigError("the worker has no metadata for this contract; pass --metadata BUNDLE")
    return ContractMetadata.from_json(doc)


def _call(args: argparse.Namespace) -> int:
    from phat_runtime.rpc.receipt_file import FORMAT, jsonable, receipt_fields

    signer = signer_from(args.suri)
    address = parse_address(args.address, "contract address")
    call_args = parse_args_json(args.args)
    client = connect(args)
    metadata = _metadata_for(args, client, address)
    spec = metadata.message(args.message)
    contract = client.contract(address, metadata)
    call = contract.query if args.command == "query" else contract.transact
    result = call(args.message, call_args, signer=signer, value=args.value)
    receipt, outcome = result.verified.receipt, result.verified.outcome
    discarded = args.command == "query" and spec.mutates
    data = {
        "value": result.value, "output": result.output if outcome.error_kind is None else None,
        "success": outcome.success, "reverted": outcome.reverted, "error": outcome.error_kind,
        "error_message": outcome.error_message,
        "events": [{"label": getattr(e, "label", None), "args": getattr(e, "args", None)} for e in result.events],
        "gas_used": outcome.gas_used, "debug_message": outcome.debug_message,
        "writes_discarded": discarded,
        "format": FORMAT, "contract": "0x" + address.hex(), "message": args.message,
        "outcome": "0x" + outcome.encode().hex(),
        "receipt": {**receipt_fields(receipt), "verified": True},
    }
    if args.save is not None:
        args.save.write_text(json.dumps(data, indent=2, default=jsonable) + "\n")
    table = Table(show_header=False, title=f"{metadata.name}.{args.message} ({args.command})")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    status = "ok" if outcome.success else ("reverted" if outcome.reverted else f"failed: {outcome.error_kind}")
    table.add_row("result", status)
    if outcome.error_kind is not None and outcome.error_message:
        table.add_row("error", outcome.error_message)
    table.add_row("output", repr(data["output"]))
    for event in data["events"]:
        table.add_row("event", f"{event['label']} {event['args']}")
    table.add_row("gas used", f"{outcome.gas_used:,}")
    if discarded:
        table.add_row("note", f"`{args.message}` changes state: as a query its writes were "
                              f"discarded — use `phat tx` to commit them")
    table.add_row("receipt", f"block {receipt.block}, state root 0x{receipt.state_root.hex()[:16]}…, "
                  f"signed by worker {show_address(receipt.worker, args)} [green]verified[/]")
    if args.save is not None:
        table.add_row("saved", f"{args.save} (`phat verify-receipt {args.save}` checks it)")
    emit(args, data, table)
    return 0 if outcome.error_kind is None else 1


# --- logs ------------------------------------------------------------------------------------


def log_time(timestamp_ms: int) -> str:
    """``2025-07-19 10:01:17.123`` in UTC."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{timestamp_ms % 1000:03d}"


def _fetch_logs(client: Any, address: bytes, signer: Any, since: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    while True:
        page = client.logs(address, signer, since=since, limit=LOG_PAGE)
        records += page
        if len(page) < LOG_PAGE:
            return records
        since = page[-1]["sequence"]


def _logs(args: argparse.Namespace) -> int:
    signer = signer_from(args.suri)
    address = parse_address(args.address, "contract address")
    client = connect(args)
    records = _fetch_logs(client, address, signer, 0)
    if args.json and not args.follow:
        print(json.dumps(records, indent=2))
        return 0
    if not records and not args.json:
        console.print(f"no log records for {show_address(address, args)} yet (logs live in the worker's "
                      "memory: a restart empties them)", highlight=False, soft_wrap=True)
    since = 0
    while True:
        for record in records:
            since = record["sequence"]
            if args.json:  # --follow --json: one JSON object per line
                print(json.dumps(record), flush=True)
            else:
                block = "-" if record.get("block") is None else record["block"]
                print(f"{log_time(record['timestamp_ms'])} UTC  {record['level']:>5}  "
                      f"[{record['mode']}, block {block}]  {record['message']}", flush=True)
        if not args.follow:
            return 0
        time.sleep(1.0)
        records = _fetch_logs(client, address, signer, since)


# --- keys ------------------------------------------------------------------------------------


def _keys(args: argparse.Namespace) -> int:
    from phat_runtime.crypto.signer import Signer

    if args.keys_command == "sign-in":
        return _sign_in(args)
    if args.keys_command == "generate":
        seed = os.urandom(32)
        signer = Signer.sr25519_from_seed(seed)
        console.print("[yellow]keep this seed secret; it is shown once:[/]")
        print(f"seed:       0x{seed.hex()}")
    else:
        signer = signer_from(args.suri, "account")
    print(f"public key: 0x{signer.public_key.hex()}")
    print(f"ss58:       {to_ss58(signer.public_key)}")
    return 0


def _sign_in(args: argparse.Namespace) -> int:
    """Sign a dashboard challenge offline: the key never meets the worker (rpc/signin.py)."""
    from phat_runtime.rpc.signin import sign_sign_in

    signer = signer_from(args.suri)
    try:
        signature = sign_sign_in(signer, args.text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"account:   {to_ss58(signer.public_key)}")
    print(f"signature: 0x{signature.hex()}")
    return 0
