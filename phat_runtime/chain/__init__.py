"""The chain: protocol message codec, Substrate node client, and the local devnet.

Owns: the wire format of chain messages (``b"phat" ‖ version ‖ SCALE``, docs/protocol.md),
the sealed boxes of their confidential parts, reading finalized blocks and submitting
messages over substrate-interface (the only user of its network side), and running a real
Substrate runtime under chopsticks for development. Must not: import ``runtime/`` (the worker
joins chain and runtime); apply anything (a ``ChainSource`` in ``worker/`` feeds the block
pipeline from :meth:`ChainNode.follow`).

Public surface::

    Message and its variants, encode_message, decode_message,      protocol.py
      is_protocol_remark, cluster_id, MESSAGE_TYPES
    SealedBox, CallPayload, seal_/open_call_payload,               confidential.py
      seal_/open_cluster_key
    encode_policy, decode_policy                                    policy_codec.py
    ChainBlock, Remark                                              blocks.py
    Membership, Member, EpochKey, MembershipEvent                   membership.py
    ChainNode, ChainSigner, Inclusion                               node.py, submit.py
    Devnet, free_port                                               devnet.py
"""

from __future__ import annotations

from phat_runtime.chain.blocks import ChainBlock, Remark
from phat_runtime.chain.confidential import (
    CallPayload,
    SealedBox,
    open_call_payload,
    open_cluster_key,
    seal_call_payload,
    seal_cluster_key,
)
from phat_runtime.chain.devnet import Devnet, free_port
from phat_runtime.chain.membership import EpochKey, Member, Membership, MembershipEvent
from phat_runtime.chain.node import ChainNode
from phat_runtime.chain.policy_codec import decode_policy, encode_policy
from phat_runtime.chain.protocol import (
    MESSAGE_TYPES,
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
    cluster_id,
    decode_message,
    encode_message,
    is_protocol_remark,
)
from phat_runtime.chain.submit import ChainSigner, Inclusion

__all__ = [
    "MESSAGE_TYPES",
    "Call",
    "CallPayload",
    "ChainBlock",
    "ChainNode",
    "ChainSigner",
    "CheckpointPublished",
    "ClusterKeyPublished",
    "CreateCluster",
    "Devnet",
    "EpochKey",
    "Inclusion",
    "Instantiate",
    "KeyHandover",
    "Member",
    "Membership",
    "MembershipEvent",
    "Message",
    "RegisterWorker",
    "Remark",
    "RevokeWorker",
    "RotateClusterKey",
    "SealedBox",
    "UpdatePolicy",
    "UploadCode",
    "cluster_id",
    "decode_message",
    "decode_policy",
    "encode_message",
    "encode_policy",
    "free_port",
    "is_protocol_remark",
    "open_call_payload",
    "open_cluster_key",
    "seal_call_payload",
    "seal_cluster_key",
]
