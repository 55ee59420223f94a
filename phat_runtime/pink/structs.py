"""pink's chain-extension types and their SCALE layouts (HOST-ABI.md §3.2, field order matters).

``HttpRequest { url, method, headers, body }`` (url first!), ``HttpResponse { status_code: u16,
reason_phrase, headers, body }``, ``HttpRequestError`` (as a status code: index + 1),
``SigType``, ``JsCode`` / ``JsValue``, ``SgxQuote`` and the ``PinkEvent`` side channel.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from phat_runtime.codec.scale import Reader, Writer

Headers = list[tuple[str, str]]


class HttpRequestError(enum.IntEnum):
    """pink's error enum; as a chain-extension status code it is ``index + 1``."""

    INVALID_URL = 0
    INVALID_METHOD = 1
    INVALID_HEADER_NAME = 2
    INVALID_HEADER_VALUE = 3
    FAILED_TO_CREATE_CLIENT = 4
    TIMEOUT = 5
    NOT_ALLOWED = 6
    TOO_MANY_REQUESTS = 7
    NETWORK_ERROR = 8
    RESPONSE_TOO_LARGE = 9
    TOO_MANY_HEADERS = 10

    @property
    def status(self) -> int:
        return int(self) + 1


class SigType(enum.IntEnum):
    ED25519 = 0
    SR25519 = 1
    ECDSA = 2


@dataclass(frozen=True)
class HttpRequest:
    url: str
    method: str
    headers: Headers = field(default_factory=list)
    body: bytes = b""

    @staticmethod
    def read(r: Reader) -> HttpRequest:
        return HttpRequest(r.string(), r.string(), r.vec(_read_header), r.blob())

    def write(self, w: Writer) -> Writer:
        return w.string(self.url).string(self.method).vec(self.headers, _write_header).blob(self.body)


@dataclass(frozen=True)
class HttpResponse:
    status_code: int
    reason_phrase: str
    headers: Headers = field(default_factory=list)
    body: bytes = b""

    @staticmethod
    def read(r: Reader) -> HttpResponse:
        return HttpResponse(r.u16(), r.string(), r.vec(_read_header), r.blob())

    def write(self, w: Writer) -> Writer:
        return w.u16(self.status_code).string(self.reason_phrase).vec(self.headers, _write_header).blob(self.body)

    def encode(self) -> bytes:
        return self.write(Writer()).finish()


def _read_header(r: Reader) -> tuple[str, str]:
    return r.string(), r.string()


def _write_header(w: Writer, header: tuple[str, str]) -> None:
    w.string(header[0]).string(header[1])


# --- JS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JsCode:
    """0 Source(String) | 1 Bytecode(Vec<u8>)."""

    source: str | None = None
    bytecode: bytes | None = None

    @staticmethod
    def read(r: Reader) -> JsCode:
        tag = r.u8()
        if tag == 0:
            return JsCode(source=r.string())
        if tag == 1:
            return JsCode(bytecode=r.blob())
        from phat_runtime.codec.scale import ScaleError

        raise ScaleError(f"invalid JsCode variant {tag}")


class JsValueTag(enum.IntEnum):
    UNDEFINED = 0
    NULL = 1
    STRING = 2
    BYTES = 3
    OTHER = 4
    EXCEPTION = 5


@dataclass(frozen=True)
class JsValue:
    tag: JsValueTag
    value: str | bytes | None = None

    def write(self, w: Writer) -> Writer:
        w.u8(int(self.tag))
        if self.tag in (JsValueTag.STRING, JsValueTag.OTHER, JsValueTag.EXCEPTION):
            assert isinstance(self.value, str)
            w.string(self.value)
        elif self.tag is JsValueTag.BYTES:
            assert isinstance(self.value, bytes)
            w.blob(self.value)
        return w

    def encode(self) -> bytes:
        return self.write(Writer()).finish()


# --- PinkEvent side channel ---------------------------------------------------------------------

#: The one topic of every PinkEvent: SCALE(b"phala.pink.event") padded to 32 bytes.
PINK_EVENT_TOPIC = bytes([0x40]) + b"phala.pink.event" + bytes(15)


class PinkEventKind(enum.IntEnum):
    SET_HOOK = 2
    DEPLOY_SIDEVM_TO = 3
    SIDEVM_MESSAGE = 4
    CACHE_OP = 5
    STOP_SIDEVM = 6
    FORCE_STOP_SIDEVM = 7
    SET_LOG_HANDLER = 8
    SET_CONTRACT_WEIGHT = 9
    UPGRADE_RUNTIME_TO = 10
    SIDEVM_OPERATION = 11
    SET_JS_RUNTIME = 12


class CacheOpKind(enum.IntEnum):
    SET = 0
    SET_EXPIRATION = 1
    REMOVE = 2


def cache_op_event(kind: CacheOpKind, key: bytes, value: bytes | None = None, expiration: int | None = None) -> bytes:
    """SCALE of ``PinkEvent::CacheOp(op)`` — what a transaction emits instead of touching the cache."""
    w = Writer().u8(PinkEventKind.CACHE_OP).u8(kind).blob(key)
    if kind is CacheOpKind.SET:
        w.blob(value or b"")
    elif kind is CacheOpKind.SET_EXPIRATION:
        w.u64(expiration or 0)
    return w.finish()
