"""The cluster keys a chain worker holds, one per key epoch, sealed by its platform.

``<data dir>/cluster-keys.sealed`` (0600) = platform.seal(msgpack {"held": {epoch: secret},
"proposed": {epoch: secret}}) (a file of an earlier version — a bare {epoch: secret} map — reads
as held keys). A key arrives in one of three ways (``docs/protocol.md`` "Membership"): the
genesis worker generates epoch 0, a member whose turn it is generates a rotated epoch, or a
member hands one over sealed to this worker's ECDH key.

A key this worker generates is only *proposed* (:meth:`KeyRing.propose`): it is written to
disk before its public halves go on chain, so a crash can never leave a published key that no
worker holds, but it is not *held* — not used for state, payloads or handovers — until the
chain accepted its publication (:meth:`KeyRing.settle`). Another member may publish the same
epoch first (rotation fallbacks race; the first publication wins): then the proposal is
discarded, durably, and the winner's key arrives by handover. A received key is held only once
it matches the public halves published on chain (:func:`public_halves`).

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
    """Epoch → cluster key, persisted sealed: the keys held and this worker's proposals.
    Thread-safe."""

    def __init__(self, path: Path, platform: Platform) -> None:
        self.path = path
        self._platform = platform
        self._lock = threading.Lock()
        self._keys: dict[int, bytes] = {}
        self._proposed: dict[int, bytes] = {}
        if path.exists():
            try:
                raw = msgpack.unpackb(platform.unseal(path.read_bytes()), strict_map_key=False)
                if "held" not in raw:  # an earlier version's file: every key in it is held
                    raw = {"held": raw, "proposed": {}}
                self._keys = {int(e): bytes(s) for e, s in raw["held"].items()}
                self._proposed = {int(e): bytes(s) for e, s in raw["proposed"].items()}
            except SealingError:
                raise
            except Exception as exc:
                raise SealingError(f"{path}: the sealed cluster keys do not decode ({type(exc).__name__}); "
                                   "restore the file from a backup, or start this worker with a new "
                                   "data dir and let the cluster hand the keys over again") from None

    def __repr__(self) -> str:
        return f"<KeyRing epochs={self.epochs()} proposed={self.proposed_epochs()} (secrets hidden)>"

    # --- held keys: published on chain, what state, payloads and handovers use --------------------
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
        """Hold ``secret`` as the key of ``epoch`` — the caller checked it against the published
        public halves (written sealed before this returns; a proposal for the epoch is dropped:
        the chain's key is this one)."""
        with self._lock:
            if self._keys.get(epoch) == secret and epoch not in self._proposed:
                return
            keys = {**self._keys, epoch: secret}
            proposed = {e: s for e, s in self._proposed.items() if e != epoch}
            self._write(keys, proposed)

    # --- proposals: generated here, not (yet) the chain's key -------------------------------------
    def proposed_epochs(self) -> list[int]:
        with self._lock:
            return sorted(self._proposed)

    def proposal(self, epoch: int) -> bytes | None:
        """This worker's proposed key of ``epoch``, if it generated one that is not settled yet."""
        with self._lock:
            return self._proposed.get(epoch)

    def propose(self, epoch: int) -> bytes:
        """This worker's key proposal for ``epoch``: the one generated before (it may be on chain
        already), else a new one, sealed to disk before this returns."""
        with self._lock:
            secret = self._proposed.get(epoch)
            if secret is None:
                if epoch in self._keys:
                    raise ValueError(f"key epoch {epoch} is held already: nothing to propose")
                secret = generate_cluster_key()
                self._write(self._keys, {**self._proposed, epoch: secret})
            return secret

    def settle(self, epoch: int, identity: bytes, ecdh: bytes) -> bytes | None:
        """The chain published ``(identity, ecdh)`` as key epoch ``epoch``. If that is this
        worker's proposal, it becomes held and is returned; otherwise the proposal lost (another
        member published first) and is discarded for good. None when nothing became held."""
        with self._lock:
            secret = self._proposed.get(epoch)
            if secret is None:
                return None
            proposed = {e: s for e, s in self._proposed.items() if e != epoch}
            won = public_halves(secret) == (identity, ecdh) and epoch not in self._keys
            self._write({**self._keys, epoch: secret} if won else self._keys, proposed)
            return secret if won else None

    def _write(self, keys: dict[int, bytes], proposed: dict[int, bytes]) -> None:
        blob = msgpack.packb({"held": keys, "proposed": proposed})
        write_private_file(self.path, self._platform.seal(blob))
        self._keys, self._proposed = keys, proposed
