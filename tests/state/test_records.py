"""Every byte that feeds the state root is SCALE with pinned vectors (docs/state.md "Records").

The vectors are hex literals: a change of layout — or a library upgrade that changed bytes —
fails here before it can fork two workers. Each layout is also checked against scalecodec's
encoding of the same fields (an independent SCALE implementation)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from scalecodec.base import RuntimeConfiguration, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from phat_runtime.errors import StateError
from phat_runtime.runtime.records import CodeInfo, ContractInfo, Records
from phat_runtime.state import EncryptedStore, LtHash, MemoryBackend
from phat_runtime.state.checkpoint import Checkpoint
from phat_runtime.state.meta import encode_checkpoint
from phat_runtime.types import AccountId, CodeHash

from .helpers import raw

CODE_INFO = CodeInfo(AccountId(bytes(range(32))), False, 1234)
CODE_INFO_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" "00" "d2040000"
CONTRACT_INFO = ContractInfo(CodeHash(bytes(range(32, 64))), AccountId(bytes(range(64, 96))),
                             bytes(range(96, 128)))
CONTRACT_INFO_HEX = ("80" "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
                     "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                     "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f")


def _scalecodec() -> RuntimeConfiguration:
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    return config


def _encode(config: RuntimeConfiguration, type_string: str, value: object) -> bytes:
    encoded: ScaleBytes = config.create_scale_object(type_string).encode(value)
    return bytes(encoded.data)


def test_code_and_contract_records_are_pinned_scale() -> None:
    assert CODE_INFO.encode().hex() == CODE_INFO_HEX
    assert CONTRACT_INFO.encode().hex() == CONTRACT_INFO_HEX
    assert CodeInfo.decode(bytes.fromhex(CODE_INFO_HEX)) == CODE_INFO
    assert ContractInfo.decode(bytes.fromhex(CONTRACT_INFO_HEX)) == CONTRACT_INFO
    relaxed = CodeInfo(AccountId(bytes(32)), True, 2**32 - 1)
    assert relaxed.encode().hex() == "00" * 32 + "01" + "ffffffff"


def test_layouts_match_an_independent_scale_implementation() -> None:
    config = _scalecodec()
    expected = (_encode(config, "[u8; 32]", "0x" + CODE_INFO.owner.hex())
                + _encode(config, "bool", CODE_INFO.deterministic)
                + _encode(config, "u32", CODE_INFO.size))
    assert CODE_INFO.encode() == expected
    expected = (_encode(config, "Vec<u8>", "0x" + CONTRACT_INFO.trie_id.hex())
                + _encode(config, "[u8; 32]", "0x" + CONTRACT_INFO.code_hash.hex())
                + _encode(config, "[u8; 32]", "0x" + CONTRACT_INFO.deployer.hex()))
    assert CONTRACT_INFO.encode() == expected
    long_trie = ContractInfo(CONTRACT_INFO.code_hash, CONTRACT_INFO.deployer, bytes(300))
    assert long_trie.encode()[:2] == _encode(config, "Compact<u32>", 300)


def test_balances_and_the_nonce_are_scale_integers() -> None:
    kv = MemoryBackend()
    records = Records(kv)
    records.set_balance(b"\x01" * 32, 10**20)
    assert kv.get(b"B" + b"\x01" * 32) == (10**20).to_bytes(16, "little")
    assert records.next_nonce() == 1 and kv.get(b"N") == (1).to_bytes(8, "little")
    assert _encode(_scalecodec(), "u128", 10**20) == (10**20).to_bytes(16, "little")


@pytest.mark.parametrize(("namespace", "raw_value", "reader", "what"), [
    (b"c", bytes.fromhex(CODE_INFO_HEX) + b"\x00", "code_info", "code info"),  # trailing byte
    (b"c", bytes.fromhex(CODE_INFO_HEX[:64] + "02" + CODE_INFO_HEX[66:]), "code_info", "code info"),
    (b"K", bytes.fromhex(CONTRACT_INFO_HEX)[:-1], "contract", "contract"),  # truncated
    (b"K", b"\x81\x01" + bytes(64), "contract", "contract"),  # trie id longer than the record
])
def test_malformed_records_are_a_clear_state_error(namespace: bytes, raw_value: bytes,
                                                   reader: str, what: str) -> None:
    kv = MemoryBackend()
    kv.set(namespace + b"\x05" * 32, raw_value)
    with pytest.raises(StateError, match=f"corrupt {what} record"):
        getattr(Records(kv), reader)(b"\x05" * 32)


@pytest.mark.parametrize(("key", "value", "call"), [
    (b"B" + b"\x01" * 32, b"\x01" * 15, lambda r: r.balance(b"\x01" * 32)),
    (b"N", b"\x01" * 9, lambda r: r.nonce()),
])
def test_integers_of_the_wrong_width_are_refused(key: bytes, value: bytes, call: object) -> None:
    kv = MemoryBackend()
    kv.set(key, value)
    with pytest.raises(StateError, match="corrupt .* record"):
        call(Records(kv))  # type: ignore[operator]


def test_checkpoint_record_is_pinned_scale() -> None:
    lthash = LtHash()
    lthash.add(b"Ba", b"1")
    record = encode_checkpoint(Checkpoint(7, b"\xab" * 32, lthash.root()), lthash)
    assert len(record) == 8 + 32 + 32 + 2048
    assert record[:40].hex() == "0700000000000000" + "ab" * 32
    assert record[40:72] == lthash.root() and record[72:] == lthash.vector()
    config = _scalecodec()
    lanes = [int.from_bytes(lthash.vector()[i : i + 2], "little") for i in range(0, 2048, 2)]
    assert record[72:] == _encode(config, "[u16; 1024]", lanes)
    assert hashlib.blake2b(record, digest_size=16).hexdigest() == CHECKPOINT_RECORD_DIGEST


def test_a_store_of_an_older_format_is_refused_with_what_to_do(db_path: Path, secret: bytes) -> None:
    EncryptedStore.open(db_path, secret).close()
    with raw(db_path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (b"phat-state/1",))
    with pytest.raises(StateError, match="format 'phat-state/1'.*move the file away"):
        EncryptedStore.open(db_path, secret)


def test_block_hashes_are_32_bytes(store: EncryptedStore) -> None:
    store.set(b"Ba", b"1")
    with pytest.raises(StateError, match="32 bytes"):
        store.commit_block(1, b"short")
    assert store.commit_block(1, bytes(32)).number == 1


#: BLAKE2b-128 of the whole 2,120-byte checkpoint record above (pins the LtHash lanes too).
CHECKPOINT_RECORD_DIGEST = "1bcff863374eb7208b0ba4a53728de2b"
