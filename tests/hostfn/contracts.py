"""WAT building blocks shared by the host-function tests, and the byte layouts they return.

Memory map every helper agrees on (2 pages = 0x20000 bytes):

- ``IN_LEN`` u32 in/out length of the input, ``IN`` the input bytes (capacity ``CAP``);
- ``RES`` the result area a helper returns (``collect``, proxies, deployers);
- ``0x10000`` and up: free for a test's own data segments.
"""

from __future__ import annotations

import struct

from phat_runtime.testing.harness import data, ret, wat
from phat_runtime.types import SENTINEL

IN_LEN = 0x0F00
IN = 0x1000
CAP = 0x4000
RES = 0x8000
FREE = 0x10000
#: A pointer just past the end of the 2-page memory.
OOB = 0x20000


def u32(value: int) -> bytes:
    return struct.pack("<I", value & SENTINEL)


def u32s(raw: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


def u128(value: int) -> bytes:
    return value.to_bytes(16, "little")


def read_input() -> str:
    """Copy the call's input to ``IN``; its length is then :data:`INPUT_LEN`."""
    return (
        f"(i32.store (i32.const {IN_LEN}) (i32.const {CAP}))"
        f"(call $seal0.input (i32.const {IN}) (i32.const {IN_LEN}))"
    )


INPUT_LEN = f"(i32.load (i32.const {IN_LEN}))"


def collect(*exprs: str) -> str:
    """Evaluate i32 expressions in order; return their values as little-endian u32s."""
    stores = "".join(f"(i32.store (i32.const {RES + 4 * i}) {e})" for i, e in enumerate(exprs))
    return stores + ret(RES, 4 * len(exprs))


def returning_input(flags: int = 0) -> str:
    """A contract whose ``call`` returns its input (with ``flags``)."""
    return wat(read_input() + ret(IN, INPUT_LEN, flags))


ECHO = returning_input()
REVERTER = returning_input(flags=1)
TRAPPER = wat("unreachable")

# --- a proxy: input = flags u32 ‖ callee ‖ value u128 ‖ payload -------------------------------
# It calls `callee` with `payload` and returns code u32 ‖ out_len u32 ‖ output, where output is
# copied only for Success / CalleeReverted (else out_len still holds the capacity, CAP).
CALL_HEADER = 4 + 32 + 16
CODE, OUT_LEN, OUT = RES, RES + 4, RES + 8
DEPOSIT_LIMIT = FREE  # a u128 storage-deposit limit for seal2 (placed by the proxy)
CALL_VERSIONS = ["seal0", "seal1", "seal2", "seal2-limit"]


def call_expr(version: str, out: int = OUT) -> str:
    flags, callee, value = f"(i32.load (i32.const {IN}))", IN + 4, IN + 36
    payload = f"(i32.const {IN + CALL_HEADER}) (i32.sub {INPUT_LEN} (i32.const {CALL_HEADER}))"
    tail = f"{payload} (i32.const {out}) (i32.const {OUT_LEN})"
    if version == "seal0":  # legacy: no flags, (ptr, len) pairs whose lengths are ignored
        return (
            f"(call $seal0.call (i32.const {callee}) (i32.const 32) (i64.const 0) "
            f"(i32.const {value}) (i32.const 16) {tail})"
        )
    if version == "seal1":
        return f"(call $seal1.call {flags} (i32.const {callee}) (i64.const 0) (i32.const {value}) {tail})"
    deposit = -1 if version == "seal2" else DEPOSIT_LIMIT
    return (
        f"(call $seal2.call {flags} (i32.const {callee}) (i64.const 0) (i64.const 0) "
        f"(i32.const {deposit}) (i32.const {value}) {tail})"
    )


def output_copied(code_at: int) -> str:
    """i32 condition: the call/instantiate code at ``code_at`` is Success or CalleeReverted."""
    code = f"(i32.load (i32.const {code_at}))"
    return f"(i32.or (i32.eqz {code}) (i32.eq {code} (i32.const 2)))"


def returned_length(head: int, out_len_at: int, code_at: int) -> str:
    """``head`` bytes plus the output length, if the output was copied back."""
    out_len = f"(i32.load (i32.const {out_len_at}))"
    return f"(i32.add (i32.const {head}) (select {out_len} (i32.const 0) {output_copied(code_at)}))"


def proxy(version: str = "seal1", *, out: int = OUT, after: str = "") -> str:
    """The proxy contract; ``after`` is WAT run between the call and the return."""
    body = (
        read_input()
        + f"(i32.store (i32.const {OUT_LEN}) (i32.const {CAP}))"
        + f"(i32.store (i32.const {CODE}) {call_expr(version, out)})"
        + after
        + ret(CODE, returned_length(8, OUT_LEN, CODE))
    )
    return wat(body, extra=data(DEPOSIT_LIMIT, u128(10**12)))


def proxy_input(callee: bytes, payload: bytes = b"", *, flags: int = 0, value: int = 0) -> bytes:
    return u32(flags) + callee + u128(value) + payload


def proxy_result(code: int, output: bytes | None = None) -> bytes:
    """What the proxy returns: ``output`` None means "not copied back"."""
    return u32(code) + (u32(CAP) if output is None else u32(len(output)) + output)


# --- a deployer: input = code_hash ‖ value u128 ‖ salt_len u32 ‖ salt ‖ constructor input ------
# Returns code u32 ‖ addr_len u32 ‖ address (32 B, zero if not written) ‖ out_len u32 ‖ output.
I_CODE, I_ADDR_LEN, I_ADDR, I_OUT_LEN, I_OUT = RES, RES + 4, RES + 8, RES + 40, RES + 44
INSTANTIATE_VERSIONS = ["seal0", "seal1", "seal2"]


def instantiate_expr(version: str, address: int = I_ADDR) -> str:
    salt_len = f"(i32.load (i32.const {IN + 48}))"
    ctor = (
        f"(i32.add (i32.const {IN + 52}) {salt_len}) "
        f"(i32.sub (i32.sub {INPUT_LEN} (i32.const 52)) {salt_len})"
    )
    outs = (
        f"(i32.const {address}) (i32.const {I_ADDR_LEN}) (i32.const {I_OUT}) (i32.const {I_OUT_LEN}) "
        f"(i32.const {IN + 52}) {salt_len}"
    )
    if version == "seal0":
        return (
            f"(call $seal0.instantiate (i32.const {IN}) (i32.const 32) (i64.const 0) "
            f"(i32.const {IN + 32}) (i32.const 16) {ctor} {outs})"
        )
    if version == "seal1":
        return f"(call $seal1.instantiate (i32.const {IN}) (i64.const 0) (i32.const {IN + 32}) {ctor} {outs})"
    return (
        f"(call $seal2.instantiate (i32.const {IN}) (i64.const 0) (i64.const 0) (i32.const -1) "
        f"(i32.const {IN + 32}) {ctor} {outs})"
    )


def deployer(version: str = "seal1", *, address: int = I_ADDR) -> str:
    body = (
        read_input()
        + f"(i32.store (i32.const {I_ADDR_LEN}) (i32.const 32))"
        + f"(i32.store (i32.const {I_OUT_LEN}) (i32.const {CAP}))"
        + f"(i32.store (i32.const {I_CODE}) {instantiate_expr(version, address)})"
        + ret(I_CODE, returned_length(44, I_OUT_LEN, I_CODE))
    )
    return wat(body)


def deployer_input(code_hash: bytes, salt: bytes = b"", ctor_input: bytes = b"", *, value: int = 0) -> bytes:
    return code_hash + u128(value) + u32(len(salt)) + salt + ctor_input


def deployer_result(code: int, address: bytes | None = None, output: bytes | None = None) -> bytes:
    written = u32(32) + (address if address is not None else bytes(32))
    return u32(code) + written + (u32(CAP) if output is None else u32(len(output)) + output)
