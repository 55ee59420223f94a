"""The host-function table: every import a contract may link, with its exact signature.

This is the ABI in one place (HOST-ABI.md §1.3–§1.5): ``(module, name) -> HostFuncSpec``.
Validation checks imports against it; the linker resolves each entry's ``impl`` to a shim in
``wasm/seal*.py``. pallet-contracts registers most functions twice (``input`` and the
``seal_``-prefixed alias ``seal_input``); both spellings are listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

I32 = "i32"
I64 = "i64"


@dataclass(frozen=True)
class HostFuncSpec:
    module: str
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    impl: str  # name of the shim function implementing it


def _spec(
    module: str, name: str, params: str, results: str = "", impl: str | None = None
) -> HostFuncSpec:
    return HostFuncSpec(
        module,
        name,
        tuple(p for p in params.split(",") if p),
        tuple(r for r in results.split(",") if r),
        impl or f"{module}_{name}",
    )


_I = "i32"
_P2 = "i32,i32"
_P3 = "i32,i32,i32"
_P4 = "i32,i32,i32,i32"

# (module, name, params, results, aliased?) — aliased entries also exist as `seal_<name>`.
_TABLE: list[tuple[str, str, str, str, bool]] = [
    # --- seal0: context, I/O, hashing, events --------------------------------------------
    ("seal0", "input", _P2, "", True),
    ("seal0", "seal_return", _P3, "", False),
    ("seal0", "caller", _P2, "", True),
    ("seal0", "address", _P2, "", True),
    ("seal0", "balance", _P2, "", True),
    ("seal0", "value_transferred", _P2, "", True),
    ("seal0", "now", _P2, "", True),
    ("seal0", "block_number", _P2, "", True),
    ("seal0", "minimum_balance", _P2, "", True),
    ("seal0", "gas_left", _P2, "", True),
    ("seal0", "own_code_hash", _P2, "", True),
    ("seal0", "weight_to_fee", "i64,i32,i32", "", True),
    ("seal0", "deposit_event", _P4, "", True),
    ("seal0", "call_chain_extension", "i32,i32,i32,i32,i32", _I, True),
    ("seal0", "hash_keccak_256", _P3, "", True),
    ("seal0", "hash_blake2_256", _P3, "", True),
    ("seal0", "hash_blake2_128", _P3, "", True),
    ("seal0", "hash_sha2_256", _P3, "", True),
    ("seal0", "debug_message", _P2, _I, True),
    ("seal0", "transfer", _P4, _I, True),
    ("seal0", "is_contract", _I, _I, True),
    ("seal0", "caller_is_origin", "", _I, True),
    ("seal0", "caller_is_root", "", _I, False),
    ("seal0", "code_hash", _P3, _I, True),
    ("seal0", "set_code_hash", _I, _I, True),
    ("seal0", "delegate_call", "i32,i32,i32,i32,i32,i32", _I, True),
    ("seal0", "ecdsa_recover", _P3, _I, True),
    ("seal0", "ecdsa_to_eth_address", _P2, _I, True),
    ("seal0", "sr25519_verify", _P4, _I, False),
    ("seal0", "take_storage", _P4, _I, True),
    ("seal0", "call_runtime", _P2, _I, True),
    ("seal0", "instantiation_nonce", "", I64, False),
    ("seal0", "lock_delegate_dependency", _I, "", False),
    ("seal0", "unlock_delegate_dependency", _I, "", False),
    # --- seal0: legacy fixed-key (32-byte) storage ----------------------------------------
    ("seal0", "set_storage", _P3, "", True),
    ("seal0", "get_storage", _P3, _I, True),
    ("seal0", "clear_storage", _I, "", True),
    ("seal0", "contains_storage", _I, _I, True),
    # --- seal0: legacy call / instantiate / terminate -------------------------------------
    ("seal0", "call", "i32,i32,i64,i32,i32,i32,i32,i32,i32", _I, True),
    (
        "seal0",
        "instantiate",
        "i32,i32,i64,i32,i32,i32,i32,i32,i32,i32,i32,i32,i32",
        _I,
        True,
    ),
    ("seal0", "terminate", _P2, "", True),
    # --- seal0: deprecated stubs kept for old code -----------------------------------------
    ("seal0", "random", _P4, "", True),
    ("seal0", "tombstone_deposit", _P2, "", True),
    ("seal0", "rent_allowance", _P2, "", True),
    ("seal0", "restore_to", "i32,i32,i32,i32,i32,i32,i32,i32", "", True),
    ("seal0", "set_rent_allowance", _P2, "", True),
    # --- seal1 ----------------------------------------------------------------------------
    ("seal1", "get_storage", _P4, _I, True),
    ("seal1", "contains_storage", _P2, _I, True),
    ("seal1", "clear_storage", _P2, _I, True),
    ("seal1", "set_storage", _P3, _I, True),
    ("seal1", "call", "i32,i32,i64,i32,i32,i32,i32,i32", _I, True),
    ("seal1", "instantiate", "i32,i64,i32,i32,i32,i32,i32,i32,i32,i32,i32", _I, True),
    ("seal1", "terminate", _I, "", True),
    ("seal1", "random", _P4, "", True),
    # --- seal2 ----------------------------------------------------------------------------
    ("seal2", "set_storage", _P4, _I, True),
    ("seal2", "call", "i32,i32,i64,i64,i32,i32,i32,i32,i32,i32", _I, False),
    (
        "seal2",
        "instantiate",
        "i32,i64,i64,i32,i32,i32,i32,i32,i32,i32,i32,i32,i32",
        _I,
        False,
    ),
]


def _build() -> dict[tuple[str, str], HostFuncSpec]:
    table: dict[tuple[str, str], HostFuncSpec] = {}
    for module, name, params, results, aliased in _TABLE:
        spec = _spec(module, name, params, results)
        table[(module, name)] = spec
        if aliased:
            alias = f"seal_{name}"
            table[(module, alias)] = HostFuncSpec(module, alias, spec.params, spec.results, spec.impl)
    return table


#: Every host function a module may import, under every name it has.
HOST_FUNCTIONS: dict[tuple[str, str], HostFuncSpec] = _build()

#: Maximum linear memory, in 64 KiB pages (pink schedule: 64 pages = 4 MiB).
MAX_MEMORY_PAGES = 64
#: Maximum code size (pink: 2 MiB).
MAX_CODE_SIZE = 2 * 1024 * 1024
#: Exports a contract must have, exactly.
REQUIRED_EXPORTS = frozenset({"deploy", "call"})
