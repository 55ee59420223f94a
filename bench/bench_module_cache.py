"""Benchmark: the module cache, cold vs warm, for a contract of about 1 MB.

A contract-shaped module (imports ``env.memory`` and ``seal0.seal_return``, exports ``deploy``
and ``call``) with enough generated functions to weigh ``--size-kb`` (default 1024) is made
here, deterministically. Three ways to get it ready to run, each in a fresh
:class:`~phat_runtime.wasm.engine.Engine` (as a new worker process would be):

- **cold**: an empty cache directory — wasmtime compiles it (Cranelift) and the artifact is
  written to the directory;
- **warm (disk)**: a new engine over the directory the cold run filled — the artifact is read,
  its digest checked and deserialized, nothing compiled (what a restarted worker or another
  query process pays);
- **hot (memory)**: the same engine again — an in-memory hit.

Then one ``call`` of the module through a fresh store, to show the artifact runs.

    python bench/bench_module_cache.py [--size-kb N] [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402

from phat_runtime.crypto.hashing import blake2_256  # noqa: E402
from phat_runtime.wasm.engine import Engine, EngineConfig  # noqa: E402

#: One generated function: a small loop of integer arithmetic over its parameter.
_FUNC = """
  (func $f{i} (param $x i32) (result i32) (local $a i32) (local $n i32)
    (local.set $a (i32.add (local.get $x) (i32.const {i})))
    (block $done (loop $again
      (br_if $done (i32.ge_u (local.get $n) (i32.const 3)))
      (local.set $a (i32.xor (i32.mul (local.get $a) (i32.const 16777619)) (i32.const {k})))
      (local.set $a (i32.add (i32.rotl (local.get $a) (i32.const 5)) (local.get $n)))
      (if (i32.eqz (i32.and (local.get $a) (i32.const 1)))
        (then (local.set $a (i32.sub (local.get $a) (i32.const {j}))))
        (else (local.set $a (i32.shr_u (local.get $a) (i32.const 3)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $again)))
    (i32.add (local.get $a) (i32.load (i32.const 0))))"""


def big_contract(size_kb: int) -> bytes:
    """A valid contract-shaped wasm module of at least ``size_kb`` KiB (deterministic)."""
    funcs: list[str] = []
    wasm = b""
    count = max(8, size_kb * 1024 // 130)  # ≈ 130 bytes of code per function; grown below if short
    while len(wasm) < size_kb * 1024:
        while len(funcs) < count:
            i = len(funcs)
            funcs.append(_FUNC.format(i=i, k=(i * 2654435761) & 0x7FFFFFFF, j=i % 97))
        calls = "".join(f"(drop (call $f{i} (i32.const {i})))" for i in range(0, len(funcs), max(1, len(funcs) // 64)))
        wat = ('(module (import "seal0" "seal_return" (func $ret (param i32 i32 i32)))'
               '(import "env" "memory" (memory 1 16))'
               + "".join(funcs)
               + f'(func (export "deploy")) (func (export "call") {calls} (call $ret (i32.const 0) (i32.const 0) (i32.const 0))))')
        wasm = wasmtime.wat2wasm(wat)
        count = int(count * 1.1) + 1
    return wasm


def _ms(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def run(size_kb: int = 1024, rounds: int = 3) -> dict[str, Any]:
    wasm = big_contract(size_kb)
    code_hash = blake2_256(wasm)
    cold, warm, hot = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="phat-bench-modules-") as tmp:
            first = Engine(EngineConfig(cache_dir=Path(tmp)))
            cold.append(_ms(lambda e=first: e.modules.get(code_hash, wasm)))
            assert first.modules.stats["compiles"] == 1
            second = Engine(EngineConfig(cache_dir=Path(tmp)))
            warm.append(_ms(lambda e=second: e.modules.get(code_hash, wasm)))
            assert second.modules.stats["disk_hits"] == 1 and second.modules.stats["compiles"] == 0
            hot.append(_ms(lambda e=second: e.modules.get(code_hash, wasm)))
            artifact = sum(f.stat().st_size for f in Path(tmp).rglob("*.cwasm"))
            runs = _runs(second, code_hash, wasm)
    cold_ms, warm_ms = statistics.median(cold), statistics.median(warm)
    return {"wasm_bytes": len(wasm), "artifact_bytes": artifact, "rounds": rounds,
            "cold_ms": cold_ms, "warm_ms": warm_ms, "hot_ms": statistics.median(hot),
            "cold_over_warm": cold_ms / warm_ms, "call_runs": runs}


def _runs(engine: Engine, code_hash: bytes, wasm: bytes) -> bool:
    """The cached artifact instantiates and ``call`` returns through ``seal_return``."""
    compiled = engine.modules.get(code_hash, wasm)
    store = wasmtime.Store(engine.wasmtime)
    store.set_fuel(10**9)
    store.set_epoch_deadline(10**6)
    linker = wasmtime.Linker(engine.wasmtime)
    returned: list[bool] = []

    def seal_return(_flags: int, _ptr: int, _len: int) -> None:
        returned.append(True)

    linker.define_func("seal0", "seal_return", wasmtime.FuncType([wasmtime.ValType.i32()] * 3, []), seal_return)
    assert compiled.memory_type is not None
    linker.define(store, "env", "memory", wasmtime.Memory(store, compiled.memory_type))
    call = linker.instantiate(store, compiled.module).exports(store)["call"]
    assert isinstance(call, wasmtime.Func)
    call(store)
    return returned == [True]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-kb", type=int, default=1024, help="size of the generated contract")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.size_kb, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"module cache, {result['wasm_bytes'] / 1e6:.2f} MB contract ({result['artifact_bytes'] / 1e6:.2f} MB "
              f"compiled), median of {args.rounds}: cold (compile) {result['cold_ms']:.0f} ms, warm (disk) "
              f"{result['warm_ms']:.1f} ms, hot (memory) {result['hot_ms']:.3f} ms; cold/warm "
              f"{result['cold_over_warm']:.0f}×; runs: {result['call_runs']}")
    return result


if __name__ == "__main__":
    main()
