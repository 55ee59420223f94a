"""Check a contract's wasm before anything runs: is it a module pallet-contracts would accept?

Owns: the upload-time rules of HOST-ABI.md §1 — code size, well-formedness (our reader, then
wasmtime's validator), exactly the exports ``deploy``/``call``, one imported ``env.memory``
within the page limit, only known host functions with their exact signatures, and the
float/SIMD scan that decides whether code may run deterministically. Each broken rule raises
its own :class:`ModuleError` subclass with a message saying what is wrong and how to fix it.

Must not: compile, instantiate or run the module, cache anything, or decide *where* code may
run (callers pass ``deterministic`` and read ``has_floats``). Pure function of the bytes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import wasmtime

from phat_runtime.errors import (
    BadExports,
    BadImports,
    BadMemory,
    ConfigError,
    FloatInstructions,
    MalformedModule,
    ModuleTooLarge,
)
from phat_runtime.wasm import wasmparse
from phat_runtime.wasm.abi import HOST_FUNCTIONS, MAX_CODE_SIZE, MAX_MEMORY_PAGES, REQUIRED_EXPORTS
from phat_runtime.wasm.wasmparse import ExternKind, FuncType

#: The one memory a contract imports (pallet-contracts hardcodes module "env").
MEMORY_IMPORT = ("env", "memory")
#: Entry points take nothing and return nothing; `() -> i32` is accepted for old contracts,
#: as pallet-contracts still does.
ENTRY_POINT_TYPES = (FuncType((), ()), FuncType((), ("i32",)))

_KIND_NAMES = {
    ExternKind.FUNC: "function",
    ExternKind.TABLE: "table",
    ExternKind.MEMORY: "memory",
    ExternKind.GLOBAL: "global",
    ExternKind.TAG: "tag",
}
_EXPORT_HINT = (
    "a contract exports exactly the functions `deploy` and `call`: link with "
    "`-C link-arg=--export=call -C link-arg=--export=deploy` and without "
    "`--export-dynamic` (cargo-contract does this)"
)
_MEMORY_HINT = "link with `-C link-arg=--import-memory` (cargo-contract does this)"


@dataclass(frozen=True)
class ModuleInfo:
    """What validation learned about an accepted module."""

    imports: tuple[tuple[str, str], ...]  # host functions imported, in import order
    memory_min: int  # pages
    memory_max: int  # pages: the declared maximum, or MAX_MEMORY_PAGES if none is declared
    has_floats: bool  # any float/SIMD instruction or type anywhere
    code_size: int


def validate_module(
    code: bytes | bytearray,
    *,
    deterministic: bool = False,
    engine: wasmtime.Engine | None = None,
) -> ModuleInfo:
    """Check ``code`` against the contract rules; return what the executor needs to know.

    Checks run in a fixed order (size, well-formedness, exports, memory, imports, floats)
    so the same bad module always gives the same error. With ``deterministic=True`` any
    float or SIMD use is refused (pallet-contracts' ``Determinism::Enforced``).
    """
    if not isinstance(code, bytes | bytearray):
        raise ConfigError(f"wasm code must be bytes, got {type(code).__name__}")
    code = bytes(code)
    if len(code) > MAX_CODE_SIZE:
        raise ModuleTooLarge(
            f"code is {len(code)} bytes, the limit is {MAX_CODE_SIZE} bytes "
            f"({MAX_CODE_SIZE // 2**20} MiB); "
            "build in release mode and let cargo-contract run wasm-opt"
        )
    module = wasmparse.parse(code)
    _validate_with_engine(code, engine or _default_engine())
    _check_exports(module)
    memory_min, memory_max = _check_memory(module)
    imports = _check_imports(module)
    float_use = wasmparse.first_float_use(module)
    if deterministic and float_use is not None:
        where = "" if float_use.function is None else f" in function {float_use.function}"
        raise FloatInstructions(
            f"deterministic code must not use floats or SIMD: found {float_use.what}{where} "
            f"at offset {float_use.offset:#x}; remove float arithmetic from the contract, or "
            "run it only in queries (non-deterministic)"
        )
    return ModuleInfo(
        imports=imports,
        memory_min=memory_min,
        memory_max=memory_max,
        has_floats=float_use is not None,
        code_size=len(code),
    )


@functools.cache
def _default_engine() -> wasmtime.Engine:
    # One shared engine: creating one costs far more than validating a small contract, and
    # wasmtime engines are safe to share between threads.
    return wasmtime.Engine()


def _validate_with_engine(code: bytes, engine: wasmtime.Engine) -> None:
    try:
        wasmtime.Module.validate(engine, code)
    except wasmtime.WasmtimeError as err:
        raise MalformedModule(f"invalid wasm module: {err}") from err


def _check_exports(module: wasmparse.Module) -> None:
    problems: list[str] = []
    found: set[str] = set()
    unexpected: list[str] = []
    for export in module.exports:
        if export.name not in REQUIRED_EXPORTS or export.kind is not ExternKind.FUNC:
            unexpected.append(f"`{export.name}` ({_KIND_NAMES[export.kind]})")
            continue
        found.add(export.name)
        ftype = module.function_type(export.index)
        if ftype not in ENTRY_POINT_TYPES:
            problems.append(f"`{export.name}` has type {ftype}, entry points must be () -> ()")
    if unexpected:
        problems.insert(0, f"unexpected exports {', '.join(unexpected)}")
    missing = sorted(REQUIRED_EXPORTS - found)
    if missing:
        problems.append(f"missing export {' and '.join(f'`{n}`' for n in missing)}")
    if problems:
        raise BadExports(f"bad exports: {'; '.join(problems)}; {_EXPORT_HINT}")
    if module.start is not None:
        # pallet-contracts instantiates with `ensure_no_start`, so such code can never run.
        raise BadExports(
            f"the module has a start function (function {module.start}); contracts must not "
            "have one (pallet-contracts refuses to instantiate it): their only entry points "
            "are `deploy` and `call`"
        )


def _check_memory(module: wasmparse.Module) -> tuple[int, int]:
    if module.memories:
        raise BadMemory(
            f"No memory import found: the module defines {len(module.memories)} memory of "
            f"its own; a contract must import its memory as `env.memory` — {_MEMORY_HINT}"
        )
    imported = [imp for imp in module.imports if imp.kind is ExternKind.MEMORY]
    if not imported:
        raise BadMemory(f"No memory import found: a contract imports `env.memory` — {_MEMORY_HINT}")
    if len(imported) > 1:
        names = ", ".join(f"`{imp.module}.{imp.name}`" for imp in imported)
        raise BadMemory(
            f"the module imports {len(imported)} memories ({names}); exactly one allowed"
        )
    memory = imported[0]
    if (memory.module, memory.name) != MEMORY_IMPORT:
        raise BadMemory(
            f"memory is imported as `{memory.module}.{memory.name}`; it must be imported as "
            "`env.memory` (module `env`, name `memory`)"
        )
    limits = memory.limits
    assert limits is not None  # the reader always sets limits on memory imports
    if limits.shared or limits.index64 or limits.page_size_log2 is not None:
        kind = "shared" if limits.shared else "64-bit" if limits.index64 else "custom-page-size"
        raise BadMemory(f"`env.memory` is a {kind} memory; contracts use a plain 32-bit memory")
    maximum = MAX_MEMORY_PAGES if limits.maximum is None else limits.maximum
    if maximum > MAX_MEMORY_PAGES:
        raise BadMemory(
            f"`env.memory` declares a maximum of {maximum} pages, the limit is "
            f"{MAX_MEMORY_PAGES} pages ({MAX_MEMORY_PAGES // 16} MiB); link with "
            f"`-C link-arg=--max-memory={MAX_MEMORY_PAGES * 65536}` or less"
        )
    if limits.minimum > maximum:
        declared = "declared maximum" if limits.maximum is not None else "limit"
        raise BadMemory(
            f"`env.memory` asks for {limits.minimum} initial pages, more than its {declared} "
            f"of {maximum} pages; lower `--initial-memory`"
        )
    return limits.minimum, maximum


def _check_imports(module: wasmparse.Module) -> tuple[tuple[str, str], ...]:
    functions: list[tuple[str, str]] = []
    not_functions: list[str] = []
    unknown: list[str] = []
    mismatched: list[str] = []
    for imp in module.imports:
        qualified = f"{imp.module}.{imp.name}"
        if imp.kind is ExternKind.MEMORY:
            continue  # checked by _check_memory
        if imp.kind is not ExternKind.FUNC:
            not_functions.append(f"`{qualified}` ({_KIND_NAMES[imp.kind]})")
            continue
        functions.append((imp.module, imp.name))
        spec = HOST_FUNCTIONS.get((imp.module, imp.name))
        found = module.types[imp.type_index]
        if spec is None:
            unknown.append(qualified)
        elif (spec.params, spec.results) != (found.params, found.results):
            expected = FuncType(spec.params, spec.results)
            mismatched.append(f"`{qualified}` expected {expected}, found {found}")
    problems: list[str] = []
    if not_functions:
        problems.append(
            f"imports {', '.join(not_functions)}; contracts may import only host functions "
            "and `env.memory` (no tables, globals or tags: link without `--import-table`)"
        )
    if unknown:
        env_hint = (
            " (`env.*` functions are usually undefined symbols the linker let through)"
            if any(name.startswith("env.") for name in unknown)
            else ""
        )
        problems.append(
            f"unknown host functions {', '.join(unknown)}{env_hint}; the host provides the "
            "seal0/seal1/seal2 functions of pallet-contracts (see wasm/abi.py HOST_FUNCTIONS)"
        )
    if mismatched:
        problems.append(f"wrong host function signatures: {'; '.join(mismatched)}")
    if problems:
        raise BadImports("bad imports: " + "; ".join(problems))
    return tuple(functions)
