"""The worker dashboard of a worker following a real chain (chopsticks): mode, chain URL and
cluster, the checkpoints published on chain next to this worker's roots, the messages it
rejected, and contracts deployed through the chain. In headless Chromium too, when present."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from phat_runtime.chain import ChainNode, CreateCluster, Devnet, cluster_id
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.chain_client import ChainClient
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig

FLIPPER = Path(__file__).resolve().parents[2] / "contracts_examples" / "flipper" / "flipper.contract"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: As in tests/rpc/test_dashboard_browser.py: headless, as root, no connections off this machine.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,2400"]


@dataclass
class ChainWorker:
    worker: Worker
    url: str
    cluster: bytes
    flipper: bytes
    garbage: tuple[int, int]  # (block, extrinsic) of a rejected remark


def _wait(condition, what: str, timeout_s: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def chain_worker(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainWorker]:
    alice, eve = Signer.dev("alice"), Signer.dev("eve")
    salt = os.urandom(8)
    with ChainNode(devnet.url) as node:
        start = node.finalized_number()
        node.submit([CreateCluster(salt, Policy.from_dict({"platforms": ["simulated"]}), bytes(32))], alice)
    cluster = cluster_id(alice.public_key, salt)
    worker = Worker(WorkerConfig(data_dir=tmp_path_factory.mktemp("dash"), chain=ChainConfig(
        devnet.url, cluster, start_block=start, checkpoint_every=2, dev_cluster_key=True)))
    devnet.fund([worker.identity.public_key])
    with ServerThread(worker) as url:
        rpc = WorkerClient(url, policy=development_policy())
        client = ChainClient(devnet.url, cluster, rpc)
        flipper = client.deploy(FLIPPER, "new", [True], signer=alice, salt=os.urandom(4))
        client.close()
        rpc.close()
        with ChainNode(devnet.url) as node:
            garbage = node.submit([b"phat\x01\xee not a message"], eve)
            node.submit([CreateCluster(os.urandom(4), Policy.from_dict({"platforms": ["simulated"]}),
                                       bytes(32))], Signer.dev("charlie"))  # one more block: a K=2 boundary
        assert worker.chain is not None
        _wait(lambda: worker.chain.status.last_block >= garbage.block_number + 1,  # type: ignore[union-attr]
              "the worker at the chain head")
        _wait(lambda: any(c["worker_hex"] == "0x" + worker.identity.public_key.hex() and c["agrees"]
                          for c in worker.checkpoints(limit=100)), "a checkpoint this worker published")
        yield ChainWorker(worker, url, cluster, flipper.address, (garbage.block_number, garbage.extrinsic_index))


def test_chain_worker_dashboard_shows_chain_checkpoints_and_rejections(chain_worker: ChainWorker) -> None:
    worker = chain_worker.worker
    page = httpx.get(chain_worker.url + "/", timeout=30)
    assert page.status_code == 200
    text = html.unescape(page.text)
    info = worker.info()
    assert "Mode: chain" in text and "DEVELOPMENT cluster key" in text
    assert f'<code id="chain-url">{worker.config.chain.url}</code>' in text  # type: ignore[union-attr]
    assert "0x" + chain_worker.cluster.hex() in text and "connected" in text
    # The checkpoints published on chain, with this worker's own root beside each.
    ours = [c for c in worker.checkpoints(limit=12) if c["worker_hex"] == info["identity"]]
    assert ours and ours[0]["agrees"] is True
    assert f'<code class="hex root">{ours[0]["published_root"]}</code>' in text
    assert to_ss58(worker.identity.public_key) in text and "DIVERGED" not in text
    # The rejected remark, with its reason, as GET /v1/chain/rejections gives it.
    block, extrinsic = chain_worker.garbage
    (rejection,) = [r for r in worker.rejections(limit=100) if (r["block"], r["extrinsic"]) == (block, extrinsic)]
    assert f'<td class="num">{block}</td><td class="num">{extrinsic}</td>' in text
    assert rejection["reason"] in text and to_ss58(Signer.dev("eve").public_key) in text
    # Blocks applied from the chain with their roots, and the contract deployed through it.
    journal = worker.chain.journal  # type: ignore[union-attr]
    assert f'<code class="hex root">0x{journal.root(block).hex()}</code>' in text  # type: ignore[union-attr]
    assert to_ss58(chain_worker.flipper) in text and ">flipper<" in page.text


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary: apt-get install chromium (.ci/run installs it)")
def test_chain_worker_dashboard_in_chromium(chain_worker: ChainWorker, tmp_path: Path) -> None:
    base = [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", chain_worker.url + "/"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert 'id="checkpoints"' in dom and 'id="rejections"' in dom and "Mode: chain" in dom
    assert to_ss58(chain_worker.flipper) in dom
    shot = tmp_path / "dashboard-chain.png"
    subprocess.run([*base, f"--screenshot={shot}", chain_worker.url + "/"], capture_output=True,
                   timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = os.environ.get("PHAT_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / shot.name)
