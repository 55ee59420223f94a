"""Benchmark: in-process QUERY of flipper `get` vs a bare wasmtime instantiate + call.

Both sides run the same module in the same process and the same run: the baseline is the
floor a Python host pays (fresh Store, memory, one Python function per import, instantiate,
call ``call``) with the thinnest host functions that make ``get`` work; ours is
``LocalCluster`` → Cluster.call in QUERY mode (overlays, frame host, metering, decoding).

    python bench/bench_query.py [--iterations N] [--json]

Prints both medians and the ratio (target ≤ 2.0). Numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime import LocalCluster  # noqa: E402
from phat_runtime.codec.metadata import ContractMetadata  # noqa: E402

FLIPPER = ROOT / "contracts_examples" / "flipper" / "flipper.contract"
_I32 = wasmtime.ValType.i32()
_I64 = wasmtime.ValType.i64()


class _Return(Exception):
    def __init__(self, data: bytes) -> None:
        self.data = data


def bare_runner(wasm: bytes, input_data: bytes, storage: dict[bytes, bytes]) -> Callable[[], bytes]:
    """A minimal wasmtime host for one module: just enough semantics to run ``get``."""
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wasm)
    memory_type = next(i.type for i in module.imports if isinstance(i.type, wasmtime.MemoryType))

    def run() -> bytes:
        store = wasmtime.Store(engine)
        mem = wasmtime.Memory(store, memory_type)
        externs: list[Any] = []
        for imp in module.imports:
            ty = imp.type
            if isinstance(ty, wasmtime.MemoryType):
                externs.append(mem)
                continue
            assert isinstance(ty, wasmtime.FuncType)
            externs.append(wasmtime.Func(store, ty, _stub(imp.name or "", ty, mem, store, input_data, storage)))
        instance = wasmtime.Instance(store, module, externs)
        call = instance.exports(store)["call"]
        assert isinstance(call, wasmtime.Func)
        try:
            call(store)
        except _Return as ret:
            return ret.data
        return b""

    return run


def _stub(name: str, ty: wasmtime.FuncType, mem: wasmtime.Memory, store: wasmtime.Store,
          input_data: bytes, storage: dict[bytes, bytes]) -> Callable[..., Any]:
    def write_out(ptr: int, len_ptr: int, data: bytes) -> None:
        mem.write(store, data, ptr)
        mem.write(store, len(data).to_bytes(4, "little"), len_ptr)

    if name.endswith("seal_return"):
        def ret(_flags: int, ptr: int, length: int) -> None:
            raise _Return(bytes(mem.read(store, ptr, ptr + length)))
        return ret
    if name.endswith("input"):
        return lambda ptr, len_ptr: write_out(ptr, len_ptr, input_data)
    if name.endswith("value_transferred"):
        return lambda ptr, len_ptr: write_out(ptr, len_ptr, bytes(16))
    if name.endswith("get_storage"):
        def get(key_ptr: int, key_len: int, out_ptr: int, out_len_ptr: int) -> int:
            value = storage.get(bytes(mem.read(store, key_ptr, key_ptr + key_len)))
            if value is None:
                return 3
            write_out(out_ptr, out_len_ptr, value)
            return 0
        return get
    results = list(ty.results)
    return lambda *args: 0 if results else None


def _time_interleaved(a: Callable[[], Any], b: Callable[[], Any], iterations: int) -> tuple[list[float], list[float]]:
    """Alternate the two sides sample by sample, so machine noise hits both alike."""
    for _ in range(min(50, iterations)):
        a()  # warm-up: compile caches, allocator
        b()
    samples_a, samples_b = [], []
    clock = time.perf_counter
    for _ in range(iterations):
        start = clock()
        a()
        mid = clock()
        b()
        samples_a.append(mid - start)
        samples_b.append(clock() - mid)
    return samples_a, samples_b


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)

    cluster = LocalCluster()
    metadata = ContractMetadata.load(FLIPPER)
    flipper = cluster.deploy(metadata, "new", [True])
    assert flipper.query("get").output is True

    # The baseline sees exactly the storage the contract wrote.
    info = cluster.runtime.records.contract(flipper.address)
    assert info is not None and metadata.wasm is not None
    prefix = b"S" + flipper.address + info.trie_id
    storage = {key[len(prefix):]: value for key, value in cluster.runtime.state.iter_prefix(prefix)}
    get_input = metadata.encode_message("get")
    bare = bare_runner(metadata.wasm, get_input, storage)
    assert bare() == b"\x00\x01", bare()

    ours, base = _time_interleaved(lambda: flipper.query("get"), bare, args.iterations)
    result = {
        "iterations": args.iterations,
        "ours_median_us": statistics.median(ours) * 1e6,
        "bare_median_us": statistics.median(base) * 1e6,
        "ours_p99_us": sorted(ours)[int(len(ours) * 0.99) - 1] * 1e6,
        "bare_p99_us": sorted(base)[int(len(base) * 0.99) - 1] * 1e6,
    }
    result["ratio"] = result["ours_median_us"] / result["bare_median_us"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"flipper get — {args.iterations} iterations each, same process")
        print(f"  bare wasmtime instantiate+call : median {result['bare_median_us']:8.1f} µs   p99 {result['bare_p99_us']:8.1f} µs")
        print(f"  phat_runtime QUERY (LocalCluster): median {result['ours_median_us']:8.1f} µs   p99 {result['ours_p99_us']:8.1f} µs")
        print(f"  ratio ours/bare                : {result['ratio']:.2f}  (target ≤ 2.0)")
    return result


if __name__ == "__main__":
    main()
