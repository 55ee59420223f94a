"""The bodies of the encrypted routes, wire format v2 (``docs/rpc.md`` has the exact layouts).

All integers little-endian; every body is ``application/octet-stream``:

- handshake request (``POST /v2/session``): ``version u8 = 2 ‖ client_pk [32]``;
- handshake response: ``version u8 ‖ session_id [16] ‖ lifetime_s u32 ‖ confirm [16]`` where
  ``confirm`` is the AEAD tag of nothing under the worker→client key at counter 0 — proof that
  the answering party holds the attested ECDH key;
- request frame (``POST /v2/query | /v2/tx | /v2/logs``): ``version u8 ‖ session_id [16] ‖
  counter u64 ‖ ciphertext`` — the SCALE :class:`~phat_runtime.codec.messages.SignedRequest`
  sealed under the client→worker key at ``counter`` (≥ 1), aad = ``AAD_REQUEST ‖ route u8``;
- response frame (200): ``version u8 ‖ counter u64 ‖ ciphertext`` — the request's counter,
  sealed under the worker→client key, aad = ``AAD_RESPONSE ‖ route u8``; the plaintext is
  SCALE ``(outcome: Vec<u8>, receipt: Vec<u8>)`` for query and tx, msgpack records for logs.

Errors (4xx/5xx) are plaintext JSON ``{"error": {"code", "message"}}``. Pure module: importable
without wasmtime (the client uses it).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from phat_runtime.codec.messages import Outcome, Receipt
from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.crypto.e2e import SESSION_ID_LEN, SessionKeys, open_at, seal_at
from phat_runtime.errors import PhatError

WIRE_VERSION = 2
CONTENT_TYPE = "application/octet-stream"
AAD_REQUEST = b"phat_runtime/rpc-request/v2"
AAD_RESPONSE = b"phat_runtime/rpc-response/v2"
AAD_CONFIRM = b"phat_runtime/session-confirm/v2"
TAG_LEN = 16

_HELLO = struct.Struct("<B32s")
_WELCOME = struct.Struct(f"<B{SESSION_ID_LEN}sI{TAG_LEN}s")
_REQUEST = struct.Struct(f"<B{SESSION_ID_LEN}sQ")
_RESPONSE = struct.Struct("<BQ")


class BodyError(PhatError):
    """A body that is not a well-formed v2 frame (says what is wrong)."""


class Route(enum.IntEnum):
    """Which encrypted route a frame is for; bound into the AEAD, so a frame sealed for one
    route does not open at another."""

    QUERY = 0
    TX = 1
    LOGS = 2
    RESULT = 3


def _version(body: bytes) -> None:
    if body[:1] != bytes([WIRE_VERSION]):
        got = body[0] if body else "nothing"
        raise BodyError(f"wire format version {got}; this worker speaks version {WIRE_VERSION} "
                        "(binary frames, docs/rpc.md)")


# --- handshake ---------------------------------------------------------------------------------
def encode_hello(client_pk: bytes) -> bytes:
    return _HELLO.pack(WIRE_VERSION, client_pk)


def decode_hello(body: bytes) -> bytes:
    _version(body)
    if len(body) != _HELLO.size:
        raise BodyError(f"a session request is {_HELLO.size} bytes (version, X25519 key), got {len(body)}")
    return _HELLO.unpack(body)[1]


def confirm_tag(keys: SessionKeys, session_id: bytes) -> bytes:
    return seal_at(keys.to_client, 0, b"", AAD_CONFIRM + session_id)


def encode_welcome(session_id: bytes, lifetime_s: int, confirm: bytes) -> bytes:
    return _WELCOME.pack(WIRE_VERSION, session_id, lifetime_s, confirm)


def decode_welcome(body: bytes) -> tuple[bytes, int, bytes]:
    _version(body)
    if len(body) != _WELCOME.size:
        raise BodyError(f"a session answer is {_WELCOME.size} bytes, got {len(body)}")
    _, session_id, lifetime_s, confirm = _WELCOME.unpack(body)
    return session_id, lifetime_s, confirm


# --- frames ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestFrame:
    session_id: bytes
    counter: int
    ciphertext: bytes


def seal_request(keys: SessionKeys, session_id: bytes, counter: int, route: Route, plaintext: bytes) -> bytes:
    sealed = seal_at(keys.to_worker, counter, plaintext, AAD_REQUEST + bytes([route]))
    return _REQUEST.pack(WIRE_VERSION, session_id, counter) + sealed


def parse_request(body: bytes) -> RequestFrame:
    _version(body)
    if len(body) < _REQUEST.size + TAG_LEN:
        raise BodyError(f"a request frame is at least {_REQUEST.size + TAG_LEN} bytes "
                        f"(version, session id, counter, sealed request), got {len(body)}")
    _, session_id, counter = _REQUEST.unpack_from(body)
    if counter == 0:
        raise BodyError("message counters start at 1 (0 is the session confirmation)")
    return RequestFrame(session_id, counter, body[_REQUEST.size:])


def open_request(keys: SessionKeys, frame: RequestFrame, route: Route) -> bytes:
    return open_at(keys.to_worker, frame.counter, frame.ciphertext, AAD_REQUEST + bytes([route]))


def seal_response(keys: SessionKeys, counter: int, route: Route, plaintext: bytes) -> bytes:
    return _RESPONSE.pack(WIRE_VERSION, counter) + seal_at(keys.to_client, counter, plaintext,
                                                            AAD_RESPONSE + bytes([route]))


def open_response(keys: SessionKeys, counter: int, route: Route, body: bytes) -> bytes:
    """The plaintext of the answer to request ``counter``; BodyError / EnvelopeError otherwise."""
    _version(body)
    if len(body) < _RESPONSE.size + TAG_LEN:
        raise BodyError(f"a response frame is at least {_RESPONSE.size + TAG_LEN} bytes, got {len(body)}")
    _, echoed = _RESPONSE.unpack_from(body)
    if echoed != counter:
        raise BodyError(f"the response answers message {echoed}, not {counter}")
    return open_at(keys.to_client, counter, body[_RESPONSE.size:], AAD_RESPONSE + bytes([route]))


# --- plaintexts --------------------------------------------------------------------------------
def encode_result(outcome: Outcome, receipt: Receipt) -> bytes:
    return Writer().blob(outcome.encode()).blob(receipt.encode()).finish()


def decode_result(plaintext: bytes) -> tuple[Outcome, Receipt]:
    r = Reader(plaintext)
    outcome, receipt = Outcome.decode(r.blob()), Receipt.decode(r.blob())
    r.end()
    return outcome, receipt


#: Keys of a log record, in the order of the msgpack array each record is encoded as.
LOG_FIELDS = ("sequence", "level", "timestamp_ms", "block", "mode", "message")


def encode_log_records(records: list[dict[str, Any]]) -> bytes:
    """msgpack array of records, each an array in :data:`LOG_FIELDS` order."""
    return msgpack.packb([[r[k] for k in LOG_FIELDS] for r in records], use_bin_type=True)


def decode_log_records(plaintext: bytes) -> list[dict[str, Any]]:
    try:
        rows = msgpack.unpackb(plaintext, raw=False, max_array_len=1 << 16, max_map_len=0)
    except Exception as exc:  # msgpack's errors do not share a useful base
        raise BodyError(f"log records are not msgpack: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(LOG_FIELDS) for r in rows):
        raise BodyError("log records are not a list of records")
    return [dict(zip(LOG_FIELDS, row, strict=True)) for row in rows]
