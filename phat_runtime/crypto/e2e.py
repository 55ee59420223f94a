"""End-to-end encryption of RPC bodies: X25519 ECDH → HKDF-SHA256 → ChaCha20-Poly1305.

The client makes an ephemeral X25519 key per request; both sides derive the same AEAD key
from the shared secret, the two public keys and the protocol version. Requests and responses
use different associated data (``aad``) so a response can never be replayed as a request.
Pure functions; no I/O. Secrets never appear in exceptions.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from phat_runtime.crypto.kdf import hkdf_sha256
from phat_runtime.errors import PhatError

NONCE_LEN = 12
KEY_LEN = 32
_SALT = b"phat_runtime/envelope/v1"


class EnvelopeError(PhatError):
    """Ciphertext that does not open: wrong key, tampered bytes, or wrong direction."""


def new_x25519() -> tuple[bytes, bytes]:
    """(private, public) ephemeral key pair."""
    key = X25519PrivateKey.generate()
    return key.private_bytes_raw(), key.public_key().public_bytes_raw()


def shared_key(own_private: bytes, peer_public: bytes, client_public: bytes, worker_public: bytes) -> bytes:
    """The AEAD key both sides derive (bound to both public keys)."""
    try:
        secret = X25519PrivateKey.from_private_bytes(own_private).exchange(
            X25519PublicKey.from_public_bytes(peer_public)
        )
    except ValueError as exc:
        raise EnvelopeError(f"bad X25519 public key: {exc}") from None
    return hkdf_sha256(secret, client_public + worker_public, salt=_SALT, length=KEY_LEN)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext ‖ tag) under a fresh random nonce."""
    nonce = os.urandom(NONCE_LEN)
    return nonce, ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    if len(nonce) != NONCE_LEN:
        raise EnvelopeError(f"nonce must be {NONCE_LEN} bytes, got {len(nonce)}")
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise EnvelopeError("ciphertext does not open: wrong key or tampered bytes") from None
