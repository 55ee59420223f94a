"""How the runtime lays its data out in the key-value state.

Namespaces (one leading byte each) keep code, contracts, balances and contract storage apart:

=========  ==========================  =========================================
prefix     key                         value
=========  ==========================  =========================================
``C``      code hash                   wasm bytes
``c``      code hash                   msgpack CodeInfo
``K``      contract address            msgpack ContractInfo
``B``      account                     u128 LE balance
``S``      address ‖ trie id ‖ key     contract storage value
``N``      (none)                      u64 LE instantiation nonce
=========  ==========================  =========================================

Contract storage lives under the contract's address (so a state backend can tell which
contract owns a value: per-contract encryption keys, error messages) and its *trie id*
(blake2_256 of address and nonce at instantiation), as in pallet-contracts: a terminated
contract's storage becomes unreachable at once, and a contract re-created at the same address
starts empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import StateError
from phat_runtime.state.kv import KVStore
from phat_runtime.types import AccountId, CodeHash

CODE = b"C"
CODE_INFO = b"c"
CONTRACT = b"K"
BALANCE = b"B"
STORAGE = b"S"
NONCE = b"N"


@dataclass(frozen=True)
class CodeInfo:
    owner: AccountId
    deterministic: bool  # False: float instructions, may only run in queries
    size: int


@dataclass(frozen=True)
class ContractInfo:
    code_hash: CodeHash
    deployer: AccountId
    trie_id: bytes


def _unpack(raw: bytes, what: str) -> dict[str, object]:
    try:
        value = msgpack.unpackb(raw)
    except Exception as exc:
        raise StateError(f"corrupt {what} record: {exc}") from exc
    if not isinstance(value, dict):
        raise StateError(f"corrupt {what} record")
    return value


class Records:
    """Typed accessors over a KVStore (an overlay during execution)."""

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv

    # --- code -------------------------------------------------------------------------------
    def code(self, code_hash: bytes) -> bytes | None:
        return self.kv.get(CODE + code_hash)

    def code_info(self, code_hash: bytes) -> CodeInfo | None:
        raw = self.kv.get(CODE_INFO + code_hash)
        if raw is None:
            return None
        d = _unpack(raw, "code info")
        return CodeInfo(AccountId(bytes(d["owner"])), bool(d["deterministic"]), int(d["size"]))  # type: ignore[call-overload]

    def put_code(self, code_hash: bytes, wasm: bytes, info: CodeInfo) -> None:
        self.kv.set(CODE + code_hash, wasm)
        self.kv.set(
            CODE_INFO + code_hash,
            msgpack.packb({"owner": info.owner, "deterministic": info.deterministic, "size": info.size}),
        )

    # --- contracts ----------------------------------------------------------------------------
    def contract(self, address: bytes) -> ContractInfo | None:
        raw = self.kv.get(CONTRACT + address)
        if raw is None:
            return None
        d = _unpack(raw, "contract")
        return ContractInfo(CodeHash(bytes(d["code_hash"])), AccountId(bytes(d["deployer"])), bytes(d["trie_id"]))  # type: ignore[call-overload]

    def put_contract(self, address: bytes, info: ContractInfo) -> None:
        self.kv.set(
            CONTRACT + address,
            msgpack.packb({"code_hash": info.code_hash, "deployer": info.deployer, "trie_id": info.trie_id}),
        )

    def remove_contract(self, address: bytes) -> None:
        self.kv.delete(CONTRACT + address)

    def contracts(self) -> list[AccountId]:
        return [AccountId(k[1:]) for k, _ in self.kv.iter_prefix(CONTRACT)]

    # --- balances -----------------------------------------------------------------------------
    def balance(self, account: bytes) -> int:
        raw = self.kv.get(BALANCE + account)
        return int.from_bytes(raw, "little") if raw else 0

    def set_balance(self, account: bytes, value: int) -> None:
        if value:
            self.kv.set(BALANCE + account, value.to_bytes(16, "little"))
        else:
            self.kv.delete(BALANCE + account)

    def transfer(self, source: bytes, dest: bytes, value: int) -> bool:
        """Move ``value``; False (nothing changed) if ``source`` cannot pay."""
        if value == 0:
            return True
        have = self.balance(source)
        if have < value:
            return False
        self.set_balance(source, have - value)
        self.set_balance(dest, self.balance(dest) + value)
        return True

    # --- storage and nonce --------------------------------------------------------------------
    def storage_get(self, address: bytes, trie_id: bytes, key: bytes) -> bytes | None:
        return self.kv.get(STORAGE + address + trie_id + key)

    def storage_set(self, address: bytes, trie_id: bytes, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.kv.delete(STORAGE + address + trie_id + key)
        else:
            self.kv.set(STORAGE + address + trie_id + key, value)

    def next_nonce(self) -> int:
        raw = self.kv.get(NONCE)
        nonce = (int.from_bytes(raw, "little") if raw else 0) + 1
        self.kv.set(NONCE, nonce.to_bytes(8, "little"))
        return nonce

    def nonce(self) -> int:
        raw = self.kv.get(NONCE)
        return int.from_bytes(raw, "little") if raw else 0


def contract_address(deployer: bytes, code_hash: bytes, cluster_id: bytes, salt: bytes) -> AccountId:
    """Pink's rule: blake2_256(deployer ‖ code_hash ‖ cluster_id ‖ salt)."""
    return AccountId(blake2_256(deployer + code_hash + cluster_id + salt))


def trie_id_for(address: bytes, nonce: int) -> bytes:
    return blake2_256(address + nonce.to_bytes(8, "little"))
