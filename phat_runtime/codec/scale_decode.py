"""SCALE decoding of contract values into plain Python values, driven by a TypeRegistry.

Owns: the output conventions — ints, bools, str, lists, dicts for structs, ``"Variant"`` /
``{"Variant": payload}`` for enums (``Result`` stays ``{"Ok": …}``), ``None`` or the value for
``Option``, byte strings (``Vec<u8>``, ``[u8; N]``) always as 0x-hex, account ids as SS58 with
prefix 42. Reports truncated or invalid input as :class:`DataProblem` with the location.
Must not: know about messages or events (that is :mod:`.metadata`), or do any I/O.
Stateless apart from the registry it is given, so it is safe to use from several threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scalecodec.utils.ss58 import ss58_encode

from .portable import ACCOUNT_ID_LEN, TypeInfo, TypeRegistry
from .scale_args import INT_BITS, MAX_DEPTH

#: SS58 prefix used when account ids are decoded (the generic Substrate prefix).
SS58_PREFIX = 42


class DataProblem(Exception):
    """Bytes do not decode: truncated (``truncated`` set) or invalid."""

    def __init__(self, message: str, where: str, truncated: bool = False) -> None:
        super().__init__(message)
        self.where, self.truncated = where, truncated


def decode_value(reg: TypeRegistry, type_id: int, data: bytes, offset: int = 0) -> tuple[Any, int]:
    """Decode one value at ``offset``; returns ``(value, new_offset)``."""
    decoder = _Decoder(reg, data, offset)
    return decoder.decode(type_id, "", 0), decoder.pos


class _Decoder:
    def __init__(self, reg: TypeRegistry, data: bytes, pos: int) -> None:
        self.reg, self.data, self.pos = reg, data, pos

    def take(self, n: int, where: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            missing = end - len(self.data)
            raise DataProblem(
                f"input ends at byte {len(self.data)}, {missing} more byte(s) needed", where, True
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def compact(self, where: str) -> int:
        first = self.take(1, where)[0]
        mode = first & 3
        if mode == 0:
            return first >> 2
        if mode in (1, 2):
            size = 2 if mode == 1 else 4
            return int.from_bytes(bytes([first]) + self.take(size - 1, where), "little") >> 2
        return int.from_bytes(self.take((first >> 2) + 4, where), "little")

    def length(self, where: str) -> int:
        n = self.compact(where)
        if n > len(self.data) - self.pos:  # every element takes ≥ 1 byte… except units: cap anyway
            raise DataProblem(f"length prefix {n} exceeds the remaining input", where, True)
        return n

    def decode(self, tid: int, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise DataProblem("value nested too deeply", where)
        info = self.reg.get(tid)
        kind = info.kind
        if kind == "primitive":
            return self._primitive(info.primitive, where)
        if kind == "compact":
            return self.compact(where)
        if kind in ("sequence", "array"):
            count = self.length(where) if kind == "sequence" else info.length
            if self.reg.is_u8(info.inner):
                return "0x" + self.take(count, where).hex()
            return [self.decode(info.inner, f"{where}[{i}]", depth + 1) for i in range(count)]
        if kind == "tuple":
            if not info.items:
                return None
            return [self.decode(t, f"{where}[{i}]", depth + 1) for i, t in enumerate(info.items)]
        if kind == "composite":
            if self.reg.is_account_id(info):
                return ss58_encode(self.take(ACCOUNT_ID_LEN, where), SS58_PREFIX)
            return self._fields(info.fields, where, depth)
        if kind == "variant":
            return self._variant(info, where, depth)
        raise DataProblem(f"{kind} values are not supported", where)

    def _primitive(self, prim: str, where: str) -> Any:
        if prim == "bool":
            byte = self.take(1, where)[0]
            if byte > 1:
                raise DataProblem(f"invalid bool byte 0x{byte:02x}", where)
            return byte == 1
        if prim == "str":
            raw = self.take(self.length(where), where)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataProblem(f"string is not valid UTF-8 ({exc.reason})", where) from None
        if prim == "char":
            code = int.from_bytes(self.take(4, where), "little")
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise DataProblem(f"invalid char code point {code:#x}", where)
            return chr(code)
        bits = INT_BITS[prim]
        return int.from_bytes(self.take(bits // 8, where), "little", signed=prim[0] == "i")

    def _fields(self, fields: Sequence[Any], where: str, depth: int) -> Any:
        if not fields:
            return None
        if all(f.name for f in fields):
            return {f.name: self.decode(f.type_id, f"{where}.{f.name}", depth + 1) for f in fields}
        if len(fields) == 1:
            return self.decode(fields[0].type_id, where, depth + 1)
        return [self.decode(f.type_id, f"{where}[{i}]", depth + 1) for i, f in enumerate(fields)]

    def _variant(self, info: TypeInfo, where: str, depth: int) -> Any:
        index = self.take(1, where)[0]
        variant = next((v for v in info.variants if v.index == index), None)
        if variant is None:
            known = sorted(v.index for v in info.variants)
            raise DataProblem(
                f"invalid variant index {index} for {self.reg.name(info.id)} (known: {known})",
                where,
            )
        if self.reg.is_option(info):
            return None if variant.name == "None" else self._fields(variant.fields, where, depth)
        if not variant.fields:
            return variant.name
        return {variant.name: self._fields(variant.fields, f"{where}.{variant.name}", depth)}
