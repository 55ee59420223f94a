"""Worker identity: derivation vectors, report-data format, sealing, restart and tamper refusal,
and that no secret reaches a log, a repr or the sealed file in the clear."""

from __future__ import annotations

import hashlib
import logging
import stat
from pathlib import Path

import nacl.bindings
import pytest

from phat_runtime.crypto.signatures import sr25519_verify
from phat_runtime.errors import SealingError
from phat_runtime.tee import SimulatedPlatform, WorkerIdentity, load_or_create_identity
from phat_runtime.tee.identity import worker_report_data

VECTOR_SEED = bytes(range(32))
# docs/protocol.md, "Report data (v1)".
VECTOR = {
    "identity_pk": "e2111779981618705ecacea1af6ff9350bce2b2dccd03e0c3e01eb0c823d2666",
    "ecdh_private": "781e1ee6c966fb5c63a7f91ec9215731389d55e23086b72bc20e1ca2d9416347",
    "ecdh_pk": "19334afe458e92a88d47f624e66bd406e06334f4c2d364535302215ffa8f5a0e",
    "report_data": "90e78c476e40466a6a2d1e8a47462b3ecf8e568d4a5499d4d13683817dd3803e"
                   "3dd4a06353ad500f1821951304e13b0c820d219521678f5fec9082ca97747de6",
}


def test_identity_vector() -> None:
    me = WorkerIdentity.from_seed(VECTOR_SEED)
    assert me.public_key.hex() == VECTOR["identity_pk"]
    assert me.ecdh_private_bytes().hex() == VECTOR["ecdh_private"]
    assert me.ecdh_public_key.hex() == VECTOR["ecdh_pk"]
    assert me.report_data.hex() == VECTOR["report_data"]


def test_report_data_binds_both_keys_with_a_domain_tag() -> None:
    me = WorkerIdentity.from_seed(VECTOR_SEED)
    expected = hashlib.sha512(b"phat_runtime/worker-identity/v1" + me.public_key
                              + me.ecdh_public_key).digest()
    assert me.report_data == expected and len(expected) == 64
    other = WorkerIdentity.from_seed(bytes(32))
    assert worker_report_data(other.public_key, me.ecdh_public_key) != me.report_data
    assert worker_report_data(me.public_key, other.ecdh_public_key) != me.report_data
    with pytest.raises(ValueError):
        worker_report_data(me.public_key[:31], me.ecdh_public_key)


def test_ecdh_key_is_clamped_x25519_and_agrees() -> None:
    a, b = WorkerIdentity.from_seed(VECTOR_SEED), WorkerIdentity.generate()
    priv = a.ecdh_private_bytes()
    assert priv[0] & 7 == 0 and priv[31] & 0x80 == 0 and priv[31] & 0x40
    # Independent implementation (libsodium) gives the same public key and shared secret.
    assert nacl.bindings.crypto_scalarmult_base(priv) == a.ecdh_public_key
    assert a.ecdh(b.ecdh_public_key) == b.ecdh(a.ecdh_public_key)
    assert a.ecdh(b.ecdh_public_key) == nacl.bindings.crypto_scalarmult(priv, b.ecdh_public_key)
    with pytest.raises(ValueError):
        a.ecdh(bytes(32))  # low-order point


def test_identity_signs_with_sr25519() -> None:
    me = WorkerIdentity.generate()
    sig = me.sign(b"receipt")
    assert sr25519_verify(sig, b"receipt", me.public_key)
    assert not sr25519_verify(sig, b"receipt!", me.public_key)


def test_repr_shows_public_keys_only() -> None:
    me = WorkerIdentity.generate()
    text = repr(me) + str(me)
    assert me.public_key.hex() in text
    assert me.secret_bytes().hex() not in text and me.ecdh_private_bytes().hex() not in text


# --- persistence -----------------------------------------------------------------------------


def _restart(tmp_path: Path) -> WorkerIdentity:
    """A fresh platform object each time, as after a process restart."""
    return load_or_create_identity(SimulatedPlatform(tmp_path), tmp_path / "identity.sealed")


def test_identity_survives_restart(tmp_path: Path) -> None:
    first = _restart(tmp_path)
    second = _restart(tmp_path)
    assert second.public_key == first.public_key
    assert second.ecdh_public_key == first.ecdh_public_key
    assert second.secret_bytes() == first.secret_bytes()
    # A different data directory is a different worker.
    assert _restart(tmp_path / "other").public_key != first.public_key


def test_sealed_file_is_private_and_holds_no_plaintext_secret(tmp_path: Path) -> None:
    me = _restart(tmp_path)
    path = tmp_path / "identity.sealed"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "simulated-seal.key").stat().st_mode) == 0o600
    blob = path.read_bytes()
    for secret in (me.secret_bytes(), me.secret_bytes()[:32], me.secret_bytes()[32:],
                   me.ecdh_private_bytes()):
        assert secret not in blob
        assert secret.hex().encode() not in blob
    assert blob.startswith(b"PHSEAL\x01\x09simulated")


@pytest.mark.parametrize("where", ["magic", "platform", "nonce", "ciphertext", "tag"])
def test_tampered_sealed_identity_is_refused_not_regenerated(tmp_path: Path, where: str) -> None:
    _restart(tmp_path)
    path = tmp_path / "identity.sealed"
    blob = bytearray(path.read_bytes())
    header = len(b"PHSEAL") + 2 + len("simulated")
    index = {"magic": 0, "platform": 9, "nonce": header + 2, "ciphertext": header + 12 + 20,
             "tag": len(blob) - 1}[where]
    blob[index] ^= 0x04
    path.write_bytes(bytes(blob))
    with pytest.raises(SealingError, match="Refusing to create a new identity"):
        _restart(tmp_path)
    assert path.read_bytes() == bytes(blob)  # left as it was for the operator to inspect


@pytest.mark.parametrize("content", [b"", b"PHSEAL", b"garbage" * 30])
def test_truncated_or_foreign_file_is_refused(tmp_path: Path, content: bytes) -> None:
    _restart(tmp_path)
    (tmp_path / "identity.sealed").write_bytes(content)
    with pytest.raises(SealingError):
        _restart(tmp_path)


def test_lost_sealing_key_is_refused(tmp_path: Path) -> None:
    _restart(tmp_path)
    (tmp_path / "simulated-seal.key").unlink()
    with pytest.raises(SealingError, match="does not exist"):
        _restart(tmp_path)
    assert not (tmp_path / "simulated-seal.key").exists()  # no new key, no new identity


def test_other_sealing_key_is_refused(tmp_path: Path) -> None:
    _restart(tmp_path)
    key = tmp_path / "simulated-seal.key"
    key.write_bytes(bytes(32))
    with pytest.raises(SealingError, match="failed authentication"):
        _restart(tmp_path)


def test_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    _restart(tmp_path)
    (tmp_path / "simulated-seal.key").chmod(0o644)
    with pytest.raises(SealingError, match="chmod 600"):
        _restart(tmp_path)


def test_no_secret_is_logged_or_printed(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    me = _restart(tmp_path)  # created
    again = _restart(tmp_path)  # loaded
    out = capsys.readouterr()
    text = caplog.text + out.out + out.err
    assert me.public_key.hex() in caplog.text  # the logs do say which identity
    assert "NOT SECURE" in caplog.text  # and that the platform is simulated
    for secret in (me.secret_bytes(), again.ecdh_private_bytes()):
        assert secret.hex() not in text
        assert repr(secret) not in text
