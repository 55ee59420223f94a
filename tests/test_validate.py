"""Upload-time checks of contract wasm (phat_runtime.wasm.validate), one WAT module per rule."""

from __future__ import annotations

import random
import time

import pytest
import wasmtime

from phat_runtime.errors import (
    BadExports,
    BadImports,
    BadMemory,
    ConfigError,
    FloatInstructions,
    MalformedModule,
    ModuleError,
    ModuleTooLarge,
)
from phat_runtime.wasm.abi import MAX_CODE_SIZE, MAX_MEMORY_PAGES
from phat_runtime.wasm.validate import ModuleInfo, validate_module

# No `$names` in the base contract: wat2wasm would add a `name` custom section at the end, and
# the truncation test wants every cut to land inside a section that matters.
CONTRACT = """
(module
  (import "seal0" "seal_return" (func (param i32 i32 i32)))
  (import "seal0" "input" (func (param i32 i32)))
  (import "env" "memory" (memory 2 16))
  (func (export "deploy"))
  (func (export "call")
    (i32.store (i32.const 0) (i32.const 16384))
    (call 1 (i32.const 4) (i32.const 0))
    (call 0 (i32.const 0) (i32.const 4) (i32.load (i32.const 0))))
)
"""


def wasm(wat: str) -> bytes:
    return bytes(wasmtime.wat2wasm(wat))


def contract(body: str = "", *, imports: str = "", memory: str = "(memory 2 16)") -> bytes:
    """A valid contract with extra module fields; ``memory`` replaces the env.memory limits."""
    return wasm(
        f"""(module
          {imports}
          (import "env" "memory" {memory})
          (func (export "deploy"))
          (func (export "call"))
          {body})"""
    )


def custom_section(name: bytes, payload: bytes) -> bytes:
    content = leb(len(name)) + name + payload
    return b"\x00" + leb(len(content)) + content


def leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def section_boundaries(code: bytes) -> set[int]:
    """Offsets where a section starts or the module ends (independent of the code under test)."""
    pos, bounds = 8, {8}
    while pos < len(code):
        pos += 1
        size = shift = 0
        while True:
            b = code[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        pos += size
        bounds.add(pos)
    return bounds


# --- the happy path --------------------------------------------------------------------------


def test_minimal_contract_passes() -> None:
    code = wasm(CONTRACT)
    assert validate_module(code, deterministic=True) == ModuleInfo(
        imports=(("seal0", "seal_return"), ("seal0", "input")),
        memory_min=2,
        memory_max=16,
        has_floats=False,
        code_size=len(code),
    )


def test_explicit_engine_and_bytearray_accepted() -> None:
    info = validate_module(bytearray(wasm(CONTRACT)), engine=wasmtime.Engine())
    assert info.imports[1] == ("seal0", "input")


def test_legacy_entry_point_returning_i32_tolerated() -> None:
    code = wasm(
        """(module (import "env" "memory" (memory 1 1))
             (func (export "deploy") (result i32) (i32.const 0))
             (func (export "call")))"""
    )
    assert validate_module(code).memory_max == 1


def test_prefixed_alias_and_versioned_imports_accepted() -> None:
    code = contract(
        imports="""(import "seal0" "seal_input" (func (param i32 i32)))
                   (import "seal1" "get_storage" (func (param i32 i32 i32 i32) (result i32)))
                   (import "seal2" "set_storage" (func (param i32 i32 i32 i32) (result i32)))"""
    )
    assert validate_module(code).imports == (
        ("seal0", "seal_input"),
        ("seal1", "get_storage"),
        ("seal2", "set_storage"),
    )


# --- size and well-formedness ----------------------------------------------------------------


def test_too_large() -> None:
    code = wasm(CONTRACT)
    padded = code + custom_section(b"padding", bytes(MAX_CODE_SIZE))
    with pytest.raises(ModuleTooLarge, match=rf"{len(padded)} bytes.*{MAX_CODE_SIZE}"):
        validate_module(padded)


def test_exactly_max_size_is_not_too_large() -> None:
    code = wasm(CONTRACT)
    for overhead in range(3, 8):  # section id + size LEB + name
        padded = code + custom_section(b"p", bytes(MAX_CODE_SIZE - len(code) - overhead))
        if len(padded) == MAX_CODE_SIZE:
            break
    assert len(padded) == MAX_CODE_SIZE
    assert validate_module(padded).code_size == MAX_CODE_SIZE


def test_truncated_module_is_malformed_at_every_cut() -> None:
    code = wasm(CONTRACT)
    bounds = section_boundaries(code)
    for cut in range(len(code)):
        if cut in bounds:
            # A cut between sections leaves a well-formed but incomplete module: it must
            # still be refused, by whichever rule it breaks first.
            with pytest.raises(ModuleError):
                validate_module(code[:cut])
            continue
        with pytest.raises(MalformedModule) as exc:
            validate_module(code[:cut])
        assert "offset" in str(exc.value) or "wasm" in str(exc.value)


def test_truncation_names_the_section() -> None:
    code = wasm(CONTRACT)
    with pytest.raises(MalformedModule, match=r"section .*truncated|truncated"):
        validate_module(code[:-3])


@pytest.mark.parametrize(
    ("garbage", "hint"),
    [
        (b"", "magic"),
        (b"hello, world", "magic"),
        (b"\0asm", "version"),
        (b"\0asm\x0d\0\x01\0", "component"),
        (b"0x0061736d01000000", "hex"),
        (b'{"source": {"wasm": "0x00"}}', "JSON"),
        (bytes(random.Random(7).randrange(256) for _ in range(64)), "magic"),
    ],
)
def test_garbage_bytes(garbage: bytes, hint: str) -> None:
    with pytest.raises(MalformedModule, match=hint):
        validate_module(garbage)


def test_unknown_section_id() -> None:
    with pytest.raises(MalformedModule, match=r"unknown section id 42.*0x8"):
        validate_module(wasm(CONTRACT)[:8] + b"\x2a\x00")


def test_code_must_be_bytes() -> None:
    with pytest.raises(ConfigError, match="bytes, got str"):
        validate_module("0061736d01000000")  # type: ignore[arg-type]


def test_engine_rejection_is_translated() -> None:
    code = contract("(func (result i32) (i32.add (i32.const 1)))")
    with pytest.raises(MalformedModule, match=r"invalid wasm module") as exc:
        validate_module(code)
    assert isinstance(exc.value.__cause__, wasmtime.WasmtimeError)


def test_initial_above_declared_maximum_is_invalid_wasm() -> None:
    # wasm validation itself forbids min > max, so the engine refuses it before our memory
    # rule sees it (pallet-contracts also fails it at module load).
    with pytest.raises(MalformedModule, match=r"minimum"):
        validate_module(contract(memory="(memory 16 1)"))


def test_unsupported_proposal_is_refused() -> None:
    code = contract("(func try_table end)")
    with pytest.raises(MalformedModule, match=r"unsupported wasm feature.*0x1f"):
        validate_module(code)


# --- exports ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('(func (export "helper"))', r"`helper` \(function\)"),
        ('(global (export "__data_end") i32 (i32.const 1024))', r"`__data_end` \(global\)"),
        ('(export "memory" (memory 0))', r"`memory` \(memory\)"),
        ('(table (export "table") 1 funcref)', r"`table` \(table\)"),
    ],
)
def test_extra_export(extra: str, named: str) -> None:
    with pytest.raises(BadExports, match=named) as exc:
        validate_module(contract(extra))
    message = str(exc.value)
    assert "--export=call" in message and "--export-dynamic" in message


def test_cdylib_exports_all_named() -> None:
    code = contract(
        """(global (export "__data_end") i32 (i32.const 1024))
           (global (export "__heap_base") i32 (i32.const 2048))"""
    )
    with pytest.raises(BadExports, match=r"`__data_end` .*`__heap_base`"):
        validate_module(code)


def test_missing_call() -> None:
    code = wasm('(module (import "env" "memory" (memory 1 1)) (func (export "deploy")))')
    with pytest.raises(BadExports, match=r"missing export `call`"):
        validate_module(code)


def test_entry_point_exported_as_global_is_missing() -> None:
    code = wasm(
        """(module (import "env" "memory" (memory 1 1)) (func (export "deploy"))
             (global (export "call") i32 (i32.const 0)))"""
    )
    with pytest.raises(BadExports, match=r"`call` \(global\).*missing export `call`"):
        validate_module(code)


def test_entry_point_with_parameters() -> None:
    code = wasm(
        """(module (import "env" "memory" (memory 1 1)) (func (export "deploy"))
             (func (export "call") (param i32)))"""
    )
    with pytest.raises(BadExports, match=r"`call` has type \(i32\) -> \(\)"):
        validate_module(code)


def test_start_function() -> None:
    with pytest.raises(BadExports, match=r"start function"):
        validate_module(contract("(func) (start 2)"))


# --- memory ----------------------------------------------------------------------------------


def test_own_memory() -> None:
    code = wasm('(module (memory 2 16) (func (export "deploy")) (func (export "call")))')
    with pytest.raises(BadMemory, match=r"No memory import found.*--import-memory"):
        validate_module(code)


def test_no_memory_at_all() -> None:
    code = wasm('(module (func (export "deploy")) (func (export "call")))')
    with pytest.raises(BadMemory, match=r"No memory import found"):
        validate_module(code)


def test_memory_maximum_above_limit() -> None:
    with pytest.raises(BadMemory, match=rf"maximum of 65 pages.*{MAX_MEMORY_PAGES} pages"):
        validate_module(contract(memory="(memory 2 65)"))


def test_memory_without_maximum_gets_the_limit() -> None:
    info = validate_module(contract(memory="(memory 3)"))
    assert (info.memory_min, info.memory_max) == (3, MAX_MEMORY_PAGES)


def test_memory_without_maximum_initial_above_limit() -> None:
    with pytest.raises(BadMemory, match=r"65 initial pages.*64 pages"):
        validate_module(contract(memory="(memory 65)"))


def test_memory_imported_under_another_name() -> None:
    code = wasm(
        """(module (import "env" "mem" (memory 2 16))
             (func (export "deploy")) (func (export "call")))"""
    )
    with pytest.raises(BadMemory, match=r"`env.mem`.*`env.memory`"):
        validate_module(code)


def test_two_memories() -> None:
    code = contract(imports='(import "env" "memory2" (memory 1 1))')
    with pytest.raises(BadMemory, match=r"2 memories"):
        validate_module(code)


@pytest.mark.parametrize(
    ("memory", "kind"), [("(memory 1 1 shared)", "shared"), ("(memory i64 1 1)", "64-bit")]
)
def test_exotic_memory(memory: str, kind: str) -> None:
    with pytest.raises(BadMemory, match=kind):
        validate_module(contract(memory=memory))


# --- imports ---------------------------------------------------------------------------------


def test_unknown_imports_all_named() -> None:
    code = contract(
        imports="""(import "seal0" "foo" (func))
                   (import "seal0" "input" (func (param i32 i32)))
                   (import "seal3" "bar" (func (param i32)))"""
    )
    with pytest.raises(BadImports, match=r"seal0.foo, seal3.bar"):
        validate_module(code)


def test_env_function_import() -> None:
    code = contract(imports='(import "env" "abort" (func))')
    with pytest.raises(BadImports, match=r"env.abort.*undefined symbols"):
        validate_module(code)


def test_wrong_signature() -> None:
    code = contract(imports='(import "seal0" "input" (func (param i64)))')
    with pytest.raises(
        BadImports, match=r"seal0.input` expected \(i32, i32\) -> \(\), found \(i64\) -> \(\)"
    ):
        validate_module(code)


@pytest.mark.parametrize(
    ("imp", "kind"),
    [
        ('(import "env" "__indirect_function_table" (table 1 funcref))', "table"),
        ('(import "env" "__stack_pointer" (global (mut i32)))', "global"),
        ('(import "seal0" "oops" (tag))', "tag"),
    ],
)
def test_non_function_import(imp: str, kind: str) -> None:
    with pytest.raises(BadImports, match=rf"\({kind}\)"):
        validate_module(contract(imports=imp))


# --- floats ----------------------------------------------------------------------------------

FLOAT_CASES = [
    ("(func (drop (f32.add (unreachable) (unreachable))))", "f32.add"),
    ("(func (drop (f32.abs (unreachable))))", "f32.abs"),
    ("(func (drop (f64.const 1.5)))", "f64.const"),
    ("(func (drop (i32.trunc_f32_s (unreachable))))", "i32.trunc_f32_s"),
    ("(func (drop (f32.convert_i32_s (i32.const 1))))", "f32.convert_i32_s"),
    ("(func (drop (f64.load (i32.const 0))))", "f64.load"),
    ("(func (f32.store (i32.const 0) (unreachable)))", "f32.store"),
    ("(func (drop (i64.reinterpret_f64 (unreachable))))", "i64.reinterpret_f64"),
    ("(func (drop (f64.lt (unreachable) (unreachable))))", "f64.lt"),
    ("(func (local f32))", "local of type f32"),
    ("(func (param f64))", r"signature \(f64\) -> \(\)"),
    ("(type (func (param f32)))", r"type 0 \(f32\) -> \(\)"),
    ("(global f64 (f64.const 0))", "global 0 of type f64"),
    ("(func (drop (i32.trunc_sat_f32_s (unreachable))))", "i32.trunc_sat_f32_s"),
    ("(func (drop (i64.trunc_sat_f64_u (unreachable))))", "i64.trunc_sat_f64_u"),
    ("(func (drop (block (result f32) (unreachable))))", "block with a f32 result"),
    ("(func (drop (v128.const i64x2 0 0)))", "SIMD"),
]


@pytest.mark.parametrize(("body", "named"), FLOAT_CASES)
def test_floats_detected_and_allowed_when_not_deterministic(body: str, named: str) -> None:
    assert validate_module(contract(body)).has_floats


@pytest.mark.parametrize(("body", "named"), FLOAT_CASES)
def test_floats_rejected_when_deterministic(body: str, named: str) -> None:
    with pytest.raises(FloatInstructions, match=named):
        validate_module(contract(body), deterministic=True)


def test_float_error_names_the_first_function() -> None:
    code = contract(
        """(func (drop (i32.const 1)))
           (func (drop (i64.const 2)) (drop (f64.sqrt (f64.const 4))))
           (func (drop (f32.const 3)))"""
    )
    with pytest.raises(FloatInstructions, match=r"f64.const in function 3 at offset 0x[0-9a-f]+"):
        validate_module(code, deterministic=True)


INTEGER_ONLY = """
  (type $binop (func (param i32 i32) (result i32)))
  (table $t 2 funcref)
  (elem (table $t) (i32.const 0) func $add $sub)
  (global $g (mut i32) (i32.const 7))
  (data $d "hello")
  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $everything (param $x i32) (result i64) (local $acc i64) (local $i i32)
    (loop $top
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
      (br_if $top (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                            (i32.const 1000000))))
    (block $a (block $b (block $c
      (br_table $a $b $c (local.get $x)))
      (global.set $g (i32.const -1)))
      (drop (call_indirect (type $binop) (i32.const 1) (i32.const 2) (i32.const 1))))
    (memory.copy (i32.const 0) (i32.const 16) (i32.const 8))
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 64))
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 5))
    (data.drop $d)
    (drop (select (local.get $x) (i32.const 1) (i32.eqz (local.get $x))))
    (drop (select (result i64) (i64.const -1) (i64.const 1) (local.get $x)))
    (drop (i32.extend8_s (i32.wrap_i64 (i64.rotl (i64.const 0x7fffffffffffffff) (i64.const 3)))))
    (drop (memory.grow (memory.size)))
    (i64.store32 offset=1024 align=2 (i32.const 0) (i64.load8_u offset=70000 (i32.const 0)))
    (drop (if (result i32) (local.get $x) (then (i32.const 1)) (else (i32.const 2))))
    i32.const 5 block (param i32) (result i32 i32) i32.const 6 end drop drop
    (drop (ref.is_null (ref.func $add)))
    (drop (table.size $t))
    (drop (table.get $t (i32.const 0)))
    (drop (i32.atomic.load (i32.const 0)))
    (if (i32.eqz (local.get $x)) (then (unreachable)))
    (nop)
    (return (i64.div_s (local.get $acc) (i64.extend_i32_s (global.get $g)))))
"""


def test_integer_only_module_is_not_flagged() -> None:
    info = validate_module(contract(INTEGER_ONLY), deterministic=True)
    assert not info.has_floats


# --- robustness and speed --------------------------------------------------------------------


def test_random_byte_flips_raise_only_module_errors() -> None:
    base = contract(INTEGER_ONLY)
    rng = random.Random(20240611)
    outcomes: dict[str, int] = {}
    for _ in range(400):
        mutated = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            validate_module(bytes(mutated), deterministic=rng.random() < 0.5)
            outcome = "ok"
        except ModuleError as err:
            outcome = type(err).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("MalformedModule", 0) > 0


# ~1.9 MiB of straight-line integer code: the worst case for the float scan.
LARGE_BODY = (
    "(i32.store offset=16 (local.get 0)"
    " (i32.add (i32.load offset=8 (local.get 0)) (i32.const 12345)))\n"
)


def test_near_max_size_module_validates_quickly() -> None:
    code = contract(f"(func (param i32) {LARGE_BODY * 125_000})")
    assert MAX_CODE_SIZE * 0.85 < len(code) <= MAX_CODE_SIZE
    started = time.perf_counter()
    info = validate_module(code, deterministic=True)
    elapsed = time.perf_counter() - started
    assert not info.has_floats
    # Measured ~0.2 s; the bound only catches an accidental quadratic or per-byte slowdown.
    assert elapsed < 2.0, f"validating {len(code)} bytes took {elapsed:.2f} s"
