"""Benchmark: in-process QUERY of flipper `get` against the wasmtime-py floor, and RSS over many queries.

Three sides run the same module in the same process, interleaved batch by batch (see
``_time_interleaved`` for why batches):

- **floor**: what any Python host pays at least — an engine configured like ours (fuel, epoch
  interruption), host functions defined ONCE on a ``wasmtime.Linker``, then per call a fresh
  ``Store`` + ``Memory``, ``linker.define`` of the memory, ``linker.instantiate`` and the
  ``call`` export, with the thinnest host functions that make ``get`` work (input, value,
  storage read, ``seal_return``; memory read and written through its raw address, as ours
  does), and the store closed at the end, as ours is;
- **Cluster.call**: ``Cluster.call`` in QUERY mode (contract lookup, overlays, gas session,
  frame host, metering, the result record);
- **LocalCluster**: ``Contract.query("get")`` (adds argument encoding and result decoding
  from the ink! metadata).

Then the RSS part: after a warm-up, N more LocalCluster queries; RSS growth per query and the
live wasmtime ``Store`` objects after ``gc.collect()`` (a leak shows in both).

    python bench/bench_query.py [--iterations N] [--rss-queries N] [--json]

Target: Cluster.call and LocalCluster ≤ 1.5× the floor; RSS growth ≤ 2 KB per query.
Numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
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
from phat_runtime.runtime.execution import BlockContext  # noqa: E402
from phat_runtime.types import ExecutionMode  # noqa: E402

FLIPPER = ROOT / "contracts_examples" / "flipper" / "flipper.contract"
_KEY_NOT_FOUND = 3


class _Return(Exception):
    def __init__(self, data: bytes) -> None:
        self.data = data


def linker_floor(wasm: bytes, input_data: bytes, storage: dict[bytes, bytes]) -> Callable[[], bytes]:
    """The floor: host functions defined once on a Linker; per call only Store, Memory, instantiate, call."""
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    engine = wasmtime.Engine(cfg)
    module = wasmtime.Module(engine, wasm)
    memory_type = next(i.type for i in module.imports if isinstance(i.type, wasmtime.MemoryType))
    linker = wasmtime.Linker(engine)
    linker.allow_shadowing = True
    current: list[Any] = [None, None]  # (store, memory) of the running call

    def view() -> tuple[int, int]:
        store, memory = current
        size = memory.data_len(store)
        return ctypes.addressof(memory.data_ptr(store).contents), size

    def read(ptr: int, length: int) -> bytes:
        base, size = view()
        if ptr + length > size:
            raise IndexError("out of bounds")
        return ctypes.string_at(base + ptr, length)

    def write_out(ptr: int, len_ptr: int, data: bytes) -> None:
        base, size = view()
        if ptr + len(data) > size or len_ptr + 4 > size:
            raise IndexError("out of bounds")
        ctypes.memmove(base + ptr, data, len(data))
        ctypes.memmove(base + len_ptr, len(data).to_bytes(4, "little"), 4)

    def seal_return(_flags: int, ptr: int, length: int) -> None:
        raise _Return(read(ptr, length))

    def get_storage(key_ptr: int, key_len: int, out_ptr: int, out_len_ptr: int) -> int:
        value = storage.get(read(key_ptr, key_len))
        if value is None:
            return _KEY_NOT_FOUND
        write_out(out_ptr, out_len_ptr, value)
        return 0

    for imp in module.imports:
        ty = imp.type
        if not isinstance(ty, wasmtime.FuncType):
            continue
        name = imp.name or ""
        fn: Callable[..., Any]
        if name.endswith("seal_return"):
            fn = seal_return
        elif name.endswith("input"):
            fn = lambda ptr, len_ptr: write_out(ptr, len_ptr, input_data)  # noqa: E731
        elif name.endswith("value_transferred"):
            fn = lambda ptr, len_ptr: write_out(ptr, len_ptr, bytes(16))  # noqa: E731
        elif name.endswith("get_storage"):
            fn = get_storage
        else:
            fn = (lambda *args: 0) if list(ty.results) else (lambda *args: None)
        linker.define_func(imp.module, name, ty, fn)

    def run() -> bytes:
        store = wasmtime.Store(engine)
        store.set_fuel(10**9)
        store.set_epoch_deadline(1_000_000)
        memory = wasmtime.Memory(store, memory_type)
        linker.define(store, "env", "memory", memory)
        current[0], current[1] = store, memory
        call = linker.instantiate(store, module).exports(store)["call"]
        assert isinstance(call, wasmtime.Func)
        try:
            call(store)
        except _Return as ret:
            return ret.data
        finally:
            # Free the store now, as ours does: wasmtime-py's path for an exception raised in a
            # host function leaves a reference cycle through the store, so without close() its
            # deletion (~15 µs) would land in whichever later sample triggers the garbage collector.
            current[0] = current[1] = None
            store.close()
        return b""

    return run


def _time_interleaved(
    sides: dict[str, Callable[[], Any]], iterations: int, batch: int
) -> dict[str, list[float]]:
    """Per-call times, each the mean over a batch of calls; the sides alternate batch by batch.

    Batches, not single calls: when a host function raises (``seal_return`` always does),
    wasmtime-py leaves a reference cycle of frames and ctypes objects behind, which the
    cyclic garbage collector frees later — in some later call, possibly another side's. A
    batch of calls pays for its own collections, so each side is charged its own garbage
    (ours clears those frames as it goes; the floor leaves them to the collector).
    Alternating keeps machine noise fair to all sides."""
    for _ in range(min(100, iterations)):
        for fn in sides.values():
            fn()  # warm-up: compile caches, this thread's linker, allocator
    samples: dict[str, list[float]] = {name: [] for name in sides}
    clock = time.perf_counter
    for _ in range(max(1, iterations // batch)):
        for name, fn in sides.items():
            start = clock()
            for _ in range(batch):
                fn()
            samples[name].append((clock() - start) / batch)
    return samples


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live_stores() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, wasmtime.Store))


def measure_rss(query: Callable[[], Any], queries: int, warmup: int = 1000) -> dict[str, float]:
    for _ in range(warmup):
        query()
    gc.collect()
    before, stores_before = rss_bytes(), live_stores()
    for _ in range(queries):
        query()
    gc.collect()
    after = rss_bytes()
    return {
        "rss_queries": queries,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "rss_growth_bytes_per_query": (after - before) / queries,
        "live_stores_added": live_stores() - stores_before,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000, help="calls per side")
    parser.add_argument("--batch", type=int, default=50, help="calls per timed sample")
    parser.add_argument("--rss-queries", type=int, default=10_000, help="0 skips the RSS part")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)

    cluster = LocalCluster()
    metadata = ContractMetadata.load(FLIPPER)
    flipper = cluster.deploy(metadata, "new", [True])
    assert flipper.query("get").output is True
    runtime = cluster.runtime
    info = runtime.records.contract(flipper.address)
    assert info is not None and metadata.wasm is not None
    # The floor sees exactly the storage the contract wrote.
    prefix = b"S" + flipper.address + info.trie_id
    storage = {key[len(prefix):]: value for key, value in runtime.state.iter_prefix(prefix)}
    get_input = metadata.encode_message("get")
    floor = linker_floor(metadata.wasm, get_input, storage)
    assert floor() == b"\x00\x01", floor()
    alice, block = cluster.account("alice"), BlockContext(1, 0)

    def cluster_call() -> Any:
        return runtime.call(alice, flipper.address, get_input, mode=ExecutionMode.QUERY, block=block)

    assert cluster_call().data == b"\x00\x01"
    samples = _time_interleaved(
        {"floor": floor, "cluster": cluster_call, "local": lambda: flipper.query("get")},
        args.iterations, args.batch,
    )
    result: dict[str, float] = {"iterations": args.iterations, "batch": args.batch}
    for name, values in samples.items():
        ordered = sorted(values)
        result[f"{name}_median_us"] = statistics.median(values) * 1e6
        result[f"{name}_p90_us"] = ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1e6
    result["cluster_ratio"] = result["cluster_median_us"] / result["floor_median_us"]
    result["local_ratio"] = result["local_median_us"] / result["floor_median_us"]
    if args.rss_queries:
        result.update(measure_rss(lambda: flipper.query("get"), args.rss_queries))

    if args.json:
        print(json.dumps(result, indent=2))
        return result
    print(f"flipper get — {args.iterations} calls per side in batches of {args.batch}, interleaved, "
          "same process; per-call time = batch mean")
    rows = [("floor (Linker, fresh Store)", "floor"), ("Cluster.call QUERY", "cluster"),
            ("LocalCluster query", "local")]
    for label, key in rows:
        print(f"  {label:28s}: median {result[f'{key}_median_us']:7.1f} µs   p90 {result[f'{key}_p90_us']:7.1f} µs")
    print(f"  ratio Cluster.call / floor  : {result['cluster_ratio']:.2f}  (target ≤ 1.5)")
    print(f"  ratio LocalCluster / floor  : {result['local_ratio']:.2f}  (target ≤ 1.5)")
    if args.rss_queries:
        print(f"RSS over {args.rss_queries} more LocalCluster queries (after warm-up): "
              f"{result['rss_before_mb']:.1f} → {result['rss_after_mb']:.1f} MB, "
              f"{result['rss_growth_bytes_per_query']:.0f} B/query (target ≤ 2048); "
              f"live wasmtime Stores added: {result['live_stores_added']:.0f}")
    return result


if __name__ == "__main__":
    main()
