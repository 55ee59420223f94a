"""A minimal SCALE reader/writer for fixed, hand-declared types (pink's chain-extension
arguments, protocol messages). Metadata-driven encoding lives in ``scale_args`` /
``scale_decode``; this is the small tool for types whose layout we know statically.

Pure: bytes in, values out. Malformed input raises :class:`ScaleError` (a DecodeError) that
says what was being read and at which offset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from phat_runtime.codec.scale_args import encode_compact
from phat_runtime.errors import DecodeError

T = TypeVar("T")

#: Refuse length prefixes beyond this (a hostile contract could otherwise ask for huge lists).
MAX_LENGTH = 64 * 1024 * 1024


class ScaleError(DecodeError):
    """Bytes that are not the SCALE encoding of what was expected."""


class Reader:
    """Sequential SCALE decoder over a bytes object."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def take(self, n: int, what: str = "bytes") -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise ScaleError(f"truncated input: {what} needs {n} bytes at offset {self.pos}, {len(self.data) - self.pos} left")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def u8(self) -> int:
        return self.take(1, "u8")[0]

    def boolean(self) -> bool:
        b = self.u8()
        if b > 1:
            raise ScaleError(f"invalid bool byte {b:#x} at offset {self.pos - 1}")
        return b == 1

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size, f"u{size * 8}"), "little")

    def u16(self) -> int:
        return self.uint(2)

    def u32(self) -> int:
        return self.uint(4)

    def u64(self) -> int:
        return self.uint(8)

    def u128(self) -> int:
        return self.uint(16)

    def compact(self) -> int:
        first = self.u8()
        mode = first & 3
        if mode == 0:
            return first >> 2
        if mode == 1:
            return (first | self.u8() << 8) >> 2
        if mode == 2:
            return int.from_bytes(bytes([first]) + self.take(3, "compact"), "little") >> 2
        return int.from_bytes(self.take((first >> 2) + 4, "compact"), "little")

    def blob(self) -> bytes:
        """``Vec<u8>``: compact length then the bytes."""
        n = self.compact()
        if n > MAX_LENGTH:
            raise ScaleError(f"Vec<u8> length {n} exceeds {MAX_LENGTH}")
        return self.take(n, "Vec<u8>")

    def string(self) -> str:
        raw = self.blob()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScaleError(f"String is not UTF-8 ({exc.reason})") from exc

    def array(self, n: int) -> bytes:
        return self.take(n, f"[u8; {n}]")

    def option(self, item: Callable[[Reader], T]) -> T | None:
        tag = self.u8()
        if tag == 0:
            return None
        if tag == 1:
            return item(self)
        raise ScaleError(f"invalid Option tag {tag:#x} at offset {self.pos - 1}")

    def vec(self, item: Callable[[Reader], T]) -> list[T]:
        n = self.compact()
        if n > len(self.data) - self.pos:  # every item takes at least one byte
            raise ScaleError(f"Vec of {n} items cannot fit in {len(self.data) - self.pos} bytes")
        return [item(self) for _ in range(n)]

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ScaleError(f"{len(self.data) - self.pos} trailing byte(s) after the value")


class Writer:
    """SCALE encoder accumulating into a bytearray."""

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = bytearray()

    def raw(self, data: bytes) -> Writer:
        self.out += data
        return self

    def u8(self, v: int) -> Writer:
        self.out.append(v)
        return self

    def boolean(self, v: bool) -> Writer:
        return self.u8(1 if v else 0)

    def uint(self, v: int, size: int) -> Writer:
        self.out += v.to_bytes(size, "little")
        return self

    def u16(self, v: int) -> Writer:
        return self.uint(v, 2)

    def u32(self, v: int) -> Writer:
        return self.uint(v, 4)

    def u64(self, v: int) -> Writer:
        return self.uint(v, 8)

    def u128(self, v: int) -> Writer:
        return self.uint(v, 16)

    def compact(self, v: int) -> Writer:
        self.out += encode_compact(v)
        return self

    def blob(self, v: bytes) -> Writer:
        return self.compact(len(v)).raw(v)

    def string(self, v: str) -> Writer:
        return self.blob(v.encode("utf-8"))

    def option(self, v: T | None, item: Callable[[Writer, T], object]) -> Writer:
        if v is None:
            return self.u8(0)
        self.u8(1)
        item(self, v)
        return self

    def vec(self, items: Sequence[T], item: Callable[[Writer, T], object]) -> Writer:
        self.compact(len(items))
        for value in items:
            item(self, value)
        return self

    def finish(self) -> bytes:
        return bytes(self.out)
