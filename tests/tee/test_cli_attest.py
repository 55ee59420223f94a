"""``phat attest verify`` / ``phat attest show``: exit codes, JSON output, and that ``show``
prints public keys only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from phat_runtime.cli.main import main
from phat_runtime.tee import (
    GramineSgxPlatform,
    Platform,
    SimulatedPlatform,
    WorkerIdentity,
    load_or_create_identity,
)

from .samples import SGX_MR_ENCLAVE, SGX_REPORT_DATA, Sample

DAY = 86400


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["attest", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _start_worker(platform: Platform, data_dir: Path) -> WorkerIdentity:
    """What `phat serve` does on first start: create and seal the identity."""
    return load_or_create_identity(platform, data_dir / "identity.sealed")


def _verify_args(sample: Sample, *extra: str) -> list[str]:
    return ["verify", str(sample.quote_path), "--collateral", str(sample.collateral_path), *extra]


def test_verify_ok_exits_zero(capsys: pytest.CaptureFixture[str], sgx_sample: Sample) -> None:
    rc, out, _ = _run(capsys, *_verify_args(sgx_sample, "--at", str(sgx_sample.at)))
    assert rc == 0
    assert "VERDICT: OK" in out
    assert "ConfigurationAndSWHardeningNeeded" in out and "INTEL-SA-00615" in out
    assert SGX_MR_ENCLAVE in out.replace("│", "").replace("\n", "").replace(" ", "")


def test_verify_failures_exit_nonzero(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      sgx_sample: Sample, tdx_outdated_sample: Sample) -> None:
    at = str(sgx_sample.at)
    rc, out, _ = _run(capsys, *_verify_args(sgx_sample, "--at", str(sgx_sample.at + DAY)))
    assert rc == 1 and "VERDICT: FAILED" in out and "expired" in out
    policy = tmp_path / "p.toml"
    policy.write_text('tcb_statuses = ["ConfigurationAndSWHardeningNeeded"]\nadvisories = "*"\n'
                      f'[sgx]\nmr_enclave = ["{"00" * 32}"]\n')
    rc, out, _ = _run(capsys, *_verify_args(sgx_sample, "--at", at, "--policy", str(policy)))
    assert rc == 1 and "measurement.mr_enclave" in out
    rc, _, _ = _run(capsys, *_verify_args(sgx_sample, "--at", at,
                                          "--expect-report-data", "00" * 64))
    assert rc == 1
    rc, _, _ = _run(capsys, *_verify_args(sgx_sample, "--at", at,
                                          "--expect-report-data", SGX_REPORT_DATA.hex()))
    assert rc == 0
    rc, out, _ = _run(capsys, *_verify_args(tdx_outdated_sample, "--at",
                                            str(tdx_outdated_sample.at)))
    assert rc == 1 and "No matching TCB level found" in out.replace("\n", " ")


def test_verify_json_output_parses(capsys: pytest.CaptureFixture[str], tdx_sample: Sample) -> None:
    rc, out, _ = _run(capsys, *_verify_args(tdx_sample, "--at", str(tdx_sample.at), "--json"))
    doc = json.loads(out)
    assert rc == 0 and doc["ok"] is True and doc["failures"] == []
    assert doc["platform"] == "tdx" and doc["tcb_status"] == "UpToDate"
    assert doc["measurements"]["mr_td"].startswith("91eb2b44")
    assert doc["policy"]["platforms"] == ["sgx", "tdx"]
    rc, out, _ = _run(capsys, *_verify_args(tdx_sample, "--at", str(tdx_sample.at + DAY),
                                            "--json"))
    doc = json.loads(out)
    assert rc == 1 and doc["ok"] is False and [f["name"] for f in doc["failures"]] == ["quote"]


def test_verify_reads_hex_quote_files(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      sgx_sample: Sample) -> None:
    hexfile = tmp_path / "quote.hex"
    hexfile.write_text("0x" + sgx_sample.raw.hex() + "\n")
    rc, out, _ = _run(capsys, "verify", str(hexfile), "--collateral",
                      str(sgx_sample.collateral_path), "--at", str(sgx_sample.at), "--json")
    assert rc == 0 and json.loads(out)["quote_version"] == 3


def test_verify_argument_errors(capsys: pytest.CaptureFixture[str], sgx_sample: Sample) -> None:
    rc, _, err = _run(capsys, *_verify_args(sgx_sample, "--identity-pk", "00" * 32))
    assert rc == 1 and "go together" in err
    rc, _, err = _run(capsys, "verify", "/nonexistent/quote")
    assert rc == 1 and "cannot read" in err


def test_show_then_verify_a_simulated_worker(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    quote = tmp_path / "quote.bin"
    created = _start_worker(SimulatedPlatform(tmp_path / "w"), tmp_path / "w")
    rc, out, _ = _run(capsys, "show", "--data-dir", str(tmp_path / "w"), "--platform",
                      "simulated", "--json", "--quote-out", str(quote))
    info = json.loads(out)
    assert rc == 0 and info["quote_kind"] == "simulated"
    assert info["identity_public_key"] == created.public_key.hex()
    keys = ["--identity-pk", info["identity_public_key"], "--ecdh-pk", info["ecdh_public_key"]]
    # Refused without a policy that allows the simulated platform...
    rc, out, _ = _run(capsys, "verify", str(quote), *keys)
    assert rc == 1 and "simulated platform refused" in out and "NOT SECURE" in out
    # ... accepted by one that does.
    policy = tmp_path / "dev.json"
    policy.write_text('{"platforms": ["simulated"]}')
    rc, out, _ = _run(capsys, "verify", str(quote), "--policy", str(policy), *keys)
    assert rc == 0, out
    # Restart: same identity.
    rc, out, _ = _run(capsys, "show", "--data-dir", str(tmp_path / "w"), "--platform",
                      "simulated", "--json")
    again = json.loads(out)
    assert again["identity_public_key"] == info["identity_public_key"]


@pytest.mark.parametrize("as_json", [False, True])
def test_show_prints_public_keys_only(capsys: pytest.CaptureFixture[str],
                                      caplog: pytest.LogCaptureFixture, tmp_path: Path,
                                      as_json: bool) -> None:
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "w"
    _start_worker(SimulatedPlatform(data_dir), data_dir)
    args = ["show", "--data-dir", str(data_dir), "--platform", "simulated"]
    rc, out, err = _run(capsys, *args, *(["--json"] if as_json else []))
    assert rc == 0
    # Read the secret the way only the TEE can: unseal the identity file.
    sealed = (data_dir / "identity.sealed").read_bytes()
    me = WorkerIdentity.from_payload(SimulatedPlatform(data_dir).unseal(sealed))
    text = out + err + caplog.text
    assert me.public_key.hex() in out and me.ecdh_public_key.hex() in out
    assert me.report_data.hex() in out
    flat = "".join(text.split())
    for secret in (me.secret_bytes(), me.ecdh_private_bytes()):
        assert secret.hex() not in flat
        assert secret.hex()[:32] not in flat and secret.hex()[32:] not in flat
    if not as_json:
        assert "NOT SECURE" in out


def test_show_on_gramine(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                         sgx_sample: Sample) -> None:
    from phat_runtime.testing.tee import FakeGramine

    fake = FakeGramine(tmp_path / "attestation", sgx_sample.raw)
    _start_worker(GramineSgxPlatform(fake.root), tmp_path / "w")
    rc, out, _ = _run(capsys, "show", "--data-dir", str(tmp_path / "w"), "--platform",
                      "gramine-sgx", "--gramine-dir", str(fake.root), "--json")
    info = json.loads(out)
    assert rc == 0 and info["platform"] == "gramine-sgx" and info["quote_kind"] == "sgx"
    assert bytes.fromhex(info["quote"]) == sgx_sample.raw
    assert fake.written_report_data.hex() == info["report_data"]


def test_show_tdx_without_key_provider_fails_clearly(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    (tmp_path / "identity.sealed").write_bytes(b"sealed by a TDX worker")
    rc, _, err = _run(capsys, "show", "--data-dir", str(tmp_path), "--platform", "tdx",
                      "--tsm-dir", str(tmp_path))
    assert rc == 1 and "no hardware sealing key" in err


def test_show_never_creates_an_identity(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, err = _run(capsys, "show", "--data-dir", str(tmp_path / "w"))
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and "no worker identity" in err and "phat serve --data-dir" in err
    assert not (tmp_path / "w").exists()
    rc, _, err = _run(capsys, "show", "--data-dir", "/etc/passwd")
    assert rc == 1 and "no worker identity at /etc/passwd/identity.sealed" in err
