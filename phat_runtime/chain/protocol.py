"""Chain protocol messages (v1): what rides in a ``system.remark_with_event``.

Owns: the message dataclasses of the cluster protocol and their wire format

    remark = b"phat" ‖ version (0x01) ‖ SCALE(Message)

where ``Message`` is a SCALE enum whose variant index is the class's ``INDEX`` and whose fields
are encoded in declaration order (``docs/protocol.md`` "Chain messages" lists every byte).
:func:`decode_message` refuses an unknown version or variant, trailing bytes, a non-canonical
compact length and any field over its limit with :class:`ProtocolError`, whose text is the
reason a worker records. Must not: touch the network, validate messages against state (that
is the worker's job: who may send what, whether a cluster exists).

Remarks that do not start with ``b"phat"`` are not ours: :func:`is_protocol_remark` says so
and the chain reader drops them before decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, ClassVar, get_type_hints

from phat_runtime.chain.confidential import MAX_CLUSTER_KEY_LEN, MAX_INPUT_LEN, TAG_LEN, SealedBox
from phat_runtime.chain.wire import (
    ID,
    U32,
    U64,
    U128,
    Blob,
    Box,
    Codec,
    Maybe,
    PlatformCode,
    PolicyField,
    Text,
)
from phat_runtime.codec.scale import Reader, ScaleError, Writer
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import ProtocolError
from phat_runtime.tee.policy import Policy

MAGIC = b"phat"
VERSION = 1
#: Largest remark we produce or accept (a 2 MiB contract plus its metadata fits).
MAX_REMARK_LEN = 4 * 1024 * 1024
MAX_CODE_LEN = 2 * 1024 * 1024  # = the runtime's code limit
MAX_METADATA_LEN = 1024 * 1024
MAX_SALT_LEN = 256
MAX_QUOTE_LEN = 64 * 1024
MAX_COLLATERAL_LEN = 256 * 1024
MAX_URL_LEN = 512
MAX_CLUSTER_SALT_LEN = 32
CLUSTER_ID_DOMAIN = b"phat_runtime/cluster-id/v1"


def cluster_id(owner: bytes, salt: bytes) -> bytes:
    """The id of the cluster ``owner`` creates with ``salt``:
    blake2_256(b"phat_runtime/cluster-id/v1" ‖ owner ‖ salt). Known before CreateCluster lands."""
    if len(owner) != 32:
        raise ProtocolError("owner must be a 32-byte account id")
    return blake2_256(CLUSTER_ID_DOMAIN + owner + salt)


# --- messages --------------------------------------------------------------------------------


class Message:
    """Base of every protocol message. ``INDEX`` is the SCALE enum variant."""

    INDEX: ClassVar[int]

    def encode(self) -> bytes:
        """The full remark: ``b"phat" ‖ version ‖ SCALE(self)``."""
        return encode_message(self)

    def __repr__(self) -> str:
        parts = []
        for name, _codec in _LAYOUTS[type(self)]:
            value = getattr(self, name)
            if isinstance(value, bytes):
                value = f"0x{value.hex()}" if len(value) <= 32 else f"<{len(value)} bytes>"
            elif isinstance(value, SealedBox):
                value = f"<sealed, {len(value.ciphertext)} bytes>"
            parts.append(f"{name}={value}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _layout(cls: type[Message]) -> tuple[tuple[str, Codec], ...]:
    """(field name, wire codec) in declaration order, from the ``Annotated`` hints."""
    hints = get_type_hints(cls, include_extras=True)
    return tuple((f.name, hints[f.name].__metadata__[0]) for f in fields(cls))  # type: ignore[arg-type]


@dataclass(frozen=True, repr=False)
class CreateCluster(Message):
    """Origin (any account) becomes the owner of cluster ``cluster_id(origin, salt)``; the named
    worker, once registered and passing ``policy``, generates the first cluster key."""

    INDEX: ClassVar[int] = 0
    salt: Annotated[bytes, Blob(MAX_CLUSTER_SALT_LEN)]
    policy: Annotated[Policy, PolicyField()]
    genesis_worker: Annotated[bytes, ID]


@dataclass(frozen=True, repr=False)
class UpdatePolicy(Message):
    """Owner only: the cluster's attestation policy from now on."""

    INDEX: ClassVar[int] = 1
    cluster: Annotated[bytes, ID]
    policy: Annotated[Policy, PolicyField()]


@dataclass(frozen=True, repr=False)
class RegisterWorker(Message):
    """Origin must be ``identity``: the worker asks to join ``cluster``. ``quote`` (its report
    data binds ``identity`` and ``ecdh``) and ``collateral`` (dcap-qvl JSON; empty for the
    simulated platform) are verified by every worker at the block's timestamp."""

    INDEX: ClassVar[int] = 2
    cluster: Annotated[bytes, ID]
    identity: Annotated[bytes, ID]
    ecdh: Annotated[bytes, ID]
    platform: Annotated[str, PlatformCode()]
    quote: Annotated[bytes, Blob(MAX_QUOTE_LEN)]
    collateral: Annotated[bytes, Blob(MAX_COLLATERAL_LEN)]
    rpc_url: Annotated[str, Text(MAX_URL_LEN)]


@dataclass(frozen=True, repr=False)
class KeyHandover(Message):
    """A member worker gives the cluster key of ``epoch`` to a registered, policy-passing
    worker, sealed to its ECDH key (:func:`~phat_runtime.chain.confidential.seal_cluster_key`)."""

    INDEX: ClassVar[int] = 3
    cluster: Annotated[bytes, ID]
    to_worker: Annotated[bytes, ID]
    epoch: Annotated[int, U32]
    sealed_key: Annotated[SealedBox, Box(MAX_CLUSTER_KEY_LEN + TAG_LEN)]


@dataclass(frozen=True, repr=False)
class ClusterKeyPublished(Message):
    """A member worker publishes the public halves of the cluster key of ``epoch``: ``identity``
    (sr25519, signatures) and ``ecdh`` (X25519, what Call payloads are sealed to)."""

    INDEX: ClassVar[int] = 4
    cluster: Annotated[bytes, ID]
    epoch: Annotated[int, U32]
    identity: Annotated[bytes, ID]
    ecdh: Annotated[bytes, ID]


@dataclass(frozen=True, repr=False)
class RotateClusterKey(Message):
    """Owner only: start the next key epoch; it goes to every non-revoked member."""

    INDEX: ClassVar[int] = 5
    cluster: Annotated[bytes, ID]


@dataclass(frozen=True, repr=False)
class RevokeWorker(Message):
    """Owner only: ``worker`` gets no later key epoch and its receipts are refused."""

    INDEX: ClassVar[int] = 6
    cluster: Annotated[bytes, ID]
    worker: Annotated[bytes, ID]


@dataclass(frozen=True, repr=False)
class UploadCode(Message):
    """Any account: store ``wasm`` (and optional ink! metadata JSON) in the cluster."""

    INDEX: ClassVar[int] = 7
    cluster: Annotated[bytes, ID]
    wasm: Annotated[bytes, Blob(MAX_CODE_LEN)]
    metadata: Annotated[bytes | None, Maybe(Blob(MAX_METADATA_LEN))]


@dataclass(frozen=True, repr=False)
class Instantiate(Message):
    """Any account (becomes deployer and caller): run the constructor ``input`` of
    ``code_hash`` in TRANSACTION mode. ``gas_limit`` 0 = the worker's default."""

    INDEX: ClassVar[int] = 8
    cluster: Annotated[bytes, ID]
    code_hash: Annotated[bytes, ID]
    salt: Annotated[bytes, Blob(MAX_SALT_LEN)]
    input: Annotated[bytes, Blob(MAX_INPUT_LEN)]
    value: Annotated[int, U128]
    gas_limit: Annotated[int, U64]


@dataclass(frozen=True, repr=False)
class Call(Message):
    """Any account (becomes caller): call ``contract`` in TRANSACTION mode with the
    :class:`~phat_runtime.chain.confidential.CallPayload` sealed to the cluster key of
    ``epoch`` (:func:`~phat_runtime.chain.confidential.seal_call_payload`)."""

    INDEX: ClassVar[int] = 9
    cluster: Annotated[bytes, ID]
    contract: Annotated[bytes, ID]
    epoch: Annotated[int, U32]
    sealed_payload: Annotated[SealedBox, Box(MAX_INPUT_LEN + 64)]
    gas_limit: Annotated[int, U64]


@dataclass(frozen=True, repr=False)
class CheckpointPublished(Message):
    """A member worker's state root after applying chain block ``block`` (the design's
    Checkpoint): divergence between workers is visible on chain."""

    INDEX: ClassVar[int] = 10
    cluster: Annotated[bytes, ID]
    block: Annotated[int, U64]
    state_root: Annotated[bytes, ID]


MESSAGE_TYPES: tuple[type[Message], ...] = (
    CreateCluster, UpdatePolicy, RegisterWorker, KeyHandover, ClusterKeyPublished,
    RotateClusterKey, RevokeWorker, UploadCode, Instantiate, Call, CheckpointPublished,
)
_BY_INDEX = {cls.INDEX: cls for cls in MESSAGE_TYPES}
_LAYOUTS = {cls: _layout(cls) for cls in MESSAGE_TYPES}


def is_protocol_remark(remark: bytes) -> bool:
    """True if the remark claims to be ours (starts with ``b"phat"``); others are ignored."""
    return remark[: len(MAGIC)] == MAGIC


def encode_message(message: Message) -> bytes:
    """``b"phat" ‖ version ‖ SCALE(message)``; :class:`ProtocolError` names a bad field."""
    cls = type(message)
    if _BY_INDEX.get(getattr(cls, "INDEX", -1)) is not cls:
        raise ProtocolError(f"{cls.__name__} is not a protocol message")
    w = Writer().raw(MAGIC).u8(VERSION).u8(cls.INDEX)
    for name, codec in _LAYOUTS[cls]:
        codec.write(w, getattr(message, name), f"{cls.__name__}.{name}")
    out = w.finish()
    if len(out) > MAX_REMARK_LEN:
        raise ProtocolError(f"the message is {len(out)} bytes, the limit is {MAX_REMARK_LEN}")
    return out


def decode_message(remark: bytes) -> Message:
    """The message in a remark. :class:`ProtocolError` (the rejection reason) if it is not one."""
    if not is_protocol_remark(remark):
        raise ProtocolError("not a phat protocol remark (does not start with b'phat')")
    if len(remark) > MAX_REMARK_LEN:
        raise ProtocolError(f"the message is {len(remark)} bytes, the limit is {MAX_REMARK_LEN}")
    r = Reader(remark)
    r.pos = len(MAGIC)
    try:
        version = r.u8()
        if version != VERSION:
            raise ProtocolError(f"unsupported protocol version {version} (this worker reads {VERSION})")
        index = r.u8()
        cls = _BY_INDEX.get(index)
        if cls is None:
            raise ProtocolError(f"unknown message variant {index}")
        values = {name: codec.read(r, f"{cls.__name__}.{name}") for name, codec in _LAYOUTS[cls]}
        r.end()
    except ScaleError as exc:
        raise ProtocolError(f"malformed message: {exc}") from exc
    return cls(**values)
