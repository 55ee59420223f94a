"""Signature primitives with Substrate (sp_core) semantics: secp256k1 recovery, sr25519 and
ed25519 verify.

Pure functions over bytes; invalid input yields ``None`` / ``False``, never an exception, so
host functions can map failures to return codes.

ed25519 is consensus-relevant (pink's ``verify`` runs in transactions): sp_core verifies with
ed25519-zebra, i.e. the ZIP-215 rules — S must be canonical (< ℓ); A and R may be any curve
point encoding, non-canonical y and small-order points included; the cofactored equation
[8][S]B = [8]R + [8][k]A decides. PyNaCl/libsodium rejects small-order A and uses the
cofactorless equation, so it disagrees on such signatures: :func:`ed25519_verify` uses the
ed25519-zebra bindings and nothing else may verify ed25519 here.
"""

from __future__ import annotations

import coincurve
import ed25519_zebra
import sr25519

from phat_runtime.crypto.hashing import keccak_256

ECDSA_SIGNATURE_LEN = 65
ECDSA_COMPRESSED_PUBKEY_LEN = 33
ETH_ADDRESS_LEN = 20
#: Gas (ref_time weight, ps) a contract pays for one signature operation — sign, verify,
#: recover, derive or compute a public key — in a host function or a pink chain-extension
#: function: 30–500 µs of native crypto on the reference machine (docs/host-abi.md, "Gas").
#: Consensus-relevant, like all of ``wasm/schedule.py``.
SIGNATURE_GAS = 200_000_000


def ecdsa_recover_compressed(signature: bytes, message_hash: bytes) -> bytes | None:
    """Recover the 33-byte compressed secp256k1 key from a 65-byte r‖s‖v signature.

    ``v`` may be 0/1 or Ethereum's 27/28 (sp_io accepts both).
    """
    if len(signature) != ECDSA_SIGNATURE_LEN or len(message_hash) != 32:
        return None
    v = signature[64]
    if v > 26:
        v -= 27
    if v > 3:
        return None
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), message_hash, hasher=None
        )
    except Exception:
        return None
    return bytes(key.format(compressed=True))


def ecdsa_to_eth_address(compressed_pubkey: bytes) -> bytes | None:
    """Ethereum address (20 bytes) of a compressed secp256k1 public key."""
    try:
        key = coincurve.PublicKey(compressed_pubkey)
    except Exception:
        return None
    return keccak_256(key.format(compressed=False)[1:])[-ETH_ADDRESS_LEN:]


def sr25519_verify(signature: bytes, message: bytes, public_key: bytes) -> bool:
    """schnorrkel verification with signing context "substrate"."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        return bool(sr25519.verify(signature, message, public_key))
    except Exception:
        return False


def ed25519_verify(signature: bytes, message: bytes, public_key: bytes) -> bool:
    """ed25519 verification as sp_core does it (ed25519-zebra, ZIP-215 rules)."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        return bool(ed25519_zebra.ed_verify(signature, message, public_key))
    except Exception:
        return False
