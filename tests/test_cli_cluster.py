"""`phat serve --system-contract FILE --cluster-owner ACCOUNT` (the cluster's genesis), what
`/v1/info` says about it, and `phat deploy --strict` for metadata from another build."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from phat_runtime.cli.main import main
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.accounts import dev_account, to_ss58
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.rpc.hosting import ServerThread, free_port
from phat_runtime.runtime.records import contract_address
from phat_runtime.worker.service import Worker, WorkerConfig

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = ROOT / "contracts_examples" / "system" / "system.contract"
FLIPPER = ROOT / "contracts_examples" / "flipper" / "flipper.contract"


def _serve(data_dir: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "phat_runtime.cli.main", "serve", "--data-dir", str(data_dir),
                             "--port", str(port), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)


def _info(url: str, proc: subprocess.Popen[str], timeout_s: float = 90) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"phat serve exited {proc.returncode}: {proc.communicate()}")
        try:
            return httpx.get(url + "/v1/info", timeout=2, trust_env=False).json()  # type: ignore[no-any-return]
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("phat serve did not answer")


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out, err


def test_serve_installs_the_named_system_contract_owned_by_the_named_owner(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(tmp_path / "w", port, "--system-contract", str(SYSTEM), "--cluster-owner", "bob")
    try:
        info = _info(f"http://127.0.0.1:{port}", proc)
    finally:
        _, out = _stop(proc)  # the console writes to stderr
    bob = dev_account("bob")
    code_hash = ContractMetadata.load(SYSTEM).code_hash
    assert code_hash is not None
    address = contract_address(bob, code_hash, bytes(32), b"")  # deployed by bob at genesis
    assert info["system_contract"] == {"address": to_ss58(address), "address_hex": "0x" + address.hex()}
    assert info["cluster_owner"] == {"address": to_ss58(bob), "address_hex": "0x" + bob.hex()}
    assert f"system contract {to_ss58(address)}; cluster owner {to_ss58(bob)}" in out
    assert "whose key is" not in out  # the warning is for alice, the default owner

    # The same data directory: the same owner is fine, another is refused (nothing changes).
    again = _serve(tmp_path / "w", port, "--cluster-owner", "charlie")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 1 and "Traceback" not in err
    assert f"owned by {to_ss58(bob)}" in err and "cannot change after genesis" in err
    proc = _serve(tmp_path / "w", port, "--cluster-owner", to_ss58(bob))
    try:
        assert _info(f"http://127.0.0.1:{port}", proc)["system_contract"]["address_hex"] == "0x" + address.hex()
    finally:
        _stop(proc)


def test_by_default_the_owner_is_alice_and_serve_says_her_key_is_public(tmp_path: Path) -> None:
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w"))
    try:
        info = worker.info()
    finally:
        worker.stop()
    alice = dev_account("alice")
    assert info["cluster_owner"]["address_hex"] == "0x" + alice.hex()
    assert info["system_contract"]["address_hex"] == "0x" + worker.system_contract.hex()  # type: ignore[union-attr]
    port = free_port()
    proc = _serve(tmp_path / "w", port)
    try:
        _info(f"http://127.0.0.1:{port}", proc)
    finally:
        _, out = _stop(proc)  # the console writes to stderr
    assert "the development account alice, whose key is public" in " ".join(out.split())


def test_a_worker_reopened_with_another_system_contract_is_refused(tmp_path: Path) -> None:
    Worker(WorkerConfig(data_dir=tmp_path / "w")).stop()  # ours, owned by alice
    other = tmp_path / "system.contract"
    doc = json.loads(SYSTEM.read_text())
    wasm = bytes.fromhex(doc["source"]["wasm"].removeprefix("0x")) + b"\x00\x00"  # an empty custom section
    doc["source"]["wasm"], doc["source"]["hash"] = "0x" + wasm.hex(), "0x" + blake2_256(wasm).hex()
    other.write_text(json.dumps(doc))
    from phat_runtime.errors import ConfigError

    with pytest.raises(ConfigError, match="installed from other code"):
        Worker(WorkerConfig(data_dir=tmp_path / "w", system_contract=other))
    Worker(WorkerConfig(data_dir=tmp_path / "w", system_contract=SYSTEM)).stop()  # the same code: fine


@pytest.mark.parametrize(("flags", "expect"), [
    (["--system-contract", "/nonexistent/system.contract"], "no such file"),
    (["--cluster-owner", "bogus"], "--cluster-owner 'bogus'"),
])
def test_serve_refuses_bad_genesis_flags_before_creating_anything(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], expect: str) -> None:
    rc = main(["serve", "--data-dir", str(tmp_path / "w"), "--port", str(free_port()), *flags])
    err = capsys.readouterr().err
    assert rc == 1 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "w").exists()


def _other_build(tmp_path: Path) -> Path:
    """flipper's bundle with the source.hash of another build (as cargo-contract fixtures ship)."""
    doc = json.loads(FLIPPER.read_text())
    doc["source"]["hash"] = "0x" + "01" * 32
    path = tmp_path / "flipper_other_build.contract"
    path.write_text(json.dumps(doc))
    return path


def test_deploy_warns_about_metadata_from_another_build_and_strict_refuses_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bundle = _other_build(tmp_path)
    with ServerThread(Worker(WorkerConfig(data_dir=tmp_path / "w"))) as url:
        rc = main(["deploy", str(bundle), "--args", "[true]", "--strict", "--url", url, "--dev"])
        err = capsys.readouterr().err
        assert rc == 1 and len(err.strip().splitlines()) == 1, err
        assert "code hash mismatch" in err and "0x" + "01" * 32 in err
        height = httpx.get(url + "/v1/info", trust_env=False).json()["block"]

        rc = main(["deploy", str(bundle), "--args", "[true]", "--url", url, "--dev", "--json"])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1 and "code hash mismatch" in warnings[0], captured.err
        address = json.loads(captured.out)["address"]
        assert httpx.get(url + "/v1/info", trust_env=False).json()["block"] == height + 2  # upload, instantiate
        rc = main(["query", address, "get", "--url", url, "--dev", "--json"])
        assert rc == 0 and json.loads(capsys.readouterr().out)["output"] is True
