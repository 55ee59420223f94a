"""End-to-end encryption of RPC bodies (wire format v2): one X25519 agreement per client
*session*, then ChaCha20-Poly1305 with counter nonces, one key per direction.

- The client makes an ephemeral X25519 key per session; the worker answers with a random
  session id. Both derive ``HKDF-SHA256(X25519(client_eph, worker_ecdh), salt = SESSION_SALT,
  info = client_pk ‖ worker_ecdh_pk ‖ session_id)`` = 64 bytes: the client→worker key, then
  the worker→client key. A replayed handshake yields a new session id, hence new keys.
- Each message is sealed under its direction's key with nonce = the message counter (u64,
  little-endian, zero-padded to 12 bytes). The worker answers request ``n`` under counter
  ``n`` in the other direction, so the keys never see a nonce twice as long as request
  counters are unique — which the worker enforces (``rpc/sessions.py``).

Pure functions; no I/O. Secrets never appear in exceptions or reprs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from phat_runtime.crypto.kdf import hkdf_sha256
from phat_runtime.errors import PhatError

KEY_LEN = 32
NONCE_LEN = 12
SESSION_ID_LEN = 16
SESSION_SALT = b"phat_runtime/session/v2"
#: Largest message counter (u64); counter 0 is the worker's key confirmation.
MAX_COUNTER = 2**64 - 1


class EnvelopeError(PhatError):
    """A key or ciphertext that does not work: low-order key, wrong key, tampered bytes, wrong
    direction or route."""


def new_x25519() -> tuple[bytes, bytes]:
    """(private, public) ephemeral key pair."""
    key = X25519PrivateKey.generate()
    return key.private_bytes_raw(), key.public_key().public_bytes_raw()


def x25519(own_private: bytes, peer_public: bytes) -> bytes:
    """The X25519 shared secret; EnvelopeError for a key of the wrong length or of low order
    (its shared secret would be all zeros, known to anyone)."""
    try:
        return X25519PrivateKey.from_private_bytes(own_private).exchange(
            X25519PublicKey.from_public_bytes(peer_public)
        )
    except ValueError:
        raise EnvelopeError("the X25519 public key is not usable (wrong length or low order); "
                            "send a freshly generated key") from None


@dataclass(frozen=True)
class SessionKeys:
    """The two AEAD keys of one session, as ready-to-use cipher objects."""

    to_worker: ChaCha20Poly1305 = field(repr=False)
    to_client: ChaCha20Poly1305 = field(repr=False)


def session_keys(own_private: bytes, peer_public: bytes, client_pk: bytes, worker_pk: bytes,
                 session_id: bytes) -> SessionKeys:
    """Both sides call this with their own private key and the other's public key."""
    if len(session_id) != SESSION_ID_LEN:
        raise EnvelopeError(f"a session id is {SESSION_ID_LEN} bytes, got {len(session_id)}")
    okm = hkdf_sha256(x25519(own_private, peer_public), client_pk + worker_pk + session_id,
                      salt=SESSION_SALT, length=2 * KEY_LEN)
    return SessionKeys(ChaCha20Poly1305(okm[:KEY_LEN]), ChaCha20Poly1305(okm[KEY_LEN:]))


def new_session_id() -> bytes:
    return os.urandom(SESSION_ID_LEN)


def counter_nonce(counter: int) -> bytes:
    if not 0 <= counter <= MAX_COUNTER:
        raise EnvelopeError(f"message counter {counter} is outside u64")
    return counter.to_bytes(NONCE_LEN, "little")


def seal_at(key: ChaCha20Poly1305, counter: int, plaintext: bytes, aad: bytes) -> bytes:
    """Ciphertext ‖ tag of ``plaintext`` under message ``counter``."""
    return key.encrypt(counter_nonce(counter), plaintext, aad)


def open_at(key: ChaCha20Poly1305, counter: int, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return key.decrypt(counter_nonce(counter), ciphertext, aad)
    except InvalidTag:
        raise EnvelopeError("the ciphertext does not open: wrong session, key, counter or route, "
                            "or tampered bytes") from None
