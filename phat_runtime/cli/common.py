"""Shared CLI plumbing: the argument parser class, connecting to a worker, signers, addresses,
argument parsing, output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from rich.console import Console

from phat_runtime.crypto.accounts import DEV_ACCOUNTS, to_ss58
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import ConfigError

#: Where ``phat serve`` listens and every other command connects (env ``PHAT_URL``).
DEFAULT_URL = os.environ.get("PHAT_URL", "http://127.0.0.1:8000")
#: The worker's data directory for ``phat serve`` and ``phat attest show`` (env ``PHAT_DATA_DIR``).
DEFAULT_DATA_DIR = Path(os.environ.get("PHAT_DATA_DIR", ".phat-worker"))
console = Console(stderr=True)


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every option that has a meaningful default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default in (None, False, "", argparse.SUPPRESS)
                or not action.option_strings or isinstance(action, argparse._HelpAction)):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what is wrong and where to look, exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def add_subcommands(parser: argparse.ArgumentParser, dest: str) -> Any:
    """Subcommands; with none given the command prints its help (``main`` checks ``dest``)."""
    parser.set_defaults(_help=parser.format_help)
    return parser.add_subparsers(dest=dest, metavar="COMMAND", title="commands")


def non_negative_int(text: str) -> int:
    """A count that may be 0 (``--query-processes``)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (0 or more)")
    return int(text)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0–65535)")
    return value


def worker_url(text: str) -> str:
    """A worker URL with its scheme; ``127.0.0.1:8000`` gets a hint to add ``http://``."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if "://" not in text:
            raise argparse.ArgumentTypeError(f"{text!r} has no scheme: use http://{text}")
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL, e.g. http://127.0.0.1:8000")
    try:
        parts.port  # noqa: B018  (validates the port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has a bad port") from None
    return text.rstrip("/")


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", type=worker_url, default=os.environ.get("PHAT_URL"),
                   help=f"worker URL (env PHAT_URL; default {DEFAULT_URL} — or, with --chain and "
                        "--cluster, any live worker of the cluster the chain lists)")
    p.add_argument("--suri", default=os.environ.get("PHAT_SURI", "//Alice"),
                   help="signer: a dev account (alice, //Bob) or a 0x-hex 32-byte sr25519 seed "
                        "(env PHAT_SURI)")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--policy", type=Path, metavar="FILE", help="attestation policy file (JSON/TOML) the worker must pass")
    trust.add_argument("--dev", action="store_true",
                       help="accept a simulated TEE worker (development only — not secure)")
    add_chain_cluster_args(p, "chain mode: transactions go as chain messages to this node, and without "
                        "--url the cluster's live workers are read from it (ws://…; env PHAT_CHAIN)",
                     required=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--hex", action="store_true", help="print addresses as 0x-hex instead of SS58")


def add_chain_cluster_args(p: argparse.ArgumentParser, chain_help: str, *, required: bool) -> None:
    """``--chain WS --cluster ID [--since N]``: a cluster as the chain defines it."""
    chain, cluster = os.environ.get("PHAT_CHAIN"), os.environ.get("PHAT_CLUSTER")
    p.add_argument("--chain", metavar="WS", default=chain, required=required and chain is None, help=chain_help)
    p.add_argument("--cluster", metavar="ID", default=cluster, required=required and cluster is None,
                   help="the cluster id (0x-hex; env PHAT_CLUSTER)")
    p.add_argument("--since", type=positive_int, default=1, metavar="N",
                   help="first chain block to scan for the cluster's membership (the block that created "
                        "it, or earlier); scans are cached in ~/.cache/phat (env PHAT_CACHE_DIR)")


def add_platform_args(p: argparse.ArgumentParser) -> None:
    """Where the TEE backends find their devices and keys (``phat serve``, ``phat attest show``)."""
    p.add_argument("--gramine-dir", type=Path, default=Path("/dev/attestation"), metavar="DIR",
                   help="Gramine's attestation files (gramine-sgx)")
    p.add_argument("--tsm-dir", type=Path, default=Path("/sys/kernel/config/tsm/report"), metavar="DIR",
                   help="configfs-tsm report directory (tdx)")
    p.add_argument("--tdx-seal-key", type=Path, metavar="FILE",
                   help="TDX sealing key file from a key provider (TDX has no hardware sealing key)")


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    """The cluster's genesis (``phat serve``, ``phat worker``): its system contract and owner."""
    p.add_argument("--system-contract", type=Path, default=None, metavar="FILE",
                   help="the system contract installed at genesis (a .contract bundle; default: "
                        "ours). Only a new data directory's genesis uses it; later it must match")
    p.add_argument("--cluster-owner", default=None, metavar="ACCOUNT",
                   help="who deploys and owns the system contract (SS58, 0x-hex or a dev name; "
                        "default: alice, whose key is public — development only)")


def cluster_config(args: argparse.Namespace) -> dict[str, Any]:
    """``WorkerConfig`` fields from :func:`add_cluster_args`' flags (checked: a clear error
    before anything is created)."""
    system = args.system_contract
    if system is not None and not system.is_file():
        raise ConfigError(f"--system-contract {system}: no such file; pass the system contract's "
                          ".contract bundle")
    owner = parse_address(args.cluster_owner, "--cluster-owner") if args.cluster_owner else None
    return {"system_contract": system, "cluster_owner": owner}


def platform_config(args: argparse.Namespace, data_dir: Path) -> Any:
    from phat_runtime.tee import PlatformConfig

    return PlatformConfig(data_dir=data_dir, gramine_root=args.gramine_dir,
                          tsm_report_dir=args.tsm_dir, tdx_seal_key_file=args.tdx_seal_key)


def signer_from(suri: str, what: str = "--suri") -> Signer:
    if suri.startswith("0x"):
        try:
            seed = bytes.fromhex(suri[2:])
        except ValueError:
            seed = b""
        if len(seed) != 32:
            raise ConfigError(f"a hex {what} must be a 32-byte sr25519 seed (64 hex digits after 0x)")
        return Signer.sr25519_from_seed(seed)
    if suri.startswith("//") or suri.lower() in DEV_ACCOUNTS:
        return Signer.dev(suri)
    raise ConfigError(f"{what} {suri!r}: use a dev account like alice or //Alice, or a 0x-hex seed "
                      "(`phat keys generate` makes one)")


def show_address(address: bytes, args: argparse.Namespace) -> str:
    """An account as the user asked for it: SS58 (default) or ``0x``-hex with ``--hex``."""
    return "0x" + address.hex() if getattr(args, "hex", False) else to_ss58(address)


def parse_address(text: str, what: str = "address") -> bytes:
    from phat_runtime.crypto.accounts import parse_account

    try:
        return parse_account(text)
    except ValueError as exc:
        raise ConfigError(f"{what} {text!r}: {exc}") from None


def client_policy(args: argparse.Namespace) -> Any:
    """The attestation policy workers must pass: --dev, --policy FILE, or the strict default."""
    from phat_runtime.rpc.client import development_policy
    from phat_runtime.tee.policy import Policy, load_policy

    if args.dev:
        return development_policy()
    if args.policy:
        return load_policy(args.policy)
    return Policy()


def connect(args: argparse.Namespace) -> Any:
    """The client a command talks through: one worker (``--url``), one worker plus the chain
    (``--url`` with ``--chain``; deploy and tx), or the whole cluster (``--chain --cluster``
    without ``--url``)."""
    from phat_runtime.rpc.client import VerificationError, WorkerClient

    if args.chain and not args.url:
        return connect_cluster(args)
    client = WorkerClient(args.url or DEFAULT_URL, policy=client_policy(args))
    args.client = client  # closed by the command runner
    try:
        client.attest()
    except VerificationError as exc:
        if "simulated" in str(exc):
            raise ConfigError(f"{exc}; the worker runs the simulated TEE: pass --dev to accept it "
                              "(development only) or --policy FILE") from None
        raise
    if getattr(args, "chain", None) and args.command in ("deploy", "tx"):
        return _through_chain(args, client)
    return client


def cluster_of(args: argparse.Namespace) -> bytes:
    if not args.cluster:
        raise ConfigError("--chain needs --cluster ID (the 0x-hex cluster id `phat devnet` printed)")
    try:
        cluster = bytes.fromhex(args.cluster.removeprefix("0x"))
    except ValueError:
        cluster = b""
    if len(cluster) != 32:
        raise ConfigError(f"--cluster {args.cluster!r} is not a 0x-hex 32-byte cluster id")
    return cluster


def read_directory(directory: Any) -> None:
    """Scan the chain for the cluster's membership, showing progress on a long scan."""
    with console.status(f"reading cluster membership from {directory.node.url}…") as status:
        directory.refresh(lambda done, total: status.update(
            f"reading cluster membership from {directory.node.url}: block {done:,} of {total:,}"))


def connect_cluster(args: argparse.Namespace) -> Any:
    from phat_runtime.rpc.cluster_client import ClusterClient

    client = ClusterClient(args.chain, cluster_of(args), policy=client_policy(args), since=args.since)
    args.chain_client = client  # closed by the command runner
    read_directory(client.directory)
    if not client.directory.live_workers():
        raise ConfigError(f"cluster {args.cluster} has no live worker on chain (none registered and "
                          "passed its policy, or all revoked): see `phat workers`")
    return client


def _through_chain(args: argparse.Namespace, client: Any) -> Any:
    from phat_runtime.rpc.chain_client import ChainClient

    chain = ChainClient(args.chain, cluster_of(args), client)
    args.chain_client = chain
    return chain


def parse_args_json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--args is not JSON ({exc.msg} at column {exc.colno}); e.g. --args '[true]' "
                          "or --args '{\"value\": 10}'") from None


def emit(args: argparse.Namespace, data: Any, human: Any) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=_jsonable))
    else:
        Console().print(human, soft_wrap=isinstance(human, str), highlight=False)


def fail(message: str) -> int:
    """Print one error line to stderr; the exit status for a refused command."""
    print(f"error: {message}", file=sys.stderr)
    return 1


def _jsonable(value: Any) -> Any:
    from phat_runtime.rpc.receipt_file import jsonable

    return jsonable(value)
