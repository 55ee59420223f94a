"""How the runtime lays its data out in the key-value state.

Namespaces (one leading byte each) keep code, contracts, balances and contract storage apart:

=========  ==========================  =========================================
prefix     key                         value
=========  ==========================  =========================================
``C``      code hash                   wasm bytes
``c``      code hash                   SCALE CodeInfo
``K``      contract address            SCALE ContractInfo
``B``      account                     SCALE u128 balance
``S``      address ‖ trie id ‖ key     contract storage value
``N``      (none)                      SCALE u64 instantiation nonce
=========  ==========================  =========================================

Contract storage lives under the contract's address (so a state backend can tell which
contract owns a value: per-contract encryption keys, error messages) and its *trie id*
(blake2_256 of address and nonce at instantiation), as in pallet-contracts: a terminated
contract's storage becomes unreachable at once, and a contract re-created at the same address
starts empty.

Every value here feeds the state root, so each has one exact byte layout, in SCALE (the
project's own ``codec/scale.py``, never a general-purpose serializer whose upgrade could change
bytes and fork two workers). ``docs/state.md`` "Records" lists the layouts; the hex vectors in
``tests/state/test_records.py`` pin them::

    CodeInfo     { owner: [u8; 32], deterministic: bool, size: u32 }
    ContractInfo { trie_id: Vec<u8>, code_hash: [u8; 32], deployer: [u8; 32] }

Decoding is strict (no trailing bytes, bool is 0 or 1): a record that does not decode is a
:class:`~phat_runtime.errors.StateError` naming the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from phat_runtime.codec.scale import Reader, ScaleError, Writer
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


ID_LEN = 32


@dataclass(frozen=True)
class CodeInfo:
    owner: AccountId
    deterministic: bool  # False: float instructions, may only run in queries
    size: int

    def encode(self) -> bytes:
        """SCALE ``{ owner: [u8; 32], deterministic: bool, size: u32 }``."""
        if len(self.owner) != ID_LEN or not 0 <= self.size < 2**32:
            raise StateError("code info: the owner is 32 bytes and the size a u32")
        return Writer().raw(self.owner).boolean(self.deterministic).u32(self.size).finish()

    @classmethod
    def decode(cls, raw: bytes) -> CodeInfo:
        try:
            reader = Reader(raw)
            info = cls(AccountId(reader.array(ID_LEN)), reader.boolean(), reader.u32())
            reader.end()
        except ScaleError as exc:
            raise StateError(f"corrupt code info record (not SCALE CodeInfo): {exc}") from exc
        return info


@dataclass(frozen=True)
class ContractInfo:
    code_hash: CodeHash
    deployer: AccountId
    trie_id: bytes

    def encode(self) -> bytes:
        """SCALE ``{ trie_id: Vec<u8>, code_hash: [u8; 32], deployer: [u8; 32] }``."""
        if len(self.code_hash) != ID_LEN or len(self.deployer) != ID_LEN:
            raise StateError("contract info: the code hash and the deployer are 32 bytes each")
        return Writer().blob(self.trie_id).raw(self.code_hash).raw(self.deployer).finish()

    @classmethod
    def decode(cls, raw: bytes) -> ContractInfo:
        try:
            reader = Reader(raw)
            trie_id = reader.blob()
            info = cls(CodeHash(reader.array(ID_LEN)), AccountId(reader.array(ID_LEN)), trie_id)
            reader.end()
        except ScaleError as exc:
            raise StateError(f"corrupt contract record (not SCALE ContractInfo): {exc}") from exc
        return info


def _uint(raw: bytes | None, size: int, what: str) -> int:
    """A SCALE ``u{8·size}`` record (absent = 0)."""
    if raw is None:
        return 0
    if len(raw) != size:
        raise StateError(f"corrupt {what} record: {len(raw)} bytes, a SCALE u{size * 8} is {size}")
    return int.from_bytes(raw, "little")


class Records:
    """Typed accessors over a KVStore (an overlay during execution)."""

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv

    # --- code -------------------------------------------------------------------------------
    def code(self, code_hash: bytes) -> bytes | None:
        return self.kv.get(CODE + code_hash)

    def has_code(self, code_hash: bytes) -> bool:
        """Whether the code exists, without reading the wasm (its small info record is
        written with it)."""
        return self.kv.get(CODE_INFO + code_hash) is not None

    def code_info(self, code_hash: bytes) -> CodeInfo | None:
        raw = self.kv.get(CODE_INFO + code_hash)
        if raw is None:
            return None
        return CodeInfo.decode(raw)

    def put_code(self, code_hash: bytes, wasm: bytes, info: CodeInfo) -> None:
        self.kv.set(CODE + code_hash, wasm)
        self.kv.set(CODE_INFO + code_hash, info.encode())

    # --- contracts ----------------------------------------------------------------------------
    def contract(self, address: bytes) -> ContractInfo | None:
        raw = self.kv.get(CONTRACT + address)
        if raw is None:
            return None
        return ContractInfo.decode(raw)

    def put_contract(self, address: bytes, info: ContractInfo) -> None:
        self.kv.set(CONTRACT + address, info.encode())

    def remove_contract(self, address: bytes) -> None:
        self.kv.delete(CONTRACT + address)

    def contracts(self) -> list[AccountId]:
        return [AccountId(k[1:]) for k, _ in self.kv.iter_prefix(CONTRACT)]

    # --- balances -----------------------------------------------------------------------------
    def balance(self, account: bytes) -> int:
        return _uint(self.kv.get(BALANCE + account), 16, "balance")

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
        nonce = self.nonce() + 1
        self.kv.set(NONCE, nonce.to_bytes(8, "little"))
        return nonce

    def nonce(self) -> int:
        return _uint(self.kv.get(NONCE), 8, "instantiation nonce")


def contract_address(deployer: bytes, code_hash: bytes, cluster_id: bytes, salt: bytes) -> AccountId:
    """Pink's rule: blake2_256(deployer ‖ code_hash ‖ cluster_id ‖ salt)."""
    return AccountId(blake2_256(deployer + code_hash + cluster_id + salt))


def trie_id_for(address: bytes, nonce: int) -> bytes:
    return blake2_256(address + nonce.to_bytes(8, "little"))
