"""Instruction-stream scanning for the wasm reader: skip every opcode's immediates, find the
first float or SIMD instruction, name it.

Owns the opcode tables. Must not parse module structure (``wasmparse.py`` does) or decide what
is acceptable (``validate.py``). Failures are :class:`MalformedModule`.
"""

from __future__ import annotations

from phat_runtime.errors import MalformedModule

VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
            0x70: "funcref", 0x6F: "externref"}  # fmt: skip

NONDET_TYPE_BYTES = frozenset({0x7D, 0x7C, 0x7B})

# Bytes that start a GC / typed-function-reference type: valid for wasmtime, but beyond what
# pallet-contracts (wasmi) or this reader understands.
GC_TYPE_BYTES = frozenset(range(0x64, 0x6F)) | frozenset(range(0x71, 0x75)) | {0x63}


def unsupported(feature: str, at: int, section: str) -> MalformedModule:
    return MalformedModule(
        f"unsupported wasm feature: {feature} in {section} at offset {at:#x}; "
        "contracts may use wasm MVP plus sign-extension and bulk-memory instructions "
        "(build with cargo-contract's defaults)"
    )


# --- instructions ----------------------------------------------------------------------------
# One byte per opcode says how to skip its immediates. Function bodies are scanned up to their
# known end offset, so no block nesting is tracked; initializer expressions cannot contain
# blocks, so their first `end` closes them.

_PLAIN, _LEB, _MEMARG, _END, _BLOCK, _LEB2, _BR_TABLE, _SELECT_T = range(8)
_PREFIX_FC, _PREFIX_FD, _PREFIX_FE, _UNSUPPORTED = range(8, 12)
_FLOAT, _FLOAT_MEMARG, _F32_CONST, _F64_CONST = range(12, 16)


def _kind_table(end_kind: int) -> bytes:
    table = bytearray([_UNSUPPORTED]) * 256
    spans = {
        _PLAIN: [(0x00, 0x01), (0x05, 0x05), (0x0F, 0x0F), (0x1A, 0x1B), (0x45, 0x5A),
                 (0x67, 0x8A), (0xA7, 0xA7), (0xAC, 0xAD), (0xC0, 0xC4), (0xD1, 0xD1)],
        _BLOCK: [(0x02, 0x04)],
        _LEB: [(0x0C, 0x0D), (0x10, 0x10), (0x12, 0x12), (0x20, 0x26), (0x3F, 0x42),
               (0xD0, 0xD0), (0xD2, 0xD2)],
        _LEB2: [(0x11, 0x11), (0x13, 0x13)],
        _BR_TABLE: [(0x0E, 0x0E)],
        _SELECT_T: [(0x1C, 0x1C)],
        _MEMARG: [(0x28, 0x29), (0x2C, 0x37), (0x3A, 0x3E)],
        _FLOAT_MEMARG: [(0x2A, 0x2B), (0x38, 0x39)],
        _F32_CONST: [(0x43, 0x43)],
        _F64_CONST: [(0x44, 0x44)],
        _FLOAT: [(0x5B, 0x66), (0x8B, 0xA6), (0xA8, 0xAB), (0xAE, 0xBF)],
        _PREFIX_FC: [(0xFC, 0xFC)],
        _PREFIX_FD: [(0xFD, 0xFD)],
        _PREFIX_FE: [(0xFE, 0xFE)],
    }  # fmt: skip
    for kind, ranges in spans.items():
        for lo, hi in ranges:
            table[lo : hi + 1] = bytes([kind]) * (hi - lo + 1)
    table[0x0B] = end_kind
    return bytes(table)


_BODY_KINDS = _kind_table(end_kind=_PLAIN)
_CONST_EXPR_KINDS = _kind_table(end_kind=_END)
# 0xFC sub-opcodes 0-7 are the saturating float->int truncations; 8-17 are bulk memory and
# table ops with this many LEB immediates.
_FC_SATURATING = 8
_FC_LEB_COUNT = {8: 2, 9: 1, 10: 2, 11: 1, 12: 2, 13: 1, 14: 2, 15: 1, 16: 1, 17: 1}
_ATOMIC_FENCE = 0x03


def _skip_leb(data: bytes, pos: int) -> int:
    while data[pos] & 0x80:
        pos += 1
    return pos + 1


def _read_leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _skip_memarg(data: bytes, pos: int) -> int:
    has_memory_index = data[pos] & 0x40  # multi-memory: bit 6 of the alignment field
    pos = _skip_leb(data, pos)
    if has_memory_index:
        pos = _skip_leb(data, pos)
    return _skip_leb(data, pos)


def _skip_simd(data: bytes, pos: int) -> int:
    sub, pos = _read_leb(data, pos)
    if sub <= 11 or sub in (92, 93):  # loads, stores, load-zero
        return _skip_memarg(data, pos)
    if sub in (12, 13):  # v128.const, i8x16.shuffle
        return pos + 16
    if 21 <= sub <= 34:  # extract/replace lane
        return pos + 1
    if 84 <= sub <= 91:  # load/store lane
        return _skip_memarg(data, pos) + 1
    return pos


def _skip_other(data: bytes, pos: int, kind: int, section: str) -> tuple[int, bool]:
    """Skip the immediates of a less frequent instruction; say whether it is a float one."""
    at = pos - 1
    if kind == _BLOCK:
        b = data[pos]
        if b & 0x80:  # multi-byte type index
            return _skip_leb(data, pos), False
        if b in GC_TYPE_BYTES:
            raise unsupported("GC block types", at, section)
        return pos + 1, b in NONDET_TYPE_BYTES
    if kind == _LEB2:
        return _skip_leb(data, _skip_leb(data, pos)), False
    if kind == _BR_TABLE:
        count, pos = _read_leb(data, pos)
        for _ in range(count + 1):
            pos = _skip_leb(data, pos)
        return pos, False
    if kind == _SELECT_T:
        count, pos = _read_leb(data, pos)
        types = data[pos : pos + count]
        if any(b in GC_TYPE_BYTES for b in types):
            raise unsupported("GC types in select", at, section)
        return pos + count, any(b in NONDET_TYPE_BYTES for b in types)
    if kind == _PREFIX_FC:
        sub, pos = _read_leb(data, pos)
        if sub < _FC_SATURATING:
            return pos, True
        if sub not in _FC_LEB_COUNT:
            raise unsupported(f"instruction 0xfc {sub}", at, section)
        for _ in range(_FC_LEB_COUNT[sub]):
            pos = _skip_leb(data, pos)
        return pos, False
    if kind == _PREFIX_FD:
        return _skip_simd(data, pos), True
    if kind == _PREFIX_FE:
        sub, pos = _read_leb(data, pos)
        return (pos + 1 if sub == _ATOMIC_FENCE else _skip_memarg(data, pos)), False
    if kind == _FLOAT:
        return pos, True
    if kind == _FLOAT_MEMARG:
        return _skip_memarg(data, pos), True
    if kind == _F32_CONST:
        return pos + 4, True
    if kind == _F64_CONST:
        return pos + 8, True
    raise unsupported(f"opcode {data[at]:#04x}", at, section)


def scan_instructions(
    data: bytes,
    pos: int,
    end: int,
    *,
    stop_at_float: bool,
    const_expr: bool = False,
    section: str = "the code section",
) -> tuple[int, int | None]:
    """Walk the instructions in ``data[pos:end]``, skipping every immediate.

    Returns (position reached, offset of the first float/SIMD instruction or None). A
    function body is walked to ``end``; a ``const_expr`` stops after its first ``end`` and
    returns position -1 if there is none. With ``stop_at_float`` the walk stops right after
    the first float instruction. Raises IndexError on truncated data and MalformedModule on
    an opcode this reader does not know (GC, exceptions, ...).
    """
    kinds = _CONST_EXPR_KINDS if const_expr else _BODY_KINDS
    first_float: int | None = None
    while pos < end:
        kind = kinds[data[pos]]
        pos += 1
        # The three kinds that make up most of compiled code are skipped inline: a call per
        # instruction would double the time this loop takes.
        if kind == _PLAIN:
            continue
        if kind == _LEB:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
            continue
        if kind == _MEMARG:
            if data[pos] & 0x40:  # multi-memory: one more LEB (memory index after alignment)
                pos = _skip_leb(data, pos)
            while data[pos] & 0x80:
                pos += 1
            pos += 1
            while data[pos] & 0x80:
                pos += 1
            pos += 1
            continue
        if kind == _END:
            return pos, first_float
        at = pos - 1
        pos, is_float = _skip_other(data, pos, kind, section)
        if is_float and first_float is None:
            first_float = at
            if stop_at_float:
                return pos, first_float
    return (-1 if const_expr else pos), first_float


# --- floats ----------------------------------------------------------------------------------


def _float_names() -> dict[int, str]:
    names = {0x2A: "f32.load", 0x2B: "f64.load", 0x38: "f32.store", 0x39: "f64.store",
             0x43: "f32.const", 0x44: "f64.const"}  # fmt: skip
    for base, t in ((0x5B, "f32"), (0x61, "f64")):
        for i, op in enumerate(("eq", "ne", "lt", "gt", "le", "ge")):
            names[base + i] = f"{t}.{op}"
    arith = ("abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt",
             "add", "sub", "mul", "div", "min", "max", "copysign")  # fmt: skip
    for base, t in ((0x8B, "f32"), (0x99, "f64")):
        for i, op in enumerate(arith):
            names[base + i] = f"{t}.{op}"
    conversions = [
        (0xA8, "i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u"),
        (0xAE, "i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u"
               " f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u"
               " f32.demote_f64 f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s"
               " f64.convert_i64_u f64.promote_f32 i32.reinterpret_f32 i64.reinterpret_f64"
               " f32.reinterpret_i32 f64.reinterpret_i64"),
    ]  # fmt: skip
    for base, ops in conversions:
        for i, op in enumerate(ops.split()):
            names[base + i] = op
    return names


_FLOAT_NAMES = _float_names()
_SATURATING_NAMES = [
    f"{i}.trunc_sat_{f}_{s}" for i in ("i32", "i64") for f in ("f32", "f64") for s in "su"
]


def describe_float_instruction(data: bytes, at: int) -> str:
    """Human name of the float/SIMD instruction at ``at`` (as found by the scanner)."""
    op = data[at]
    if op in _FLOAT_NAMES:
        return _FLOAT_NAMES[op]
    if op == 0xFC:
        return _SATURATING_NAMES[_read_leb(data, at + 1)[0]]
    if op == 0xFD:
        return f"SIMD instruction 0xfd {_read_leb(data, at + 1)[0]}"
    if op == 0x1C:
        return "select with a float/v128 type"
    names = {0x02: "block", 0x03: "loop", 0x04: "if"}
    return f"{names.get(op, hex(op))} with a {VALTYPES.get(data[at + 1], '?')} result"
