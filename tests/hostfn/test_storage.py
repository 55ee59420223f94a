"""Contract storage: seal2.set_storage, seal1.get/contains/clear_storage, seal0.take_storage,
the ink! 3 fixed-key functions (seal0.set/get/clear/contains_storage, seal1.set_storage),
their return values, the key/value limits, and transactional writes (HOST-ABI §2.5)."""

from __future__ import annotations

import pytest

from phat_runtime.errors import ContractTrapped, HostFunctionError
from phat_runtime.testing.harness import WatHarness, data, ret, wat
from phat_runtime.types import SENTINEL, ExecutionMode
from phat_runtime.wasm.frame import MAX_STORAGE_KEY_LEN, MAX_VALUE_LEN

from .contracts import (
    FREE,
    IN,
    INPUT_LEN,
    OOB,
    collect,
    proxy,
    proxy_input,
    proxy_result,
    read_input,
    u32s,
)

TX = ExecutionMode.TRANSACTION
KEY, LEGACY_KEY = b"key1", bytes(range(100, 132))
K, LK, V3, V5, LONG_KEY = FREE, FREE + 0x10, FREE + 0x40, FREE + 0x50, FREE + 0x100
LEN, OUT = FREE + 0x1000, FREE + 0x1004
SEGMENTS = (
    data(K, KEY) + data(LK, LEGACY_KEY) + data(V3, b"abc") + data(V5, b"hello")
    + data(LONG_KEY, bytes(range(200))) + data(OUT, b"\xee" * 8)
)
HELL = int.from_bytes(b"hell", "little")


def storage_contract(*exprs: str) -> str:
    return wat(collect(*exprs), extra=SEGMENTS)


def with_len(call: str, capacity: int = 64) -> str:
    """``call`` after setting the out buffer's capacity at LEN."""
    return f"(block (result i32) (i32.store (i32.const {LEN}) (i32.const {capacity})) {call})"


def then(stmt: str, result: str) -> str:
    return f"(block (result i32) {stmt} {result})"


def set2(value: int, length: int) -> str:
    return f"(call $seal2.set_storage (i32.const {K}) (i32.const 4) (i32.const {value}) (i32.const {length}))"


CONTAINS = f"(call $seal1.contains_storage (i32.const {K}) (i32.const 4))"
CLEAR = f"(call $seal1.clear_storage (i32.const {K}) (i32.const 4))"
GET = with_len(f"(call $seal1.get_storage (i32.const {K}) (i32.const 4) (i32.const {OUT}) (i32.const {LEN}))")
TAKE = with_len(f"(call $seal0.take_storage (i32.const {K}) (i32.const 4) (i32.const {OUT}) (i32.const {LEN}))")
OUT_WORD, OUT_BYTE4, LEN_WORD = (
    f"(i32.load (i32.const {OUT}))", f"(i32.load8_u (i32.const {OUT + 4}))", f"(i32.load (i32.const {LEN}))"
)


def run(h: WatHarness, *exprs: str) -> list[int]:
    r = h.call(h.deploy(storage_contract(*exprs)))
    assert r.error is None, r.error
    return u32s(r.data)


def test_set_contains_clear_report_previous_sizes(h: WatHarness) -> None:
    assert run(
        h, set2(V3, 3), set2(V5, 5), CONTAINS, set2(V3, 0), CONTAINS, set2(V3, 3), CLEAR, CLEAR, CONTAINS
    ) == [SENTINEL, 3, 5, 5, 0, 0, 3, SENTINEL, SENTINEL]


def test_get_storage_writes_value_or_returns_key_not_found(h: WatHarness) -> None:
    assert run(h, GET, LEN_WORD, OUT_WORD, set2(V5, 5), GET, LEN_WORD, OUT_WORD, OUT_BYTE4) == [
        3, 64, 0xEEEEEEEE,  # absent: KeyNotFound, buffers untouched
        SENTINEL, 0, 5, HELL, ord("o"),
    ]


def test_take_storage_returns_and_removes(h: WatHarness) -> None:
    assert run(h, TAKE, set2(V5, 5), TAKE, LEN_WORD, OUT_WORD, CONTAINS, TAKE) == [
        3, SENTINEL, 0, 5, HELL, SENTINEL, 3
    ]


def test_legacy_fixed_key_functions(h: WatHarness) -> None:
    contains0 = f"(call $seal0.contains_storage (i32.const {LK}))"
    get0 = with_len(f"(call $seal0.get_storage (i32.const {LK}) (i32.const {OUT}) (i32.const {LEN}))")
    set0 = f"(call $seal0.set_storage (i32.const {LK}) (i32.const {V3}) (i32.const 3))"
    clear0 = f"(call $seal0.clear_storage (i32.const {LK}))"

    def set1(length: int) -> str:
        return f"(call $seal1.set_storage (i32.const {LK}) (i32.const {V5}) (i32.const {length}))"

    assert run(
        h, contains0, then(set0, contains0), set1(5), get0, LEN_WORD, OUT_WORD,
        then(clear0, contains0), get0, set1(0), contains0,
    ) == [SENTINEL, 3, 3, 0, 5, HELL, SENTINEL, 3, SENTINEL, 0]


# op → (WAT with {k} key pointer and {n} key length, result for an absent 128-byte key)
KEYED_OPS = {
    "seal2.set_storage": (
        "(call $seal2.set_storage (i32.const {k}) (i32.const {n}) (i32.const 0) (i32.const 1))", SENTINEL
    ),
    "seal1.get_storage": (
        "(call $seal1.get_storage (i32.const {k}) (i32.const {n}) (i32.const 0) (i32.const 0))", 3
    ),
    "seal1.contains_storage": ("(call $seal1.contains_storage (i32.const {k}) (i32.const {n}))", SENTINEL),
    "seal1.clear_storage": ("(call $seal1.clear_storage (i32.const {k}) (i32.const {n}))", SENTINEL),
    "seal0.take_storage": (
        "(call $seal0.take_storage (i32.const {k}) (i32.const {n}) (i32.const 0) (i32.const 0))", 3
    ),
}


@pytest.mark.parametrize("op", sorted(KEYED_OPS))
@pytest.mark.parametrize("key_len", [MAX_STORAGE_KEY_LEN, MAX_STORAGE_KEY_LEN + 1, -1])
def test_storage_key_longer_than_128_bytes_fails(h: WatHarness, op: str, key_len: int) -> None:
    call, absent = KEYED_OPS[op]
    r = h.call(h.deploy(storage_contract(call.format(k=LONG_KEY, n=key_len))))
    if key_len == MAX_STORAGE_KEY_LEN:
        assert (r.error, u32s(r.data)) == (None, [absent])
    else:
        assert isinstance(r.error, HostFunctionError) and r.error.kind == "DecodingFailed"


# op → (WAT storing {n} bytes from address 0 under the 32 bytes at LK, key actually used)
SETTERS = {
    "seal2.set_storage": (
        f"(drop (call $seal2.set_storage (i32.const {LK}) (i32.const 4) (i32.const 0) (i32.const {{n}})))",
        LEGACY_KEY[:4],
    ),
    "seal1.set_storage": (
        f"(drop (call $seal1.set_storage (i32.const {LK}) (i32.const 0) (i32.const {{n}})))", LEGACY_KEY
    ),
    "seal0.set_storage": (f"(call $seal0.set_storage (i32.const {LK}) (i32.const 0) (i32.const {{n}}))", LEGACY_KEY),
}


@pytest.mark.parametrize("op", sorted(SETTERS))
def test_value_up_to_1_mib_is_stored_and_larger_fails(h: WatHarness, op: str) -> None:
    store, key = SETTERS[op]
    big = wat(  # 1 MiB from address 0 (17 pages of memory); one byte more if there is input
        read_input() + f"(if {INPUT_LEN} (then {store.format(n=MAX_VALUE_LEN + 1)}))"
        + store.format(n=MAX_VALUE_LEN),
        extra=SEGMENTS, memory="(memory 17 17)",
    )
    addr = h.deploy(big)
    assert h.call(addr, mode=TX).success
    assert len(h.storage(addr, key) or b"") == MAX_VALUE_LEN
    r = h.call(addr, b"too big", mode=TX)
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "ValueTooLarge"


# A counter: call increments the u32 under KEY and returns it.
COUNTER = wat(
    f"(i32.store (i32.const {LEN}) (i32.const 4))"
    f"(drop (call $seal1.get_storage (i32.const {K}) (i32.const 4) (i32.const {OUT}) (i32.const {LEN})))"
    f"(i32.store (i32.const {OUT}) (i32.add (i32.load (i32.const {OUT})) (i32.const 1)))"
    f"(drop {set2(OUT, 4)})" + ret(OUT, 4),
    deploy=f"(i32.store (i32.const {OUT}) (i32.const 0)) (drop {set2(OUT, 4)})",
    extra=data(K, KEY),
)


@pytest.mark.parametrize(
    ("mode", "commits"),
    [(ExecutionMode.QUERY, False), (ExecutionMode.ESTIMATE, False), (ExecutionMode.TRANSACTION, True)],
)
def test_writes_commit_only_in_transactions(h: WatHarness, mode: ExecutionMode, commits: bool) -> None:
    addr = h.deploy(COUNTER)
    assert h.storage(addr, KEY) == bytes(4)
    assert h.call(addr, mode=mode).data == (1).to_bytes(4, "little")
    assert h.call(addr, mode=mode).data == (2 if commits else 1).to_bytes(4, "little")
    assert h.storage(addr, KEY) == (2 if commits else 0).to_bytes(4, "little")


ENDINGS = {
    "revert": ret(0, 0, flags=1),
    "trap": "unreachable",
    "host error": f"(drop (call $seal1.contains_storage (i32.const {OOB}) (i32.const 4)))",
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_writes_roll_back_on_revert_and_trap(h: WatHarness, ending: str) -> None:
    code = wat(
        f"(drop {set2(V5, 5)})" + f"(drop (call $seal1.clear_storage (i32.const {LK}) (i32.const 32)))"
        + ENDINGS[ending],
        deploy=f"(drop {set2(V3, 3)})"
        f"(drop (call $seal2.set_storage (i32.const {LK}) (i32.const 32) (i32.const {V3}) (i32.const 3)))",
        extra=SEGMENTS,
    )
    addr = h.deploy(code)
    r = h.call(addr, mode=TX)
    assert r.reverted if ending == "revert" else isinstance(r.error, ContractTrapped | HostFunctionError)
    assert (h.storage(addr, KEY), h.storage(addr, LEGACY_KEY)) == (b"abc", b"abc")


WRITER = wat(  # stores its input under KEY, then reverts if the input starts with 1
    read_input() + f"(drop (call $seal2.set_storage (i32.const {K}) (i32.const 4) (i32.const {IN}) {INPUT_LEN}))"
    + f"(call $seal0.seal_return (i32.load8_u (i32.const {IN})) (i32.const {IN}) (i32.const 0))",
    extra=data(K, KEY),
)


@pytest.mark.parametrize(
    ("payload", "caller_traps", "kept"),
    [(b"\x00ok", False, True), (b"\x01no", False, False), (b"\x00ok", True, False)],
)
def test_callee_writes_follow_its_frame_and_its_callers(
    h: WatHarness, payload: bytes, caller_traps: bool, kept: bool
) -> None:
    writer = h.deploy(WRITER)
    caller = h.deploy(proxy(after="unreachable" if caller_traps else ""))
    r = h.call(caller, proxy_input(writer, payload), mode=TX)
    if not caller_traps:
        assert r.data == proxy_result(2 if payload[0] else 0, b"")
    assert h.storage(writer, KEY) == (payload if kept else None)
