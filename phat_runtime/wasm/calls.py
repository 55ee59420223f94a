"""Shared bodies of call / delegate_call / instantiate for every version (seal0/1/2).

The versions differ only in how arguments are laid out; the semantics (HOST-ABI §2.7) live
here once: input forwarding/cloning, TAIL_CALL, output copied back on success *or* revert
(skippable with the sentinel), address written only when the constructor did not revert.
"""

from __future__ import annotations

from phat_runtime.types import CallFlags, ReturnCode
from phat_runtime.wasm.frame import U32_MASK, ContractReturned, Frame, host_error

#: Every call flag this runtime knows (READ_ONLY is newer than pink's pallet but harmless).
KNOWN_CALL_FLAGS = int(
    CallFlags.FORWARD_INPUT
    | CallFlags.CLONE_INPUT
    | CallFlags.TAIL_CALL
    | CallFlags.ALLOW_REENTRY
    | CallFlags.READ_ONLY
)
_RAN = (ReturnCode.SUCCESS, ReturnCode.CALLEE_REVERTED)
#: The "all remaining gas" value of a gas limit argument.
ALL_GAS = 0


def check_flags(flags: int) -> int:
    flags &= U32_MASK
    if flags & ~KNOWN_CALL_FLAGS:
        raise host_error("InvalidCallFlags", f"unknown call flags {flags:#x}")
    return flags


def take_input(f: Frame, flags: int, input_ptr: int, input_len: int) -> bytes:
    if flags & CallFlags.CLONE_INPUT:
        if f.input is None:
            raise host_error("InputForwarded", "input was already forwarded")
        return f.input
    if flags & CallFlags.FORWARD_INPUT:
        if f.input is None:
            raise host_error("InputForwarded", "input was already forwarded")
        data, f.input = f.input, None
        return data
    return f.read(input_ptr, input_len)


def _finish(f: Frame, flags: int, code: ReturnCode, output: bytes, out_ptr: int, out_len_ptr: int) -> int:
    if code in _RAN:
        if flags & CallFlags.TAIL_CALL:
            raise ContractReturned(1 if code == ReturnCode.CALLEE_REVERTED else 0, output)
        f.write_out(out_ptr, out_len_ptr, output, allow_skip=True)
    return int(code)


def do_call(
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
    flags = check_flags(flags)
    callee = f.read(callee_ptr, 32)
    value = f.read_u128(value_ptr)
    data = take_input(f, flags, input_ptr, input_len)
    outcome = f.host.call(callee, value, data, gas & 0xFFFF_FFFF_FFFF_FFFF, flags)
    return _finish(f, flags, outcome.code, outcome.output, out_ptr, out_len_ptr)


def do_delegate_call(
    f: Frame, flags: int, code_hash_ptr: int, input_ptr: int, input_len: int, out_ptr: int, out_len_ptr: int
) -> int:
    flags = check_flags(flags)
    if flags & (CallFlags.ALLOW_REENTRY | CallFlags.READ_ONLY):
        raise host_error("InvalidCallFlags", "delegate_call cannot set ALLOW_REENTRY or READ_ONLY")
    code_hash = f.read(code_hash_ptr, 32)
    data = take_input(f, flags, input_ptr, input_len)
    outcome = f.host.delegate_call(code_hash, data, flags)
    return _finish(f, flags, outcome.code, outcome.output, out_ptr, out_len_ptr)


def do_instantiate(
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
    code_hash = f.read(code_hash_ptr, 32)
    value = f.read_u128(value_ptr)
    data = f.read(input_ptr, input_len)
    salt = f.read(salt_ptr, salt_len)
    outcome = f.host.instantiate(code_hash, value, data, salt, gas & 0xFFFF_FFFF_FFFF_FFFF)
    if outcome.code in _RAN:
        if outcome.code == ReturnCode.SUCCESS and outcome.address is not None:
            f.write_out(address_ptr, address_len_ptr, outcome.address, allow_skip=True)
        f.write_out(out_ptr, out_len_ptr, outcome.output, allow_skip=True)
    return int(outcome.code)
