"""Shims of the ``seal2`` import module: set_storage with variable keys, and ink! 5's
call / instantiate carrying (ref_time, proof_size) limits and a storage-deposit limit."""

from __future__ import annotations

from phat_runtime.types import SENTINEL
from phat_runtime.wasm.calls import do_call, do_instantiate
from phat_runtime.wasm.frame import U32_MASK, Frame, read_storage_key, read_value, shim


@shim
def seal2_set_storage(f: Frame, key_ptr: int, key_len: int, value_ptr: int, value_len: int) -> int:
    key = read_storage_key(f, key_ptr, key_len)
    previous = f.host.set_storage(key, read_value(f, value_ptr, value_len))
    return SENTINEL if previous is None else len(previous)


def _check_deposit_limit(f: Frame, deposit_ptr: int) -> None:
    # There are no storage deposits off-chain; the limit is read (so a bad pointer still
    # fails like on-chain) and otherwise ignored. SENTINEL means "no limit".
    if (deposit_ptr & U32_MASK) != SENTINEL:
        f.read_u128(deposit_ptr)


@shim
def seal2_call(
    f: Frame,
    flags: int,
    callee_ptr: int,
    ref_time_limit: int,
    _proof_size_limit: int,
    deposit_ptr: int,
    value_ptr: int,
    input_ptr: int,
    input_len: int,
    out_ptr: int,
    out_len_ptr: int,
) -> int:
    _check_deposit_limit(f, deposit_ptr)
    return do_call(f, flags, callee_ptr, ref_time_limit, value_ptr, input_ptr, input_len, out_ptr, out_len_ptr)


@shim
def seal2_instantiate(
    f: Frame,
    code_hash_ptr: int,
    ref_time_limit: int,
    _proof_size_limit: int,
    deposit_ptr: int,
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
    _check_deposit_limit(f, deposit_ptr)
    return do_instantiate(
        f, code_hash_ptr, ref_time_limit, value_ptr, input_ptr, input_len,
        address_ptr, address_len_ptr, out_ptr, out_len_ptr, salt_ptr, salt_len,
    )
