"""The `phat` command end to end: the in-process demo, and deploy/query/tx against a live worker
(README's `phat demo` runs in tests/test_readme.py, verbatim)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.worker.service import Worker, WorkerConfig

ROOT = Path(__file__).resolve().parents[2]
FLIPPER = ROOT / "contracts_examples" / "flipper" / "flipper.contract"


def phat(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phat_runtime.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_local_demo() -> None:
    done = phat("demo", "--local")
    assert done.returncode == 0, done.stderr
    assert "factory.get_child" in done.stdout


def test_deploy_query_tx_against_a_worker(tmp_path: Path) -> None:
    with ServerThread(Worker(WorkerConfig(data_dir=tmp_path / "w"))) as url:
        refused = phat("query", "0x" + "11" * 32, "get", "--url", url)
        assert refused.returncode == 1 and "--dev" in refused.stderr  # says how to accept a dev TEE

        deployed = phat("deploy", str(FLIPPER), "--constructor", "new", "--args", "[false]", "--url", url,
                        "--dev", "--json")
        assert deployed.returncode == 0, deployed.stderr
        address = json.loads(deployed.stdout)["address"]

        got = json.loads(phat("query", address, "get", "--url", url, "--dev", "--json").stdout)
        assert got["output"] is False and got["receipt"]["verified"] is True
        flipped = phat("tx", address, "flip", "--url", url, "--dev", "--json")
        assert flipped.returncode == 0, flipped.stderr
        assert json.loads(flipped.stdout)["receipt"]["block"] >= 3
        assert json.loads(phat("query", address, "get", "--url", url, "--dev", "--json").stdout)["output"] is True

        bad = phat("query", address, "get", "--args", "{nope", "--url", url, "--dev")
        assert bad.returncode == 1 and "--args is not JSON" in bad.stderr


def test_keys_inspect() -> None:
    done = phat("keys", "inspect", "//Alice")
    assert "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d" in done.stdout
