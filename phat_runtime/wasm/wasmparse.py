"""A small reader for the WebAssembly binary format: just what contract validation needs.

Owns: decoding a core module's structure (types, imports, functions, tables, memories,
globals, exports, start, code bodies) into plain dataclasses, and a linear scan of
instruction streams that skips every immediate to find the first float or SIMD use.

Must not: decide whether a module is an acceptable contract (``validate.py`` does), import
wasmtime, or type-check code (wasmtime validates; this reader only needs to be right on
modules wasmtime accepts and to fail cleanly on everything else). Every failure is a
:class:`MalformedModule` that says which section and offset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from phat_runtime.errors import MalformedModule

MAGIC = b"\0asm"
VERSION = b"\x01\0\0\0"
HEADER_SIZE = 8

SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
    6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data",
    12: "datacount", 13: "tag",
}  # fmt: skip

VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
            0x70: "funcref", 0x6F: "externref"}  # fmt: skip
#: Value types whose arithmetic is not bit-for-bit reproducible across machines (NaN bits).
NONDETERMINISTIC_TYPES = frozenset({"f32", "f64", "v128"})
_NONDET_TYPE_BYTES = frozenset({0x7D, 0x7C, 0x7B})
# Bytes that start a GC / typed-function-reference type: valid for wasmtime, but beyond what
# pallet-contracts (wasmi) or this reader understands.
_GC_TYPE_BYTES = frozenset(range(0x64, 0x6F)) | frozenset(range(0x71, 0x75)) | {0x63}


class ExternKind(IntEnum):
    FUNC = 0
    TABLE = 1
    MEMORY = 2
    GLOBAL = 3
    TAG = 4


@dataclass(frozen=True)
class FuncType:
    params: tuple[str, ...]
    results: tuple[str, ...]

    def __str__(self) -> str:
        return f"({', '.join(self.params)}) -> ({', '.join(self.results)})"


@dataclass(frozen=True)
class Limits:
    minimum: int
    maximum: int | None
    shared: bool = False
    index64: bool = False
    page_size_log2: int | None = None  # custom-page-sizes proposal


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: ExternKind
    type_index: int = -1  # FUNC and TAG
    limits: Limits | None = None  # MEMORY and TABLE


@dataclass(frozen=True)
class Export:
    name: str
    kind: ExternKind
    index: int


@dataclass(frozen=True)
class Global:
    valtype: str
    mutable: bool
    offset: int
    float_in_init: int | None  # offset of a float/SIMD instruction in the init expression


@dataclass(frozen=True)
class Body:
    locals: tuple[tuple[int, str], ...]  # (count, valtype) runs, as encoded
    offset: int  # start of the body (its locals)
    expr_start: int
    end: int


@dataclass
class Module:
    data: bytes
    types: list[FuncType] = field(default_factory=list)
    type_offsets: list[int] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    functions: list[int] = field(default_factory=list)  # type index of each defined function
    tables: list[Limits] = field(default_factory=list)
    memories: list[Limits] = field(default_factory=list)
    globals: list[Global] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    bodies: list[Body] = field(default_factory=list)

    @property
    def imported_function_count(self) -> int:
        return sum(1 for imp in self.imports if imp.kind is ExternKind.FUNC)

    def function_type(self, index: int) -> FuncType:
        """Type of function ``index`` in the function index space (imports first)."""
        imported = [imp.type_index for imp in self.imports if imp.kind is ExternKind.FUNC]
        type_index = (
            imported[index] if index < len(imported) else self.functions[index - len(imported)]
        )
        return self.types[type_index]


@dataclass(frozen=True)
class FloatUse:
    """Where a module first uses floats or SIMD."""

    function: int | None  # function index space; None outside functions
    what: str  # "f32.add", "local of type f64", "signature (f32) -> ()", ...
    offset: int


# --- reading primitives ----------------------------------------------------------------------


class Reader:
    """A cursor over ``data[pos:end]`` that says where it is (``section``) in every error."""

    __slots__ = ("data", "end", "pos", "section")

    def __init__(self, data: bytes, pos: int, end: int, section: str) -> None:
        self.data, self.pos, self.end, self.section = data, pos, end, section

    def error(self, what: str, at: int | None = None) -> MalformedModule:
        where = self.pos if at is None else at
        return MalformedModule(f"malformed wasm: {what} in {self.section} at offset {where:#x}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.error("unexpected end of data (truncated module?)")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self, bits: int = 32) -> int:
        start, result, shift = self.pos, 0, 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift >= bits:
                raise self.error(f"LEB128 integer longer than {bits} bits", start)
        if result >> bits:
            raise self.error(f"LEB128 integer does not fit in {bits} bits", start)
        return result

    def raw(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise self.error(f"{n} bytes expected, only {self.end - self.pos} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def name(self) -> str:
        at = self.pos
        try:
            return self.raw(self.uleb()).decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("name is not valid UTF-8", at) from None

    def valtype(self) -> str:
        at = self.pos
        b = self.byte()
        if b in VALTYPES:
            return VALTYPES[b]
        if b in _GC_TYPE_BYTES:
            raise unsupported("GC / typed function reference types", at, self.section)
        raise self.error(f"unknown value type {b:#04x}", at)

    def reftype(self) -> str:
        kind = self.valtype()
        if kind not in ("funcref", "externref"):
            raise self.error(f"{kind} is not a reference type", self.pos - 1)
        return kind

    def limits(self) -> Limits:
        at = self.pos
        flags = self.byte()
        if flags & ~0x0F:
            raise self.error(f"unknown limits flags {flags:#04x}", at)
        bits = 64 if flags & 4 else 32
        minimum = self.uleb(bits)
        maximum = self.uleb(bits) if flags & 1 else None
        page_size_log2 = self.uleb() if flags & 8 else None
        return Limits(minimum, maximum, bool(flags & 2), bool(flags & 4), page_size_log2)


def unsupported(feature: str, at: int, section: str) -> MalformedModule:
    return MalformedModule(
        f"unsupported wasm feature: {feature} in {section} at offset {at:#x}; "
        "contracts may use wasm MVP plus sign-extension and bulk-memory instructions "
        "(build with cargo-contract's defaults)"
    )


# --- sections --------------------------------------------------------------------------------


def parse(data: bytes) -> Module:
    """Decode the module structure. Function bodies are located, not decoded."""
    _check_header(data)
    module = Module(data)
    pos = HEADER_SIZE
    while pos < len(data):
        head = Reader(data, pos, len(data), "a section header")
        section_id = head.byte()
        size = head.uleb()
        name = SECTION_NAMES.get(section_id)
        if name is None:
            raise head.error(f"unknown section id {section_id}", pos)
        start, end = head.pos, head.pos + size
        if end > len(data):
            raise MalformedModule(
                f"malformed wasm: the {name} section at offset {pos:#x} declares {size} bytes "
                f"but only {len(data) - start} remain (truncated module?)"
            )
        section_parser = _SECTION_PARSERS.get(section_id)
        if section_parser is not None:
            r = Reader(data, start, end, f"the {name} section")
            section_parser(r, module)
            if r.pos != end:
                raise r.error(f"{end - r.pos} bytes left over at the end of the section")
        pos = end
    if len(module.functions) != len(module.bodies):
        raise MalformedModule(
            f"malformed wasm: the function section declares {len(module.functions)} functions "
            f"but the code section has {len(module.bodies)} bodies"
        )
    return module


def _check_header(data: bytes) -> None:
    if data[:4] != MAGIC:
        hint = "pass the contract's .wasm bytes"
        if data[:2] in (b"0x", b"00"):
            hint = "this looks like hex text; decode it to bytes first"
        elif data[:1] == b"{":
            hint = "this looks like JSON (a .contract bundle?); pass its `source.wasm` bytes"
        raise MalformedModule(
            f"not a wasm module: expected magic bytes 00 61 73 6d at offset 0x0, "
            f"found {data[:4].hex(' ') or 'nothing'}; {hint}"
        )
    if data[4:8] != VERSION:
        raise MalformedModule(
            f"unsupported wasm binary version {data[4:8].hex(' ')} at offset 0x4 "
            "(expected 01 00 00 00; a wasm component or a truncated header?)"
        )


def _type_section(r: Reader, m: Module) -> None:
    for _ in range(r.uleb()):
        at = r.pos
        form = r.byte()
        if form != 0x60:
            if form in (0x4E, 0x50, 0x4F, 0x5F, 0x5E):
                raise unsupported("GC type definitions", at, r.section)
            raise r.error(f"unknown type form {form:#04x}", at)
        params = tuple(r.valtype() for _ in range(r.uleb()))
        results = tuple(r.valtype() for _ in range(r.uleb()))
        m.types.append(FuncType(params, results))
        m.type_offsets.append(at)


def _import_section(r: Reader, m: Module) -> None:
    for _ in range(r.uleb()):
        module, name = r.name(), r.name()
        at = r.pos
        kind = r.byte()
        if kind == ExternKind.FUNC:
            m.imports.append(Import(module, name, ExternKind.FUNC, type_index=r.uleb()))
        elif kind == ExternKind.TABLE:
            r.reftype()
            m.imports.append(Import(module, name, ExternKind.TABLE, limits=r.limits()))
        elif kind == ExternKind.MEMORY:
            m.imports.append(Import(module, name, ExternKind.MEMORY, limits=r.limits()))
        elif kind == ExternKind.GLOBAL:
            r.valtype()
            r.byte()  # mutability
            m.imports.append(Import(module, name, ExternKind.GLOBAL))
        elif kind == ExternKind.TAG:
            r.byte()  # attribute: always 0 (exception)
            m.imports.append(Import(module, name, ExternKind.TAG, type_index=r.uleb()))
        else:
            raise r.error(f"unknown import kind {kind:#04x}", at)


def _function_section(r: Reader, m: Module) -> None:
    m.functions.extend(r.uleb() for _ in range(r.uleb()))


def _table_section(r: Reader, m: Module) -> None:
    for _ in range(r.uleb()):
        if r.pos < r.end and r.data[r.pos] == 0x40:  # table with an initializer expression
            r.raw(2)
            r.reftype()
            m.tables.append(r.limits())
            r.pos, _ = _const_expr(r)
        else:
            r.reftype()
            m.tables.append(r.limits())


def _memory_section(r: Reader, m: Module) -> None:
    m.memories.extend(r.limits() for _ in range(r.uleb()))


def _global_section(r: Reader, m: Module) -> None:
    for _ in range(r.uleb()):
        at = r.pos
        valtype = r.valtype()
        mutable = r.byte() == 1
        r.pos, float_at = _const_expr(r)
        m.globals.append(Global(valtype, mutable, at, float_at))


def _export_section(r: Reader, m: Module) -> None:
    for _ in range(r.uleb()):
        name = r.name()
        at = r.pos
        kind = r.byte()
        if kind > ExternKind.TAG:
            raise r.error(f"unknown export kind {kind:#04x}", at)
        m.exports.append(Export(name, ExternKind(kind), r.uleb()))


def _start_section(r: Reader, m: Module) -> None:
    m.start = r.uleb()


def _code_section(r: Reader, m: Module) -> None:
    for _ in range(r.uleb()):
        size = r.uleb()
        offset, end = r.pos, r.pos + size
        if end > r.end:
            raise r.error(f"function body of {size} bytes runs past the end of the section")
        body = Reader(r.data, offset, end, r.section)
        runs = tuple((body.uleb(), body.valtype()) for _ in range(body.uleb()))
        m.bodies.append(Body(runs, offset, body.pos, end))
        r.pos = end


_SECTION_PARSERS: dict[int, Callable[[Reader, Module], None]] = {
    1: _type_section, 2: _import_section, 3: _function_section, 4: _table_section,
    5: _memory_section, 6: _global_section, 7: _export_section, 8: _start_section,
    10: _code_section,
}  # fmt: skip


def _const_expr(r: Reader) -> tuple[int, int | None]:
    """Skip an initializer expression; return the position after its ``end``."""
    try:
        pos, float_at = scan_instructions(
            r.data, r.pos, r.end, stop_at_float=False, const_expr=True, section=r.section
        )
    except IndexError:
        raise r.error("truncated initializer expression") from None
    if pos < 0:
        raise r.error("initializer expression runs past the end of the section")
    return pos, float_at


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
        if b in _GC_TYPE_BYTES:
            raise unsupported("GC block types", at, section)
        return pos + 1, b in _NONDET_TYPE_BYTES
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
        if any(b in _GC_TYPE_BYTES for b in types):
            raise unsupported("GC types in select", at, section)
        return pos + count, any(b in _NONDET_TYPE_BYTES for b in types)
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


def first_float_use(module: Module) -> FloatUse | None:
    """The first float/SIMD use, function by function (signature, locals, code), then
    globals, then any other type. None if the module is integer-only."""
    data = module.data
    float_types = {
        i for i, t in enumerate(module.types)
        if NONDETERMINISTIC_TYPES.intersection(t.params + t.results)
    }  # fmt: skip
    base = module.imported_function_count
    for i, (type_index, body) in enumerate(zip(module.functions, module.bodies, strict=True)):
        index = base + i
        if type_index in float_types:
            signature = f"signature {module.types[type_index]}"
            return FloatUse(index, signature, body.offset)
        for _, valtype in body.locals:
            if valtype in NONDETERMINISTIC_TYPES:
                return FloatUse(index, f"local of type {valtype}", body.offset)
        try:
            _, at = scan_instructions(data, body.expr_start, body.end, stop_at_float=True)
        except IndexError:
            raise MalformedModule(
                f"malformed wasm: function {index} body is truncated at offset {body.end:#x}"
            ) from None
        if at is not None:
            return FloatUse(index, describe_float_instruction(data, at), at)
    for g_index, g in enumerate(module.globals):
        if g.valtype in NONDETERMINISTIC_TYPES:
            return FloatUse(None, f"global {g_index} of type {g.valtype}", g.offset)
        if g.float_in_init is not None:
            what = describe_float_instruction(data, g.float_in_init)
            return FloatUse(None, f"{what} in global {g_index}", g.float_in_init)
    if float_types:  # used only by blocks, call_indirect or nothing at all
        t_index = min(float_types)
        what = f"type {t_index} {module.types[t_index]}"
        return FloatUse(None, what, module.type_offsets[t_index])
    return None
