"""Shims of the ``seal1`` import module: variable-key storage, call, instantiate, terminate."""

from __future__ import annotations

from phat_runtime.types import SENTINEL, ReturnCode
from phat_runtime.wasm.calls import do_call, do_instantiate
from phat_runtime.wasm.frame import (
    ContractTerminated,
    Frame,
    read_storage_key,
    read_value,
    shim,
)
from phat_runtime.wasm.schedule import STORAGE_READ_FUEL, STORAGE_WRITE_FUEL
from phat_runtime.wasm.seal0 import LEGACY_KEY_LEN, _random


@shim
def seal1_get_storage(f: Frame, key_ptr: int, key_len: int, out_ptr: int, out_len_ptr: int) -> int:
    key = read_storage_key(f, key_ptr, key_len)
    f.charge(STORAGE_READ_FUEL)
    value = f.host.get_storage(key)
    if value is None:
        return ReturnCode.KEY_NOT_FOUND
    f.write_out(out_ptr, out_len_ptr, value)
    return ReturnCode.SUCCESS


@shim
def seal1_contains_storage(f: Frame, key_ptr: int, key_len: int) -> int:
    key = read_storage_key(f, key_ptr, key_len)
    f.charge(STORAGE_READ_FUEL)
    value = f.host.get_storage(key)
    return SENTINEL if value is None else len(value)


@shim
def seal1_clear_storage(f: Frame, key_ptr: int, key_len: int) -> int:
    key = read_storage_key(f, key_ptr, key_len)
    f.charge(STORAGE_WRITE_FUEL)
    previous = f.host.set_storage(key, None)
    return SENTINEL if previous is None else len(previous)


@shim
def seal1_set_storage(f: Frame, key_ptr: int, value_ptr: int, value_len: int) -> int:
    """Fixed 32-byte key version that reports the previous size (ink! 3 era)."""
    key = f.read(key_ptr, LEGACY_KEY_LEN)
    previous = f.host.set_storage(key, read_value(f, value_ptr, value_len))
    return SENTINEL if previous is None else len(previous)


@shim
def seal1_call(
    f: Frame,
    flags: int,
    callee_ptr: int,
    gas: int,
    value_ptr: int,
    input_ptr: int,
    input_len: int,
    out_ptr: int,
    out_len_ptr: int,
) -> int:
    return do_call(f, flags, callee_ptr, gas, value_ptr, input_ptr, input_len, out_ptr, out_len_ptr)


@shim
def seal1_instantiate(
    f: Frame,
    code_hash_ptr: int,
    gas: int,
    value_ptr: int,
    input_ptr: int,
    input_len: int,
    address_ptr: int,
    address_len_ptr: int,
    out_ptr: int,
    out_len_ptr: int,
    salt_ptr: int,
    salt_len: int,
) -> int:
    return do_instantiate(
        f, code_hash_ptr, gas, value_ptr, input_ptr, input_len,
        address_ptr, address_len_ptr, out_ptr, out_len_ptr, salt_ptr, salt_len,
    )


@shim
def seal1_terminate(f: Frame, beneficiary_ptr: int) -> None:
    f.host.terminate(f.read(beneficiary_ptr, 32))
    raise ContractTerminated()


@shim
def seal1_random(f: Frame, subject_ptr: int, subject_len: int, out_ptr: int, out_len_ptr: int) -> None:
    output, block = _random(f, subject_ptr, subject_len)
    f.write_out(out_ptr, out_len_ptr, output + block.to_bytes(4, "little"))
