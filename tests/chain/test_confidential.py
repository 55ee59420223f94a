"""Sealed boxes of chain messages: Call payloads and handed-over cluster keys open only for the
key, cluster, target, epoch and sender they were made for; the plaintext never shows."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from phat_runtime.chain.confidential import (
    CallPayload,
    SealedBox,
    open_call_payload,
    open_cluster_key,
    seal_call_payload,
    seal_cluster_key,
)
from phat_runtime.chain.protocol import Call, decode_message
from phat_runtime.errors import ProtocolError
from phat_runtime.tee import WorkerIdentity
from tests.chain import vectors

C, K, S = vectors.CLUSTER, vectors.CONTRACT, vectors.OWNER
SECRET_ARG = b"TOP-SECRET-ARGUMENT-BYTES"


def _cluster_key() -> tuple[bytes, bytes]:
    key = X25519PrivateKey.generate()
    return key.private_bytes_raw(), key.public_key().public_bytes_raw()


def test_call_payload_round_trip_and_plaintext_not_on_the_wire() -> None:
    private, public = _cluster_key()
    payload = CallPayload(b"\x63\x3a\xa5\x51" + SECRET_ARG, value=5)
    box = seal_call_payload(payload, cluster_ecdh_public=public, cluster=C, contract=K, epoch=2, sender=S)
    remark = Call(C, K, 2, box, 0).encode()
    assert SECRET_ARG not in remark
    message = decode_message(remark)
    assert isinstance(message, Call)
    opened = open_call_payload(message.sealed_payload, cluster_ecdh_private=private, cluster=C,
                               contract=K, epoch=2, sender=S)
    assert opened == payload


@pytest.mark.parametrize("change", ["cluster", "contract", "epoch", "sender", "key"])
def test_call_payload_is_bound_to_its_context(change: str) -> None:
    private, public = _cluster_key()
    box = seal_call_payload(CallPayload(b"input"), cluster_ecdh_public=public, cluster=C,
                            contract=K, epoch=0, sender=S)
    ctx = {"cluster_ecdh_private": private, "cluster": C, "contract": K, "epoch": 0, "sender": S}
    ctx[{"key": "cluster_ecdh_private"}.get(change, change)] = (
        1 if change == "epoch" else _cluster_key()[0] if change == "key" else bytes(32))
    with pytest.raises(ProtocolError, match="does not open"):
        open_call_payload(box, **ctx)  # type: ignore[arg-type]


def test_tampered_box_does_not_open() -> None:
    private, public = _cluster_key()
    box = seal_call_payload(CallPayload(b"input"), cluster_ecdh_public=public, cluster=C,
                            contract=K, epoch=0, sender=S)
    flipped = bytearray(box.ciphertext)
    flipped[0] ^= 1
    with pytest.raises(ProtocolError, match="does not open"):
        open_call_payload(SealedBox(box.ephemeral, box.nonce, bytes(flipped)),
                          cluster_ecdh_private=private, cluster=C, contract=K, epoch=0, sender=S)


def test_vector_call_opens_with_the_vector_cluster_key() -> None:
    message = vectors.messages()["call"]
    assert isinstance(message, Call)
    opened = open_call_payload(message.sealed_payload, cluster_ecdh_private=vectors.CLUSTER_ECDH_PRIVATE,
                               cluster=C, contract=K, epoch=0, sender=S)
    assert opened == CallPayload(bytes.fromhex("633aa55101"), value=7)


def test_cluster_key_handover_to_a_worker_identity() -> None:
    worker = WorkerIdentity.from_seed(bytes(range(32)))
    assert worker.ecdh_public_key == vectors.WORKER_ECDH
    secret = bytes(range(64))
    box = seal_cluster_key(secret, worker_ecdh_public=worker.ecdh_public_key, cluster=C,
                           to_worker=worker.public_key, epoch=4, sender=S)
    assert secret not in box.ciphertext
    assert open_cluster_key(box, worker_ecdh_private=worker.ecdh_private_bytes(), cluster=C,
                            to_worker=worker.public_key, epoch=4, sender=S) == secret
    with pytest.raises(ProtocolError, match="does not open"):  # another epoch
        open_cluster_key(box, worker_ecdh_private=worker.ecdh_private_bytes(), cluster=C,
                         to_worker=worker.public_key, epoch=5, sender=S)
    # the committed vector opens with the vector worker's key
    handover = vectors.messages()["key_handover"]
    opened = open_cluster_key(handover.sealed_key, worker_ecdh_private=worker.ecdh_private_bytes(),  # type: ignore[attr-defined]
                              cluster=C, to_worker=vectors.WORKER, epoch=3, sender=S)
    assert opened == secret


def test_bad_keys_and_sizes_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="invalid"):
        seal_call_payload(CallPayload(b"x"), cluster_ecdh_public=bytes(32), cluster=C, contract=K,
                          epoch=0, sender=S)  # the all-zero point has low order
    with pytest.raises(ProtocolError, match="1–128 bytes"):
        seal_cluster_key(b"", worker_ecdh_public=vectors.WORKER_ECDH, cluster=C, to_worker=K, epoch=0, sender=S)
    with pytest.raises(ProtocolError, match="sender must be 32 bytes"):
        seal_call_payload(CallPayload(b"x"), cluster_ecdh_public=vectors.WORKER_ECDH, cluster=C,
                          contract=K, epoch=0, sender=b"short")
    with pytest.raises(ProtocolError, match="trailing|malformed"):
        CallPayload.decode(CallPayload(b"x").encode() + b"\x00")


def test_repr_never_shows_payload_bytes() -> None:
    payload = CallPayload(SECRET_ARG, 1)
    assert SECRET_ARG.decode() not in repr(payload)
    box = seal_call_payload(payload, cluster_ecdh_public=vectors.WORKER_ECDH, cluster=C, contract=K,
                            epoch=0, sender=S)
    assert box.ciphertext.hex() not in repr(box)
