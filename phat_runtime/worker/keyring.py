"""The cluster keys a chain worker holds, one per key epoch, sealed by its platform.

``<data dir>/cluster-keys.sealed`` (0600) = platform.seal(msgpack {epoch: secret}). A key
arrives in one of three ways (``docs/protocol.md`` "Membership"): the genesis worker generates
epoch 0, the rotation leader generates a later epoch, or a member hands one over sealed to this
worker's ECDH key. A key is kept only once it matches the public halves published on chain
(:func:`public_halves`), and it is written to disk *before* this worker tells anyone about it,
so a crash can never leave a published key that no worker holds.

Holds secrets: nothing here is logged, shown by ``repr`` or put in an error message.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import msgpack

from phat_runtime.crypto.kdf import cluster_ecdh, sr25519_pair_from_seed, sr25519_public
from phat_runtime.errors import SealingError
from phat_runtime.tee.platform import Platform
from phat_runtime.tee.sealing import write_private_file

KEYRING_FILE = "cluster-keys.sealed"


def generate_cluster_key() -> bytes:
    """A new cluster key: an sr25519 secret (64 bytes) from 32 random bytes."""
    return sr25519_pair_from_seed(os.urandom(32))[1]


def public_halves(secret: bytes) -> tuple[bytes, bytes]:
    """(sr25519 public key, X25519 public key) of a cluster key: what ClusterKeyPublished says."""
    return sr25519_public(secret), cluster_ecdh(secret)[1]


class KeyRing:
    """Epoch → cluster key, persisted sealed. Thread-safe."""

    def __init__(self, path: Path, platform: Platform) -> None:
        self.path = path
        self._platform = platform
        self._lock = threading.Lock()
        self._keys: dict[int, bytes] = {}
        if path.exists():
            try:
                raw = msgpack.unpackb(platform.unseal(path.read_bytes()), strict_map_key=False)
                self._keys = {int(e): bytes(s) for e, s in raw.items()}
            except SealingError:
                raise
            except Exception as exc:
                raise SealingError(f"{path}: the sealed cluster keys do not decode ({type(exc).__name__}); "
                                   "restore the file from a backup, or start this worker with a new "
                                   "data dir and let the cluster hand the keys over again") from None

    def __repr__(self) -> str:
        return f"<KeyRing epochs={self.epochs()} (secrets hidden)>"

    def epochs(self) -> list[int]:
        with self._lock:
            return sorted(self._keys)

    def has(self, epoch: int) -> bool:
        with self._lock:
            return epoch in self._keys

    def get(self, epoch: int) -> bytes | None:
        with self._lock:
            return self._keys.get(epoch)

    def all(self) -> dict[int, bytes]:
        with self._lock:
            return dict(self._keys)

    def add(self, epoch: int, secret: bytes) -> None:
        """Keep ``secret`` as the key of ``epoch`` (written sealed before this returns)."""
        with self._lock:
            if self._keys.get(epoch) == secret:
                return
            keys = {**self._keys, epoch: secret}
            write_private_file(self.path, self._platform.seal(msgpack.packb(keys)))
            self._keys = keys
