"""Shims of the ``seal0`` import module: context, I/O, hashing, events, crypto, and the
legacy fixed-key storage / call / instantiate / terminate versions (HOST-ABI.md §1.3–§1.4).

Each shim is ``seal0_<name>(frame, *wasm_args)``; the ``seal_``-prefixed aliases resolve to the
same function through ``abi.HOST_FUNCTIONS``.
"""

from __future__ import annotations

import struct

from phat_runtime.crypto import hashing, signatures
from phat_runtime.types import SENTINEL, CallFlags, ReturnCode
from phat_runtime.wasm.calls import do_call, do_delegate_call, do_instantiate
from phat_runtime.wasm.frame import (
    MAX_VALUE_LEN,
    U32_MASK,
    ContractReturned,
    ContractTerminated,
    Frame,
    host_error,
    read_value,
    shim,
)
from phat_runtime.wasm.schedule import (
    FUEL_PER_BYTE,
    GAS_PER_FUEL,
    SIGNATURE_FUEL,
    STORAGE_READ_FUEL,
    STORAGE_WRITE_FUEL,
    fuel,
)

#: Event topics allowed per event (schedule event_topics).
MAX_EVENT_TOPICS = 4
#: Largest subject of the deprecated ``random`` (schedule subject_len).
MAX_RANDOM_SUBJECT_LEN = 32
#: Fixed key length of the legacy (ink! 3) storage functions.
LEGACY_KEY_LEN = 32
_U128 = 16


def _u128(value: int) -> bytes:
    return value.to_bytes(_U128, "little")


# --- input / output ----------------------------------------------------------------------


@shim
def seal0_input(f: Frame, buf_ptr: int, buf_len_ptr: int) -> None:
    if f.input is None:
        raise host_error("InputForwarded", "input was forwarded to a callee and is gone")
    f.write_out(buf_ptr, buf_len_ptr, f.input)


@shim
def seal0_seal_return(f: Frame, flags: int, data_ptr: int, data_len: int) -> None:
    flags &= U32_MASK
    if flags & ~1:
        raise host_error("InvalidCallFlags", f"seal_return flags {flags:#x}: only REVERT (1) is defined")
    raise ContractReturned(flags, f.read(data_ptr, data_len))


# --- context getters -----------------------------------------------------------------------


@shim
def seal0_caller(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, f.host.caller())


@shim
def seal0_address(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, f.host.address())


@shim
def seal0_balance(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, _u128(f.host.balance()))


@shim
def seal0_value_transferred(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, _u128(f.host.value_transferred()))


@shim
def seal0_now(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, struct.pack("<Q", f.host.now_ms()))


@shim
def seal0_block_number(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, struct.pack("<I", f.host.block_number()))


@shim
def seal0_minimum_balance(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, _u128(f.host.minimum_balance()))


@shim
def seal0_gas_left(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, struct.pack("<Q", f.fuel_left() * GAS_PER_FUEL))


@shim
def seal0_own_code_hash(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, f.host.own_code_hash())


@shim
def seal0_weight_to_fee(f: Frame, gas: int, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, _u128(f.host.weight_to_fee(gas & 0xFFFF_FFFF_FFFF_FFFF)))


@shim
def seal0_caller_is_origin(f: Frame) -> int:
    return int(f.host.caller_is_origin())


@shim
def seal0_caller_is_root(f: Frame) -> int:
    return int(f.host.caller_is_root())


@shim
def seal0_instantiation_nonce(f: Frame) -> int:
    return f.host.instantiation_nonce()


@shim
def seal0_is_contract(f: Frame, account_ptr: int) -> int:
    return int(f.host.is_contract(f.read(account_ptr, 32)))


@shim
def seal0_code_hash(f: Frame, account_ptr: int, out_ptr: int, out_len_ptr: int) -> int:
    found = f.host.code_hash_of(f.read(account_ptr, 32))
    if found is None:
        return ReturnCode.KEY_NOT_FOUND
    f.write_out(out_ptr, out_len_ptr, found)
    return ReturnCode.SUCCESS


@shim
def seal0_set_code_hash(f: Frame, code_hash_ptr: int) -> int:
    return f.host.set_code_hash(f.read(code_hash_ptr, 32))


# --- events and debug ----------------------------------------------------------------------


#: Smallest count each compact width may carry: SCALE refuses a longer-than-needed encoding.
_COMPACT_MIN = {1: 0, 2: 1 << 6, 4: 1 << 14}


def _decode_topics(raw: bytes) -> list[bytes]:
    """SCALE ``Vec<[u8; 32]>``: compact length then 32-byte topics, nothing left over."""
    if not raw:
        return []
    mode = raw[0] & 3
    if mode == 0:
        count, head = raw[0] >> 2, 1
    elif mode == 1 and len(raw) >= 2:
        count, head = int.from_bytes(raw[:2], "little") >> 2, 2
    elif mode == 2 and len(raw) >= 4:
        count, head = int.from_bytes(raw[:4], "little") >> 2, 4
    else:
        raise host_error("DecodingFailed", "event topics: bad compact length")
    if count < _COMPACT_MIN[head]:
        raise host_error("DecodingFailed", f"event topics: non-canonical compact length {count}")
    if len(raw) != head + 32 * count:
        raise host_error("DecodingFailed", f"event topics: {count} topics need {head + 32 * count} bytes, got {len(raw)}")
    return [raw[head + 32 * i : head + 32 * (i + 1)] for i in range(count)]


@shim
def seal0_deposit_event(f: Frame, topics_ptr: int, topics_len: int, data_ptr: int, data_len: int) -> None:
    topics = _decode_topics(f.read(topics_ptr, topics_len))
    if len(topics) > MAX_EVENT_TOPICS:
        raise host_error("TooManyTopics", f"{len(topics)} event topics, at most {MAX_EVENT_TOPICS}")
    data = read_value(f, data_ptr, data_len)
    f.charge(len(topics) * 32 * FUEL_PER_BYTE)
    f.host.deposit_event(topics, data)


@shim
def seal0_debug_message(f: Frame, str_ptr: int, str_len: int) -> int:
    message = f.read(str_ptr, str_len)
    try:
        message.decode("utf-8")
    except UnicodeDecodeError:
        message = b""  # pallet-contracts drops a message that is not UTF-8, still reports Success
    if f.host.debug_message(message):
        return ReturnCode.SUCCESS
    return ReturnCode.LOGGING_DISABLED


# --- hashing and crypto --------------------------------------------------------------------


def _hash(f: Frame, fn: object, input_ptr: int, input_len: int, output_ptr: int) -> None:
    data = f.read(input_ptr, input_len)
    f.charge(len(data) * FUEL_PER_BYTE)
    f.write(output_ptr, fn(data))  # type: ignore[operator]


@shim
def seal0_hash_keccak_256(f: Frame, input_ptr: int, input_len: int, output_ptr: int) -> None:
    _hash(f, hashing.keccak_256, input_ptr, input_len, output_ptr)


@shim
def seal0_hash_blake2_256(f: Frame, input_ptr: int, input_len: int, output_ptr: int) -> None:
    _hash(f, hashing.blake2_256, input_ptr, input_len, output_ptr)


@shim
def seal0_hash_blake2_128(f: Frame, input_ptr: int, input_len: int, output_ptr: int) -> None:
    _hash(f, hashing.blake2_128, input_ptr, input_len, output_ptr)


@shim
def seal0_hash_sha2_256(f: Frame, input_ptr: int, input_len: int, output_ptr: int) -> None:
    _hash(f, hashing.sha2_256, input_ptr, input_len, output_ptr)


@shim
def seal0_ecdsa_recover(f: Frame, signature_ptr: int, message_hash_ptr: int, output_ptr: int) -> int:
    f.charge(SIGNATURE_FUEL)
    signature = f.read(signature_ptr, 65)
    message_hash = f.read(message_hash_ptr, 32)
    key = signatures.ecdsa_recover_compressed(signature, message_hash)
    if key is None:
        return ReturnCode.ECDSA_RECOVERY_FAILED
    f.write(output_ptr, key)
    return ReturnCode.SUCCESS


@shim
def seal0_ecdsa_to_eth_address(f: Frame, key_ptr: int, out_ptr: int) -> int:
    f.charge(SIGNATURE_FUEL)
    address = signatures.ecdsa_to_eth_address(f.read(key_ptr, 33))
    if address is None:
        return ReturnCode.ECDSA_RECOVERY_FAILED
    f.write(out_ptr, address)
    return ReturnCode.SUCCESS


@shim
def seal0_sr25519_verify(f: Frame, signature_ptr: int, pub_key_ptr: int, message_len: int, message_ptr: int) -> int:
    f.charge(SIGNATURE_FUEL)
    signature = f.read(signature_ptr, 64)
    public_key = f.read(pub_key_ptr, 32)
    message = f.read(message_ptr, message_len)
    if signatures.sr25519_verify(signature, message, public_key):
        return ReturnCode.SUCCESS
    return ReturnCode.SR25519_VERIFY_FAILED


# --- chain extension ---------------------------------------------------------------------


@shim
def seal0_call_chain_extension(
    f: Frame, func_id: int, input_ptr: int, input_len: int, output_ptr: int, output_len_ptr: int
) -> int:
    f.charge(fuel(f.host.chain_extension_gas(func_id & U32_MASK)))
    data = f.read(input_ptr, input_len)
    capacity = f.read_u32(output_len_ptr)
    status, output = f.host.chain_extension(func_id & U32_MASK, data, capacity)
    if len(output) > capacity:
        raise host_error(
            "ContractIoBufferOverflow",
            f"chain extension {func_id & U32_MASK:#x} returned {len(output)} bytes, "
            f"the contract's buffer holds {capacity}",
        )
    f.write(output_ptr, output)
    f.write_u32(output_len_ptr, len(output))
    return status & U32_MASK


# --- value transfer, calls, instantiate, terminate ------------------------------------------


@shim
def seal0_transfer(f: Frame, account_ptr: int, _account_len: int, value_ptr: int, _value_len: int) -> int:
    to = f.read(account_ptr, 32)
    value = f.read_u128(value_ptr)
    return f.host.transfer(to, value)


@shim
def seal0_call(
    f: Frame,
    callee_ptr: int,
    _callee_len: int,
    gas: int,
    value_ptr: int,
    _value_len: int,
    input_ptr: int,
    input_len: int,
    out_ptr: int,
    out_len_ptr: int,
) -> int:
    # The unversioned call behaves like flags = ALLOW_REENTRY (HOST-ABI §1.4).
    return do_call(f, CallFlags.ALLOW_REENTRY, callee_ptr, gas, value_ptr, input_ptr, input_len, out_ptr, out_len_ptr)


@shim
def seal0_delegate_call(
    f: Frame, flags: int, code_hash_ptr: int, input_ptr: int, input_len: int, out_ptr: int, out_len_ptr: int
) -> int:
    return do_delegate_call(f, flags, code_hash_ptr, input_ptr, input_len, out_ptr, out_len_ptr)


@shim
def seal0_instantiate(
    f: Frame,
    code_hash_ptr: int,
    _code_hash_len: int,
    gas: int,
    value_ptr: int,
    _value_len: int,
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
def seal0_terminate(f: Frame, beneficiary_ptr: int, _beneficiary_len: int) -> None:
    f.host.terminate(f.read(beneficiary_ptr, 32))
    raise ContractTerminated()


@shim
def seal0_call_runtime(f: Frame, call_ptr: int, call_len: int) -> int:
    return f.host.call_runtime(f.read(call_ptr, call_len))


@shim
def seal0_lock_delegate_dependency(f: Frame, code_hash_ptr: int) -> None:
    f.host.lock_delegate_dependency(f.read(code_hash_ptr, 32), True)


@shim
def seal0_unlock_delegate_dependency(f: Frame, code_hash_ptr: int) -> None:
    f.host.lock_delegate_dependency(f.read(code_hash_ptr, 32), False)


# --- storage: current variable-key take, legacy fixed-key versions --------------------------


@shim
def seal0_take_storage(f: Frame, key_ptr: int, key_len: int, out_ptr: int, out_len_ptr: int) -> int:
    from phat_runtime.wasm.frame import read_storage_key

    key = read_storage_key(f, key_ptr, key_len)
    f.charge(STORAGE_READ_FUEL)
    value = f.host.get_storage(key)
    if value is None:
        return ReturnCode.KEY_NOT_FOUND
    f.write_out(out_ptr, out_len_ptr, value)
    f.charge(STORAGE_WRITE_FUEL)
    f.host.set_storage(key, None)
    return ReturnCode.SUCCESS


def _legacy_key(f: Frame, key_ptr: int) -> bytes:
    return f.read(key_ptr, LEGACY_KEY_LEN)


@shim
def seal0_set_storage(f: Frame, key_ptr: int, value_ptr: int, value_len: int) -> None:
    key = _legacy_key(f, key_ptr)
    f.host.set_storage(key, read_value(f, value_ptr, value_len))


@shim
def seal0_get_storage(f: Frame, key_ptr: int, out_ptr: int, out_len_ptr: int) -> int:
    key = _legacy_key(f, key_ptr)
    f.charge(STORAGE_READ_FUEL)
    value = f.host.get_storage(key)
    if value is None:
        return ReturnCode.KEY_NOT_FOUND
    f.write_out(out_ptr, out_len_ptr, value)
    return ReturnCode.SUCCESS


@shim
def seal0_clear_storage(f: Frame, key_ptr: int) -> None:
    f.charge(STORAGE_WRITE_FUEL)
    f.host.set_storage(_legacy_key(f, key_ptr), None)


@shim
def seal0_contains_storage(f: Frame, key_ptr: int) -> int:
    key = _legacy_key(f, key_ptr)
    f.charge(STORAGE_READ_FUEL)
    value = f.host.get_storage(key)
    return SENTINEL if value is None else len(value)


# --- deprecated stubs kept for old code ------------------------------------------------------


def _random(f: Frame, subject_ptr: int, subject_len: int) -> tuple[bytes, int]:
    if (subject_len & U32_MASK) > MAX_RANDOM_SUBJECT_LEN:
        raise host_error("RandomSubjectTooLong", f"random subject longer than {MAX_RANDOM_SUBJECT_LEN} bytes")
    return f.host.random(f.read(subject_ptr, subject_len))


@shim
def seal0_random(f: Frame, subject_ptr: int, subject_len: int, out_ptr: int, out_len_ptr: int) -> None:
    output, _block = _random(f, subject_ptr, subject_len)
    f.write_out(out_ptr, out_len_ptr, output)


@shim
def seal0_tombstone_deposit(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, _u128(0))


@shim
def seal0_rent_allowance(f: Frame, out_ptr: int, out_len_ptr: int) -> None:
    f.write_out(out_ptr, out_len_ptr, _u128((1 << 128) - 1))


@shim
def seal0_restore_to(f: Frame, *_args: int) -> None:
    """Removed from pallet-contracts; kept as a no-op so old code links."""


@shim
def seal0_set_rent_allowance(f: Frame, _value_ptr: int, _value_len: int) -> None:
    """Removed from pallet-contracts; kept as a no-op so old code links."""


__all__ = ["MAX_EVENT_TOPICS", "MAX_VALUE_LEN"]
