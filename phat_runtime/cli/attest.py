"""``phat attest``: verify a quote, or show this worker's identity and quote.

Thin: parses arguments and prints; the work lives in ``phat_runtime.tee``. Prints public keys
only — never a secret. The ``tee`` package is imported when a subcommand runs, so other
commands do not pay for dcap-qvl.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from phat_runtime.cli.common import (
    DEFAULT_DATA_DIR,
    add_platform_args,
    add_subcommands,
    platform_config,
)

if TYPE_CHECKING:
    from phat_runtime.tee import Verdict

SIMULATED_BANNER = ("SIMULATED TEE — development only, NOT SECURE. Anyone can forge these "
                    "quotes; only development clusters may accept them.")


def add_attest_parser(sub: Any) -> None:
    """Register ``attest verify`` and ``attest show`` on the top-level subparsers."""
    attest = sub.add_parser("attest", help="verify quotes; show this worker's identity")
    cmds = add_subcommands(attest, "attest_command")

    verify = cmds.add_parser("verify", help="verify a DCAP (SGX/TDX) or simulated quote")
    verify.add_argument("quote", type=Path, help="quote file (binary, or hex with optional 0x)")
    verify.add_argument("--collateral", type=Path,
                        help="collateral JSON (dcap-qvl QuoteCollateralV3); needed for SGX/TDX")
    verify.add_argument("--at", type=int, help="verification time, unix seconds (default: now)")
    verify.add_argument("--policy", type=Path, help="policy file (.json or .toml); default: "
                        "any SGX/TDX measurement with a non-revoked TCB status")
    verify.add_argument("--expect-report-data", metavar="HEX",
                        help="the 64 bytes of report data the quote must carry")
    verify.add_argument("--identity-pk", metavar="HEX", help="claimed worker identity key "
                        "(with --ecdh-pk: the report data must bind both)")
    verify.add_argument("--ecdh-pk", metavar="HEX", help="claimed worker ECDH key")
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")

    show = cmds.add_parser("show", help="print a worker's public identity and a fresh quote "
                           "(read-only: the identity must exist, `phat serve` creates it)")
    show.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                      help="the worker's data directory, as given to `phat serve` (env PHAT_DATA_DIR)")
    show.add_argument("--platform", choices=["simulated", "gramine-sgx", "tdx"],
                      help="TEE backend (default: detected; simulated if no TEE is found)")
    add_platform_args(show)
    show.add_argument("--quote-out", type=Path, help="also write the raw quote to this file")
    show.add_argument("--json", action="store_true")


def run_attest(args: argparse.Namespace) -> int:
    if args.attest_command == "verify":
        return _verify(args)
    return _show(args)


# --- verify ----------------------------------------------------------------------------------


def read_quote_file(path: Path) -> bytes:
    """Quote bytes from a binary file or a hex text file (``0x`` prefix optional)."""
    from phat_runtime.errors import ConfigError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read quote file {path}: {exc.strerror}") from exc
    text = data.strip()
    if text[:2].lower() == b"0x":
        text = text[2:]
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return data


def _expected_report_data(args: argparse.Namespace) -> bytes | None:
    from phat_runtime.errors import ConfigError
    from phat_runtime.tee import worker_report_data

    def unhex(value: str, what: str) -> bytes:
        try:
            return bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise ConfigError(f"{what} is not hex") from None

    if (args.identity_pk is None) != (args.ecdh_pk is None):
        raise ConfigError("--identity-pk and --ecdh-pk go together")
    if args.identity_pk is not None:
        if args.expect_report_data is not None:
            raise ConfigError("give either --expect-report-data or the claimed keys, not both")
        try:
            return worker_report_data(unhex(args.identity_pk, "--identity-pk"),
                                      unhex(args.ecdh_pk, "--ecdh-pk"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if args.expect_report_data is not None:
        return unhex(args.expect_report_data, "--expect-report-data")
    return None


def _verify(args: argparse.Namespace) -> int:
    from phat_runtime.tee import Policy, load_policy, read_collateral, verify_quote

    raw = read_quote_file(args.quote)
    collateral = read_collateral(args.collateral) if args.collateral else None
    policy = load_policy(args.policy) if args.policy else Policy.permissive()
    at = args.at if args.at is not None else int(time.time())
    verdict = verify_quote(raw, collateral, at=at, policy=policy,
                           expected_report_data=_expected_report_data(args))
    if args.json:
        doc = verdict.to_dict()
        doc["policy"] = policy.to_dict()
        doc["policy_source"] = str(args.policy) if args.policy else "default (permissive)"
        print(json.dumps(doc, indent=2))
    else:
        source = str(args.policy) if args.policy else (
            "default (permissive: any SGX/TDX measurement, non-revoked TCB, report data not checked)")
        _render(Console(width=max(Console().width, 140)), verdict, raw, policy_source=source)
    return 0 if verdict.ok else 1


def _when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return f"{datetime.fromtimestamp(ts, UTC):%Y-%m-%d %H:%M:%S} UTC ({ts})"


def _render(console: Console, verdict: Verdict, raw: bytes, *, policy_source: str) -> None:
    if verdict.platform == "simulated":
        console.print(Panel(SIMULATED_BANNER, style="bold red"))
    table = Table(title="Attestation", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("quote", f"{verdict.platform or 'unknown'} v{verdict.quote_version or '?'}, "
                  f"{len(raw)} bytes" + ("" if verdict.signature_verified else
                                         "  [red](NOT verified: values below are claims)[/]"))
    table.add_row("verified at", _when(verdict.verified_at))
    table.add_row("policy", policy_source)
    for name, value in verdict.measurements.items():
        table.add_row(name, value.hex() if isinstance(value, bytes) else str(value))
    table.add_row("tcb status", verdict.tcb_status or "-")
    table.add_row("advisories", ", ".join(verdict.advisories) or "none")
    table.add_row("debug", "-" if verdict.debug is None else ("[red]yes[/]" if verdict.debug
                                                               else "no"))
    table.add_row("report data", verdict.report_data.hex() if verdict.report_data else "-")
    table.add_row("collateral issued", _when(verdict.collateral_issued_at))
    table.add_row("collateral expires", _when(verdict.collateral_expires_at))
    console.print(table)
    checks = Table(title="Checks", title_justify="left")
    checks.add_column("")
    checks.add_column("check")
    checks.add_column("detail", overflow="fold")
    for check in verdict.checks:
        checks.add_row("[green]✓[/]" if check.ok else "[red]✗[/]", check.name, check.detail)
    console.print(checks)
    if verdict.ok:
        console.print("[bold green]VERDICT: OK[/]")
    else:
        names = ", ".join(c.name for c in verdict.failures)
        console.print(f"[bold red]VERDICT: FAILED[/] ({names})")


# --- show ------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    from phat_runtime.crypto.accounts import to_ss58
    from phat_runtime.errors import ConfigError
    from phat_runtime.tee import detect_platform, load_or_create_identity, make_platform
    from phat_runtime.tee.backends import IDENTITY_FILE

    path = args.data_dir / IDENTITY_FILE
    if not path.is_file():
        # Read-only: creating an identity here would make a worker nobody started.
        raise ConfigError(f"no worker identity at {path}: pass the --data-dir of a worker "
                          f"(`phat serve --data-dir {args.data_dir}` creates one on first start)")
    config = platform_config(args, args.data_dir)
    name = args.platform or detect_platform(config)
    platform = make_platform(name, config)
    identity = load_or_create_identity(platform, path)  # exists: only unseals
    quote = platform.quote(identity.report_data)
    if args.quote_out:
        args.quote_out.write_bytes(quote.raw)
    info = {
        "platform": platform.name,
        "quote_kind": quote.kind,
        "identity_file": str(path),
        "identity_public_key": identity.public_key.hex(),
        "identity_ss58": to_ss58(identity.public_key),
        "ecdh_public_key": identity.ecdh_public_key.hex(),
        "report_data": identity.report_data.hex(),
        "quote": quote.raw.hex(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    console = Console()
    if platform.name == "simulated":
        console.print(Panel(SIMULATED_BANNER, style="bold red"))
    # Plain lines with soft wrapping, so hex values are never split across lines.
    for label, key in (("platform", "platform"), ("identity file", "identity_file"),
                       ("identity key", "identity_public_key"), ("identity ss58", "identity_ss58"),
                       ("ecdh key", "ecdh_public_key"), ("report data", "report_data")):
        console.print(f"[bold]{label:>14}[/]  {info[key]}", soft_wrap=True, highlight=False)
    console.print(f"[bold]{'quote':>14}[/]  {quote.kind}, {len(quote.raw)} bytes", highlight=False)
    console.print(quote.raw.hex(), soft_wrap=True, highlight=False)
    return 0
