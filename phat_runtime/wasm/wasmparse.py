"""A small reader for the WebAssembly binary format: just what contract validation needs.

Owns: decoding a core module's structure (types, imports, functions, tables, memories,
globals, exports, start, code bodies) into plain dataclasses, and a linear scan of
instruction streams (``wasmscan.py``) to find the first float or SIMD use.

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
from phat_runtime.wasm.wasmscan import (
    GC_TYPE_BYTES,
    VALTYPES,
    describe_float_instruction,
    scan_instructions,
    unsupported,
)

MAGIC = b"\0asm"
VERSION = b"\x01\0\0\0"
HEADER_SIZE = 8

SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
    6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data",
    12: "datacount", 13: "tag",
}  # fmt: skip

#: Value types whose arithmetic is not bit-for-bit reproducible across machines (NaN bits).
NONDETERMINISTIC_TYPES = frozenset({"f32", "f64", "v128"})


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
        if b in GC_TYPE_BYTES:
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
