"""`phat devnet --workers 3` as its user runs it: three worker processes that share the cluster
key by attested handover (no development key). A `ClusterClient` sends queries while the worker
process it is using gets `kill -9` (its pid from devnet.json): every query succeeds through the
others, and a transaction too. Then the killed worker restarts on its data dir while a fourth
`phat worker` process joins, receives the key and replays the chain: all four report the same
state root."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from phat_runtime.chain import ChainNode, Devnet, free_port
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.chain_client import ChainClient
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.cluster_client import ClusterClient
from phat_runtime.rpc.remote import RemoteContract

ROOT = Path(__file__).resolve().parents[2]
TOKEN = ROOT / "contracts_examples" / "token" / "token.contract"
pytestmark = pytest.mark.slow
BEFORE, AFTER = 20, 30  # queries answered before the kill, and sent after it


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


def test_devnet_workers_share_the_key_by_handover_survive_a_kill_and_a_fourth_joins(devnet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # `devnet` (the session's chain) makes sure the npm packages are installed.
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    data = tmp_path / "devnet"
    log = open(tmp_path / "devnet.out", "wb")  # noqa: SIM115
    net = subprocess.Popen([sys.executable, "-m", "phat_runtime.cli.main", "devnet", "--workers", "3",
                            "--data-dir", str(data), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                           env=env, cwd=ROOT)
    started: list[subprocess.Popen[bytes]] = []  # the test's own worker processes
    logs = [log]

    def phat_worker(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        logs.append(open(tmp_path / f"{name}.out", "ab"))  # noqa: SIM115
        started.append(subprocess.Popen([sys.executable, "-m", "phat_runtime.cli.main", "worker", *args],
                                        stdout=logs[-1], stderr=subprocess.STDOUT, env=env, cwd=ROOT))
        return started[-1]

    def devnet_out() -> str:
        return (tmp_path / "devnet.out").read_text(errors="replace")

    try:
        summary_file = data / "devnet.json"
        _wait(lambda: summary_file.exists() or net.poll() is not None, lambda: devnet_out()[-2000:])
        assert net.poll() is None, devnet_out()[-3000:]
        summary = json.loads(summary_file.read_text())
        urls = [w["url"] for w in summary["workers"]]
        assert all(_info(u).get("ready") for u in urls)
        assert all(_info(u)["decentralized"] for u in urls)  # no development key anywhere
        chain, cluster = summary["chain"], bytes.fromhex(summary["cluster"][2:])
        common = ["--chain", chain, "--cluster", summary["cluster"], "--start-block", str(summary["start_block"])]
        # The fourth worker's process starts now (it is funded, and so registers, only later).
        jport = free_port()
        jurl = f"http://127.0.0.1:{jport}"
        phat_worker("w4", [*common, "--data-dir", str(tmp_path / "w4"), "--port", str(jport)])
        alice, bob = Signer.dev("alice"), Signer.dev("bob")
        worker = WorkerClient(urls[1], policy=development_policy())
        client = ChainClient(chain, cluster, worker)
        token = client.deploy(TOKEN, "new", [10**15], signer=alice, salt=os.urandom(4))
        assert token.transact("transfer", {"to": bob.public_key, "value": 77}, signer=alice).success

        # kill -9 the worker process a cluster client is using, mid-run.
        through = ClusterClient(chain, cluster, policy=development_policy(), since=summary["start_block"],
                                cache_dir=tmp_path / "cache")
        victim, answered, after_kill = _kill_while_querying(through, through.contract(token.address, TOKEN), alice, {
            bytes.fromhex(w["identity"][2:]): w["pid"] for w in summary["workers"]})
        assert net.poll() is None, devnet_out()[-3000:]  # the devnet keeps the others running
        killed = next(w for w in summary["workers"] if w["identity"] == "0x" + victim.hex())
        _wait(lambda: "was killed by signal 9" in devnet_out(), lambda: devnet_out()[-2000:], 30)
        assert victim in answered[:after_kill]  # it served before the kill …
        assert victim not in answered[after_kill:]  # … and none of the queries sent after it
        sent = through.contract(token.address, TOKEN).transact("transfer", {"to": bob.public_key, "value": 5},
                                                             signer=alice)
        assert sent.success and sent.verified.receipt.worker != victim
        through.close()

        # The killed worker restarts on its data dir (as the devnet says to) while the fourth
        # joins: both reach the roots of the others (kill -9 lost nothing it had applied).
        (line,) = [t for t in devnet_out().splitlines() if "restart it with: phat worker" in t]
        restart = shlex.split(line.split("restart it with: phat ", 1)[1])
        assert restart[restart.index("--data-dir") + 1] == killed["data_dir"]
        phat_worker("restarted", restart[1:])
        _wait(lambda: bool(_info(jurl).get("identity")), "the fourth worker answering")
        Devnet.running_at(chain).fund([bytes.fromhex(_info(jurl)["identity"][2:])])  # it signs its registration
        everyone = [*urls, jurl]
        for url in everyone:
            _wait(lambda url=url: bool(_info(url).get("ready")), lambda url=url: f"{url} ready: {_info(url).get('chain')}")
        assert _info(killed["url"])["identity"] == killed["identity"]  # the same worker, not a new one
        with ChainNode(chain) as node:
            head = node.finalized_number()
        _wait(lambda: all(_info(u).get("chain", {}).get("last_block", 0) >= head for u in everyone),
              lambda: [_info(u).get("chain") for u in everyone])
        # Equal roots: once the chain is idle every worker reports the same (block, root); a
        # worker whose state differed would never agree.
        _wait(lambda: len({_root(u) for u in everyone}) == 1, lambda: {u: _root(u) for u in everyone})
        for url in (jurl, killed["url"]):
            asked = WorkerClient(url, policy=development_policy())
            assert ChainClient(chain, cluster, asked).contract(token.address, TOKEN).query(
                "balance_of", [bob.public_key], signer=bob).output == 82
            asked.close()
        worker.close()
        client.close()
    finally:
        for proc in started:
            _stop(proc)
        _stop(net)
        for f in logs:
            f.close()


def _kill_while_querying(client: ClusterClient, token: RemoteContract, signer: Signer,
                         pids: dict[bytes, int]) -> tuple[bytes, list[bytes], int]:
    """Queries in a thread; after ``BEFORE`` answers, SIGKILL the process of the worker the
    client is using; ``AFTER`` more answers. Returns the victim, every answer's signer and the
    index of the first query sent after the kill. Any failed query fails the test."""
    answered: list[bytes] = []
    at_kill: list[int] = []
    errors: list[BaseException] = []
    killed = threading.Event()

    def run() -> None:
        try:
            while not at_kill or len(answered) < at_kill[0] + AFTER:
                sent_after_kill = killed.is_set()
                result = token.query("total_supply", signer=signer)
                assert result.output == 10**15
                answered.append(result.verified.receipt.worker)
                if sent_after_kill and not at_kill:
                    at_kill.append(len(answered) - 1)
        except BaseException as exc:  # reported below
            errors.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 120
    while len(answered) < BEFORE and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    victim = client.preferred
    assert victim is not None and runner.is_alive(), errors
    os.kill(pids[victim], signal.SIGKILL)
    killed.set()
    runner.join(timeout=300)
    assert not errors, errors
    assert at_kill and len(answered) == at_kill[0] + AFTER
    return victim, answered, at_kill[0]


def _root(url: str) -> tuple[int, str]:
    info = _info(url)
    return int(info.get("block", -1)), str(info.get("state_root"))
