"""The ``phat`` command. Thin: it parses arguments and prints; the work lives in the library.

Every failure ends as one line on stderr saying what is wrong and what to do, with a non-zero
exit status: our errors (``PhatError``), a worker that cannot be reached, files that cannot be
read or written. A traceback means a bug in phat itself; ``PHAT_TRACEBACK=1`` shows it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from phat_runtime import __version__
from phat_runtime.cli.common import Parser, add_subcommands
from phat_runtime.errors import PhatError

#: Where the example contracts live in a source checkout (``pip install -e .``).
DEFAULT_EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="phat", description="phat_runtime — run ink!/Phat contracts off-chain.")
    parser.add_argument("--version", action="version", version=f"phat_runtime {__version__}")
    sub = add_subcommands(parser, "command")

    demo = sub.add_parser("demo", help="start a worker, deploy the examples, query and transact over RPC")
    demo.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES,
                      help="folder with the built example contracts")
    demo.add_argument("--local", action="store_true",
                      help="in-process only: no worker, no RPC (the LocalCluster API)")

    from phat_runtime.cli import chain, contracts, serve, workers

    serve.add_parser(sub)
    chain.add_parsers(sub)
    contracts.add_parsers(sub)
    workers.add_parsers(sub)

    from phat_runtime.cli import bench

    bench.add_parser(sub)

    from phat_runtime.cli.attest import add_attest_parser

    add_attest_parser(sub)
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        if args.local:
            from phat_runtime.cli.demo import run_demo

            return run_demo(args.examples)
        from phat_runtime.cli.demo_worker import run_worker_demo

        return run_worker_demo(args.examples)
    if args.command == "serve":
        from phat_runtime.cli import serve

        return serve.run(args)
    if args.command in ("worker", "devnet", "checkpoints", "rejections"):
        from phat_runtime.cli import chain

        return chain.run(args)
    if args.command in ("deploy", "query", "tx", "logs", "keys"):
        from phat_runtime.cli import contracts

        return contracts.run(args)
    if args.command in ("workers", "verify-receipt"):
        from phat_runtime.cli import workers

        return workers.run(args)
    if args.command == "bench":
        from phat_runtime.cli import bench

        return bench.run(args)
    from phat_runtime.cli.attest import run_attest

    return run_attest(args)


def _missing_subcommand(args: argparse.Namespace) -> bool:
    for dest in ("command", "keys_command", "attest_command"):
        if hasattr(args, dest) and getattr(args, dest) is None:
            return True
    return False


def explain(exc: BaseException, args: Any = None) -> str:
    """One line for an exception that ends a command."""
    import httpx

    if isinstance(exc, PhatError):
        return str(exc)
    url = getattr(args, "url", None) or "the worker"
    if isinstance(exc, httpx.TimeoutException):
        return f"the worker at {url} did not answer in time: is it overloaded? try again or check its log"
    if isinstance(exc, httpx.TransportError):
        reason = str(exc) or type(exc).__name__
        return f"cannot reach the worker at {url} ({reason}): is `phat serve` running there? (--url / PHAT_URL)"
    if isinstance(exc, httpx.HTTPError):
        return f"HTTP error talking to {url}: {exc}"
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}:{where}" if where else str(exc.strerror or exc)
    return (f"unexpected {type(exc).__name__}: {exc} — this is a bug in phat; "
            "rerun with PHAT_TRACEBACK=1 and report the traceback")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if _missing_subcommand(args):
        print(args._help(), file=sys.stderr)
        return 2
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("PHAT_TRACEBACK"):
            raise
        print(f"error: {explain(exc, args)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
