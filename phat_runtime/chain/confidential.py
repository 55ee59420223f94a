"""The encrypted parts of chain messages: Call payloads and handed-over cluster keys (v1).

Everything on chain is public, so what only workers may read travels in a :class:`SealedBox`
(``docs/protocol.md`` "Sealed boxes"): the sender makes an ephemeral X25519 key, and

    shared = X25519(ephemeral_private, recipient_public)
    key    = HKDF-SHA256(ikm=shared, salt=b"phat_runtime/chain-box/v1",
                         info=purpose ‖ ephemeral_public ‖ recipient_public)   (32 bytes)
    box    = ChaCha20-Poly1305(key, nonce, plaintext, ad)

with associated data ``purpose ‖ cluster ‖ target ‖ epoch (u32 LE) ‖ sender``: a box opens
only for the cluster, target (contract or receiving worker), key epoch and extrinsic signer it
was made for, so nobody can copy someone else's encrypted call into their own extrinsic.

* Call payloads are sealed to the cluster's ECDH public key of ``epoch`` (ClusterKeyPublished);
  the plaintext is ``CallPayload`` = SCALE(input: Vec<u8>, value: u128).
* Cluster keys are sealed to the receiving worker's ECDH public key (RegisterWorker).

Pure functions; no I/O. Secrets never appear in exceptions or reprs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from phat_runtime.codec.scale import Reader, ScaleError, Writer
from phat_runtime.crypto.kdf import hkdf_sha256
from phat_runtime.errors import ProtocolError

BOX_SALT = b"phat_runtime/chain-box/v1"
CALL_PURPOSE = b"phat_runtime/call-payload/v1"
KEY_PURPOSE = b"phat_runtime/key-handover/v1"
NONCE_LEN = 12
KEY_LEN = 32
TAG_LEN = 16
#: Largest contract input (selector + args) a Call or Instantiate carries.
MAX_INPUT_LEN = 1024 * 1024
#: Largest cluster key a KeyHandover carries (an sr25519 secret is 64 bytes).
MAX_CLUSTER_KEY_LEN = 128


@dataclass(frozen=True)
class SealedBox:
    """``ephemeral`` X25519 public key (32), ``nonce`` (12), ``ciphertext`` (plaintext ‖ tag)."""

    ephemeral: bytes
    nonce: bytes
    ciphertext: bytes = field(repr=False)


@dataclass(frozen=True)
class CallPayload:
    """What a Call's box holds: the ink! input (selector ‖ SCALE args) and the value sent."""

    input: bytes = field(repr=False)
    value: int = 0

    def encode(self) -> bytes:
        if len(self.input) > MAX_INPUT_LEN:
            raise ProtocolError(f"call input is {len(self.input)} bytes, the limit is {MAX_INPUT_LEN}")
        if not 0 <= self.value < 1 << 128:
            raise ProtocolError("call value must fit in a u128")
        return Writer().blob(self.input).u128(self.value).finish()

    @classmethod
    def decode(cls, data: bytes) -> CallPayload:
        r = Reader(data)
        try:
            n = r.compact()
            if n > MAX_INPUT_LEN:
                raise ProtocolError(f"call input is {n} bytes, the limit is {MAX_INPUT_LEN}")
            payload = cls(r.take(n, "call input"), r.u128())
            r.end()
        except ScaleError as exc:
            raise ProtocolError(f"the opened call payload is malformed: {exc}") from exc
        return payload


def seal_call_payload(payload: CallPayload, *, cluster_ecdh_public: bytes, cluster: bytes,
                      contract: bytes, epoch: int, sender: bytes) -> SealedBox:
    """Encrypt a call's payload to the cluster key of ``epoch``; ``sender`` signs the extrinsic."""
    ad = _ad(CALL_PURPOSE, cluster, contract, epoch, sender)
    return _seal(CALL_PURPOSE, payload.encode(), cluster_ecdh_public, ad,
                 os.urandom(KEY_LEN), os.urandom(NONCE_LEN))


def open_call_payload(box: SealedBox, *, cluster_ecdh_private: bytes, cluster: bytes,
                      contract: bytes, epoch: int, sender: bytes) -> CallPayload:
    """Decrypt a Call's payload; :class:`ProtocolError` if it was not sealed for exactly this
    cluster key, cluster, contract, epoch and sender, or was altered."""
    ad = _ad(CALL_PURPOSE, cluster, contract, epoch, sender)
    return CallPayload.decode(_open(CALL_PURPOSE, box, cluster_ecdh_private, ad))


def seal_cluster_key(cluster_key: bytes, *, worker_ecdh_public: bytes, cluster: bytes,
                     to_worker: bytes, epoch: int, sender: bytes) -> SealedBox:
    """Encrypt the cluster key of ``epoch`` to a registered worker's ECDH key (KeyHandover)."""
    if not 0 < len(cluster_key) <= MAX_CLUSTER_KEY_LEN:
        raise ProtocolError(f"a cluster key is 1–{MAX_CLUSTER_KEY_LEN} bytes")
    ad = _ad(KEY_PURPOSE, cluster, to_worker, epoch, sender)
    return _seal(KEY_PURPOSE, cluster_key, worker_ecdh_public, ad,
                 os.urandom(KEY_LEN), os.urandom(NONCE_LEN))


def open_cluster_key(box: SealedBox, *, worker_ecdh_private: bytes, cluster: bytes,
                     to_worker: bytes, epoch: int, sender: bytes) -> bytes:
    """Decrypt a handed-over cluster key (the receiving worker's side)."""
    return _open(KEY_PURPOSE, box, worker_ecdh_private, _ad(KEY_PURPOSE, cluster, to_worker, epoch, sender))


# --- the box ---------------------------------------------------------------------------------


def _ad(purpose: bytes, cluster: bytes, target: bytes, epoch: int, sender: bytes) -> bytes:
    for value, what in ((cluster, "cluster"), (target, "target"), (sender, "sender")):
        if len(value) != 32:
            raise ProtocolError(f"{what} must be 32 bytes, got {len(value)}")
    if not 0 <= epoch <= 0xFFFF_FFFF:
        raise ProtocolError("key epoch must fit in a u32")
    return purpose + cluster + target + epoch.to_bytes(4, "little") + sender


def _box_key(purpose: bytes, shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return hkdf_sha256(shared, purpose + ephemeral + recipient, salt=BOX_SALT, length=KEY_LEN)


def _seal(purpose: bytes, plaintext: bytes, recipient: bytes, ad: bytes,
          ephemeral_private: bytes, nonce: bytes) -> SealedBox:
    """The sealing itself, with the randomness as parameters (tests pin vectors with it)."""
    eph = X25519PrivateKey.from_private_bytes(ephemeral_private)
    ephemeral = eph.public_key().public_bytes_raw()
    try:
        shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient))
    except ValueError:
        raise ProtocolError("the recipient's ECDH public key is invalid (low order or not 32 bytes)") from None
    key = _box_key(purpose, shared, ephemeral, recipient)
    return SealedBox(ephemeral, nonce, ChaCha20Poly1305(key).encrypt(nonce, plaintext, ad))


def _open(purpose: bytes, box: SealedBox, private: bytes, ad: bytes) -> bytes:
    if len(box.ephemeral) != 32 or len(box.nonce) != NONCE_LEN:
        raise ProtocolError("sealed box has a malformed ephemeral key or nonce")
    own = X25519PrivateKey.from_private_bytes(private)
    try:
        shared = own.exchange(X25519PublicKey.from_public_bytes(box.ephemeral))
    except ValueError:
        raise ProtocolError("sealed box carries an invalid ephemeral key (low order)") from None
    key = _box_key(purpose, shared, box.ephemeral, own.public_key().public_bytes_raw())
    try:
        return ChaCha20Poly1305(key).decrypt(box.nonce, box.ciphertext, ad)
    except InvalidTag:
        raise ProtocolError("sealed payload does not open: not sealed to this key, or sealed for "
                            "another cluster, target, key epoch or sender, or altered") from None
