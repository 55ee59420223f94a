"""Hostile contracts get specific errors and never take the process down.

Each hostile run is followed by a normal call proving the runtime (and committed state) is fine.
"""

from __future__ import annotations

import time

import pytest
import wasmtime

from phat_runtime.errors import (
    BadExports,
    BadImports,
    BadMemory,
    ContractTrapped,
    HostFunctionError,
    MalformedModule,
    OutOfGas,
    WallClockTimeout,
)
from phat_runtime.runtime.cluster import Cluster
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.state import MemoryBackend
from phat_runtime.types import AccountId, ExecutionMode

ALICE = AccountId(b"\xaa" * 32)
BLOCK = BlockContext(1, 1_700_000_000_000)

# A counter contract: deploy stores 0; call increments the u32 at key 0 (4 zero bytes) and
# returns it. Used as the "worker is still fine" probe and as committed state to protect.
COUNTER = r"""
(module
  (import "seal0" "seal_return" (func $ret (param i32 i32 i32)))
  (import "seal1" "get_storage" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "seal2" "set_storage" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1))
  (func (export "deploy") (drop (call $set (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 4))))
  (func (export "call")
    (i32.store (i32.const 32) (i32.const 4))
    (drop (call $get (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 32)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (drop (call $set (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 4)))
    (call $ret (i32.const 0) (i32.const 16) (i32.const 4))))
"""


def hostile(body: str, imports: str = "") -> bytes:
    return wasmtime.wat2wasm(
        f"""(module
          (import "seal0" "seal_return" (func $ret (param i32 i32 i32)))
          {imports}
          (import "env" "memory" (memory 1 16))
          (func (export "deploy"))
          {body})"""
    )


@pytest.fixture()
def cluster() -> Cluster:
    return Cluster(MemoryBackend())


def deploy(cluster: Cluster, wasm: bytes) -> AccountId:
    code = cluster.upload_code(wasm, ALICE)
    result = cluster.instantiate(ALICE, code, b"", block=BLOCK, salt=wasm[-8:])
    assert result.success, result.error
    assert result.contract is not None
    return result.contract


def counter_value(cluster: Cluster, counter: AccountId) -> int:
    result = cluster.call(ALICE, counter, b"", mode=ExecutionMode.QUERY, block=BLOCK)
    assert result.success, result.error
    return int.from_bytes(result.data, "little")


@pytest.fixture()
def counter(cluster: Cluster) -> AccountId:
    address = deploy(cluster, wasmtime.wat2wasm(COUNTER))
    cluster.call(ALICE, address, b"", mode=ExecutionMode.TRANSACTION, block=BLOCK)
    assert counter_value(cluster, address) == 2  # committed 1, the query sees 1 + 1
    return address


def run(cluster: Cluster, wasm: bytes, **kw: object) -> object:
    address = deploy(cluster, wasm)
    return cluster.call(ALICE, address, b"", block=BLOCK, **kw)  # type: ignore[arg-type]


LOOP = '(func (export "call") (loop $l (br $l)))'


def test_infinite_loop_runs_out_of_gas(cluster: Cluster, counter: AccountId) -> None:
    result = run(cluster, hostile(LOOP), gas_limit=10**12, mode=ExecutionMode.TRANSACTION)
    assert isinstance(result.error, OutOfGas)  # type: ignore[attr-defined]
    assert result.gas_used >= 10**12 - 8000  # type: ignore[attr-defined]
    assert counter_value(cluster, counter) == 2


def test_infinite_loop_hits_the_wall_clock(cluster: Cluster, counter: AccountId) -> None:
    start = time.monotonic()
    result = run(cluster, hostile(LOOP), gas_limit=10**20, wall_clock_ms=200)
    elapsed = time.monotonic() - start
    assert isinstance(result.error, WallClockTimeout)  # type: ignore[attr-defined]
    assert elapsed < 5, f"interrupted after {elapsed:.1f}s, budget was 0.2s"
    assert counter_value(cluster, counter) == 2


# Calls the contract whose address is its input with all remaining gas; returns the call's code.
CALLER = r"""
(module
  (import "seal0" "seal_return" (func $ret (param i32 i32 i32)))
  (import "seal0" "input" (func $input (param i32 i32)))
  (import "seal1" "call" (func $call (param i32 i32 i64 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 16))
  (func (export "deploy"))
  (func (export "call")
    (i32.store (i32.const 100) (i32.const 32))
    (call $input (i32.const 0) (i32.const 100))
    (i32.store (i32.const 200)
      (call $call (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 64) (i32.const 0) (i32.const 0)
                  (i32.const -1) (i32.const 0)))
    (call $ret (i32.const 0) (i32.const 200) (i32.const 4))))
"""


@pytest.mark.parametrize("gas_limit", [2**64 - 1, 10**20, 10**15])
def test_a_timed_out_loop_is_charged_its_whole_gas_limit(cluster: Cluster, gas_limit: int) -> None:
    # wasmtime does not write a call-free loop's fuel counter back when the epoch interrupts
    # it, so the store still shows its fuel untouched: reporting "fuel left" said 0 or 7615.
    result = run(cluster, hostile(LOOP), gas_limit=gas_limit, wall_clock_ms=100)
    assert isinstance(result.error, WallClockTimeout)  # type: ignore[attr-defined]
    assert "charged the whole gas limit" in str(result.error)  # type: ignore[attr-defined]
    assert result.gas_used == result.gas_limit == gas_limit  # type: ignore[attr-defined]


def test_a_callee_timing_out_charges_the_whole_gas_limit(cluster: Cluster, counter: AccountId) -> None:
    loop = deploy(cluster, hostile(LOOP))
    caller = deploy(cluster, wasmtime.wat2wasm(CALLER))
    result = cluster.call(ALICE, caller, loop, block=BLOCK, gas_limit=10**18, wall_clock_ms=100)
    assert isinstance(result.error, WallClockTimeout)  # the whole execution is out of time
    assert result.gas_used == 10**18
    # A callee that completes is charged what it burnt, and the caller goes on.
    result = cluster.call(ALICE, caller, counter, block=BLOCK, gas_limit=10**18)
    assert result.success and result.data == bytes(4)  # ReturnCode::Success
    assert 0 < result.gas_used < 10**12
    assert counter_value(cluster, counter) == 2


def test_memory_growth_past_the_limit_is_refused(cluster: Cluster, counter: AccountId) -> None:
    # memory.grow past the declared maximum (16 pages) returns -1; the contract reports it.
    body = """(func (export "call")
        (i32.store (i32.const 0) (memory.grow (i32.const 100)))
        (i32.store (i32.const 4) (memory.grow (i32.const 15)))
        (i32.store (i32.const 8) (memory.grow (i32.const 1)))
        (call $ret (i32.const 0) (i32.const 0) (i32.const 12)))"""
    result = run(cluster, hostile(body))
    assert result.success  # type: ignore[attr-defined]
    data = result.data  # type: ignore[attr-defined]
    assert [int.from_bytes(data[i : i + 4], "little", signed=True) for i in (0, 4, 8)] == [-1, 1, -1]
    assert counter_value(cluster, counter) == 2


def test_memory_bomb_loop_traps_cleanly(cluster: Cluster, counter: AccountId) -> None:
    body = """(func (export "call")
        (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
        unreachable)"""
    result = run(cluster, hostile(body))
    assert isinstance(result.error, ContractTrapped)  # type: ignore[attr-defined]
    assert counter_value(cluster, counter) == 2


def test_deep_recursion_is_a_stack_overflow_trap(cluster: Cluster, counter: AccountId) -> None:
    body = """(func $r (param i64) (result i64) (call $r (i64.add (local.get 0) (i64.const 1))))
              (func (export "call") (drop (call $r (i64.const 0))))"""
    result = run(cluster, hostile(body), gas_limit=10**20)
    assert isinstance(result.error, ContractTrapped)  # type: ignore[attr-defined]
    assert "stack overflow" in str(result.error)  # type: ignore[attr-defined]
    assert counter_value(cluster, counter) == 2


def test_huge_output_length_is_out_of_bounds(cluster: Cluster, counter: AccountId) -> None:
    body = '(func (export "call") (call $ret (i32.const 0) (i32.const 0) (i32.const -16)))'
    result = run(cluster, hostile(body))
    assert isinstance(result.error, HostFunctionError)  # type: ignore[attr-defined]
    assert result.error.kind == "OutOfBounds"  # type: ignore[attr-defined]
    assert counter_value(cluster, counter) == 2


def test_a_full_memory_output_is_returned_whole(cluster: Cluster) -> None:
    body = """(func (export "call") (drop (memory.grow (i32.const 15)))
              (i32.store8 (i32.const 1048575) (i32.const 7))
              (call $ret (i32.const 0) (i32.const 0) (i32.const 1048576)))"""
    result = run(cluster, hostile(body))
    assert result.success  # type: ignore[attr-defined]
    assert len(result.data) == 1 << 20 and result.data[-1] == 7  # type: ignore[attr-defined]


def test_trap_in_a_transaction_commits_nothing(cluster: Cluster, counter: AccountId) -> None:
    body = """(func (export "call")
        (i32.store (i32.const 16) (i32.const 99))
        (drop (call $set (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 4)))
        unreachable)"""
    imports = '(import "seal2" "set_storage" (func $set (param i32 i32 i32 i32) (result i32)))'
    address = deploy(cluster, hostile(body, imports))
    result = cluster.call(ALICE, address, b"", mode=ExecutionMode.TRANSACTION, block=BLOCK)
    assert isinstance(result.error, ContractTrapped)
    assert "unreachable" in str(result.error)
    info = cluster.records.contract(address)
    assert info is not None
    assert cluster.records.storage_get(address, info.trie_id, bytes(4)) is None
    assert counter_value(cluster, counter) == 2


@pytest.mark.parametrize(
    ("wat", "error", "words"),
    [
        ('(module (import "seal0" "nope" (func)) (import "env" "memory" (memory 1 1))'
         ' (func (export "deploy")) (func (export "call")))', BadImports, "seal0.nope"),
        ('(module (import "env" "memory" (memory 1 1)) (func (export "deploy")) (func (export "call"))'
         ' (func (export "extra")))', BadExports, "extra"),
        ('(module (memory 1) (func (export "deploy")) (func (export "call")))', BadMemory, "import"),
    ],
)
def test_bad_modules_are_refused_at_upload(cluster: Cluster, wat: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        cluster.upload_code(wasmtime.wat2wasm(wat), ALICE)


def test_truncated_wasm_is_malformed(cluster: Cluster) -> None:
    wasm = wasmtime.wat2wasm(COUNTER)
    # (8 bytes would be a valid, empty module: magic + version.)
    for cut in (3, 9, len(wasm) // 2, len(wasm) - 1):
        with pytest.raises(MalformedModule):
            cluster.upload_code(wasm[:cut], ALICE)
