"""Shared CLI plumbing: connecting to a worker, signers, argument parsing, output."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import ConfigError

DEFAULT_URL = os.environ.get("PHAT_URL", "http://127.0.0.1:8000")
console = Console(stderr=True)


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=DEFAULT_URL, help="worker URL (env PHAT_URL; default %(default)s)")
    p.add_argument("--suri", default=os.environ.get("PHAT_SURI", "//Alice"),
                   help="signer: a dev URI like //Alice or a 0x-hex 32-byte sr25519 seed (env PHAT_SURI)")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--policy", type=Path, help="attestation policy file (JSON/TOML) the worker must pass")
    trust.add_argument("--dev", action="store_true",
                       help="accept a simulated TEE worker (development only — not secure)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def signer_from(suri: str) -> Signer:
    if suri.startswith("0x"):
        seed = bytes.fromhex(suri[2:])
        if len(seed) != 32:
            raise ConfigError("a hex --suri must be a 32-byte sr25519 seed")
        return Signer.sr25519_from_seed(seed)
    if suri.startswith("//"):
        return Signer.dev(suri)
    raise ConfigError(f"--suri {suri!r}: use a dev URI like //Alice or a 0x-hex seed")


def connect(args: argparse.Namespace) -> Any:
    from phat_runtime.rpc.client import WorkerClient, development_policy
    from phat_runtime.tee.policy import Policy, load_policy

    if args.dev:
        policy = development_policy()
    elif args.policy:
        policy = load_policy(args.policy)
    else:
        policy = Policy()
    client = WorkerClient(args.url, policy=policy)
    try:
        client.attest()
    except Exception as exc:
        from phat_runtime.rpc.client import VerificationError

        if isinstance(exc, VerificationError) and "simulated" in str(exc):
            raise ConfigError(f"{exc}\n  the worker runs the simulated TEE: pass --dev to accept it "
                              "(development only) or --policy FILE") from None
        raise
    return client


def parse_args_json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--args is not JSON ({exc.msg} at column {exc.colno}); e.g. --args '[true]' "
                          "or --args '{\"value\": 10}'") from None


def emit(args: argparse.Namespace, data: dict[str, Any], human: Any) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=_jsonable))
    else:
        Console().print(human)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


