"""Key derivation: pink's sr25519 KDF and our symmetric sub-keys (pure functions).

pink / phala-crypto (HOST-ABI.md §4): HKDF-SHA256 with a fixed 32-byte salt (the "PoC-4
genesis hash"), IKM = the parent sr25519 secret (64 bytes: scalar ‖ nonce), info = the
concatenation of the info parts, 32 bytes out used as an sr25519 mini-secret seed (Ed25519
expansion, ``Pair::from_seed``). Every worker holding the same cluster key derives the same
contract keys.

Secrets are ``bytes`` and never logged; callers must not put them in messages or reprs.
"""

from __future__ import annotations

import sr25519
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: phala-crypto's KDF salt.
PINK_KDF_SALT = bytes.fromhex("18e876adfa74cc743b4b7d7f92c96e03de559a3c15270581fce445963d90f85e")
SR25519_SECRET_LEN = 64
SEED_LEN = 32


def hkdf_sha256(ikm: bytes, info: bytes, *, salt: bytes = PINK_KDF_SALT, length: int = SEED_LEN) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def sr25519_pair_from_seed(seed: bytes) -> tuple[bytes, bytes]:
    """(public 32 B, secret 64 B) from a 32-byte mini secret (Ed25519 expansion, like sp_core)."""
    if len(seed) != SEED_LEN:
        raise ValueError("an sr25519 seed is 32 bytes")
    public, secret = sr25519.pair_from_seed(seed)
    return bytes(public), bytes(secret)


def sr25519_public(secret: bytes) -> bytes:
    return bytes(sr25519.public_from_secret_key(secret))


def derive_sr25519(parent_secret: bytes, *info: bytes) -> tuple[bytes, bytes]:
    """pink's ``KDF::derive_sr25519_pair(info)``: (public, 64-byte secret) of the child key."""
    if len(parent_secret) != SR25519_SECRET_LEN:
        raise ValueError("the parent sr25519 secret is 64 bytes (scalar ‖ nonce)")
    return sr25519_pair_from_seed(hkdf_sha256(parent_secret, b"".join(info)))


def cluster_key(master_secret: bytes, cluster_id: bytes) -> tuple[bytes, bytes]:
    """Cluster key from a master key: KDF(master, ["cluster_key", cluster_id])."""
    return derive_sr25519(master_secret, b"cluster_key", cluster_id)


def contract_key(cluster_secret: bytes, contract_id: bytes) -> tuple[bytes, bytes]:
    """Per-contract key: KDF(cluster_key, ["contract_key", contract_id]) (public goes on chain)."""
    return derive_sr25519(cluster_secret, b"contract_key", contract_id)


def derive_contract_sr25519(cluster_secret: bytes, contract: bytes, salt: bytes) -> bytes:
    """The chain extension's ``derive_sr25519_key(salt)``: KDF(cluster_key, [contract, salt,
    "keygen"]) returned as the 64-byte secret."""
    return derive_sr25519(cluster_secret, contract, salt, b"keygen")[1]


def symmetric_key(secret: bytes, purpose: bytes, *parts: bytes) -> bytes:
    """A 32-byte symmetric key for ``purpose`` (our own domain-separated HKDF, not pink's):
    info = purpose ‖ 0x00 ‖ parts each prefixed by its 4-byte length."""
    info = purpose + b"\x00" + b"".join(len(p).to_bytes(4, "little") + p for p in parts)
    return hkdf_sha256(secret, info, salt=b"phat_runtime/symmetric/v1")


CLUSTER_ECDH_PURPOSE = b"phat/cluster-ecdh/v1"


def cluster_ecdh(cluster_secret: bytes) -> tuple[bytes, bytes]:
    """The cluster key's X25519 pair (private, public): what chain Call payloads are sealed to
    (``docs/protocol.md`` "Keys"). Private = RFC 7748-clamped symmetric_key(secret, purpose)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    scalar = bytearray(symmetric_key(cluster_secret, CLUSTER_ECDH_PURPOSE))
    scalar[0] &= 248
    scalar[31] = (scalar[31] & 127) | 64
    private = bytes(scalar)
    return private, X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
