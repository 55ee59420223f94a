"""seal0.call_chain_extension / seal_call_chain_extension: pink's id split (extension 0 only),
a registered handler's status and output, the in/out length rule (HOST-ABI §3.1)."""

from __future__ import annotations

import pytest

from phat_runtime.errors import ChainExtensionError, ExecutionError, HostFunctionError
from phat_runtime.pink.extension import ChainExtensionRegistry, ExtensionEnv
from phat_runtime.runtime.cluster import ExecResult
from phat_runtime.testing.harness import ALICE, BOB, WatHarness, ret, wat
from phat_runtime.types import AccountId, ExecutionMode

from .contracts import ECHO, IN, INPUT_LEN, RES, read_input, u32

NAMES = ["call_chain_extension", "seal_call_chain_extension"]
ECHO_FUNC = 7  # the test handler: status 5, output b"out:" + input


def extension_caller(name: str) -> str:
    """Input: func_id u32 ‖ capacity u32 ‖ payload. Returns status ‖ out_len ‖ output."""
    return wat(
        read_input()
        + f"(i32.store (i32.const {RES + 4}) (i32.load (i32.const {IN + 4})))"
        + f"(i32.store (i32.const {RES}) (call $seal0.{name} (i32.load (i32.const {IN})) "
        f"(i32.const {IN + 8}) (i32.sub {INPUT_LEN} (i32.const 8)) (i32.const {RES + 8}) (i32.const {RES + 4})))"
        + ret(RES, f"(i32.add (i32.const 8) (i32.load (i32.const {RES + 4})))")
    )


@pytest.fixture()
def seen() -> list[tuple[ExecutionMode, bytes, bytes]]:
    return []


@pytest.fixture()
def hx(seen: list[tuple[ExecutionMode, bytes, bytes]]) -> WatHarness:
    registry = ChainExtensionRegistry()

    def echo(env: ExtensionEnv, input_data: bytes) -> tuple[int, bytes]:
        seen.append((env.mode, env.contract, env.caller()))
        return 5, b"out:" + input_data

    def failing(env: ExtensionEnv, input_data: bytes) -> tuple[int, bytes]:
        raise ChainExtensionError("KeySeedMissing: no key", kind="KeySeedMissing")

    registry.register(ECHO_FUNC, echo)
    registry.register(3, failing)
    return WatHarness(extension=registry)


def call(
    hx: WatHarness, name: str, func_id: int, payload: bytes, capacity: int = 64,
    mode: ExecutionMode = ExecutionMode.QUERY, caller: AccountId = ALICE,
) -> ExecResult:
    contract = hx.deploy(extension_caller(name))
    return hx.call(contract, u32(func_id) + u32(capacity) + payload, mode=mode, caller=caller)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", [ExecutionMode.QUERY, ExecutionMode.TRANSACTION])
def test_handler_status_and_output_reach_the_contract(
    hx: WatHarness, seen: list[tuple[ExecutionMode, bytes, bytes]], name: str, mode: ExecutionMode
) -> None:
    r = call(hx, name, ECHO_FUNC, b"abc", mode=mode, caller=BOB)
    assert (r.error, r.data) == (None, u32(5) + u32(7) + b"out:abc")
    assert seen == [(mode, r.contract, BOB)]


@pytest.mark.parametrize("name", NAMES)
def test_output_exactly_filling_the_buffer_fits(hx: WatHarness, name: str) -> None:
    assert call(hx, name, ECHO_FUNC, b"abc", capacity=7).data == u32(5) + u32(7) + b"out:abc"


@pytest.mark.parametrize("name", NAMES)
def test_output_larger_than_the_buffer_fails(hx: WatHarness, name: str) -> None:
    r = call(hx, name, ECHO_FUNC, b"abc", capacity=6)
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "ContractIoBufferOverflow"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("func_id", [1, 25, 0, 0xFFFF])
def test_unknown_function_fails_clearly(hx: WatHarness, name: str, func_id: int) -> None:
    r = call(hx, name, func_id, b"")
    assert isinstance(r.error, ChainExtensionError) and r.error.kind == "UnknownChainExtensionFunction"
    assert f"function {func_id} " in str(r.error)
    assert hx.call(hx.deploy(ECHO), b"fine").data == b"fine"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ext_id", [1, 0xFF00, 0xFFFF])
def test_extension_id_other_than_zero_fails(hx: WatHarness, name: str, ext_id: int) -> None:
    r = call(hx, name, ext_id << 16 | ECHO_FUNC, b"")  # ECHO_FUNC is registered, ext_id is not
    assert isinstance(r.error, ChainExtensionError) and r.error.kind == "UnknownChainExtensionId"


@pytest.mark.parametrize("name", NAMES)
def test_a_failing_handler_fails_the_call(hx: WatHarness, name: str) -> None:
    r = call(hx, name, 3, b"")
    assert isinstance(r.error, ExecutionError) and r.error.kind == "KeySeedMissing"
