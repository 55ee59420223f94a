"""Field codecs of the chain protocol: each knows how one field type is written and read.

Owns: fixed arrays, bounded ``Vec<u8>`` / ``String`` (canonical compact lengths only, limits
checked before anything is read), unsigned integers, ``Option``, platform codes, policies and
sealed boxes — the vocabulary :mod:`phat_runtime.chain.protocol` declares its messages in.
Every failure is a :class:`ProtocolError` naming the field. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any, ClassVar

from phat_runtime.chain.confidential import NONCE_LEN, SealedBox
from phat_runtime.chain.policy_codec import PLATFORM_CODES, decode_policy, encode_policy
from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.codec.scale_args import encode_compact
from phat_runtime.errors import ProtocolError
from phat_runtime.tee.policy import Policy


class Codec:
    """Writes and reads one field type; ``what`` names the field in error messages."""

    def write(self, w: Writer, value: Any, what: str) -> None:
        raise NotImplementedError

    def read(self, r: Reader, what: str) -> Any:
        raise NotImplementedError


class Fixed(Codec):
    def __init__(self, size: int) -> None:
        self.size = size

    def write(self, w: Writer, value: Any, what: str) -> None:
        if not isinstance(value, bytes) or len(value) != self.size:
            raise ProtocolError(f"{what} must be {self.size} bytes")
        w.raw(value)

    def read(self, r: Reader, what: str) -> bytes:
        return r.take(self.size, what)


class Uint(Codec):
    def __init__(self, size: int) -> None:
        self.size = size

    def write(self, w: Writer, value: Any, what: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << (8 * self.size):
            raise ProtocolError(f"{what} must be an integer that fits in a u{8 * self.size}")
        w.uint(value, self.size)

    def read(self, r: Reader, what: str) -> int:
        return r.uint(self.size)


def _length(r: Reader, limit: int, what: str) -> int:
    start = r.pos
    n = r.compact()
    if r.pos - start != len(encode_compact(n)):
        raise ProtocolError(f"{what}: non-canonical compact length at offset {start}")
    if n > limit:
        raise ProtocolError(f"{what} is {n} bytes, the limit is {limit}")
    return n


class Blob(Codec):
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def write(self, w: Writer, value: Any, what: str) -> None:
        if not isinstance(value, bytes):
            raise ProtocolError(f"{what} must be bytes")
        if len(value) > self.limit:
            raise ProtocolError(f"{what} is {len(value)} bytes, the limit is {self.limit}")
        w.blob(value)

    def read(self, r: Reader, what: str) -> bytes:
        return r.take(_length(r, self.limit, what), what)


class Text(Codec):
    def __init__(self, limit: int) -> None:
        self.raw = Blob(limit)

    def write(self, w: Writer, value: Any, what: str) -> None:
        if not isinstance(value, str):
            raise ProtocolError(f"{what} must be a string")
        self.raw.write(w, value.encode("utf-8"), what)

    def read(self, r: Reader, what: str) -> str:
        try:
            return self.raw.read(r, what).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"{what} is not UTF-8") from None


class Maybe(Codec):
    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def write(self, w: Writer, value: Any, what: str) -> None:
        if value is None:
            w.u8(0)
        else:
            w.u8(1)
            self.inner.write(w, value, what)

    def read(self, r: Reader, what: str) -> Any:
        tag = r.u8()
        if tag > 1:
            raise ProtocolError(f"{what}: invalid Option tag {tag:#x}")
        return self.inner.read(r, what) if tag else None


class PlatformCode(Codec):
    _names: ClassVar = {code: name for name, code in PLATFORM_CODES.items()}

    def write(self, w: Writer, value: Any, what: str) -> None:
        if value not in PLATFORM_CODES:
            raise ProtocolError(f"{what} must be one of {', '.join(PLATFORM_CODES)}, not {value!r}")
        w.u8(PLATFORM_CODES[value])

    def read(self, r: Reader, what: str) -> str:
        code = r.u8()
        if code not in self._names:
            raise ProtocolError(f"{what}: unknown platform code {code}")
        return str(self._names[code])


class PolicyField(Codec):
    def write(self, w: Writer, value: Any, what: str) -> None:
        if not isinstance(value, Policy):
            raise ProtocolError(f"{what} must be a tee.policy.Policy")
        encode_policy(w, value)

    def read(self, r: Reader, what: str) -> Policy:
        return decode_policy(r)


class Box(Codec):
    def __init__(self, limit: int) -> None:
        self.ciphertext = Blob(limit)

    def write(self, w: Writer, value: Any, what: str) -> None:
        if not isinstance(value, SealedBox):
            raise ProtocolError(f"{what} must be a SealedBox")
        Fixed(32).write(w, value.ephemeral, f"{what}.ephemeral")
        Fixed(NONCE_LEN).write(w, value.nonce, f"{what}.nonce")
        self.ciphertext.write(w, value.ciphertext, f"{what}.ciphertext")

    def read(self, r: Reader, what: str) -> SealedBox:
        return SealedBox(r.take(32, what), r.take(NONCE_LEN, what), self.ciphertext.read(r, f"{what}.ciphertext"))


ID = Fixed(32)
U32, U64, U128 = Uint(4), Uint(8), Uint(16)
