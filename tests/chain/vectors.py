"""Inputs of the committed protocol vectors (``protocol_vectors.json``, docs/protocol.md).

Every message is built from fixed bytes; sealed boxes use a fixed ephemeral key and nonce
(through the private ``_seal``, which exists for exactly this). Regenerate the JSON only for a
deliberate format change (new protocol version): ``python -m tests.chain.vectors``.
"""

from __future__ import annotations

import json
from pathlib import Path

from phat_runtime.chain import confidential
from phat_runtime.chain.confidential import CALL_PURPOSE, KEY_PURPOSE, CallPayload, SealedBox
from phat_runtime.chain.protocol import (
    Call,
    CheckpointPublished,
    ClusterKeyPublished,
    CreateCluster,
    Instantiate,
    KeyHandover,
    Message,
    RegisterWorker,
    RevokeWorker,
    RotateClusterKey,
    UpdatePolicy,
    UploadCode,
)
from phat_runtime.tee.policy import Policy, SgxRules, SimulatedRules, TdxRules

FILE = Path(__file__).with_name("protocol_vectors.json")

OWNER = bytes.fromhex("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")  # //Alice
CLUSTER = bytes([0x11]) * 32
WORKER = bytes([0x22]) * 32
WORKER_ECDH = bytes.fromhex("19334afe458e92a88d47f624e66bd406e06334f4c2d364535302215ffa8f5a0e")
CONTRACT = bytes([0x33]) * 32
CODE_HASH = bytes([0x44]) * 32
#: X25519 private key of the cluster (epoch 0) in the vectors; its public key seals calls.
CLUSTER_ECDH_PRIVATE = bytes(range(32, 64))
EPHEMERAL_PRIVATE = bytes(range(64, 96))
NONCE = bytes(range(12))

POLICY = Policy(
    platforms=frozenset({"sgx", "tdx", "simulated"}),
    tcb_statuses=frozenset({"UpToDate", "SWHardeningNeeded"}),
    advisories=frozenset({"INTEL-SA-00615", "INTEL-SA-00334"}),
    max_collateral_age_secs=604800,
    require_report_data=True,
    allow_debug=False,
    sgx=SgxRules(mr_enclave=frozenset({bytes([0x5A]) * 32}), isv_prod_id=0, min_isv_svn=2),
    tdx=TdxRules(mr_td=frozenset({bytes([0x6B]) * 48}), rtmr3=frozenset({bytes([0x01]) * 48, bytes([0x02]) * 48})),
    simulated=SimulatedRules(measurement=frozenset({bytes([0x90]) * 32})),
)


def cluster_ecdh_public() -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.from_private_bytes(CLUSTER_ECDH_PRIVATE).public_key().public_bytes_raw()


def sealed_call() -> SealedBox:
    payload = CallPayload(bytes.fromhex("633aa551") + b"\x01", value=7)  # flip(true)-like input
    ad = confidential._ad(CALL_PURPOSE, CLUSTER, CONTRACT, 0, OWNER)
    return confidential._seal(CALL_PURPOSE, payload.encode(), cluster_ecdh_public(), ad,
                              EPHEMERAL_PRIVATE, NONCE)


def sealed_key() -> SealedBox:
    ad = confidential._ad(KEY_PURPOSE, CLUSTER, WORKER, 3, OWNER)
    return confidential._seal(KEY_PURPOSE, bytes(range(64)), WORKER_ECDH, ad, EPHEMERAL_PRIVATE, NONCE)


def messages() -> dict[str, Message]:
    return {
        "create_cluster_default_policy": CreateCluster(b"", Policy(), WORKER),
        "create_cluster": CreateCluster(b"dev", POLICY, WORKER),
        "update_policy": UpdatePolicy(CLUSTER, Policy(platforms=frozenset({"simulated"}),
                                                      advisories=None, max_collateral_age_secs=None)),
        "register_worker": RegisterWorker(CLUSTER, WORKER, WORKER_ECDH, "simulated", b"PHATSIMQ\x01",
                                          b"", "http://127.0.0.1:8000"),
        "key_handover": KeyHandover(CLUSTER, WORKER, 3, sealed_key()),
        "cluster_key_published": ClusterKeyPublished(CLUSTER, 0, WORKER, cluster_ecdh_public()),
        "rotate_cluster_key": RotateClusterKey(CLUSTER),
        "revoke_worker": RevokeWorker(CLUSTER, WORKER),
        "upload_code": UploadCode(CLUSTER, b"\x00asm\x01\x00\x00\x00", b'{"spec":{}}'),
        "upload_code_no_metadata": UploadCode(CLUSTER, b"\x00asm\x01\x00\x00\x00", None),
        "instantiate": Instantiate(CLUSTER, CODE_HASH, b"salt", bytes.fromhex("9bae9d5e01"), 10**12, 0),
        "call": Call(CLUSTER, CONTRACT, 0, sealed_call(), 5_000_000_000),
        "checkpoint": CheckpointPublished(CLUSTER, 1234, bytes([0x77]) * 32),
    }


if __name__ == "__main__":
    FILE.write_text(json.dumps({k: m.encode().hex() for k, m in messages().items()}, indent=2) + "\n")
    print(f"wrote {FILE}")
