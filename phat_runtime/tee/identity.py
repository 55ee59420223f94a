"""The worker's identity: an sr25519 key pair born in the TEE, its X25519 ECDH key, and the
report data that binds both public keys into a quote.

Owns: key generation and derivation, the report-data format, the sealed identity payload,
and :func:`load_or_create_identity` (first start generates and seals; later starts unseal; a
sealed file that does not unseal is refused, never silently replaced). Must not: log, print
or repr a secret; choose a platform (the caller passes one).

Formats (docs/protocol.md, "Attestation"):

* ECDH private key = ``symmetric_key(identity_secret, b"phat/worker-ecdh/v1")`` clamped as
  X25519 does (RFC 7748); ``identity_secret`` is the 64-byte sr25519 secret (scalar ‖ nonce).
* report data (64 B) = ``sha512(b"phat_runtime/worker-identity/v1" ‖ identity_pk ‖ ecdh_pk)``.
* sealed payload v1 = ``b"PHID" ‖ 0x01 ‖ sr25519 secret (64) ‖ sr25519 public (32)``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

import sr25519
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from phat_runtime.crypto.kdf import (
    SEED_LEN,
    SR25519_SECRET_LEN,
    sr25519_pair_from_seed,
    sr25519_public,
    symmetric_key,
)
from phat_runtime.errors import SealingError
from phat_runtime.tee.platform import Platform
from phat_runtime.tee.sealing import write_private_file

log = logging.getLogger(__name__)

REPORT_DATA_TAG = b"phat_runtime/worker-identity/v1"
ECDH_KDF_PURPOSE = b"phat/worker-ecdh/v1"
PUBLIC_KEY_LEN = 32
PAYLOAD_MAGIC = b"PHID"
PAYLOAD_VERSION = 1
PAYLOAD_LEN = len(PAYLOAD_MAGIC) + 1 + SR25519_SECRET_LEN + PUBLIC_KEY_LEN


def clamp_x25519(scalar: bytes) -> bytes:
    """RFC 7748 clamping: clear the 3 low bits and the top bit, set bit 254."""
    if len(scalar) != 32:
        raise ValueError("an X25519 scalar is 32 bytes")
    b = bytearray(scalar)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def worker_report_data(identity_pk: bytes, ecdh_pk: bytes) -> bytes:
    """The 64 bytes a worker's quote must carry to bind its identity and ECDH public keys."""
    if len(identity_pk) != PUBLIC_KEY_LEN or len(ecdh_pk) != PUBLIC_KEY_LEN:
        raise ValueError("identity and ECDH public keys are 32 bytes each")
    return hashlib.sha512(REPORT_DATA_TAG + identity_pk + ecdh_pk).digest()


class WorkerIdentity:
    """An sr25519 identity key pair and the X25519 key pair derived from it.

    Public halves are attributes; secrets are reachable only through explicitly named methods
    and never appear in ``repr``.
    """

    __slots__ = ("_ecdh", "_secret", "ecdh_public_key", "public_key")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != SR25519_SECRET_LEN:
            raise ValueError(f"an sr25519 secret is {SR25519_SECRET_LEN} bytes")
        self._secret = bytes(secret)
        self.public_key: bytes = sr25519_public(self._secret)
        self._ecdh = X25519PrivateKey.from_private_bytes(
            clamp_x25519(symmetric_key(self._secret, ECDH_KDF_PURPOSE))
        )
        self.ecdh_public_key: bytes = self._ecdh.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> WorkerIdentity:
        """A fresh identity from the OS CSPRNG (inside the TEE, the TEE's RNG)."""
        return cls.from_seed(os.urandom(SEED_LEN))

    @classmethod
    def from_seed(cls, seed: bytes) -> WorkerIdentity:
        """Deterministic identity from a 32-byte mini-secret (test vectors)."""
        return cls(sr25519_pair_from_seed(seed)[1])

    @property
    def report_data(self) -> bytes:
        return worker_report_data(self.public_key, self.ecdh_public_key)

    def sign(self, message: bytes) -> bytes:
        """sr25519 signature (signing context "substrate") by the identity key."""
        return bytes(sr25519.sign((self.public_key, self._secret), message))

    def ecdh(self, peer_public_key: bytes) -> bytes:
        """X25519 shared secret with a peer; ``ValueError`` on a low-order peer key."""
        try:
            return self._ecdh.exchange(X25519PublicKey.from_public_bytes(peer_public_key))
        except ValueError as exc:
            raise ValueError("invalid X25519 peer public key") from exc

    def secret_bytes(self) -> bytes:
        """The 64-byte sr25519 secret. Never log it."""
        return self._secret

    def ecdh_private_bytes(self) -> bytes:
        """The clamped 32-byte X25519 private key. Never log it."""
        return clamp_x25519(symmetric_key(self._secret, ECDH_KDF_PURPOSE))

    def to_payload(self) -> bytes:
        """Plaintext that gets sealed (format in the module docstring)."""
        return PAYLOAD_MAGIC + bytes([PAYLOAD_VERSION]) + self._secret + self.public_key

    @classmethod
    def from_payload(cls, payload: bytes) -> WorkerIdentity:
        if len(payload) != PAYLOAD_LEN or not payload.startswith(PAYLOAD_MAGIC):
            raise ValueError("not a sealed worker identity payload")
        if payload[len(PAYLOAD_MAGIC)] != PAYLOAD_VERSION:
            raise ValueError(f"identity payload version {payload[len(PAYLOAD_MAGIC)]} is not "
                             f"{PAYLOAD_VERSION}")
        start = len(PAYLOAD_MAGIC) + 1
        identity = cls(payload[start : start + SR25519_SECRET_LEN])
        if not hmac.compare_digest(identity.public_key, payload[start + SR25519_SECRET_LEN :]):
            raise ValueError("identity payload public key does not match its secret")
        return identity

    def __repr__(self) -> str:
        return (f"WorkerIdentity(public_key=0x{self.public_key.hex()}, "
                f"ecdh_public_key=0x{self.ecdh_public_key.hex()})")


def load_or_create_identity(platform: Platform, path: Path) -> WorkerIdentity:
    """The worker identity sealed at ``path``; generated and sealed (mode 0600) on first start.

    A file that exists but does not unseal (tampered, another enclave build, another machine,
    missing key) raises :class:`SealingError`: regenerating would silently change the worker's
    identity, so an operator must move the file away deliberately.
    """
    path = Path(path)
    if path.exists():
        try:
            payload = platform.unseal(path.read_bytes())
            identity = WorkerIdentity.from_payload(payload)
        except SealingError as exc:
            raise SealingError(
                f"sealed worker identity {path} cannot be unsealed on platform "
                f"{platform.name!r}: {exc}. Refusing to create a new identity over it; "
                "move the file away to start as a new worker"
            ) from exc
        except (OSError, ValueError) as exc:
            raise SealingError(f"sealed worker identity {path} is unreadable: {exc}. "
                               "Refusing to create a new identity over it") from exc
        log.info("loaded worker identity 0x%s from %s", identity.public_key.hex(), path)
        return identity
    identity = WorkerIdentity.generate()
    write_private_file(path, platform.seal(identity.to_payload()), exclusive=True)
    log.info("created worker identity 0x%s, sealed by %s to %s",
             identity.public_key.hex(), platform.name, path)
    return identity
