"""SCALE encoding of JSON-like contract arguments, driven by a :class:`TypeRegistry`.

Owns: the input conventions at the edge — ints (or decimal strings), bools, str, lists, dicts
for structs, ``{"Variant": payload}`` / ``"Variant"`` for enums, ``None`` / ``{"Some": x}`` (or
the bare value) for ``Option``, SS58 (any prefix) / 0x-hex / 32 bytes / dev names (``alice``,
``//Bob``) for account ids, 0x-hex / bytes / int lists for byte strings. Decoding is :mod:`.scale_decode`.
Must not: know about messages or events (that is :mod:`.metadata`), or do any I/O.

Stateless apart from the registry it is given, so it is safe to use from several threads.
A value that does not fit raises :class:`ValueProblem` carrying *where* inside the value it
happened; :mod:`.metadata` turns it into an ``EncodeError`` that names the argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from scalecodec.utils.ss58 import ss58_decode

from phat_runtime.crypto.accounts import DEV_ACCOUNTS, dev_account

from .portable import ACCOUNT_ID_LEN, TypeInfo, TypeRegistry

#: Nesting deeper than this is refused rather than risking Python's recursion limit.
MAX_DEPTH = 128
INT_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "u128": 128, "u256": 256}
INT_BITS.update({f"i{b}": b for b in (8, 16, 32, 64, 128, 256)})
_REPR_LIMIT = 80


class ValueProblem(Exception):
    """A value does not fit its type. ``where`` is the location inside the value (``.a[2]``)."""

    def __init__(self, where: str, type_id: int, hint: str | None, got: Any, why: str = "") -> None:
        super().__init__(why)
        self.where, self.type_id, self.hint, self.got, self.why = where, type_id, hint, got, why


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


# --- encoding ---------------------------------------------------------------------------------


def encode_value(reg: TypeRegistry, type_id: int, value: Any, hint: str | None = None) -> bytes:
    out = bytearray()
    _Encoder(reg, out).encode(type_id, value, "", hint, 0)
    return bytes(out)


def encode_compact(n: int) -> bytes:
    if n < 0:
        raise ValueError("compact integers are unsigned")
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < 1 << 30:
        return ((n << 2) | 2).to_bytes(4, "little")
    size = max(4, (n.bit_length() + 7) // 8)
    if size > 67:
        raise ValueError("integer too large for compact encoding")
    return bytes([((size - 4) << 2) | 3]) + n.to_bytes(size, "little")


class _Encoder:
    def __init__(self, reg: TypeRegistry, out: bytearray) -> None:
        self.reg, self.out = reg, out

    def encode(self, tid: int, value: Any, where: str, hint: str | None, depth: int) -> None:
        info = self.reg.get(tid)
        if depth > MAX_DEPTH:
            raise ValueProblem(where, tid, hint, value, "value nested too deeply")
        kind = info.kind
        if kind == "primitive":
            self._primitive(info, value, where, hint)
        elif kind == "compact":
            self.out += encode_compact(self._int(info.inner, value, where, hint, unsigned=True))
        elif kind in ("sequence", "array") and self.reg.is_u8(info.inner):
            self._bytes(info, value, where, hint)
        elif kind in ("sequence", "array", "tuple"):
            self._list(info, value, where, hint, depth)
        elif kind == "composite":
            self._composite(info, value, where, hint, depth)
        elif kind == "variant":
            self._variant(info, value, where, hint, depth)
        else:
            raise ValueProblem(where, tid, hint, value, f"{kind} values are not supported")

    def _fail(
        self, info: TypeInfo, where: str, hint: str | None, value: Any, why: str = ""
    ) -> NoReturn:
        raise ValueProblem(where, info.id, hint, value, why)

    def _primitive(self, info: TypeInfo, value: Any, where: str, hint: str | None) -> None:
        prim = info.primitive
        if prim == "bool":
            if not isinstance(value, bool):
                self._fail(info, where, hint, value)
            self.out.append(1 if value else 0)
        elif prim == "str":
            if not isinstance(value, str):
                self._fail(info, where, hint, value)
            raw = value.encode("utf-8")
            self.out += encode_compact(len(raw)) + raw
        elif prim == "char":
            if not isinstance(value, str) or len(value) != 1:
                self._fail(info, where, hint, value, "a char is a string of length 1")
            self.out += ord(value).to_bytes(4, "little")
        else:
            n = self._int(info.id, value, where, hint)
            self.out += n.to_bytes(INT_BITS[prim] // 8, "little", signed=prim[0] == "i")

    def _int(
        self, tid: int, value: Any, where: str, hint: str | None, unsigned: bool = False
    ) -> int:
        info = self.reg.get(tid)
        while info.kind == "composite" and len(info.fields) == 1:  # Compact<NewType(u32)>
            info = self.reg.get(info.fields[0].type_id)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueProblem(where, tid, hint, value)
        if isinstance(value, str):
            try:
                value = int(value.strip(), 10)
            except ValueError:
                raise ValueProblem(where, tid, hint, value) from None
        bits = INT_BITS.get(info.primitive)
        if bits is None:
            raise ValueProblem(where, tid, hint, value, f"{info.kind} is not an integer type")
        signed = info.primitive[0] == "i" and not unsigned
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if not low <= value <= high:
            raise ValueProblem(where, tid, hint, value, f"out of range for {info.primitive}")
        return int(value)

    def _bytes(self, info: TypeInfo, value: Any, where: str, hint: str | None) -> None:
        raw = to_bytes(value)
        if raw is None:
            self._fail(info, where, hint, value, "give 0x-hex, bytes or a list of ints 0..255")
        elif info.kind == "array":
            if len(raw) != info.length:
                self._fail(info, where, hint, value, f"needs {info.length} bytes, got {len(raw)}")
            self.out += raw
        else:
            self.out += encode_compact(len(raw)) + raw

    def _list(self, info: TypeInfo, value: Any, where: str, hint: str | None, depth: int) -> None:
        if info.kind == "tuple" and not info.items and value in (None, [], ()):
            return  # the unit type ()
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            self._fail(info, where, hint, value, "give a list")
        if info.kind == "tuple":
            types = list(info.items)
        else:
            types = [info.inner] * (len(value) if info.kind == "sequence" else info.length)
        if len(value) != len(types):
            self._fail(info, where, hint, value, f"needs {len(types)} items, got {len(value)}")
        if info.kind == "sequence":
            self.out += encode_compact(len(value))
        for i, (tid, item) in enumerate(zip(types, value, strict=True)):
            self.encode(tid, item, f"{where}[{i}]", None, depth + 1)

    def _composite(
        self, info: TypeInfo, value: Any, where: str, hint: str | None, depth: int
    ) -> None:
        if self.reg.is_account_id(info):
            self.out += self._account(info, value, where, hint)
            return
        fields = info.fields
        if not fields:
            if value not in (None, {}, [], ()):
                self._fail(info, where, hint, value, "a unit struct takes no value")
            return
        if len(fields) == 1 and fields[0].name is None:  # newtype: transparent
            try:
                self.encode(fields[0].type_id, value, where, None, depth + 1)
            except ValueProblem as p:
                if p.where != where:
                    raise
                self._fail(info, where, hint, value, p.why)  # name the newtype, not its inside
            return
        self._fields(info, fields, value, where, hint, depth)

    def _fields(
        self,
        info: TypeInfo,
        fields: Sequence[Any],
        value: Any,
        where: str,
        hint: str | None,
        depth: int,
    ) -> None:
        if all(f.name for f in fields):
            if not isinstance(value, Mapping):
                self._fail(info, where, hint, value, "give a dict of fields")
            names = [f.name for f in fields]
            missing = [n for n in names if n not in value]
            extra = [str(k) for k in value if k not in names]
            if missing or extra:
                why = f"missing field(s) {missing}" if missing else f"unknown field(s) {extra}"
                self._fail(info, where, hint, value, f"{why}; fields are {names}")
            for f in fields:
                self.encode(f.type_id, value[f.name], f"{where}.{f.name}", f.type_name, depth + 1)
            return
        if len(fields) == 1:
            self.encode(fields[0].type_id, value, where, fields[0].type_name, depth + 1)
            return
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            self._fail(info, where, hint, value, f"give a list of {len(fields)} values")
        if len(value) != len(fields):
            self._fail(info, where, hint, value, f"needs {len(fields)} values, got {len(value)}")
        for i, (f, item) in enumerate(zip(fields, value, strict=True)):
            self.encode(f.type_id, item, f"{where}[{i}]", f.type_name, depth + 1)

    def _account(self, info: TypeInfo, value: Any, where: str, hint: str | None) -> bytes:
        if isinstance(value, str) and not value.startswith("0x"):
            if value.startswith("//") or value.lower() in DEV_ACCOUNTS:
                return bytes(dev_account(value))  # development accounts by name: alice, //Bob
            try:
                account = bytes.fromhex(ss58_decode(value))
            except (ValueError, IndexError) as exc:
                raise ValueProblem(
                    where, info.id, hint, value,
                    f"bad SS58 address: {exc}; give SS58, 0x-hex, 32 bytes or a dev name (alice)",
                ) from None
            if len(account) != ACCOUNT_ID_LEN:
                self._fail(info, where, hint, value, "SS58 address is not a 32-byte account")
            return account
        raw = to_bytes(value)
        if raw is None or len(raw) != ACCOUNT_ID_LEN:
            self._fail(info, where, hint, value, "give SS58, 0x-hex or 32 bytes")
        return raw

    def _variant(
        self, info: TypeInfo, value: Any, where: str, hint: str | None, depth: int
    ) -> None:
        by_name = {v.name: v for v in info.variants}
        if self.reg.is_option(info):
            if value is None or (isinstance(value, Mapping) and set(value) == {"None"}):
                self.out.append(by_name["None"].index)
                return
            if isinstance(value, Mapping) and set(value) == {"Some"}:
                value = value["Some"]
            some = by_name["Some"]
            self.out.append(some.index)
            try:
                self._fields(info, some.fields, value, where, hint, depth)
            except ValueProblem as p:
                if p.where != where:
                    raise
                # a bare value that fits neither None nor the payload: report the Option itself
                self._fail(info, where, hint, value, p.why)
            return
        if isinstance(value, str):
            name, payload = value, None
        elif isinstance(value, Mapping) and len(value) == 1:
            ((name, payload),) = value.items()
        else:
            names = list(by_name)
            self._fail(info, where, hint, value, f"give one of {names} (or a 1-key dict)")
        variant = by_name.get(name)
        if variant is None:
            self._fail(info, where, hint, value, f"unknown variant; variants are {list(by_name)}")
        self.out.append(variant.index)
        if not variant.fields:
            if payload not in (None, {}, [], ()):
                self._fail(info, where, hint, value, f"variant {name} takes no value")
            return
        self._fields(info, variant.fields, payload, f"{where}.{name}", hint, depth)


def to_bytes(value: Any) -> bytes | None:
    """0x-hex string, bytes-like or a list of ints 0..255 → bytes; anything else → None."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        if not value.startswith(("0x", "0X")):
            return None
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            return None
    if isinstance(value, list | tuple) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        return bytes(value)
    return None
