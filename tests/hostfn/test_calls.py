"""Cross-contract calls: seal0/seal1/seal2.call and delegate_call — return codes, output
copy-back, input flags, TAIL_CALL, reentrancy, the depth limit, value and gas (HOST-ABI §2.7)."""

from __future__ import annotations

import struct

import pytest

from phat_runtime.errors import HostFunctionError, ReentranceDenied
from phat_runtime.testing.harness import ALICE, BOB, WatHarness, data, ret, wat
from phat_runtime.types import CallFlags, ExecutionMode

from .contracts import (
    CALL_VERSIONS,
    CAP,
    ECHO,
    FREE,
    IN,
    INPUT_LEN,
    OUT,
    OUT_LEN,
    RES,
    REVERTER,
    TRAPPER,
    proxy,
    proxy_input,
    proxy_result,
    read_input,
    returned_length,
    u32,
    u128,
)

TX = ExecutionMode.TRANSACTION
FORWARD, CLONE, TAIL = int(CallFlags.FORWARD_INPUT), int(CallFlags.CLONE_INPUT), int(CallFlags.TAIL_CALL)
REENTRY = int(CallFlags.ALLOW_REENTRY)
CALLEES = {"echo": ECHO, "reverter": REVERTER, "trapper": TRAPPER}
WITH_FLAGS = ["seal1", "seal2", "seal2-limit"]  # seal0.call has no flags argument


@pytest.mark.parametrize("version", CALL_VERSIONS)
@pytest.mark.parametrize(("callee", "code", "copied"), [("echo", 0, True), ("reverter", 2, True), ("trapper", 1, False)])
def test_call_outcome_and_output(h: WatHarness, version: str, callee: str, code: int, copied: bool) -> None:
    target = h.deploy(CALLEES[callee])
    r = h.call(h.deploy(proxy(version)), proxy_input(target, b"payload"))
    assert (r.error, r.data) == (None, proxy_result(code, b"payload" if copied else None))


@pytest.mark.parametrize("version", CALL_VERSIONS)
def test_call_to_a_plain_account_is_not_callable(h: WatHarness, version: str) -> None:
    assert h.call(h.deploy(proxy(version)), proxy_input(BOB, b"x")).data == proxy_result(8)


VALUE = wat(  # returns value_transferred
    f"(i32.store (i32.const {FREE}) (i32.const 16))"
    f"(call $seal0.value_transferred (i32.const {FREE + 4}) (i32.const {FREE}))" + ret(FREE + 4, 16)
)


@pytest.mark.parametrize("version", CALL_VERSIONS)
def test_value_moves_with_the_call_or_fails_with_transfer_failed(h: WatHarness, version: str) -> None:
    target, caller = h.deploy(VALUE), h.deploy(proxy(version), value=1000)
    assert h.call(caller, proxy_input(target, value=300), mode=TX).data == proxy_result(0, u128(300))
    assert (h.balance(caller), h.balance(target)) == (700, 300)
    assert h.call(caller, proxy_input(target, value=701), mode=TX).data == proxy_result(5)
    assert (h.balance(caller), h.balance(target)) == (700, 300)


@pytest.mark.parametrize("version", CALL_VERSIONS)
def test_output_sentinel_skips_the_copy(h: WatHarness, version: str) -> None:
    target = h.deploy(ECHO)
    r = h.call(h.deploy(proxy(version, out=-1)), proxy_input(target, b"payload"))
    # Nothing written: out_len still holds the capacity and the buffer is still zero.
    assert (r.error, r.data) == (None, u32(0) + u32(CAP) + bytes(CAP))


@pytest.mark.parametrize("version", WITH_FLAGS)
def test_forward_input_gives_the_callee_our_input_once(h: WatHarness, version: str) -> None:
    target, caller = h.deploy(ECHO), h.deploy(proxy(version))
    sent = proxy_input(target, b"payload", flags=FORWARD)
    assert h.call(caller, sent).data == proxy_result(0, sent)
    reread = h.deploy(proxy(version, after=read_input()), salt=b"reread")
    r = h.call(reread, sent)
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "InputForwarded"


@pytest.mark.parametrize("version", WITH_FLAGS)
def test_clone_input_keeps_our_input(h: WatHarness, version: str) -> None:
    target, caller = h.deploy(ECHO), h.deploy(proxy(version, after=read_input()))
    sent = proxy_input(target, b"payload", flags=CLONE)
    assert h.call(caller, sent).data == proxy_result(0, sent)


@pytest.mark.parametrize("version", WITH_FLAGS)
@pytest.mark.parametrize("flags", [1 << 5, 1 << 31])
def test_unknown_call_flags_fail(h: WatHarness, version: str, flags: int) -> None:
    r = h.call(h.deploy(proxy(version)), proxy_input(h.deploy(ECHO), flags=flags))
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "InvalidCallFlags"


@pytest.mark.parametrize("version", WITH_FLAGS)
@pytest.mark.parametrize(("callee", "flags", "data"), [("echo", 0, b"tail"), ("reverter", 1, b"tail")])
def test_tail_call_returns_the_callee_output_as_ours(h: WatHarness, version: str, callee: str, flags: int, data: bytes) -> None:
    r = h.call(h.deploy(proxy(version)), proxy_input(h.deploy(CALLEES[callee]), b"tail", flags=TAIL))
    assert (r.error, r.flags, r.data) == (None, flags, data)


def test_tail_call_to_a_trapping_callee_continues(h: WatHarness) -> None:
    r = h.call(h.deploy(proxy()), proxy_input(h.deploy(TRAPPER), b"tail", flags=TAIL))
    assert (r.flags, r.data) == (0, proxy_result(1))


@pytest.mark.parametrize("allow", [False, True])
def test_reentry_through_another_contract(h: WatHarness, allow: bool) -> None:
    a, b, echo = h.deploy(proxy()), h.deploy(proxy(), salt=b"b"), h.deploy(ECHO)
    a_again = proxy_input(echo, b"hi")  # what A does when re-entered
    r = h.call(a, proxy_input(b, proxy_input(a, a_again), flags=REENTRY if allow else 0))
    if allow:
        assert r.data == proxy_result(0, proxy_result(0, proxy_result(0, b"hi")))
    else:  # B's call into A is refused; that traps B, so A sees CalleeTrapped
        assert (r.error, r.data) == (None, proxy_result(1))


@pytest.mark.parametrize(("version", "flags", "allowed"), [("seal1", 0, False), ("seal1", REENTRY, True), ("seal0", 0, True)])
def test_direct_recursion_needs_allow_reentry(h: WatHarness, version: str, flags: int, allowed: bool) -> None:
    a, echo = h.deploy(proxy(version)), h.deploy(ECHO)
    r = h.call(a, proxy_input(a, proxy_input(echo, b"hi"), flags=flags))
    if allowed:  # seal0.call behaves as if ALLOW_REENTRY were set
        assert r.data == proxy_result(0, proxy_result(0, b"hi"))
    else:
        assert isinstance(r.error, ReentranceDenied)


@pytest.mark.parametrize("frames", [5, 6])
def test_call_depth_limit(h: WatHarness, frames: int) -> None:
    # pink: CallStack = [Frame; 5] nested frames below the first: 6 frames may run at once.
    a, echo = h.deploy(proxy()), h.deploy(ECHO)
    sent = proxy_input(echo, b"hi")
    for _ in range(frames - 1):
        sent = proxy_input(a, sent, flags=REENTRY)
    r = h.call(a, sent)
    expected = proxy_result(0, b"hi") if frames == 5 else proxy_result(1)  # the 6th A traps
    for _ in range(frames - 1 if frames == 5 else frames - 2):
        expected = proxy_result(0, expected)
    assert (r.error, r.data) == (None, expected)


# Input: callee ‖ gas limit u64. Returns gas_left before ‖ gas_left after ‖ call code.
GAS_PROBE = wat(
    read_input()
    + f"(i32.store (i32.const {FREE}) (i32.const 8))(call $seal0.gas_left (i32.const {RES}) (i32.const {FREE}))"
    + f"(i32.store (i32.const {RES + 16}) (call $seal1.call (i32.const 0) (i32.const {IN}) "
    f"(i64.load (i32.const {IN + 32})) (i32.const {FREE + 0x100}) (i32.const 0) (i32.const 0) "
    f"(i32.const -1) (i32.const {OUT_LEN})))"
    + f"(call $seal0.gas_left (i32.const {RES + 8}) (i32.const {FREE}))" + ret(RES, 20)
)
BURNER = wat(  # 20 000 loop iterations
    "(local $i i32) (local.set $i (i32.const 20000))"
    "(loop $l (local.tee $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l))"
)


def test_gas_used_by_a_callee_is_taken_from_the_caller(h: WatHarness) -> None:
    burner, probe = h.deploy(BURNER), h.deploy(GAS_PROBE)
    burn = h.call(burner).gas_used
    r = h.call(probe, burner + struct.pack("<Q", 0))
    before, after, code = struct.unpack("<QQI", r.data)
    assert code == 0 and before - after >= burn
    assert r.gas_used >= burn and r.gas_used <= r.gas_limit


def test_callee_gas_limit_is_enforced(h: WatHarness) -> None:
    burner, probe = h.deploy(BURNER), h.deploy(GAS_PROBE)
    burn = h.call(burner).gas_used
    assert struct.unpack("<QQI", h.call(probe, burner + struct.pack("<Q", burn // 2)).data)[2] == 1
    assert struct.unpack("<QQI", h.call(probe, burner + struct.pack("<Q", burn * 2)).data)[2] == 0


# --- delegate_call: input = flags u32 ‖ code hash ‖ payload; returns code ‖ out_len ‖ output ---
DELEGATOR = wat(
    read_input()
    + f"(i32.store (i32.const {OUT_LEN}) (i32.const {CAP}))"
    + f"(i32.store (i32.const {RES}) (call $seal0.delegate_call (i32.load (i32.const {IN})) (i32.const {IN + 4}) "
    f"(i32.const {IN + 36}) (i32.sub {INPUT_LEN} (i32.const 36)) (i32.const {OUT}) (i32.const {OUT_LEN})))"
    + ret(RES, returned_length(8, OUT_LEN, RES))
)
LIB = wat(  # writes "lib" under "k", returns address ‖ caller; reverts if its input is "revert"
    read_input()
    + f"(drop (call $seal2.set_storage (i32.const {FREE}) (i32.const 1) (i32.const {FREE + 1}) (i32.const 3)))"
    + f"(i32.store (i32.const {FREE + 8}) (i32.const 32))(call $seal0.address (i32.const {FREE + 16}) (i32.const {FREE + 8}))"
    + f"(i32.store (i32.const {FREE + 8}) (i32.const 32))(call $seal0.caller (i32.const {FREE + 48}) (i32.const {FREE + 8}))"
    + f"(call $seal0.seal_return (i32.eq {INPUT_LEN} (i32.const 6)) (i32.const {FREE + 16}) (i32.const 64))",
    extra=data(FREE, b"klib"),
)


def test_delegate_call_runs_other_code_on_our_storage(h: WatHarness) -> None:
    lib, delegator = h.upload(LIB), h.deploy(DELEGATOR)
    r = h.call(delegator, u32(0) + lib, mode=TX, caller=BOB)
    assert r.data == u32(0) + u32(64) + delegator + BOB  # our address, our caller
    assert h.storage(delegator, b"k") == b"lib"


def test_reverting_delegate_call_rolls_back(h: WatHarness) -> None:
    lib, delegator = h.upload(LIB), h.deploy(DELEGATOR)
    r = h.call(delegator, u32(0) + lib + b"revert", mode=TX)
    assert r.data == u32(2) + u32(64) + delegator + ALICE
    assert h.storage(delegator, b"k") is None


def test_delegate_call_to_unknown_code_returns_code_not_found(h: WatHarness) -> None:
    assert h.call(h.deploy(DELEGATOR), u32(0) + bytes(32)).data == u32(7) + u32(CAP)


@pytest.mark.parametrize("flags", [REENTRY, int(CallFlags.READ_ONLY), 1 << 6])
def test_delegate_call_rejects_reentry_flags(h: WatHarness, flags: int) -> None:
    r = h.call(h.deploy(DELEGATOR), u32(flags) + h.upload(LIB))
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "InvalidCallFlags"
