"""The devnet launcher: pinned npm packages, genesis extracted at run time into the data dir
(never into the repository), funded accounts, and clear errors when it cannot start."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from phat_runtime.chain import chopsticks
from phat_runtime.chain.devnet import Devnet
from phat_runtime.chain.node import ChainNode
from phat_runtime.crypto.accounts import dev_account
from phat_runtime.errors import DevnetError
from tests.chain.conftest import WORKER

ROOT = Path(__file__).resolve().parents[2]


def test_packages_are_pinned_exactly_with_a_lockfile() -> None:
    pins = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert pins == {"@acala-network/chopsticks": "1.1.0", "@substrate/connect-known-chains": "1.10.3"}
    lock = json.loads((ROOT / "package-lock.json").read_text())
    for name, version in pins.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_no_genesis_or_node_modules_in_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout
    if not tracked:
        pytest.skip("not a git checkout")
    assert "genesis.json" not in tracked and "node_modules/" not in tracked
    assert "node_modules" in (ROOT / ".gitignore").read_text()


def test_running_devnet_layout_and_funding(devnet: Devnet) -> None:
    files = {p.name for p in devnet.data_dir.iterdir()}
    assert {"genesis.json", "chopsticks.json", "chain.sqlite", "chopsticks.log"} <= files
    spec = json.loads((devnet.data_dir / "genesis.json").read_text())
    assert spec["id"] == "asset-hub-rococo"
    assert chopsticks.TIMESTAMP_NOW_KEY in spec["genesis"]["raw"]["top"]
    config = json.loads((devnet.data_dir / "chopsticks.json").read_text())
    assert config["build-block-mode"] == "Instant" and config["host"] == "127.0.0.1"
    with ChainNode(devnet.url) as node:
        for account in (dev_account("alice"), dev_account("ferdie"), WORKER.public_key):
            assert node.free_balance(account) >= devnet.balance // 2
        fresh = bytes([0x5E]) * 32
        assert node.free_balance(fresh) == 0
        assert devnet.fund([fresh]) == 1
        assert node.free_balance(fresh) == devnet.balance
        assert devnet.fund([fresh]) == 0  # already funded: nothing to do


def test_port_in_use_is_refused(tmp_path: Path, devnet: Devnet) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DevnetError, match=f"port {port} is already in use"):
            Devnet(tmp_path, port).start()


def test_chopsticks_failing_to_start_shows_its_log(tmp_path: Path, devnet: Devnet) -> None:
    (tmp_path / "genesis.json").write_text("{}")  # kept as is: the devnet never overwrites it
    net = Devnet(tmp_path)
    with pytest.raises(DevnetError, match="chopsticks exited during start") as info:
        net.start(timeout_s=120)
    assert "chopsticks.log" in str(info.value)
    assert not net.running()


def test_missing_node_or_npm_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(ROOT / name, tmp_path / name)
    monkeypatch.setenv("PHAT_NPM_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(chopsticks.shutil, "which", lambda name: None)
    with pytest.raises(DevnetError, match=r"`npm` not found.*apt-get install nodejs npm"):
        chopsticks.ensure_installed(tmp_path)


def test_without_pins_the_devnet_says_it_needs_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(DevnetError, match="package.json"):
        chopsticks.ensure_installed(tmp_path)


def test_a_chain_keeps_the_genesis_time_it_began_with(tmp_path: Path, devnet: Devnet) -> None:
    genesis = tmp_path / "genesis.json"
    chopsticks.extract_genesis(genesis, devnet.npm_dir, now_ms=1_751_328_000_000)
    assert chopsticks.genesis_time_ms(genesis) == 1_751_328_000_000
    chopsticks.extract_genesis(genesis, devnet.npm_dir, now_ms=1_751_328_000_000)  # same: kept
    chopsticks.extract_genesis(genesis, devnet.npm_dir)  # no time asked: kept
    with pytest.raises(DevnetError, match="genesis time cannot change"):
        Devnet(tmp_path, genesis_time_ms=1_700_000_000_000).start()
