"""Hash functions used by the seal ABI and the runtime (pure, no I/O)."""

from __future__ import annotations

import hashlib

from Crypto.Hash import keccak


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def blake2_128(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def sha2_256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def keccak_256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()
