"""Context getters (seal0): exact pink encodings — 32-byte ids, u128 balances (16 B), u32 block
number, u64 milliseconds, u64 gas — and the i32/i64-returning predicates and nonce."""

from __future__ import annotations

import struct

import pytest

from phat_runtime.runtime.records import NONCE
from phat_runtime.testing.harness import (
    ALICE,
    BLOCK_TIME_MS,
    BOB,
    GENESIS_BLOCK,
    WatHarness,
    ret,
    wat,
)
from phat_runtime.wasm.schedule import GAS_PER_FUEL, HOST_CALL_GAS

from .contracts import RES, collect, proxy, proxy_input, proxy_result, u32, u128

LEN, OUT = 0x10000, 0x10004


def getter(name: str, arg: str = "") -> str:
    """A contract returning what getter ``name`` writes (through a 64-byte in/out buffer)."""
    return wat(
        f"(i32.store (i32.const {LEN}) (i32.const 64))"
        f"(call $seal0.{name} {arg} (i32.const {OUT}) (i32.const {LEN}))"
        + ret(OUT, f"(i32.load (i32.const {LEN}))")
    )


def expected(name: str, address: bytes, code_hash: bytes) -> bytes:
    """What getter ``name`` writes for a contract deployed with 1000, called by BOB with 7 at
    block 42 (41 blocks after genesis)."""
    return {
        "caller": BOB,
        "address": address,
        "balance": u128(1000 + 7),  # the value is transferred before the code runs
        "value_transferred": u128(7),
        "now": struct.pack("<Q", GENESIS_BLOCK.timestamp_ms + 41 * BLOCK_TIME_MS),
        "block_number": struct.pack("<I", 42),
        "minimum_balance": u128(1),
        "own_code_hash": code_hash,
    }[name]


GETTERS = ["caller", "address", "balance", "value_transferred", "now", "block_number",
           "minimum_balance", "own_code_hash"]


@pytest.mark.parametrize("name", GETTERS)
@pytest.mark.parametrize("alias", [False, True])
def test_getter_writes_pink_encoding(h: WatHarness, name: str, alias: bool) -> None:
    h.next_block(41)
    code = getter(f"seal_{name}" if alias else name)
    addr = h.deploy(code, value=1000)
    r = h.call(addr, value=7, caller=BOB)
    assert (r.error, r.flags, r.data) == (None, 0, expected(name, addr, h.upload(code)))


def test_gas_left_is_u64_ref_time_below_the_limit(h: WatHarness) -> None:
    limit = 10**12
    r = h.call(h.deploy(getter("gas_left")), gas_limit=limit)
    assert len(r.data) == 8
    left = struct.unpack("<Q", r.data)[0]
    # The call itself has paid its base weight; a few instructions ran before it.
    assert limit - HOST_CALL_GAS - 1_000_000 < left <= limit - HOST_CALL_GAS
    assert left % GAS_PER_FUEL == 0


@pytest.mark.parametrize("gas", [0, 1, 123_456_789, 2**64 - 1])
def test_weight_to_fee_is_u128(h: WatHarness, gas: int) -> None:
    # The off-chain runtime prices one unit of ref_time at one unit of balance.
    r = h.call(h.deploy(getter("weight_to_fee", f"(i64.const {gas - 2**64 if gas >= 2**63 else gas})")))
    assert r.data == u128(gas)


PREDICATES = ["caller_is_origin", "caller_is_root"]


@pytest.mark.parametrize("name", PREDICATES)
def test_predicates_at_top_level(h: WatHarness, name: str) -> None:
    r = h.call(h.deploy(wat(collect(f"(call $seal0.{name})"))))
    assert r.data == u32({"caller_is_origin": 1, "caller_is_root": 0}[name])


def test_caller_is_origin_is_false_for_a_contract_caller(h: WatHarness) -> None:
    asker = h.deploy(wat(collect("(call $seal0.caller_is_origin)")))
    r = h.call(h.deploy(proxy()), proxy_input(asker))
    assert r.data == proxy_result(0, u32(0))


def test_caller_of_a_nested_call_is_the_calling_contract(h: WatHarness) -> None:
    who = h.deploy(getter("caller"))
    caller = h.deploy(proxy())
    assert h.call(caller, proxy_input(who)).data == proxy_result(0, caller)
    assert h.call(who).data == ALICE


def test_instantiation_nonce_counts_instantiations(h: WatHarness) -> None:
    nonce = wat(f"(i64.store (i32.const {RES}) (call $seal0.instantiation_nonce))" + ret(RES, 8))
    first = h.deploy(nonce)
    assert h.call(first).data == struct.pack("<Q", 1)
    h.deploy(nonce, salt=b"2")
    assert h.call(first).data == struct.pack("<Q", 2)


def test_instantiation_nonce_is_a_full_u64(h: WatHarness) -> None:
    addr = h.deploy(wat(f"(i64.store (i32.const {RES}) (call $seal0.instantiation_nonce))" + ret(RES, 8)))
    big = 2**63 + 5  # above i32 and i64 sign bits: must come through the i64 result intact
    h.cluster.state.set(NONCE, big.to_bytes(8, "little"))
    assert h.call(addr).data == struct.pack("<Q", big)
