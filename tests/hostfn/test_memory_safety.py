"""Every pointer-taking host function refuses memory outside the contract's linear memory
(HostFunctionError kind OutOfBounds) and the runtime keeps working; in/out buffers that are
too small fail with OutputBufferTooSmall; u32::MAX is a "skip" only where the ABI allows it."""

from __future__ import annotations

import hashlib

import coincurve
import pytest

from phat_runtime.errors import HostFunctionError
from phat_runtime.pink.extension import ChainExtensionRegistry
from phat_runtime.testing.harness import WatHarness, data, ret, wat

from .contracts import ECHO, FREE, IN, INPUT_LEN, read_input

LEN_AT, OUT_AT, DATA_AT = FREE, FREE + 0x10, FREE + 0x100  # capacity word (64), out buffer, good data
SIG, HASH, PUBKEY = DATA_AT, DATA_AT + 65, DATA_AT + 97  # a valid ecdsa signature of HASH, a valid key
_key = coincurve.PrivateKey(bytes(range(1, 33)))
_hash = hashlib.sha256(b"m").digest()
GOOD = _key.sign_recoverable(_hash, hasher=None) + _hash + _key.public_key.format(compressed=True)
# Every case runs after this: capacity 64 at LEN_AT, and values under the keys DATA_AT[..4] and DATA_AT[..32].
PRELUDE = (
    f"(i32.store (i32.const {LEN_AT}) (i32.const 64))"
    f"(drop (call $seal2.set_storage (i32.const {DATA_AT}) (i32.const 4) (i32.const {DATA_AT}) (i32.const 8)))"
    f"(call $seal0.set_storage (i32.const {DATA_AT}) (i32.const {DATA_AT}) (i32.const 8))"
)
OK = FREE + 0x200
A = f"(i32.const {IN})"  # the 32-byte input: a contract address, or a code hash for instantiate
ZERO = FREE + 0x400  # 16 zero bytes: the value sent with calls and instantiations
_l, _o, _g, _z = f"(i32.const {LEN_AT})", f"(i32.const {OUT_AT})", f"(i32.const {DATA_AT})", f"(i32.const {ZERO})"
GETTERS = ["caller", "address", "balance", "value_transferred", "now", "block_number",
           "minimum_balance", "gas_left", "own_code_hash", "tombstone_deposit", "rent_allowance"]

# name → WAT using {p} for the bad pointer. Cases in SENTINEL_OK accept u32::MAX as "skip".
CASES: dict[str, str] = {
    "input out": f"(call $seal0.input {{p}} {_l})",
    "input out_len": f"(call $seal0.input {_o} {{p}})",
    "seal_return data": "(call $seal0.seal_return (i32.const 0) {p} (i32.const 4))",
    **{f"{g} out": f"(call $seal0.{g} {{p}} {_l})" for g in GETTERS},
    "caller out_len": f"(call $seal0.caller {_o} {{p}})",
    "weight_to_fee out": f"(call $seal0.weight_to_fee (i64.const 1) {{p}} {_l})",
    "random subject": f"(call $seal0.random {{p}} (i32.const 4) {_o} {_l})",
    "seal1.random out": f"(call $seal1.random {_g} (i32.const 4) {{p}} {_l})",
    "seal2.set_storage key": f"(drop (call $seal2.set_storage {{p}} (i32.const 4) {_g} (i32.const 4)))",
    "seal2.set_storage value": f"(drop (call $seal2.set_storage {_g} (i32.const 4) {{p}} (i32.const 4)))",
    "seal1.get_storage key": f"(drop (call $seal1.get_storage {{p}} (i32.const 4) {_o} {_l}))",
    "seal1.get_storage out": f"(drop (call $seal1.get_storage {_g} (i32.const 4) {{p}} {_l}))",
    "seal1.get_storage out_len": f"(drop (call $seal1.get_storage {_g} (i32.const 4) {_o} {{p}}))",
    "seal1.contains_storage key": "(drop (call $seal1.contains_storage {p} (i32.const 4)))",
    "seal1.clear_storage key": "(drop (call $seal1.clear_storage {p} (i32.const 4)))",
    "seal0.take_storage out": f"(drop (call $seal0.take_storage {_g} (i32.const 4) {{p}} {_l}))",
    "seal0.set_storage key": f"(call $seal0.set_storage {{p}} {_g} (i32.const 4))",
    "seal0.set_storage value": f"(call $seal0.set_storage {_g} {{p}} (i32.const 4))",
    "seal0.get_storage out": f"(drop (call $seal0.get_storage {_g} {{p}} {_l}))",
    "seal0.clear_storage key": "(call $seal0.clear_storage {p})",
    "seal0.contains_storage key": "(drop (call $seal0.contains_storage {p}))",
    "seal1.set_storage value": f"(drop (call $seal1.set_storage {_g} {{p}} (i32.const 4)))",
    "deposit_event topics": f"(call $seal0.deposit_event {{p}} (i32.const 33) {_g} (i32.const 4))",
    "deposit_event data": f"(call $seal0.deposit_event {_g} (i32.const 0) {{p}} (i32.const 4))",
    "debug_message": "(drop (call $seal0.debug_message {p} (i32.const 4)))",
    **{f"{fn} input": f"(call $seal0.{fn} {{p}} (i32.const 4) {_o})" for fn in
       ["hash_keccak_256", "hash_blake2_256", "hash_blake2_128", "hash_sha2_256"]},
    **{f"{fn} output": f"(call $seal0.{fn} {_g} (i32.const 4) {{p}})" for fn in
       ["hash_keccak_256", "hash_blake2_256", "hash_blake2_128", "hash_sha2_256"]},
    "ecdsa_recover signature": f"(drop (call $seal0.ecdsa_recover {{p}} (i32.const {HASH}) {_o}))",
    "ecdsa_recover hash": f"(drop (call $seal0.ecdsa_recover {_g} {{p}} {_o}))",
    "ecdsa_recover output": f"(drop (call $seal0.ecdsa_recover {_g} (i32.const {HASH}) {{p}}))",
    "ecdsa_to_eth_address key": f"(drop (call $seal0.ecdsa_to_eth_address {{p}} {_o}))",
    "ecdsa_to_eth_address output": f"(drop (call $seal0.ecdsa_to_eth_address (i32.const {PUBKEY}) {{p}}))",
    "sr25519_verify signature": f"(drop (call $seal0.sr25519_verify {{p}} {_g} (i32.const 4) {_g}))",
    "sr25519_verify message": f"(drop (call $seal0.sr25519_verify {_g} {_g} (i32.const 4) {{p}}))",
    "call_chain_extension input": f"(drop (call $seal0.call_chain_extension (i32.const 1) {{p}} (i32.const 4) {_o} {_l}))",
    # the output pointer has no "skip" value
    "call_chain_extension out": f"(drop (call $seal0.call_chain_extension (i32.const 1) {_g} (i32.const 0) {{p}} {_l}))",
    "call_chain_extension out_len": f"(drop (call $seal0.call_chain_extension (i32.const 1) {_g} (i32.const 0) {_o} {{p}}))",
    "transfer account": f"(drop (call $seal0.transfer {{p}} (i32.const 32) {_g} (i32.const 16)))",
    "transfer value": f"(drop (call $seal0.transfer {_g} (i32.const 32) {{p}} (i32.const 16)))",
    "is_contract": "(drop (call $seal0.is_contract {p}))",
    "code_hash account": f"(drop (call $seal0.code_hash {{p}} {_o} {_l}))",
    "code_hash out": f"(drop (call $seal0.code_hash {A} {{p}} {_l}))",
    "set_code_hash": "(drop (call $seal0.set_code_hash {p}))",
    "seal1.call callee": f"(drop (call $seal1.call (i32.const 0) {{p}} (i64.const 0) {_z} {_g} (i32.const 8) {_o} {_l}))",
    "seal1.call value": f"(drop (call $seal1.call (i32.const 0) {A} (i64.const 0) {{p}} {_g} (i32.const 8) {_o} {_l}))",
    "seal1.call input": f"(drop (call $seal1.call (i32.const 0) {A} (i64.const 0) {_z} {{p}} (i32.const 8) {_o} {_l}))",
    "seal1.call out": f"(drop (call $seal1.call (i32.const 0) {A} (i64.const 0) {_z} {_g} (i32.const 8) {{p}} {_l}))",
    "seal0.call callee": f"(drop (call $seal0.call {{p}} (i32.const 32) (i64.const 0) {_z} (i32.const 16) {_g} (i32.const 8) {_o} {_l}))",
    "seal2.call deposit": f"(drop (call $seal2.call (i32.const 0) {A} (i64.const 0) (i64.const 0) {{p}} {_z} {_g} (i32.const 8) {_o} {_l}))",
    "delegate_call code_hash": f"(drop (call $seal0.delegate_call (i32.const 0) {{p}} {_g} (i32.const 0) {_o} {_l}))",
    "instantiate code_hash": f"(drop (call $seal1.instantiate {{p}} (i64.const 0) {_z} {_g} (i32.const 0) {_o} {_l} {_o} {_l} {_g} (i32.const 4)))",
    "instantiate salt": f"(drop (call $seal1.instantiate {A} (i64.const 0) {_z} {_g} (i32.const 0) {_o} {_l} {_o} {_l} {{p}} (i32.const 4)))",
    "instantiate address": f"(drop (call $seal1.instantiate {A} (i64.const 0) {_z} {_g} (i32.const 8) {{p}} {_l} {_o} {_l} {_g} (i32.const 4)))",
    "seal0.terminate": "(call $seal0.terminate {p} (i32.const 32))",
    "seal1.terminate": "(call $seal1.terminate {p})",
    "call_runtime": "(drop (call $seal0.call_runtime {p} (i32.const 4)))",
    "lock_delegate_dependency": "(call $seal0.lock_delegate_dependency {p})",
}
SENTINEL_OK = {"seal1.call out", "seal2.call deposit", "instantiate address"}
STRADDLING = 0x20000 - 2  # the last two bytes of the 2-page memory: every access spills over


@pytest.fixture()
def h() -> WatHarness:
    """A harness whose only chain-extension function (1) answers 8 bytes."""
    registry = ChainExtensionRegistry()
    registry.register(1, lambda env, input_data: (0, b"8 bytes!"))
    return WatHarness(extension=registry)


def guarded(bad: str) -> str:
    """``bad`` runs when there is input; without input the contract returns "ok"."""
    return wat(
        read_input() + f"(if {INPUT_LEN} (then {PRELUDE} {bad}))" + ret(OK, 2),
        extra=data(DATA_AT, GOOD) + data(OK, b"ok"),
    )


@pytest.mark.parametrize("pointer", [STRADDLING, -1], ids=["straddling", "u32-max"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_out_of_bounds_pointer_fails_and_runtime_goes_on(h: WatHarness, case: str, pointer: int) -> None:
    echo = h.deploy(ECHO)
    aux = h.upload(ECHO) if case.startswith("instantiate") else echo
    contract = h.deploy(guarded(CASES[case].format(p=f"(i32.const {pointer})")), value=10)
    r = h.call(contract, aux)
    if pointer == -1 and case in SENTINEL_OK:
        assert (r.error, r.data) == (None, b"ok")
    else:
        assert isinstance(r.error, HostFunctionError), r.error
        assert r.error.kind == "OutOfBounds", r.error
    assert h.call(contract).data == b"ok"


# name → (WAT whose in/out buffer at OUT_AT holds 1 byte less than the value, value size)
TOO_SMALL = {
    "input": f"(i32.store {_l} (i32.const 31)) (call $seal0.input {_o} {_l})",
    "caller": f"(i32.store {_l} (i32.const 31)) (call $seal0.caller {_o} {_l})",
    "balance": f"(i32.store {_l} (i32.const 15)) (call $seal0.balance {_o} {_l})",
    "get_storage": f"(i32.store {_l} (i32.const 7)) (drop (call $seal1.get_storage {_g} (i32.const 4) {_o} {_l}))",
    "take_storage": f"(i32.store {_l} (i32.const 7)) (drop (call $seal0.take_storage {_g} (i32.const 4) {_o} {_l}))",
    "code_hash": f"(i32.store {_l} (i32.const 31)) (drop (call $seal0.code_hash {A} {_o} {_l}))",
    "call output": f"(i32.store {_l} (i32.const 7)) (drop (call $seal1.call (i32.const 0) {A} (i64.const 0) {_z} {_g} (i32.const 8) {_o} {_l}))",
}


@pytest.mark.parametrize("case", sorted(TOO_SMALL))
def test_output_buffer_too_small(h: WatHarness, case: str) -> None:
    echo = h.deploy(ECHO)
    contract = h.deploy(guarded(TOO_SMALL[case]))
    r = h.call(contract, echo)
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "OutputBufferTooSmall", r.error
    assert h.call(contract).data == b"ok"


def test_instantiate_address_buffer_too_small(h: WatHarness) -> None:
    code = h.upload(ECHO)
    small = (
        f"(i32.store (i32.const {FREE + 0x300}) (i32.const 31))"
        f"(drop (call $seal1.instantiate {A} (i64.const 0) {_z} {_g} (i32.const 0) "
        f"{_o} (i32.const {FREE + 0x300}) (i32.const -1) {_l} {_g} (i32.const 4)))"
    )
    contract = h.deploy(guarded(small))
    r = h.call(contract, code)
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "OutputBufferTooSmall"
    assert h.call(contract).data == b"ok"
