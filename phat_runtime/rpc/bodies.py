"""The JSON bodies that carry encrypted requests and responses over HTTP.

Request: ``{"v": 1, "client_pk": hex, "nonce": hex, "ciphertext": base64}`` — ciphertext of a
SCALE :class:`~phat_runtime.codec.messages.SignedRequest` under the key shared between the
client's ephemeral X25519 key and the worker's ECDH key.
Response: ``{"v": 1, "nonce": hex, "ciphertext": base64}`` — same key, other direction, holding
SCALE ``(outcome: Vec<u8>, receipt: Vec<u8>)``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from phat_runtime.codec.messages import (
    AAD_REQUEST,
    AAD_RESPONSE,
    PROTOCOL_VERSION,
    Outcome,
    Receipt,
)
from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.crypto.e2e import NONCE_LEN, open_sealed, seal
from phat_runtime.errors import PhatError


class BodyError(PhatError):
    """A body that is not a well-formed envelope (says which field is wrong)."""


@dataclass(frozen=True)
class RequestEnvelope:
    client_pk: bytes
    nonce: bytes
    ciphertext: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "client_pk": self.client_pk.hex(),
            "nonce": self.nonce.hex(),
            "ciphertext": base64.b64encode(self.ciphertext).decode(),
        }

    @staticmethod
    def from_json(body: Any) -> RequestEnvelope:
        if not isinstance(body, dict):
            raise BodyError("the body must be a JSON object with v, client_pk, nonce, ciphertext")
        if body.get("v") != PROTOCOL_VERSION:
            raise BodyError(f"field 'v' must be {PROTOCOL_VERSION} (protocol version), got {body.get('v')!r}")
        client_pk = _hex(body, "client_pk", 32)
        nonce = _hex(body, "nonce", NONCE_LEN)
        return RequestEnvelope(client_pk, nonce, _b64(body, "ciphertext"))

    def open(self, key: bytes) -> bytes:
        return open_sealed(key, self.nonce, self.ciphertext, AAD_REQUEST)

    @staticmethod
    def make(key: bytes, client_pk: bytes, plaintext: bytes) -> RequestEnvelope:
        nonce, ct = seal(key, plaintext, AAD_REQUEST)
        return RequestEnvelope(client_pk, nonce, ct)


def seal_response(key: bytes, outcome: Outcome, receipt: Receipt) -> dict[str, Any]:
    plaintext = Writer().blob(outcome.encode()).blob(receipt.encode()).finish()
    nonce, ct = seal(key, plaintext, AAD_RESPONSE)
    return {"v": PROTOCOL_VERSION, "nonce": nonce.hex(), "ciphertext": base64.b64encode(ct).decode()}


def open_response(key: bytes, body: Any) -> tuple[Outcome, Receipt]:
    if not isinstance(body, dict):
        raise BodyError("the response must be a JSON object")
    plaintext = open_sealed(key, _hex(body, "nonce", NONCE_LEN), _b64(body, "ciphertext"), AAD_RESPONSE)
    r = Reader(plaintext)
    outcome, receipt = Outcome.decode(r.blob()), Receipt.decode(r.blob())
    r.end()
    return outcome, receipt


def _hex(body: dict[str, Any], name: str, length: int) -> bytes:
    value = body.get(name)
    if not isinstance(value, str):
        raise BodyError(f"field {name!r} must be a hex string of {length} bytes")
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise BodyError(f"field {name!r} is not hex") from None
    if len(raw) != length:
        raise BodyError(f"field {name!r} must be {length} bytes, got {len(raw)}")
    return raw


def _b64(body: dict[str, Any], name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, str):
        raise BodyError(f"field {name!r} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BodyError(f"field {name!r} is not valid base64") from None
