"""Chain workers as separate processes (``phat worker``): kill -9 in the middle of applying
blocks and restart — no block skipped, none applied twice (equal roots with a worker that never
crashed); the chain process stopped and started again on its database — workers reconnect."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from phat_runtime.chain import (
    Call,
    CallPayload,
    ChainNode,
    CreateCluster,
    Devnet,
    cluster_id,
    free_port,
    seal_call_payload,
)
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.chain_client import ChainClient
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.tee.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
TOKEN = ROOT / "contracts_examples" / "token" / "token.contract"


class WorkerProcess:
    def __init__(self, data_dir: Path, chain: str, cluster: bytes, start_block: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "phat_runtime.cli.main", "worker", "--chain", chain,
                    "--cluster", "0x" + cluster.hex(), "--data-dir", str(data_dir), "--port", str(self.port),
                    "--start-block", str(start_block), "--checkpoint-every", "0", "--dev-cluster-key"]
        self.log = data_dir.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                httpx.get(self.url + "/health", timeout=1, trust_env=False)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"worker did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def info(self) -> dict:  # type: ignore[type-arg]
        return httpx.get(self.url + "/v1/info", timeout=10, trust_env=False).json()  # type: ignore[no-any-return]

    def at_block(self, number: int, timeout_s: float = 180) -> dict:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                info = self.info()
                if info["block"] >= number:
                    return info
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker stuck before block {number}: {self.log.read_text()[-3000:]}")


@pytest.fixture()
def own_devnet(tmp_path: Path) -> Iterator[Devnet]:
    net = Devnet(tmp_path / "chain")
    net.start()
    try:
        yield net
    finally:
        net.stop()


def _transfers(node: ChainNode, cluster: bytes, ecdh: bytes, token: bytes, meta: ContractMetadata,
               signer: Signer, count: int, seed: int) -> int:
    """One extrinsic of ``count`` sealed transfers of distinct amounts; its block number."""
    rng = random.Random(seed)
    calls = []
    for _ in range(count):
        to = Signer.dev(rng.choice(["bob", "charlie", "dave"])).public_key
        payload = meta.encode_message("transfer", {"to": to, "value": rng.randrange(1, 1000)})
        sealed = seal_call_payload(CallPayload(payload), cluster_ecdh_public=ecdh, cluster=cluster,
                                   contract=token, epoch=0, sender=signer.public_key)
        calls.append(Call(cluster, token, 0, sealed, 0))
    return node.submit(calls, signer).block_number


@pytest.mark.slow
def test_kill_9_and_chain_restart_neither_skip_nor_repeat_a_block(own_devnet: Devnet, tmp_path: Path) -> None:
    alice = Signer.dev("alice")
    salt = os.urandom(8)
    cluster = cluster_id(alice.public_key, salt)
    with ChainNode(own_devnet.url) as node:
        start = node.submit([CreateCluster(salt, Policy.from_dict({"platforms": ["simulated"]}), bytes(32))],
                            alice).block_number
    steady = WorkerProcess(tmp_path / "steady", own_devnet.url, cluster, start).start()
    crashy = WorkerProcess(tmp_path / "crashy", own_devnet.url, cluster, start).start()
    try:
        worker_client = WorkerClient(steady.url, policy=development_policy())
        client = ChainClient(own_devnet.url, cluster, worker_client)
        meta = ContractMetadata.load(TOKEN)
        token = client.deploy(meta, "new", [10**15], signer=alice).address
        client.close()
        worker_client.close()
        ecdh = bytes.fromhex(steady.info()["cluster_ecdh"][2:])
        with ChainNode(own_devnet.url) as node:
            crashy.kill()  # down while blocks land: it must catch up on restart
            last = 0
            for i in range(4):
                last = _transfers(node, cluster, ecdh, token, meta, alice, 30, seed=i)
            crashy.start()
            time.sleep(random.uniform(0.2, 0.8))
            crashy.kill()  # in the middle of catching up
            crashy.start()
            for i in range(4, 6):
                last = _transfers(node, cluster, ecdh, token, meta, alice, 30, seed=i)
            crashy.kill()
            crashy.start()
        a, b = steady.at_block(last), crashy.at_block(last)
        assert a["block"] == b["block"] and a["state_root"] == b["state_root"]

        # The chain goes away and comes back on the same database: both continue.
        own_devnet.stop()
        time.sleep(2)
        own_devnet.start()
        with ChainNode(own_devnet.url) as node:
            for i in range(6, 8):
                last = _transfers(node, cluster, ecdh, token, meta, alice, 10, seed=i)
        a, b = steady.at_block(last), crashy.at_block(last)
        assert a["block"] == b["block"] >= last and a["state_root"] == b["state_root"]
        assert a["chain"]["connected"] and b["chain"]["connected"]
    finally:
        steady.stop()
        crashy.stop()
