"""Signers and signature verification for sr25519 (context "substrate") and ed25519.

A :class:`Signer` holds a secret and signs bytes; its ``repr`` shows only the public key.
Verification is a pure function of (scheme, public key, message, signature).
"""

from __future__ import annotations

import enum

import nacl.signing
import sr25519

from phat_runtime.crypto.kdf import sr25519_pair_from_seed, sr25519_public
from phat_runtime.crypto.signatures import ed25519_verify, sr25519_verify


class Scheme(enum.IntEnum):
    """Same numbering as pink's SigType for the schemes we accept from clients."""

    ED25519 = 0
    SR25519 = 1


class Signer:
    """Signs with one key. Build with :meth:`sr25519_from_seed`, :meth:`sr25519_from_secret`,
    :meth:`ed25519_from_seed` or :meth:`dev` (well-known development accounts)."""

    __slots__ = ("_secret", "public_key", "scheme")

    def __init__(self, scheme: Scheme, public_key: bytes, secret: bytes) -> None:
        self.scheme = scheme
        self.public_key = public_key
        self._secret = secret

    @classmethod
    def sr25519_from_seed(cls, seed: bytes) -> Signer:
        public, secret = sr25519_pair_from_seed(seed)
        return cls(Scheme.SR25519, public, secret)

    @classmethod
    def sr25519_from_secret(cls, secret: bytes) -> Signer:
        if len(secret) != 64:
            raise ValueError("an sr25519 secret is 64 bytes (scalar ‖ nonce)")
        return cls(Scheme.SR25519, sr25519_public(secret), bytes(secret))

    @classmethod
    def ed25519_from_seed(cls, seed: bytes) -> Signer:
        key = nacl.signing.SigningKey(seed)
        return cls(Scheme.ED25519, bytes(key.verify_key), bytes(seed))

    @classmethod
    def dev(cls, name: str) -> Signer:
        """sr25519 signer of a development account (``alice``, ``//Bob``, …). Not secret."""
        from phat_runtime.crypto.accounts import dev_keypair

        keypair = dev_keypair(name)
        return cls.sr25519_from_secret(bytes(keypair.private_key))  # type: ignore[attr-defined]

    def sign(self, message: bytes) -> bytes:
        if self.scheme is Scheme.SR25519:
            return bytes(sr25519.sign((self.public_key, self._secret), message))
        return bytes(nacl.signing.SigningKey(self._secret).sign(message).signature)

    def __repr__(self) -> str:
        return f"Signer({self.scheme.name.lower()}, 0x{self.public_key.hex()})"


def verify(scheme: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is valid; malformed keys or signatures are simply invalid.
    ed25519 follows sp_core (ZIP-215, :func:`~phat_runtime.crypto.signatures.ed25519_verify`)."""
    if scheme == Scheme.SR25519:
        return sr25519_verify(signature, message, public_key)
    if scheme == Scheme.ED25519:
        return ed25519_verify(signature, message, public_key)
    return False
