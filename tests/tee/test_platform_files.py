"""Gramine and TDX file protocols against fake device directories. The fakes hand back real
sample quotes, so what the platform produced is verified by dcap-qvl end to end."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from phat_runtime.errors import PlatformError, SealingError
from phat_runtime.tee import (
    GramineSgxPlatform,
    TdxPlatform,
    WorkerIdentity,
    load_or_create_identity,
    verify_quote,
    verify_worker_quote,
)
from phat_runtime.testing.tee import FakeConfigFsTsm, FakeGramine

from .samples import SGX_REPORT_DATA, TDX_REPORT_DATA, Sample, sgx_policy, tdx_policy

# --- Gramine SGX -----------------------------------------------------------------------------


def test_gramine_quote_protocol_and_dcap_verification(tmp_path: Path, sgx_sample: Sample) -> None:
    fake = FakeGramine(tmp_path / "attestation", sgx_sample.raw)
    me = WorkerIdentity.generate()
    quote = fake.platform().quote(me.report_data)
    assert fake.written_report_data == me.report_data  # exactly the 64 bytes, written first
    assert quote.kind == "sgx" and quote.raw == sgx_sample.raw
    # What the "platform" produced runs through dcap-qvl: everything holds except the binding
    # to our keys (the fake's quote was made for someone else's report data).
    v = verify_worker_quote(quote.raw, sgx_sample.collateral, identity_pk=me.public_key,
                            ecdh_pk=me.ecdh_public_key, at=sgx_sample.at, policy=sgx_policy())
    assert [c.name for c in v.failures] == ["report_data"]
    v = verify_quote(quote.raw, sgx_sample.collateral, at=sgx_sample.at, policy=sgx_policy(),
                     expected_report_data=SGX_REPORT_DATA)
    assert v.ok


def test_gramine_refuses_non_dcap_attestation(tmp_path: Path) -> None:
    fake = FakeGramine(tmp_path, b"q", attestation_type="epid")
    with pytest.raises(PlatformError, match="dcap"):
        fake.platform().quote(bytes(64))


def test_gramine_outside_an_enclave_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="not running inside a Gramine"):
        GramineSgxPlatform(tmp_path / "missing").quote(bytes(64))


def test_gramine_sealing_binds_to_the_enclave_key(tmp_path: Path) -> None:
    fake = FakeGramine(tmp_path / "attestation", b"q", seal_key=b"k" * 16)
    path = tmp_path / "identity.sealed"
    first = load_or_create_identity(fake.platform(), path)
    assert load_or_create_identity(fake.platform(), path).public_key == first.public_key
    assert first.secret_bytes() not in path.read_bytes()
    # A different enclave build has a different MRENCLAVE sealing key: refused.
    (fake.root / "keys" / "_sgx_mrenclave").write_bytes(b"K" * 16)
    with pytest.raises(SealingError, match="failed authentication"):
        load_or_create_identity(fake.platform(), path)
    # The MRSIGNER key is a different key too.
    with pytest.raises(SealingError):
        load_or_create_identity(fake.platform(seal_key_name="_sgx_mrsigner"), path)


def test_gramine_rejects_a_wrong_size_key(tmp_path: Path) -> None:
    fake = FakeGramine(tmp_path, b"q", seal_key=b"k" * 32)
    with pytest.raises(SealingError, match="expected 16"):
        fake.platform().seal(b"x")


# --- TDX configfs-tsm ------------------------------------------------------------------------


def test_tdx_configfs_protocol_and_dcap_verification(tmp_path: Path, tdx_sample: Sample) -> None:
    fake = FakeConfigFsTsm(tmp_path / "tsm" / "report", tdx_sample.raw)
    me = WorkerIdentity.generate()
    quote = fake.platform().quote(me.report_data)
    assert fake.inblobs == [me.report_data]
    assert len(fake.created) == 1 and fake.created[0].name.startswith("phat-")
    assert list(fake.report_dir.iterdir()) == []  # the entry was removed again
    assert quote.kind == "tdx" and quote.raw == tdx_sample.raw
    v = verify_worker_quote(quote.raw, tdx_sample.collateral, identity_pk=me.public_key,
                            ecdh_pk=me.ecdh_public_key, at=tdx_sample.at, policy=tdx_policy())
    assert [c.name for c in v.failures] == ["report_data"]
    assert verify_quote(quote.raw, tdx_sample.collateral, at=tdx_sample.at, policy=tdx_policy(),
                        expected_report_data=TDX_REPORT_DATA).ok


def test_tdx_each_quote_uses_a_fresh_entry(tmp_path: Path) -> None:
    fake = FakeConfigFsTsm(tmp_path, b"quote")
    platform = fake.platform()
    platform.quote(bytes(64))
    platform.quote(b"\1" * 64)
    assert len(set(fake.created)) == 2 and fake.inblobs == [bytes(64), b"\1" * 64]


def test_tdx_wrong_provider_is_refused(tmp_path: Path) -> None:
    fake = FakeConfigFsTsm(tmp_path, b"quote", provider="sev_guest")
    with pytest.raises(PlatformError, match="tdx_guest"):
        fake.platform().quote(bytes(64))
    assert fake.inblobs == [] and list(tmp_path.iterdir()) == []


def test_tdx_concurrent_writer_is_detected(tmp_path: Path) -> None:
    fake = FakeConfigFsTsm(tmp_path, b"quote")
    fake.interfere = True
    with pytest.raises(PlatformError, match="generation"):
        fake.platform().quote(bytes(64))
    assert list(tmp_path.iterdir()) == []


def test_tdx_without_configfs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="not a TDX guest"):
        TdxPlatform(tmp_path / "missing").quote(bytes(64))
    # The real OS file operations on a plain directory: mkdir works, but no kernel creates
    # the attributes, so the protocol stops at `provider` and cleans up.
    with pytest.raises(PlatformError, match="provider"):
        TdxPlatform(tmp_path).quote(bytes(64))
    assert list(tmp_path.iterdir()) == []


def test_tdx_sealing_needs_a_key_provider(tmp_path: Path) -> None:
    path = tmp_path / "identity.sealed"
    with pytest.raises(SealingError, match="no hardware sealing key"):
        load_or_create_identity(TdxPlatform(tmp_path), path)
    assert not path.exists()
    key = tmp_path / "provided.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    platform = TdxPlatform(tmp_path, seal_key_file=key)
    first = load_or_create_identity(platform, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_identity(TdxPlatform(tmp_path, seal_key_file=key), path).public_key \
        == first.public_key
    key.chmod(0o640)
    with pytest.raises(SealingError, match="group/others"):
        load_or_create_identity(TdxPlatform(tmp_path, seal_key_file=key), path)


def test_blob_sealed_by_one_platform_is_refused_by_another(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"k" * 16)
    key.chmod(0o600)
    fake = FakeGramine(tmp_path / "g", b"q", seal_key=b"k" * 16)  # same root key bytes
    blob = TdxPlatform(tmp_path, seal_key_file=key).seal(b"secret")
    with pytest.raises(SealingError, match="sealed by platform 'tdx'"):
        fake.platform().unseal(blob)


def test_platform_detection_and_factory(tmp_path: Path) -> None:
    from phat_runtime.errors import ConfigError
    from phat_runtime.tee import PlatformConfig, detect_platform, make_platform

    config = PlatformConfig(data_dir=tmp_path / "w", gramine_root=tmp_path / "attestation",
                            tsm_report_dir=tmp_path / "tsm")
    assert detect_platform(config) == "simulated"  # nothing there: development fallback
    (tmp_path / "tsm").mkdir()
    assert detect_platform(config) == "tdx"
    FakeGramine(tmp_path / "attestation", b"q")
    assert detect_platform(config) == "gramine-sgx"
    for name in ("simulated", "gramine-sgx", "tdx"):
        platform = make_platform(name, config)
        assert platform.name == name
    with pytest.raises(ConfigError, match="unknown TEE platform"):
        make_platform("sev", config)
