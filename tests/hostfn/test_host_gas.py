"""The host-function gas schedule (``wasm/schedule.py``, docs/host-abi.md "Gas"): every host
call pays a base weight on top of the bytes it moves and what it does, so a contract cannot buy
unbounded host work with bounded gas; the charges are exact and deterministic."""

from __future__ import annotations

import pytest

from phat_runtime.crypto.signatures import SIGNATURE_GAS
from phat_runtime.errors import OutOfGas
from phat_runtime.pink.extension import CHAIN_EXTENSION_GAS
from phat_runtime.testing.harness import ALICE, WatHarness, wat
from phat_runtime.types import ExecutionMode
from phat_runtime.wasm.engine import DEFAULT_TX_GAS
from phat_runtime.wasm.schedule import (
    GAS_PER_BYTE,
    GAS_PER_FUEL,
    HOST_CALL_GAS,
    HOST_DEBT_LIMIT_FUEL,
    STORAGE_READ_GAS,
)

LEN, OUT = 0x10000, 0x10004
_OUT_LEN = f"(i32.store (i32.const {LEN}) (i32.const 64))"  # 3 instructions

#: name → (loop body, what one turn costs beyond an empty turn). Instruction counts are the
#: body's own (each operand, the store, the call; wasmtime charges no fuel for ``drop``); bytes
#: are what the host copies.
LOOPS: dict[str, tuple[str, int]] = {
    # writes the 32-byte caller: 6 instructions
    "caller": (f"{_OUT_LEN} (call $seal0.seal_caller (i32.const {OUT}) (i32.const {LEN}))",
               HOST_CALL_GAS + 32 * GAS_PER_BYTE + 6 * GAS_PER_FUEL),
    # no bytes: 1 instruction
    "caller_is_origin": ("(drop (call $seal0.seal_caller_is_origin))", HOST_CALL_GAS + 1 * GAS_PER_FUEL),
    # reads a 32-byte key that holds nothing: 8 instructions
    "get_storage": (f"{_OUT_LEN} (drop (call $seal1.get_storage (i32.const 0) (i32.const 32) "
                    f"(i32.const {OUT}) (i32.const {LEN})))",
                    HOST_CALL_GAS + STORAGE_READ_GAS + 32 * GAS_PER_BYTE + 8 * GAS_PER_FUEL),
    # pink is_in_transaction (id 12): no input, one byte written: 9 instructions
    "chain_extension": (f"{_OUT_LEN} (drop (call $seal0.seal_call_chain_extension (i32.const 12) "
                        f"(i32.const 0) (i32.const 0) (i32.const {OUT}) (i32.const {LEN})))",
                        HOST_CALL_GAS + CHAIN_EXTENSION_GAS + 1 * GAS_PER_BYTE + 9 * GAS_PER_FUEL),
    # 64-byte signature, 32-byte key, 4-byte message (zeros: does not verify): 5 instructions
    "sr25519_verify": ("(drop (call $seal0.sr25519_verify (i32.const 0) (i32.const 64) (i32.const 4) "
                       "(i32.const 96)))",
                       HOST_CALL_GAS + SIGNATURE_GAS + (64 + 32 + 4) * GAS_PER_BYTE + 5 * GAS_PER_FUEL),
}


def loop(body: str, count: int | None) -> str:
    """``body`` ``count`` times (None: forever), then a plain return."""
    if count is None:
        return wat(f"(loop $l {body} (br $l))")
    return wat(f"(local $i i32) (local.set $i (i32.const {count})) (loop $l {body} "
               "(local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l (local.get $i)))")


def gas_of(h: WatHarness, body: str, count: int) -> int:
    result = h.call(h.deploy(loop(body, count)))
    assert result.error is None, result.error
    return result.gas_used


@pytest.mark.parametrize("name", list(LOOPS))
def test_each_host_call_pays_the_base_weight_its_bytes_and_its_work(h: WatHarness, name: str) -> None:
    body, cost = LOOPS[name]
    turn = (gas_of(h, body, 200) - gas_of(h, body, 100)) // 100
    empty_turn = (gas_of(h, "", 200) - gas_of(h, "", 100)) // 100
    assert turn - empty_turn == cost


def test_gas_limit_is_exact_although_host_debt_is_settled_in_batches(h: WatHarness) -> None:
    """100 calls owe more than one batch of host debt; a limit of exactly their gas pays it, one
    fuel unit less runs out of gas — at the same point on every worker."""
    body = LOOPS["caller"][0]
    assert 100 * HOST_CALL_GAS > HOST_DEBT_LIMIT_FUEL * GAS_PER_FUEL
    address = h.deploy(loop(body, 100))
    needed = h.call(address).gas_used
    exact = h.call(address, gas_limit=needed)
    assert exact.error is None and exact.gas_used == needed
    short = h.call(address, gas_limit=needed - GAS_PER_FUEL)
    assert isinstance(short.error, OutOfGas) and short.gas_used == needed - GAS_PER_FUEL


def test_a_loop_of_cheap_host_calls_runs_out_of_gas_not_out_of_time(h: WatHarness) -> None:
    """The motivation: charged only its instructions, a `seal_caller` loop needed ~85 s to burn
    the transaction cap (the wall clock ended it, charged as a timeout); with the base weight
    the cap buys ~250,000 calls (a few seconds). 30 s is generous for any machine."""
    address = h.deploy(loop(LOOPS["caller"][0], None), salt=b"forever")
    result = h.cluster.call(ALICE, address, b"", mode=ExecutionMode.TRANSACTION, block=h.block,
                            gas_limit=DEFAULT_TX_GAS, wall_clock_ms=30_000)
    assert isinstance(result.error, OutOfGas), result.error
    assert result.gas_used == DEFAULT_TX_GAS
