"""Benchmark: what a loop of cheap host-function calls costs in time and in gas.

The gas cap of a transaction (2.5·10¹²) stands for ~2.5 s of reference time (pallet-contracts
weight is picoseconds). Wasm instructions cost 8000 gas each, but a host function is Python:
charged only for the instructions around it, a loop of host calls would run far longer than
the cap implies. ``wasm/schedule.py`` charges each call a base weight for that reason.

For each loop (one host function called ``--calls`` times) this reports the wall time per
call, the gas per loop turn (``gas_used`` / calls, deterministic) and the seconds the loop
would need to burn the transaction cap at that speed. ``--burn`` also runs the named loops
forever until ``--gas`` is burnt (or the wall clock ends them) and reports how long that took.
The numbers in docs/host-abi.md ("Gas") come from here.

    python bench/bench_host_gas.py [--calls 20000] [--loops caller,get_storage,...] [--burn caller]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.errors import OutOfGas  # noqa: E402
from phat_runtime.runtime.cluster import Cluster  # noqa: E402
from phat_runtime.runtime.execution import BlockContext  # noqa: E402
from phat_runtime.state import MemoryBackend  # noqa: E402
from phat_runtime.types import AccountId, ExecutionMode  # noqa: E402
from phat_runtime.wasm.engine import DEFAULT_TX_GAS  # noqa: E402

ALICE = AccountId(b"\xaa" * 32)
BLOCK = BlockContext(1, 1_700_000_000_000)

# Memory layout of every loop: 0..32 key / input, 64 out-len cell (refilled each turn),
# 128.. output buffer.
_OUT_LEN = "(i32.store (i32.const 64) (i32.const 256))"
LOOPS: dict[str, tuple[str, str]] = {
    # name: (imports, loop body)
    "empty": ("", ""),
    "caller": ('(import "seal0" "seal_caller" (func $h (param i32 i32)))',
               f"{_OUT_LEN} (call $h (i32.const 128) (i32.const 64))"),
    "get_storage": ('(import "seal1" "get_storage" (func $h (param i32 i32 i32 i32) (result i32)))',
                    f"{_OUT_LEN} (drop (call $h (i32.const 0) (i32.const 32) (i32.const 128) (i32.const 64)))"),
    "contains_storage": ('(import "seal1" "contains_storage" (func $h (param i32 i32) (result i32)))',
                         "(drop (call $h (i32.const 0) (i32.const 32)))"),
    "set_storage": ('(import "seal2" "set_storage" (func $h (param i32 i32 i32 i32) (result i32)))',
                    "(drop (call $h (i32.const 0) (i32.const 32) (i32.const 128) (i32.const 32)))"),
    "blake2_256": ('(import "seal0" "seal_hash_blake2_256" (func $h (param i32 i32 i32)))',
                   "(call $h (i32.const 0) (i32.const 32) (i32.const 128))"),
    "is_contract": ('(import "seal0" "seal_is_contract" (func $h (param i32) (result i32)))',
                    "(drop (call $h (i32.const 0)))"),
    "caller_is_origin": ('(import "seal0" "seal_caller_is_origin" (func $h (result i32)))',
                         "(drop (call $h))"),
    "input": ('(import "seal0" "seal_input" (func $h (param i32 i32)))',
              f"{_OUT_LEN} (call $h (i32.const 128) (i32.const 64))"),
    "debug_message": ('(import "seal0" "seal_debug_message" (func $h (param i32 i32) (result i32)))',
                      "(drop (call $h (i32.const 0) (i32.const 16)))"),
    "chain_extension": (  # pink is_in_transaction (id 12): the cheapest chain-extension function
        '(import "seal0" "seal_call_chain_extension" (func $h (param i32 i32 i32 i32 i32) (result i32)))',
        f"{_OUT_LEN} (drop (call $h (i32.const 12) (i32.const 0) (i32.const 0) (i32.const 128) (i32.const 64)))"),
}


def loop_module(imports: str, body: str, count: int | None) -> bytes:
    """``body`` in a loop: forever (``count`` None) or ``count`` times, then a plain return."""
    if count is None:
        run = f"(loop $l {body} (br $l))"
    else:
        run = (f"(local.set $i (i32.const {count})) (loop $l {body} "
               "(local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l (local.get $i)))")
    return wasmtime.wat2wasm(f"""(module
      {imports}
      (import "env" "memory" (memory 1 16))
      (func (export "deploy"))
      (func (export "call") (local $i i32) {run}))""")


def _deploy(cluster: Cluster, wasm: bytes, salt: bytes) -> AccountId:
    code = cluster.upload_code(wasm, ALICE)
    made = cluster.instantiate(ALICE, code, b"", block=BLOCK, salt=salt)
    assert made.success and made.contract is not None, made.error
    return made.contract


def _run(cluster: Cluster, address: AccountId, gas: int, wall_clock_ms: int) -> tuple[float, object]:
    start = time.perf_counter()
    result = cluster.call(ALICE, address, b"", mode=ExecutionMode.TRANSACTION, block=BLOCK,
                          gas_limit=gas, wall_clock_ms=wall_clock_ms)
    return time.perf_counter() - start, result


def per_call(cluster: Cluster, name: str, count: int) -> dict[str, object]:
    """``count`` calls of one host function: wall time and gas per call (the bare loop's
    instructions subtracted from neither: what a contract pays per iteration)."""
    imports, body = LOOPS[name]
    address = _deploy(cluster, loop_module(imports, body, count), f"n{name}".encode())
    wall, result = _run(cluster, address, 10**18, 600_000)
    assert result.success, result.error  # type: ignore[attr-defined]
    gas = result.gas_used / count  # type: ignore[attr-defined]
    us = wall / count * 1e6
    return {"loop": name, "us_per_call": round(us, 2), "gas_per_call": int(gas),
            "s_at_tx_cap": round(DEFAULT_TX_GAS / gas * us / 1e6, 2)}


def burn(cluster: Cluster, name: str, gas: int, wall_clock_ms: int) -> dict[str, object]:
    """Loop forever until ``gas`` is burnt; the wall time it took."""
    imports, body = LOOPS[name]
    address = _deploy(cluster, loop_module(imports, body, None), f"b{name}".encode())
    wall, result = _run(cluster, address, gas, wall_clock_ms)
    out_of_gas = isinstance(result.error, OutOfGas)  # type: ignore[attr-defined]
    return {"loop": name, "gas_limit": gas, "gas_used": result.gas_used,  # type: ignore[attr-defined]
            "out_of_gas": out_of_gas, "error": None if out_of_gas else repr(result.error),  # type: ignore[attr-defined]
            "wall_s": round(wall, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20_000, help="host calls per loop when timing one call")
    ap.add_argument("--burn", default="", help="comma-separated loops to also run until --gas is burnt")
    ap.add_argument("--gas", type=float, default=DEFAULT_TX_GAS, help="gas limit of a --burn loop (default: the tx cap)")
    ap.add_argument("--loops", default=",".join(LOOPS), help="comma-separated loop names")
    ap.add_argument("--wall-clock-ms", type=int, default=600_000, help="wall clock of a --burn loop")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cluster = Cluster(MemoryBackend())
    cluster.records.set_balance(ALICE, 10**18)
    rows = [per_call(cluster, name, args.calls) for name in args.loops.split(",")]
    burns = [burn(cluster, name, int(args.gas), args.wall_clock_ms) for name in args.burn.split(",") if name]
    if args.json:
        print(json.dumps({"per_call": rows, "burn": burns}, indent=2))
        return 0
    print(f"{'loop':<18} {'us/call':>8} {'gas/call':>12} {'s at 2.5e12':>12}")
    for r in rows:
        print(f"{r['loop']:<18} {r['us_per_call']:>8} {r['gas_per_call']:>12} {r['s_at_tx_cap']:>12}")
    for r in burns:
        outcome = "out of gas" if r["out_of_gas"] else r["error"]
        print(f"burn {r['loop']}: {r['gas_used']} gas in {r['wall_s']} s ({outcome})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
