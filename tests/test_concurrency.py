"""Concurrent queries in threads: every result belongs to its own execution.

wasmtime-py passes a host function's exception through a process-global variable; the
executor records exceptions on the frame instead, which this test exercises: threads mix
``seal_return`` exits, traps and host-function errors and each must see its own outcome.
"""

from __future__ import annotations

import threading

import wasmtime

from phat_runtime.errors import ContractTrapped, HostFunctionError
from phat_runtime.runtime.cluster import Cluster
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.state import MemoryBackend
from phat_runtime.types import AccountId, ExecutionMode

ALICE = AccountId(b"\xaa" * 32)
BLOCK = BlockContext(1, 0)

# input byte 0 selects: 0 → return the input, 1 → trap, 2 → out-of-bounds host call.
WAT = r"""
(module
  (import "seal0" "seal_return" (func $ret (param i32 i32 i32)))
  (import "seal0" "input" (func $input (param i32 i32)))
  (import "env" "memory" (memory 1 1))
  (func (export "deploy"))
  (func (export "call")
    (i32.store (i32.const 200) (i32.const 64))
    (call $input (i32.const 0) (i32.const 200))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 1)) (then unreachable))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 2))
      (then (call $ret (i32.const 0) (i32.const 65530) (i32.const 100))))
    (call $ret (i32.const 0) (i32.const 0) (i32.load (i32.const 200)))))
"""


def test_threads_see_their_own_outcomes() -> None:
    cluster = Cluster(MemoryBackend())
    code = cluster.upload_code(wasmtime.wat2wasm(WAT), ALICE)
    address = cluster.instantiate(ALICE, code, b"", block=BLOCK).contract
    assert address is not None
    errors: list[str] = []

    def worker(seed: int) -> None:
        for i in range(150):
            kind = (seed + i) % 3
            payload = bytes([kind]) + seed.to_bytes(2, "little") + i.to_bytes(2, "little")
            result = cluster.call(ALICE, address, payload, mode=ExecutionMode.QUERY, block=BLOCK)
            if kind == 0 and (result.error is not None or result.data != payload):
                errors.append(f"{seed}/{i}: expected echo, got {result.error or result.data!r}")
            if kind == 1 and not isinstance(result.error, ContractTrapped):
                errors.append(f"{seed}/{i}: expected a trap, got {result.error!r}")
            if kind == 2 and not (isinstance(result.error, HostFunctionError) and result.error.kind == "OutOfBounds"):
                errors.append(f"{seed}/{i}: expected OutOfBounds, got {result.error!r}")

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
