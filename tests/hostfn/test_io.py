"""seal0.input / seal0.seal_return, plain return, REVERT and its rollback, InvalidCallFlags."""

from __future__ import annotations

import pytest

from phat_runtime.errors import HostFunctionError
from phat_runtime.testing.harness import WatHarness, data, ret, wat
from phat_runtime.types import ExecutionMode

from .contracts import ECHO, IN, INPUT_LEN, REVERTER, read_input

TX = ExecutionMode.TRANSACTION
KEY = b"k"
# deploy: nothing; call: store the input under "k", then return it with flags from the input's
# first byte (so one contract both commits and reverts).
WRITE_THEN_RETURN = wat(
    read_input()
    + f"(drop (call $seal2.set_storage (i32.const 0x10000) (i32.const 1) (i32.const {IN}) {INPUT_LEN}))"
    + f"(call $seal0.seal_return (i32.load8_u (i32.const {IN})) (i32.const {IN}) {INPUT_LEN})",
    extra=data(0x10000, KEY),
)


@pytest.mark.parametrize("payload", [b"", b"\x01", bytes(range(256)), b"x" * 16384])
def test_input_is_copied_and_returned(h: WatHarness, payload: bytes) -> None:
    r = h.call(h.deploy(ECHO), payload)
    assert (r.error, r.flags, r.data) == (None, 0, payload)


def test_input_may_be_read_twice(h: WatHarness) -> None:
    twice = wat(
        read_input()
        + "(i32.store (i32.const 0x10000) (i32.const 64))"
        + "(call $seal0.input (i32.const 0x10004) (i32.const 0x10000))"
        + ret(0x10004, "(i32.load (i32.const 0x10000))")
    )
    assert h.call(h.deploy(twice), b"again").data == b"again"


def test_plain_return_is_success_with_empty_output(h: WatHarness) -> None:
    r = h.call(h.deploy(wat("(nop)")), b"ignored")
    assert (r.error, r.flags, r.data, r.success) == (None, 0, b"", True)


def test_revert_returns_data_and_flag(h: WatHarness) -> None:
    r = h.call(h.deploy(REVERTER), b"why")
    assert (r.error, r.flags, r.data, r.reverted, r.success) == (None, 1, b"why", True, False)


def test_revert_rolls_back_storage_and_success_commits(h: WatHarness) -> None:
    addr = h.deploy(WRITE_THEN_RETURN)
    assert h.call(addr, b"\x01first", mode=TX).reverted
    assert h.storage(addr, KEY) is None
    assert h.call(addr, b"\x00second", mode=TX).success
    assert h.storage(addr, KEY) == b"\x00second"
    assert h.call(addr, b"\x01third", mode=TX).data == b"\x01third"
    assert h.storage(addr, KEY) == b"\x00second"


def test_reverting_constructor_creates_no_contract(h: WatHarness) -> None:
    code = wat(deploy=read_input() + ret(IN, INPUT_LEN, flags=1))
    r = h.instantiate(code, b"no")
    assert (r.error, r.flags, r.data) == (None, 1, b"no")
    assert r.contract is not None and not h.is_contract(r.contract)


def test_constructor_output_is_returned(h: WatHarness) -> None:
    r = h.instantiate(wat(deploy=read_input() + ret(IN, INPUT_LEN)), b"made")
    assert (r.error, r.flags, r.data) == (None, 0, b"made")
    assert r.contract is not None and h.is_contract(r.contract)


@pytest.mark.parametrize("flags", [2, 3, 0x100, -0x8000_0000])
def test_seal_return_with_unknown_flags_fails(h: WatHarness, flags: int) -> None:
    addr = h.deploy(wat(f"(call $seal0.seal_return (i32.const {flags}) (i32.const 0) (i32.const 0))"))
    r = h.call(addr)
    assert isinstance(r.error, HostFunctionError)
    assert r.error.kind == "InvalidCallFlags"
    assert h.call(h.deploy(ECHO), b"still fine").data == b"still fine"
