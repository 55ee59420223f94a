"""`phat devnet --workers 3` as its user runs it: three worker processes that share the cluster
key by attested handover (no development key), then a fourth `phat worker` process that joins
later, receives the key, replays the chain and reports the same state root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from phat_runtime.chain import ChainNode, Devnet, free_port
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.chain_client import ChainClient
from phat_runtime.rpc.client import WorkerClient, development_policy

ROOT = Path(__file__).resolve().parents[2]
TOKEN = ROOT / "contracts_examples" / "token" / "token.contract"
pytestmark = pytest.mark.slow


def _info(url: str) -> dict:  # type: ignore[type-arg]
    try:
        return httpx.get(url + "/v1/info", timeout=5, trust_env=False).json()  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError):
        return {}


def _wait(condition, what, timeout_s: float = 240) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_devnet_workers_share_the_key_by_handover_and_a_fourth_joins(devnet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # `devnet` (the session's chain) makes sure the npm packages are installed.
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    data = tmp_path / "devnet"
    log = open(tmp_path / "devnet.out", "wb")  # noqa: SIM115
    net = subprocess.Popen([sys.executable, "-m", "phat_runtime.cli.main", "devnet", "--workers", "3",
                            "--data-dir", str(data), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                           env=env, cwd=ROOT)
    joiner: subprocess.Popen[bytes] | None = None
    joiner_log = open(tmp_path / "w4.out", "wb")  # noqa: SIM115
    try:
        summary_file = data / "devnet.json"
        _wait(lambda: summary_file.exists() or net.poll() is not None,
              lambda: (tmp_path / "devnet.out").read_text(errors="replace")[-2000:])
        assert net.poll() is None, (tmp_path / "devnet.out").read_text(errors="replace")[-3000:]
        summary = json.loads(summary_file.read_text())
        urls = [w["url"] for w in summary["workers"]]
        assert all(_info(u).get("ready") for u in urls)
        assert all(_info(u)["decentralized"] for u in urls)  # no development key anywhere
        cluster = bytes.fromhex(summary["cluster"][2:])
        alice, bob = Signer.dev("alice"), Signer.dev("bob")
        worker = WorkerClient(urls[1], policy=development_policy())
        client = ChainClient(summary["chain"], cluster, worker)
        token = client.deploy(TOKEN, "new", [10**15], signer=alice, salt=os.urandom(4))
        assert token.transact("transfer", {"to": bob.public_key, "value": 77}, signer=alice).success
        # A fourth worker process joins the running cluster.
        jport = free_port()
        joiner = subprocess.Popen(
            [sys.executable, "-m", "phat_runtime.cli.main", "worker", "--chain", summary["chain"],
             "--cluster", summary["cluster"], "--data-dir", str(tmp_path / "w4"), "--port", str(jport),
             "--start-block", str(summary["start_block"])],
            stdout=joiner_log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        jurl = f"http://127.0.0.1:{jport}"
        _wait(lambda: bool(_info(jurl).get("identity")), "the fourth worker answering")
        # Fund its identity: it signs its own registration on chain.
        Devnet.running_at(summary["chain"]).fund([bytes.fromhex(_info(jurl)["identity"][2:])])
        _wait(lambda: bool(_info(jurl).get("ready")), lambda: f"the fourth worker's key: {_info(jurl).get('chain')}")
        with ChainNode(summary["chain"]) as node:
            head = node.finalized_number()
        everyone = [*urls, jurl]
        _wait(lambda: all(_info(u).get("chain", {}).get("last_block", 0) >= head for u in everyone),
              lambda: [_info(u).get("chain") for u in everyone])
        # Equal roots: once the chain is idle every worker reports the same (block, root); a
        # worker whose state differed would never agree.
        _wait(lambda: len({_root(u) for u in everyone}) == 1, lambda: {u: _root(u) for u in everyone})
        joined = WorkerClient(jurl, policy=development_policy())
        assert ChainClient(summary["chain"], cluster, joined).contract(token.address, TOKEN).query(
            "balance_of", [bob.public_key], signer=bob).output == 77
        joined.close()
        worker.close()
        client.close()
    finally:
        if joiner is not None:
            _stop(joiner)
        _stop(net)
        log.close()
        joiner_log.close()


def _root(url: str) -> tuple[int, str]:
    info = _info(url)
    return int(info.get("block", -1)), str(info.get("state_root"))
