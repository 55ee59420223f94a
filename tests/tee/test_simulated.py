"""The simulated TEE: refused unless a policy allows it, accepted when one does, forgeries fail,
and it says loudly that it is for development only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from phat_runtime.tee import (
    Policy,
    SimulatedPlatform,
    WorkerIdentity,
    simulated,
    verify_worker_quote,
)

NOW = 1_800_000_000
DEV = Policy(platforms=frozenset({"simulated"}))


def _quote(tmp_path: Path, me: WorkerIdentity) -> bytes:
    q = SimulatedPlatform(tmp_path).quote(me.report_data)
    assert q.kind == "simulated" and q.report_data == me.report_data
    return q.raw


def _verify(raw: bytes, me: WorkerIdentity, policy: Policy) -> list[str]:
    v = verify_worker_quote(raw, None, identity_pk=me.public_key, ecdh_pk=me.ecdh_public_key,
                            at=NOW, policy=policy)
    return [c.name for c in v.failures]


def test_simulated_quote_vector() -> None:
    # docs/protocol.md, "Simulated quote v1" (ed25519 signatures are deterministic).
    me = WorkerIdentity.from_seed(bytes(range(32)))
    raw = simulated.encode_quote(simulated.DEFAULT_MEASUREMENT, me.report_data)
    assert simulated.DEV_PUBLIC_KEY.hex() == (
        "1573f86153c557dd7c9f8472a662975ec439dc4946091ec24f5d2dc3416bfd9a")
    assert raw.hex() == (
        "5048415453494d510190629531c9b78d5a40e593f3ffe509cfa42f3954993e7f1c5974a444ec6f4c2a"
        "90e78c476e40466a6a2d1e8a47462b3ecf8e568d4a5499d4d13683817dd3803e3dd4a06353ad500f18"
        "21951304e13b0c820d219521678f5fec9082ca97747de6b9c99f2a53dbc1093821fb863f3313b89af7"
        "e6ecd05ac3747cb891e23821647bbe6b3ae015923f12c2a5f79f971b9bf9025bab939ed7e3bb77d223"
        "765041b60a")


def test_refused_by_a_policy_that_does_not_allow_simulated(tmp_path: Path) -> None:
    me = WorkerIdentity.generate()
    raw = _quote(tmp_path, me)
    for policy in (Policy(), Policy.permissive(),
                   Policy(platforms=frozenset({"sgx", "tdx"}), require_report_data=False)):
        v = verify_worker_quote(raw, None, identity_pk=me.public_key,
                                ecdh_pk=me.ecdh_public_key, at=NOW, policy=policy)
        assert [c.name for c in v.failures] == ["platform"]
        assert "development only" in v.failures[0].detail


def test_accepted_by_a_policy_that_allows_it(tmp_path: Path) -> None:
    me = WorkerIdentity.generate()
    raw = _quote(tmp_path, me)
    v = verify_worker_quote(raw, None, identity_pk=me.public_key, ecdh_pk=me.ecdh_public_key,
                            at=NOW, policy=DEV)
    assert v.ok and v.platform == "simulated" and v.report_data == me.report_data
    assert "NOT SECURE" in " ".join(c.detail for c in v.checks)
    # ... and only for the keys it binds.
    assert _verify(raw, WorkerIdentity.generate(), DEV) == ["report_data"]


def test_measurement_pinning(tmp_path: Path) -> None:
    me = WorkerIdentity.generate()
    raw = _quote(tmp_path, me)
    pinned = Policy.from_dict({"platforms": ["simulated"],
                               "simulated": {"measurement": [simulated.DEFAULT_MEASUREMENT.hex()]}})
    assert _verify(raw, me, pinned) == []
    other = Policy.from_dict({"platforms": ["simulated"], "simulated": {"measurement": ["00" * 32]}})
    assert _verify(raw, me, other) == ["measurement.measurement"]


def test_quote_signed_with_another_key_fails() -> None:
    me = WorkerIdentity.generate()
    forged = simulated.encode_quote(simulated.DEFAULT_MEASUREMENT, me.report_data,
                                    signing_key=Ed25519PrivateKey.generate())
    assert _verify(forged, me, DEV) == ["quote"]


@pytest.mark.parametrize("offset", [9, 9 + 31, 41, 104, 105, 168])
def test_flipped_byte_fails(tmp_path: Path, offset: int) -> None:
    me = WorkerIdentity.generate()
    raw = bytearray(_quote(tmp_path, me))
    raw[offset] ^= 0x10
    assert _verify(bytes(raw), me, DEV) == ["quote"]


@pytest.mark.parametrize("mangle", [lambda r: r[:-1], lambda r: r + b"\0",
                                    lambda r: r[:8] + b"\x02" + r[9:]])
def test_malformed_quote_fails(tmp_path: Path, mangle: Callable[[bytes], bytes]) -> None:
    me = WorkerIdentity.generate()
    raw = mangle(_quote(tmp_path, me))
    assert _verify(raw, me, DEV) == ["quote"]


def test_report_data_must_be_64_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SimulatedPlatform(tmp_path).quote(b"short")


def test_every_use_warns_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    platform = SimulatedPlatform(tmp_path)
    assert "development only" in caplog.text and "NOT SECURE" in caplog.text
    caplog.clear()
    platform.quote(bytes(64))
    assert "NOT SECURE" in caplog.text
    caplog.clear()
    platform.seal(b"x")
    assert "NOT SECURE" in caplog.text and "simulated-seal.key" in caplog.text
    assert not list(tmp_path.glob("*.tmp"))
