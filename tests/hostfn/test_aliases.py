"""Every (module, name) of HOST_FUNCTIONS links on its own, and the ink! 3 `seal_`-prefixed
names work end to end (HOST-ABI §1.3–§1.4)."""

from __future__ import annotations

import pytest

from phat_runtime.errors import BadImports
from phat_runtime.testing.harness import WatHarness, data, ret, wat
from phat_runtime.types import ExecutionMode
from phat_runtime.wasm.abi import HOST_FUNCTIONS
from phat_runtime.wasm.frame import SHIMS

from .contracts import IN, IN_LEN, INPUT_LEN, u32s

ALL = sorted(f"{module}.{name}" for module, name in HOST_FUNCTIONS)
NO_ALIAS = {  # HOST-ABI §1.4: these exist under one name only
    "seal0.seal_return", "seal0.caller_is_root", "seal0.sr25519_verify", "seal0.instantiation_nonce",
    "seal0.lock_delegate_dependency", "seal0.unlock_delegate_dependency", "seal2.call", "seal2.instantiate",
}


@pytest.mark.parametrize("qualified", ALL)
def test_a_module_importing_just_this_function_links(h: WatHarness, qualified: str) -> None:
    module = wat(imports=[qualified])
    assert module.count("(import ") == 2  # the function and env.memory, nothing else
    r = h.instantiate(module)  # instantiating links every import against its shim
    assert (r.error, r.success) == (None, True)
    assert r.contract is not None and h.call(r.contract).success


def test_every_entry_has_a_shim_and_aliases_share_it() -> None:
    for (module, name), spec in HOST_FUNCTIONS.items():
        assert spec.impl in SHIMS, spec
        plain = HOST_FUNCTIONS.get((module, name.removeprefix("seal_")))
        if name.startswith("seal_") and plain is not None:
            assert (plain.impl, plain.params, plain.results) == (spec.impl, spec.params, spec.results)


@pytest.mark.parametrize("qualified", sorted(q for q in ALL if not q.split(".")[1].startswith("seal_")))
def test_prefixed_alias_exists_unless_the_abi_says_otherwise(qualified: str) -> None:
    module, name = qualified.split(".")
    assert ((module, f"seal_{name}") in HOST_FUNCTIONS) == (qualified not in NO_ALIAS)


@pytest.mark.parametrize("qualified", ["seal0.seal_seal_return", "seal3.input", "env.input", "seal1.input"])
def test_unknown_names_are_refused_at_upload(h: WatHarness, qualified: str) -> None:
    module, name = qualified.split(".")
    code = (
        f'(module (import "{module}" "{name}" (func (param i32 i32))) (import "env" "memory" (memory 2 16))'
        ' (func (export "deploy")) (func (export "call")))'
    )
    with pytest.raises(BadImports):
        h.upload(code)


# An ink! 3-style flipper using only legacy spellings: the constructor stores its input byte
# under the fixed 32-byte key; `call` flips it and returns the new value and the sizes seen.
KEY = 0x10000
INK3_FLIPPER = wat(
    "(i32.store (i32.const 0x10100) (i32.const 1))"
    "(i32.store (i32.const 0x10040) (call $seal0.seal_get_storage (i32.const 0x10000) (i32.const 0x10104) (i32.const 0x10100)))"
    "(i32.store8 (i32.const 0x10104) (i32.xor (i32.load8_u (i32.const 0x10104)) (i32.const 1)))"
    "(i32.store (i32.const 0x10044) (call $seal1.seal_set_storage (i32.const 0x10000) (i32.const 0x10104) (i32.const 1)))"
    "(i32.store (i32.const 0x10048) (call $seal0.seal_contains_storage (i32.const 0x10000)))"
    "(i32.store (i32.const 0x1004c) (call $seal2.seal_set_storage (i32.const 0x10020) (i32.const 2) (i32.const 0x10104) (i32.const 1)))"
    "(i32.store (i32.const 0x10050) (call $seal1.seal_contains_storage (i32.const 0x10020) (i32.const 2)))"
    "(drop (call $seal1.seal_clear_storage (i32.const 0x10020) (i32.const 2)))"
    "(i32.store (i32.const 0x10054) (i32.load8_u (i32.const 0x10104)))"
    + ret(0x10040, 24),
    deploy=f"(i32.store (i32.const {IN_LEN}) (i32.const 1))"
    f"(call $seal0.seal_input (i32.const {IN}) (i32.const {IN_LEN}))"
    f"(call $seal0.seal_set_storage (i32.const {KEY}) (i32.const {IN}) {INPUT_LEN})"
    + f"(call $seal0.seal_clear_storage (i32.const {KEY + 0x20}))",
    extra=data(KEY, bytes(range(32))) + data(KEY + 0x20, b"ab"),
)


def test_ink3_prefixed_names_work_end_to_end(h: WatHarness) -> None:
    addr = h.deploy(INK3_FLIPPER, b"\x00")
    assert h.storage(addr, bytes(range(32))) == b"\x00"
    r = h.call(addr, mode=ExecutionMode.TRANSACTION)
    # get → 0, set → previous size 1, contains → 1, seal2 set → none, seal1 contains → 1, value
    assert u32s(r.data) == [0, 1, 1, 0xFFFFFFFF, 1, 1]
    assert h.storage(addr, bytes(range(32))) == b"\x01"
    assert u32s(h.call(addr, mode=ExecutionMode.TRANSACTION).data)[-1] == 0
