"""Protocol messages between clients and workers: signed requests, outcomes, signed receipts.

Everything signed or hashed is SCALE-encoded with a fixed field order (``codec.scale``), so
two implementations agree byte for byte; see ``docs/rpc.md`` for the layouts. Pure module:
importable without wasmtime (the client uses it).

- :class:`SignedRequest` — a query, a transaction (upload / instantiate / call) or a log read,
  signed by its origin (sr25519 or ed25519); the signer becomes the contract's ``caller``.
- :class:`Outcome` — what an execution produced (flags, data, gas, events, debug, error).
- :class:`Receipt` — signed by the worker identity: which request, which output, which
  contract and code, at which block and state root, when.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Protocol

from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.crypto.signer import Scheme, Signer, verify

PROTOCOL_VERSION = 1
REQUEST_DOMAIN = b"phat_runtime/request/v1"
RECEIPT_DOMAIN = b"phat_runtime/receipt/v1"


class SignsBytes(Protocol):
    def sign(self, message: bytes) -> bytes: ...


class RequestKind(enum.IntEnum):
    QUERY = 0
    UPLOAD = 1
    INSTANTIATE = 2
    CALL = 3
    LOGS = 4  # read a contract's log records (deployer only); never a transaction
    RESULT = 5  # read the outcome of one's own chain transaction (its sender only)

    @property
    def is_transaction(self) -> bool:
        return self in (RequestKind.UPLOAD, RequestKind.INSTANTIATE, RequestKind.CALL)


@dataclass(frozen=True)
class SignedRequest:
    """A request to one worker. ``payload`` is the ink! input (selector ‖ args) for QUERY,
    CALL and INSTANTIATE, SCALE ``(wasm, metadata)`` for UPLOAD, :func:`encode_logs_query`
    for LOGS (``contract`` = the contract whose logs are read)."""

    kind: RequestKind
    worker: bytes  # identity public key of the worker it is meant for
    contract: bytes  # QUERY / CALL target; zero otherwise
    code_hash: bytes  # INSTANTIATE code; zero otherwise
    payload: bytes
    salt: bytes
    value: int
    gas_limit: int  # 0 = the worker's default
    nonce: bytes  # 32 random bytes; each (origin, nonce) is accepted once
    deadline_ms: int  # unix ms after which the worker refuses the request
    scheme: Scheme
    origin: bytes  # public key = AccountId of the signer
    signature: bytes = field(default=b"", repr=False)

    def _fields(self, w: Writer) -> Writer:
        return (
            w.u8(PROTOCOL_VERSION).u8(self.kind).raw(_b32(self.worker, "worker"))
            .raw(_b32(self.contract, "contract")).raw(_b32(self.code_hash, "code_hash"))
            .blob(self.payload).blob(self.salt).u128(self.value).u64(self.gas_limit)
            .raw(_b32(self.nonce, "nonce")).u64(self.deadline_ms).u8(self.scheme)
            .raw(_b32(self.origin, "origin"))
        )  # fmt: skip

    def signing_bytes(self) -> bytes:
        return REQUEST_DOMAIN + self._fields(Writer()).finish()

    @property
    def request_hash(self) -> bytes:
        return blake2_256(self.signing_bytes())

    def signed_by(self, signer: Signer) -> SignedRequest:
        unsigned = replace(self, scheme=signer.scheme, origin=signer.public_key, signature=b"")
        return replace(unsigned, signature=signer.sign(unsigned.signing_bytes()))

    def signature_valid(self) -> bool:
        return verify(self.scheme, self.origin, self.signing_bytes(), self.signature)

    def encode(self) -> bytes:
        return self._fields(Writer()).blob(self.signature).finish()

    @staticmethod
    def decode(data: bytes) -> SignedRequest:
        r = Reader(data)
        version = r.u8()
        if version != PROTOCOL_VERSION:
            from phat_runtime.codec.scale import ScaleError

            raise ScaleError(f"request version {version}, this worker speaks {PROTOCOL_VERSION}")
        kind = RequestKind(r.u8())
        req = SignedRequest(
            kind, r.array(32), r.array(32), r.array(32), r.blob(), r.blob(), r.u128(), r.u64(),
            r.array(32), r.u64(), Scheme(r.u8()), r.array(32), r.blob(),
        )  # fmt: skip
        r.end()
        return req


def encode_logs_query(since: int, limit: int) -> bytes:
    """LOGS payload: SCALE ``(since: u64, limit: u32)`` — records with sequence > ``since``."""
    return Writer().u64(since).u32(limit).finish()


def encode_result_query(block: int, extrinsic: int, position: int) -> bytes:
    """RESULT payload: SCALE ``(block: u64, extrinsic: u32, position: u32)`` — the chain
    transaction at that place (``position``: its remark's index inside the extrinsic)."""
    return Writer().u64(block).u32(extrinsic).u32(position).finish()


def decode_result_query(payload: bytes) -> tuple[int, int, int]:
    r = Reader(payload)
    block, extrinsic, position = r.u64(), r.u32(), r.u32()
    r.end()
    return block, extrinsic, position


def decode_logs_query(payload: bytes) -> tuple[int, int]:
    r = Reader(payload)
    since, limit = r.u64(), r.u32()
    r.end()
    return since, limit


@dataclass(frozen=True)
class EventRecord:
    contract: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class Outcome:
    """An execution's result as the client sees it (and as the receipt's output hash covers)."""

    flags: int
    data: bytes
    gas_used: int
    events: tuple[EventRecord, ...] = ()
    debug_message: str = ""
    error_kind: str | None = None
    error_message: str | None = None
    contract: bytes | None = None  # callee, or the new contract of an instantiate
    code_hash: bytes | None = None  # the code that ran (or was uploaded)

    @property
    def success(self) -> bool:
        return self.error_kind is None and not self.flags & 1

    @property
    def reverted(self) -> bool:
        return self.error_kind is None and bool(self.flags & 1)

    def encode(self) -> bytes:
        w = Writer().u32(self.flags).blob(self.data).u64(self.gas_used)
        w.vec(list(self.events), _write_event).string(self.debug_message)
        w.option(self.error_kind, Writer.string).option(self.error_message, Writer.string)
        w.option(self.contract, Writer.raw).option(self.code_hash, Writer.raw)
        return w.finish()

    @staticmethod
    def decode(data: bytes) -> Outcome:
        r = Reader(data)
        out = Outcome(
            r.u32(), r.blob(), r.u64(), tuple(r.vec(_read_event)), r.string(),
            r.option(Reader.string), r.option(Reader.string),
            r.option(lambda x: x.array(32)), r.option(lambda x: x.array(32)),
        )  # fmt: skip
        r.end()
        return out

    @property
    def output_hash(self) -> bytes:
        """What a receipt commits to: flags, data, events and the error kind (not gas, debug
        text or error wording, which may differ between workers)."""
        w = Writer().u32(self.flags).blob(self.data).vec(list(self.events), _write_event)
        w.option(self.error_kind, Writer.string)
        return blake2_256(w.finish())


def _write_event(w: Writer, e: EventRecord) -> None:
    w.raw(_b32(e.contract, "event contract")).vec(list(e.topics), lambda w2, t: w2.raw(_b32(t, "topic")))
    w.blob(e.data)


def _read_event(r: Reader) -> EventRecord:
    return EventRecord(r.array(32), tuple(r.vec(lambda x: x.array(32))), r.blob())


@dataclass(frozen=True)
class Receipt:
    """Signed by the worker identity key over RECEIPT_DOMAIN ‖ SCALE(fields); encoded as
    SCALE(fields) ‖ signature (``Vec<u8>``). :meth:`signed_by` encodes the fields once and
    keeps the encoding, so signing and sending share one encoding."""

    worker: bytes
    kind: RequestKind
    contract: bytes
    code_hash: bytes
    request_hash: bytes
    output_hash: bytes
    block: int
    state_root: bytes
    time_ms: int
    signature: bytes = field(default=b"", repr=False)
    # SCALE(fields) as signed, set by signed_by; not an init field, so `replace` drops it.
    _body: bytes = field(default=b"", init=False, repr=False, compare=False)

    def _fields(self, w: Writer) -> Writer:
        return (
            w.u8(PROTOCOL_VERSION).raw(_b32(self.worker, "worker")).u8(self.kind)
            .raw(_b32(self.contract, "contract")).raw(_b32(self.code_hash, "code_hash"))
            .raw(_b32(self.request_hash, "request_hash")).raw(_b32(self.output_hash, "output_hash"))
            .u64(self.block).raw(_b32(self.state_root, "state_root")).u64(self.time_ms)
        )  # fmt: skip

    def signing_bytes(self) -> bytes:
        return RECEIPT_DOMAIN + self._fields(Writer()).finish()

    def signed_by(self, signer: SignsBytes) -> Receipt:
        body = self._fields(Writer()).finish()
        signed = replace(self, signature=signer.sign(RECEIPT_DOMAIN + body))
        object.__setattr__(signed, "_body", body)
        return signed

    def signature_valid(self) -> bool:
        return verify(Scheme.SR25519, self.worker, self.signing_bytes(), self.signature)

    def encode(self) -> bytes:
        body = self._body or self._fields(Writer()).finish()
        return Writer().raw(body).blob(self.signature).finish()

    @staticmethod
    def decode(data: bytes) -> Receipt:
        r = Reader(data)
        r.u8()
        rec = Receipt(
            r.array(32), RequestKind(r.u8()), r.array(32), r.array(32), r.array(32), r.array(32),
            r.u64(), r.array(32), r.u64(), r.blob(),
        )  # fmt: skip
        r.end()
        return rec


def _b32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise ValueError(f"{what} must be 32 bytes, got {len(value)}")
    return value
