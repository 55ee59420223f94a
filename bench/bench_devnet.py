"""Benchmark: `phat devnet` cold start to the first successful query.

Runs ``phat devnet --workers N`` on a fresh data dir as a user would (its own process), times
until ``devnet.json`` is written (chain up, workers started, cluster created, keys handed over,
every worker ready), then deploys the flipper example through the chain and queries it:

    chain ready      chopsticks answering (genesis extracted, runtime loaded)
    devnet ready     devnet.json written: every worker holds the cluster key
    first query      upload + instantiate through the chain, then one encrypted query

The npm install (first run only) is excluded: it is done before the clock starts and its time
reported separately.

    python bench/bench_devnet.py [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.chain import chopsticks, free_port  # noqa: E402
from phat_runtime.crypto.signer import Signer  # noqa: E402
from phat_runtime.rpc.chain_client import ChainClient  # noqa: E402
from phat_runtime.rpc.client import WorkerClient, development_policy  # noqa: E402

FLIPPER = ROOT / "contracts_examples" / "flipper" / "flipper.contract"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _, npm_s = chopsticks.ensure_installed()
    tmp = Path(tempfile.mkdtemp(prefix="phat-bench-devnet-"))
    port = free_port()
    out = open(tmp / "devnet.out", "w+b")  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "phat_runtime.cli.main", "devnet", "--workers",
                             str(args.workers), "--data-dir", str(tmp / "d"), "--port", str(port)],
                            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    chain_ready = None
    try:
        summary_file = tmp / "d" / "devnet.json"
        while not summary_file.exists():
            if proc.poll() is not None:
                out.seek(0)
                raise SystemExit("devnet exited:\n" + out.read().decode(errors="replace")[-3000:])
            if chain_ready is None:
                out.seek(0)
                if re.search(rb"chain ready at", out.read()):
                    chain_ready = time.monotonic() - started
            time.sleep(0.05)
        devnet_ready = time.monotonic() - started
        summary = json.loads(summary_file.read_text())
        worker = WorkerClient(summary["workers"][-1]["url"], policy=development_policy())
        client = ChainClient(summary["chain"], bytes.fromhex(summary["cluster"][2:]), worker)
        alice = Signer.dev("alice")
        flipper = client.deploy(FLIPPER, "new", [True], signer=alice, salt=os.urandom(4))
        assert flipper.query("get", signer=alice).output is True
        first_query = time.monotonic() - started
        worker.close()
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()
    result = {"workers": args.workers, "npm_install_s": round(npm_s, 1),
              "chain_ready_s": None if chain_ready is None else round(chain_ready, 1),
              "devnet_ready_s": round(devnet_ready, 1), "first_query_s": round(first_query, 1)}
    print(json.dumps(result) if args.json else "\n".join(f"{k:>16}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
