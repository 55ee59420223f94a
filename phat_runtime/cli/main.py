"""The ``phat`` command. Thin: it parses arguments and prints; the work lives in the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from phat_runtime import __version__
from phat_runtime.errors import PhatError

#: Where the example contracts live in a source checkout (``pip install -e .``).
DEFAULT_EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phat", description="phat_runtime — run ink!/Phat contracts off-chain."
    )
    parser.add_argument("--version", action="version", version=f"phat_runtime {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="start a worker, deploy the examples, query and transact over RPC")
    demo.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES,
                      help="folder with the built example contracts (default: %(default)s)")
    demo.add_argument("--local", action="store_true",
                      help="in-process only: no worker, no RPC (the LocalCluster API)")

    from phat_runtime.cli import contracts, serve

    serve.add_parser(sub)
    contracts.add_parsers(sub)

    bench = sub.add_parser("bench", help="run the query benchmark (ours vs bare wasmtime)")
    bench.add_argument("--iterations", type=int, default=2000)

    from phat_runtime.cli.attest import add_attest_parser

    add_attest_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            if args.local:
                from phat_runtime.cli.demo import run_demo

                return run_demo(args.examples)
            from phat_runtime.cli.demo_worker import run_worker_demo

            return run_worker_demo(args.examples)
        if args.command == "serve":
            from phat_runtime.cli import serve

            return serve.run(args)
        if args.command in ("deploy", "query", "tx", "logs", "keys"):
            from phat_runtime.cli import contracts

            return contracts.run(args)
        if args.command == "bench":
            from phat_runtime.cli.bench import run_bench

            return run_bench(args.iterations)
        if args.command == "attest":
            from phat_runtime.cli.attest import run_attest

            return run_attest(args)
    except PhatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
