"""ink! selectors and the hashes behind them.

Owns: ``blake2_256`` and the default selector rule (first 4 bytes of blake2b-256 of the label).
Must not: do I/O, or guess selectors when metadata is available — the metadata's selector is
authoritative (namespaces and ``#[ink(selector = ..)]`` overrides change it).
"""

from __future__ import annotations

import hashlib

SELECTOR_LEN = 4
HASH_LEN = 32


def blake2_256(data: bytes) -> bytes:
    """blake2b with a 32-byte digest (Substrate's ``blake2_256``; the code hash of a wasm)."""
    return hashlib.blake2b(data, digest_size=HASH_LEN).digest()


def selector_of(label: str) -> bytes:
    """The default ink! selector of a constructor or message label (``flip`` → ``633aa551``).

    Trait messages use the full ``Trait::method`` label.
    """
    return blake2_256(label.encode("utf-8"))[:SELECTOR_LEN]
