"""seal0/seal1/seal2.instantiate, terminate (seal0 and seal1), and the account functions
is_contract, code_hash, set_code_hash, transfer (HOST-ABI §2.4, §2.7)."""

from __future__ import annotations

import hashlib

import pytest

from phat_runtime.errors import ContractNotFound, HostFunctionError
from phat_runtime.testing.harness import ALICE, BOB, INITIAL_BALANCE, WatHarness, data, ret, wat
from phat_runtime.types import ExecutionMode

from .contracts import (
    FREE,
    IN,
    INPUT_LEN,
    INSTANTIATE_VERSIONS,
    RES,
    collect,
    deployer,
    deployer_input,
    deployer_result,
    proxy,
    proxy_input,
    proxy_result,
    read_input,
    u32,
    u128,
)

TX = ExecutionMode.TRANSACTION
CLUSTER_ID = bytes(32)  # the harness cluster's id

# Constructor: stores its input under "k", then returns it — reverting if the first byte is 1,
# trapping if it is 2. Message: returns what is stored under "k".
CHILD = wat(
    f"(i32.store (i32.const {FREE + 4}) (i32.const 64))"
    f"(drop (call $seal1.get_storage (i32.const {FREE}) (i32.const 1) (i32.const {FREE + 8}) (i32.const {FREE + 4})))"
    + ret(FREE + 8, f"(i32.load (i32.const {FREE + 4}))"),
    deploy=read_input()
    + f"(if (i32.eq (i32.load8_u (i32.const {IN})) (i32.const 2)) (then unreachable))"
    + f"(drop (call $seal2.set_storage (i32.const {FREE}) (i32.const 1) (i32.const {IN}) {INPUT_LEN}))"
    + f"(call $seal0.seal_return (i32.load8_u (i32.const {IN})) (i32.const {IN}) {INPUT_LEN})",
    extra=data(FREE, b"k"),
)


def address_of(deployer_account: bytes, code_hash: bytes, salt: bytes) -> bytes:
    """Pink's rule, computed independently: blake2_256(deployer ‖ code_hash ‖ cluster ‖ salt)."""
    return hashlib.blake2b(deployer_account + code_hash + CLUSTER_ID + salt, digest_size=32).digest()


@pytest.mark.parametrize("version", INSTANTIATE_VERSIONS)
@pytest.mark.parametrize("salt", [b"", b"salt", bytes(range(64))])
def test_instantiate_creates_the_contract_at_pinks_address(h: WatHarness, version: str, salt: bytes) -> None:
    child, parent = h.upload(CHILD), h.deploy(deployer(version), value=1000)
    r = h.call(parent, deployer_input(child, salt, b"\x00hello", value=100), mode=TX)
    address = address_of(parent, child, salt)
    assert (r.error, r.data) == (None, deployer_result(0, address, b"\x00hello"))
    assert h.is_contract(address) and h.storage(address, b"k") == b"\x00hello"
    assert (h.balance(address), h.balance(parent)) == (100, 900)
    assert h.call(address).data == b"\x00hello"


@pytest.mark.parametrize("version", INSTANTIATE_VERSIONS)
@pytest.mark.parametrize(("ctor_input", "code", "output"), [(b"\x01no", 2, b"\x01no"), (b"\x02", 1, None)])
def test_failed_constructor_leaves_no_contract(
    h: WatHarness, version: str, ctor_input: bytes, code: int, output: bytes | None
) -> None:
    child, parent = h.upload(CHILD), h.deploy(deployer(version), value=1000)
    r = h.call(parent, deployer_input(child, b"s", ctor_input, value=100), mode=TX)
    assert r.data == deployer_result(code, None, output)  # address never written
    assert not h.is_contract(address_of(parent, child, b"s"))
    assert h.balance(parent) == 1000


@pytest.mark.parametrize("version", INSTANTIATE_VERSIONS)
def test_instantiate_unknown_code_returns_code_not_found(h: WatHarness, version: str) -> None:
    r = h.call(h.deploy(deployer(version)), deployer_input(b"\x42" * 32))
    assert r.data == deployer_result(7)


@pytest.mark.parametrize("version", INSTANTIATE_VERSIONS)
def test_instantiate_twice_at_one_address_fails(h: WatHarness, version: str) -> None:
    child, parent = h.upload(CHILD), h.deploy(deployer(version))
    assert h.call(parent, deployer_input(child, b"once", b"\x00"), mode=TX).data[:4] == u32(0)
    r = h.call(parent, deployer_input(child, b"once", b"\x00"), mode=TX)
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "DuplicateContract"


@pytest.mark.parametrize("version", INSTANTIATE_VERSIONS)
def test_instantiate_value_beyond_balance_is_transfer_failed(h: WatHarness, version: str) -> None:
    child, parent = h.upload(CHILD), h.deploy(deployer(version), value=10)
    assert h.call(parent, deployer_input(child, b"", b"\x00", value=11), mode=TX).data == deployer_result(5)


@pytest.mark.parametrize("version", INSTANTIATE_VERSIONS)
def test_address_sentinel_skips_writing_the_address(h: WatHarness, version: str) -> None:
    child, parent = h.upload(CHILD), h.deploy(deployer(version, address=-1))
    r = h.call(parent, deployer_input(child, b"", b"\x00ok"), mode=TX)
    assert r.data == deployer_result(0, None, b"\x00ok")
    assert h.is_contract(address_of(parent, child, b""))


# --- terminate ---------------------------------------------------------------------------------
TERMINATE = {
    "seal0": f"(call $seal0.terminate (i32.const {IN}) (i32.const 32))",
    "seal1": f"(call $seal1.terminate (i32.const {IN}))",
}


@pytest.mark.parametrize("version", sorted(TERMINATE))
def test_terminate_removes_the_contract_and_pays_the_beneficiary(h: WatHarness, version: str) -> None:
    doomed = h.deploy(wat(read_input() + TERMINATE[version] + "unreachable"), value=500)
    assert h.call(doomed, BOB).terminated == [doomed] and h.is_contract(doomed)  # a query
    r = h.call(doomed, BOB, mode=TX)
    assert (r.error, r.flags, r.data, r.terminated) == (None, 0, b"", [doomed])
    assert not h.is_contract(doomed)
    assert (h.balance(doomed), h.balance(BOB)) == (0, INITIAL_BALANCE + 500)
    with pytest.raises(ContractNotFound):
        h.call(doomed)


@pytest.mark.parametrize("version", sorted(TERMINATE))
def test_terminate_in_the_constructor_fails(h: WatHarness, version: str) -> None:
    code = wat(deploy=f"(i32.store (i32.const {IN}) (i32.const 0))" + TERMINATE[version])
    r = h.instantiate(code, value=500)
    assert r.error is not None and r.error.kind == "TerminatedInConstructor"
    assert r.contract is not None and not h.is_contract(r.contract)
    assert h.balance(ALICE) == INITIAL_BALANCE


# --- is_contract, code_hash, set_code_hash, transfer ------------------------------------------
def test_is_contract(h: WatHarness) -> None:
    asker = h.deploy(wat(read_input() + collect(f"(call $seal0.is_contract (i32.const {IN}))")))
    assert [h.call(asker, who).data for who in (asker, BOB, bytes(32))] == [u32(1), u32(0), u32(0)]


CODE_HASH = wat(  # input: account; returns code ‖ out_len ‖ 32-byte buffer
    read_input() + f"(i32.store (i32.const {RES + 4}) (i32.const 32))"
    + f"(i32.store (i32.const {RES}) (call $seal0.code_hash (i32.const {IN}) (i32.const {RES + 8}) (i32.const {RES + 4})))"
    + ret(RES, 40)
)


def test_code_hash_of_a_contract_and_of_a_plain_account(h: WatHarness) -> None:
    asker = h.deploy(CODE_HASH)
    assert h.call(asker, asker).data == u32(0) + u32(32) + h.upload(CODE_HASH)
    assert h.call(asker, BOB).data == u32(3) + u32(32) + bytes(32)  # KeyNotFound, untouched


def versioned(tag: bytes) -> str:
    """Returns ``tag``; with input, first calls set_code_hash(input) and returns its code."""
    return wat(
        read_input()
        + f"(if {INPUT_LEN} (then {collect(f'(call $seal0.set_code_hash (i32.const {IN}))')}))"
        + ret(FREE, len(tag)),
        extra=data(FREE, tag),
    )


def test_set_code_hash_switches_the_code_for_later_calls(h: WatHarness) -> None:
    contract, v2 = h.deploy(versioned(b"v1")), h.upload(versioned(b"v2"))
    assert h.call(contract, b"\x42" * 32, mode=TX).data == u32(7)  # CodeNotFound, unchanged
    assert h.call(contract).data == b"v1"
    assert h.call(contract, v2, mode=TX).data == u32(0)
    assert h.call(contract).data == b"v2"
    info = h.cluster.records.contract(contract)
    assert info is not None and info.code_hash == v2


TRANSFER = wat(  # input: to ‖ value u128
    read_input() + collect(f"(call $seal0.transfer (i32.const {IN}) (i32.const 32) (i32.const {IN + 32}) (i32.const 16))")
)


def test_transfer_moves_balance_or_fails(h: WatHarness) -> None:
    payer = h.deploy(TRANSFER, value=1000)
    assert h.call(payer, BOB + u128(300), mode=TX).data == u32(0)
    assert (h.balance(payer), h.balance(BOB)) == (700, INITIAL_BALANCE + 300)
    assert h.call(payer, BOB + u128(701), mode=TX).data == u32(5)
    assert (h.balance(payer), h.balance(BOB)) == (700, INITIAL_BALANCE + 300)


def test_termination_inside_a_reverted_call_is_undone(h: WatHarness) -> None:
    doomed = h.deploy(wat(read_input() + TERMINATE["seal1"]), value=500)
    reverting = h.deploy(proxy(after=ret(0, 0, flags=1)), salt=b"r")
    top = h.deploy(proxy())
    r = h.call(top, proxy_input(reverting, proxy_input(doomed, BOB)), mode=TX)
    assert (r.data, r.terminated) == (proxy_result(2, b""), [])
    assert h.is_contract(doomed) and h.balance(doomed) == 500
