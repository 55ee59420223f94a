"""phat_runtime.codec.metadata: loading ink! 3/4/5 metadata, encoding calls, decoding results.

Fixtures in tests/fixtures/metadata/ are our own small metadata files, one per layout:
flipper_v0 (metadataVersion 0.1.0, 1-based scale-info 0.x registry), flipper_v3 (``V3``),
flipper_v4 / flipper_v5, and token_v3 / token_v4 / token_v5 (structs, enums, Option, AccountId,
u128, Vec<u8>, String, Hash, tuples, compact fields, Mapping storage layout, events).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from phat_runtime.codec.metadata import ContractMetadata, DecodedEvent, selector_of
from phat_runtime.errors import (
    DecodeError,
    EncodeError,
    MetadataError,
    SourceHashMismatch,
    UnknownLabel,
)

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
ALICE_HEX = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
ALICE_POLKADOT = "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5"  # same key, prefix 0
BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
BOB_HEX = "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"
TOKENS = ["token_v3", "token_v4", "token_v5"]
TINY_WAT = (
    '(module (import "env" "memory" (memory 2 16)) (func (export "deploy")) (func (export "call")))'
)


def load(name: str) -> ContractMetadata:
    return ContractMetadata.load(FIXTURES / f"{name}.json")


def raw(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def ok(value: Any, meta: ContractMetadata) -> Any:
    """ink! 4/5 messages wrap their result in MessageResult; ink! 3 messages do not."""
    return value if meta.ink_version == 3 else {"Ok": value}


# --- selectors and versions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "selector"),
    [("new", "9bae9d5e"), ("default", "ed4b9d1b"), ("flip", "633aa551"), ("get", "2f865bd9")],
)
def test_selector_of_known_labels(label: str, selector: str) -> None:
    assert selector_of(label).hex() == selector


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("flipper_v0", 3),
        ("flipper_v3", 3),
        ("flipper_v4", 4),
        ("flipper_v5", 5),
        ("token_v3", 3),
        ("token_v4", 4),
        ("token_v5", 5),
    ],
)
def test_version_and_name_detected(name: str, version: int) -> None:
    meta = load(name)
    assert meta.ink_version == version
    assert meta.name == name
    assert meta.wasm is None and meta.code_hash is None
    assert meta.message("get" if "flipper" in name else "transfer").selector == selector_of(
        "get" if "flipper" in name else "transfer"
    )


@pytest.mark.parametrize("name", ["flipper_v0", "flipper_v3", "flipper_v4", "flipper_v5"])
def test_new_true_encodes_as_selector_and_bool(name: str) -> None:
    meta = load(name)
    assert meta.encode_constructor("new", [True]).hex() == "9bae9d5e01"
    assert meta.encode_constructor("new", {"init_value": False}).hex() == "9bae9d5e00"
    assert meta.encode_constructor("default").hex() == "ed4b9d1b"
    assert meta.encode_message("flip").hex() == "633aa551"
    assert meta.encode_message("get", []).hex() == "2f865bd9"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("flipper_v0", "01", True),
        ("flipper_v3", "00", False),
        ("flipper_v4", "0001", {"Ok": True}),
        ("flipper_v5", "0000", {"Ok": False}),
    ],
)
def test_get_decodes_with_or_without_message_result(name: str, data: str, expected: Any) -> None:
    meta = load(name)
    assert meta.decode_return(meta.message("get"), bytes.fromhex(data)) == expected


def test_unit_returns() -> None:
    v3, v4 = load("flipper_v3"), load("flipper_v4")
    assert v3.message("flip").return_type is None
    assert v3.decode_return(v3.message("flip"), b"") is None
    assert v4.decode_return(v4.message("flip"), b"\x00") == {"Ok": None}
    with pytest.raises(DecodeError, match="1 trailing byte"):
        v4.decode_return(v4.message("flip"), b"\x00\x00")
    assert v4.decode_return(v4.message("flip"), bytes.fromhex("0101")) == {
        "Err": "CouldNotReadInput"
    }


def test_spec_fields() -> None:
    v4 = load("token_v4")
    transfer = v4.message("transfer")
    assert (transfer.mutates, transfer.payable, transfer.is_constructor) == (True, False, False)
    assert [(a.label, a.display_name) for a in transfer.args] == [
        ("to", "AccountId"),
        ("value", "Balance"),
    ]
    assert v4.message("misc").payable is True
    assert v4.message("Ownable::owner").selector == selector_of("Ownable::owner")
    assert v4.message("0x" + selector_of("get_data").hex()).label == "get_data"
    assert v4.by_selector(selector_of("balance_of") + b"\x00" * 32).label == "balance_of"
    assert v4.by_selector(b"\xff\xff\xff\xff") is None
    assert load("flipper_v4").message("flip").docs == "Flips the value."
    v0 = load("flipper_v0")
    assert v0.constructor("new").docs == "Creates a flipper holding `init_value`."
    assert v0.constructor("new").payable is True  # pre-V3 constructors always take value
    assert v0.message("get").payable is False


def test_default_constructor() -> None:
    assert load("flipper_v4").default_constructor().label == "default"  # type: ignore[union-attr]
    assert load("token_v5").default_constructor().label == "new"  # type: ignore[union-attr]
    assert load("flipper_v3").default_constructor() is None  # two, none marked


def test_storage_layout_is_exposed() -> None:
    layout = load("token_v4").storage_layout
    fields = layout["root"]["layout"]["struct"]["fields"]
    balances = next(f for f in fields if f["name"] == "balances")
    assert balances["layout"]["root"]["root_key"] == "0x1f5a2e8c"


# --- round trips for every argument type --------------------------------------------------------

CONFIG = {"owner": ALICE, "fee_bps": 30, "memo": "hi", "tags": ["a", "b"], "weight": 1000}
CONFIG_OUT = {**CONFIG}
ROUND_TRIPS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("transfer", {"to": ALICE, "value": 10**12}, {"to": ALICE, "value": 10**12}),
    (
        "transfer",
        {"to": ALICE_POLKADOT, "value": "340282366920938463463374607431768211455"},
        {"to": ALICE, "value": 2**128 - 1},
    ),
    ("transfer", {"to": "0x" + BOB_HEX, "value": 0}, {"to": BOB, "value": 0}),
    ("transfer", {"to": bytes.fromhex(BOB_HEX), "value": " 7 "}, {"to": BOB, "value": 7}),
    ("balance_of", {"owner": ALICE}, {"owner": ALICE}),
    ("set_config", {"config": CONFIG}, {"config": CONFIG_OUT}),
    (
        "set_config",
        {"config": {**CONFIG, "memo": None, "tags": [], "weight": 2**64 - 1}},
        {"config": {**CONFIG, "memo": None, "tags": [], "weight": 2**64 - 1}},
    ),
    (
        "set_config",
        {"config": {**CONFIG, "memo": {"Some": "x"}}},
        {"config": {**CONFIG, "memo": "x"}},
    ),
    (
        "set_data",
        {"data": "0x0102ff", "note": "héllo ✓", "limit": 5},
        {"data": "0x0102ff", "note": "héllo ✓", "limit": 5},
    ),
    (
        "set_data",
        {"data": b"hello", "note": "0x1234", "limit": None},
        {"data": "0x68656c6c6f", "note": "0x1234", "limit": None},
    ),
    (
        "set_data",
        {"data": [104, 105], "note": "", "limit": {"Some": "12"}},
        {"data": "0x6869", "note": "", "limit": 12},
    ),
    (
        "set_data",
        {"data": "0x", "note": "x", "limit": {"None": None}},
        {"data": "0x", "note": "x", "limit": None},
    ),
    ("set_code", {"code_hash": "0x" + "ab" * 32}, {"code_hash": "0x" + "ab" * 32}),
    ("set_code", {"code_hash": bytes(range(32))}, {"code_hash": "0x" + bytes(range(32)).hex()}),
    (
        "misc",
        {"pair": [7, True], "delta": -5, "tag": "0xdeadbeef", "members": [ALICE, BOB]},
        {"pair": [7, True], "delta": -5, "tag": "0xdeadbeef", "members": [ALICE, BOB]},
    ),
    (
        "misc",
        {"pair": (2**32 - 1, False), "delta": -(2**63), "tag": b"\x00\x01\x02\x03", "members": []},
        {"pair": [2**32 - 1, False], "delta": -(2**63), "tag": "0x00010203", "members": []},
    ),
]


@pytest.mark.parametrize("name", TOKENS)
@pytest.mark.parametrize(("label", "args", "expected"), ROUND_TRIPS)
def test_round_trip(name: str, label: str, args: dict[str, Any], expected: dict[str, Any]) -> None:
    meta = load(name)
    spec = meta.message(label)
    data = meta.encode_message(label, args)
    assert data[:4] == selector_of(label)
    assert meta.decode_args(spec, data) == expected
    assert meta.decode_args(spec, data[4:]) == expected  # selector stripped
    assert meta.encode_message(label, list(args.values())) == data  # positional == by label


def test_exact_bytes() -> None:
    meta = load("token_v4")
    assert meta.encode_message("transfer", [ALICE, 10**12]).hex() == (
        "84a15da1" + ALICE_HEX + "0010a5d4e8" + "00" * 11
    )
    config = meta.encode_message("set_config", [{**CONFIG, "memo": None}])
    # owner ‖ fee_bps u32 LE ‖ None ‖ Vec<String> ["a","b"] ‖ Compact<u64>(1000)
    assert config[4:].hex() == ALICE_HEX + "1e000000" + "00" + "0804610462" + "a10f"
    data = meta.encode_message("set_data", ["0x0102", "ok", 1])
    assert data[4:].hex() == "080102" + "086f6b" + "01" + "01" + "00" * 15
    assert meta.encode_message("misc", [[1, True], -1, "0x00000000", []])[4:].hex() == (
        "0100000001" + "ff" * 8 + "00000000" + "00"
    )


def test_enum_with_explicit_discriminant() -> None:
    meta = load("flipper_v0")  # Mood { Happy = 0, Sad = 2 }
    assert meta.encode_message("set_mood", ["Sad"])[4:] == b"\x02"
    assert meta.encode_message("set_mood", [{"Happy": None}])[4:] == b"\x00"
    assert meta.decode_return(meta.message("mood"), b"\x02") == "Sad"
    assert meta.decode_return(meta.message("flip_count"), bytes.fromhex("0105000000")) == 5
    assert meta.decode_return(meta.message("flip_count"), b"\x00") is None


@pytest.mark.parametrize("name", TOKENS)
def test_decode_return_values(name: str) -> None:
    meta = load(name)
    prefix = b"" if meta.ink_version == 3 else b"\x00"
    ret = meta.decode_return

    assert ret(meta.message("total_supply"), prefix + (10**12).to_bytes(16, "little")) == ok(
        10**12, meta
    )
    assert ret(meta.message("transfer"), prefix + b"\x00") == ok({"Ok": None}, meta)
    assert ret(meta.message("transfer"), prefix + b"\x01\x00") == ok(
        {"Err": "InsufficientBalance"}, meta
    )
    assert ret(meta.message("transfer"), prefix + bytes.fromhex("0102") + b"\x08no") == ok(
        {"Err": {"Custom": "no"}}, meta
    )
    # valid UTF-8 bytes must still come back as hex, not as str (the scalecodec quirk)
    assert ret(meta.message("get_data"), prefix + b"\x14hello") == ok("0x68656c6c6f", meta)
    assert ret(meta.message("get_limit"), prefix + b"\x00") == ok(None, meta)
    assert ret(meta.message("Ownable::owner"), prefix + bytes.fromhex(BOB_HEX)) == ok(BOB, meta)
    encoded = meta.encode_message("set_config", [CONFIG])[4:]
    assert ret(meta.message("get_config"), prefix + encoded) == ok(CONFIG_OUT, meta)


# --- events ------------------------------------------------------------------------------------


def transfer_event_fields() -> bytes:
    # from: None, to: Some(Alice), value: 42
    return b"\x00" + b"\x01" + bytes.fromhex(ALICE_HEX) + (42).to_bytes(16, "little")


@pytest.mark.parametrize("name", ["token_v3", "token_v4"])
def test_event_by_index_byte(name: str) -> None:
    meta = load(name)
    event = meta.decode_event(b"\x00" + transfer_event_fields(), [b"\x11" * 32])
    assert event == DecodedEvent("Transfer", {"from": None, "to": ALICE, "value": 42})
    data = b"\x01" + bytes.fromhex(ALICE_HEX + BOB_HEX) + (7).to_bytes(16, "little")
    assert meta.decode_event(data, []) == DecodedEvent(
        "Approval", {"owner": ALICE, "spender": BOB, "value": 7}
    )
    assert [a.indexed for a in meta.events[0].args] == [True, True, False]


def test_event_of_v0_metadata() -> None:
    meta = load("flipper_v0")
    assert meta.decode_event(b"\x00\x01", []) == DecodedEvent("Flipped", {"new_value": True})


def test_event_by_signature_topic() -> None:
    meta = load("token_v5")
    transfer, approval, note = meta.events
    assert transfer.signature_topic == blake2_256(
        b"Transfer(Option<AccountId>,Option<AccountId>,Balance)"
    )
    assert transfer.module_path == "token::token"
    topics = [transfer.signature_topic, b"\x00" * 32, bytes.fromhex(ALICE_HEX)]
    assert meta.decode_event(transfer_event_fields(), topics) == DecodedEvent(
        "Transfer", {"from": None, "to": ALICE, "value": 42}
    )
    assert approval.signature_topic is not None
    data = bytes.fromhex(BOB_HEX + ALICE_HEX) + (9).to_bytes(16, "little")
    assert meta.decode_event(data, ["0x" + approval.signature_topic.hex()]).args == {
        "owner": BOB,
        "spender": ALICE,
        "value": 9,
    }
    # anonymous event: no signature topic, found by its data
    assert note.signature_topic is None
    assert meta.decode_event(b"\x0chey", []) == DecodedEvent("Note", {"text": "hey"})
    assert meta.decode_event(b"\x0chey", [b"\x22" * 32]).label == "Note"
    flipper = load("flipper_v5")
    topic = blake2_256(b"Flipped(bool)")
    assert flipper.decode_event(b"\x01", [topic]) == DecodedEvent("Flipped", {"new_value": True})


def test_event_errors() -> None:
    v4, v5 = load("token_v4"), load("token_v5")
    with pytest.raises(DecodeError, match=r"event index 7 out of range.*2 event"):
        v4.decode_event(b"\x07", [])
    with pytest.raises(DecodeError, match="data is empty"):
        v4.decode_event(b"", [])
    with pytest.raises(DecodeError, match=r"event 'Transfer'.*truncated"):
        v4.decode_event(b"\x00\x01" + bytes.fromhex(ALICE_HEX)[:10], [])
    with pytest.raises(DecodeError, match=r"event 'Approval'.*1 trailing byte"):
        v4.decode_event(b"\x01" + bytes(64 + 16 + 1), [])
    with pytest.raises(DecodeError, match=r"signature topic 0x3333.*no anonymous event"):
        v5.decode_event(b"\x01\x02", [b"\x33" * 32])
    transfer_topic = v5.events[0].signature_topic
    assert transfer_topic is not None
    with pytest.raises(DecodeError, match=r"event 'Transfer'"):  # known topic, bad data
        v5.decode_event(b"\x05", [transfer_topic])


# --- error paths -------------------------------------------------------------------------------


def test_unknown_label_lists_alternatives() -> None:
    meta = load("flipper_v4")
    with pytest.raises(UnknownLabel, match=r"no message 'flop'; available: flip, get"):
        meta.encode_message("flop")
    with pytest.raises(UnknownLabel, match=r"no constructor 'old'; available: new, default"):
        meta.constructor("old")


@pytest.mark.parametrize(
    ("label", "args", "pattern"),
    [
        (
            "transfer",
            {"to": ALICE},
            r"missing argument 'value' of message 'transfer' \(expected "
            r"u128 \(Balance\)\)",
        ),
        ("transfer", [ALICE], r"missing argument 'value'"),
        ("transfer", None, r"missing argument 'to'"),
        (
            "transfer",
            {"to": ALICE, "value": 1, "memo": "x"},
            r"unexpected argument 'memo' for message 'transfer' \(it takes: to, value\)",
        ),
        ("transfer", [ALICE, 1, 2], r"too many arguments for message 'transfer': got 3"),
        ("total_supply", [1], r"too many arguments .* it takes 0 \(no arguments\)"),
        ("transfer", "oops", r"must be a dict by label or a list in order, got str"),
        (
            "transfer",
            {"to": ALICE, "value": "abc"},
            r"^argument 'value' of message 'transfer': expected u128 \(Balance\), got 'abc'$",
        ),
        ("transfer", {"to": ALICE, "value": -1}, r"'value'.*got -1 \(out of range for u128\)"),
        ("transfer", {"to": ALICE, "value": 2**128}, r"out of range for u128"),
        ("transfer", {"to": ALICE, "value": True}, r"expected u128 \(Balance\), got True"),
        ("transfer", {"to": ALICE, "value": 1.5}, r"expected u128 \(Balance\), got 1.5"),
        (
            "transfer",
            {"to": ALICE[:-1] + "Z", "value": 1},
            r"argument 'to' of message 'transfer': expected AccountId "
            r"\(ink_primitives::types::AccountId\), got '5Grw.*' \(bad SS58 address",
        ),
        ("transfer", {"to": "0x1234", "value": 1}, r"'to'.*got '0x1234' \(give SS58, 0x-hex"),
        ("transfer", {"to": 5, "value": 1}, r"'to'.*AccountId.*got 5"),
        (
            "set_data",
            {"data": "hello", "note": "", "limit": None},
            r"'data'.*expected Vec<u8>, got 'hello' \(give 0x-hex",
        ),
        ("set_data", {"data": [1, 256], "note": "", "limit": None}, r"'data'.*got \[1, 256\]"),
        (
            "set_data",
            {"data": "0x", "note": b"x", "limit": None},
            r"'note'.*expected String, got b'x'",
        ),
        (
            "set_data",
            {"data": "0x", "note": "", "limit": "many"},
            r"'limit'.*expected Option<u128>, got 'many'",
        ),
        (
            "set_code",
            {"code_hash": "0x" + "ab" * 31},
            r"'code_hash'.*Hash \(ink_primitives::"
            r"types::Hash\).*needs 32 bytes, got 31",
        ),
        (
            "misc",
            {"pair": [1], "delta": 0, "tag": "0x00000000", "members": []},
            r"'pair'.*expected \(u32, bool\), got \[1\] \(needs 2 items, got 1\)",
        ),
        (
            "misc",
            {"pair": [1, 1], "delta": 0, "tag": "0x00000000", "members": []},
            r"'pair' of message 'misc' at \[1\]: expected bool, got 1",
        ),
        (
            "misc",
            {"pair": [1, True], "delta": 2**63, "tag": "0x00000000", "members": []},
            r"'delta'.*out of range for i64",
        ),
        (
            "misc",
            {"pair": [1, True], "delta": 0, "tag": "0x00000000", "members": [ALICE, "x"]},
            r"'members' of message 'misc' at \[1\]: expected AccountId",
        ),
        (
            "set_config",
            {"config": {**CONFIG, "fee_bps": "x"}},
            r"'config' of message 'set_config' at .fee_bps: expected u32, got 'x'",
        ),
        ("set_config", {"config": {"owner": ALICE}}, r"missing field\(s\) \['fee_bps'"),
        ("set_config", {"config": {**CONFIG, "color": 1}}, r"unknown field\(s\) \['color'\]"),
        ("set_config", {"config": [ALICE, 1]}, r"expected Config \(token::token::Config\)"),
        ("set_config", {"config": {**CONFIG, "tags": "a"}}, r"at .tags: expected Vec<String>"),
    ],
)
def test_encode_errors(label: str, args: Any, pattern: str) -> None:
    with pytest.raises(EncodeError, match=pattern):
        load("token_v4").encode_message(label, args)


def test_enum_encode_errors() -> None:
    meta = load("flipper_v0")
    with pytest.raises(EncodeError, match=r"expected Mood \(flipper::Mood\), got 'Grumpy' \(unk"):
        meta.encode_message("set_mood", ["Grumpy"])
    with pytest.raises(EncodeError, match=r"variant Sad takes no value"):
        meta.encode_message("set_mood", [{"Sad": 1}])
    with pytest.raises(EncodeError, match=r"give one of \['Happy', 'Sad'\]"):
        meta.encode_message("set_mood", [3])
    with pytest.raises(EncodeError, match=r"expected bool, got 1$"):
        meta.encode_constructor("new", [1])


@pytest.mark.parametrize(
    ("label", "data", "pattern"),
    [
        (
            "total_supply",
            "0001",
            r"return value of message 'total_supply'.*truncated input for "
            r"Result<u128, LangError>.*15 more byte",
        ),
        ("get_data", "0008", r"'get_data'.*truncated.*length prefix 2 exceeds"),
        ("total_supply", "00" + "00" * 16 + "beef", r"'total_supply': 2 trailing byte\(s\)"),
        (
            "get_limit",
            "0002",
            r"'get_limit'.*invalid data.*invalid variant index 2 for "
            r"Option<u128>",
        ),
        ("transfer", "0009", r"invalid variant index 9 for Result<\(\), Error>"),
        ("Ownable::owner", "", r"'Ownable::owner'.*input ends at byte 0"),
    ],
)
def test_decode_errors(label: str, data: str, pattern: str) -> None:
    meta = load("token_v4")
    with pytest.raises(DecodeError, match=pattern):
        meta.decode_return(meta.message(label), bytes.fromhex(data))


def test_decode_invalid_data() -> None:
    v3, v4 = load("flipper_v3"), load("token_v4")
    with pytest.raises(DecodeError, match=r"invalid bool byte 0x02"):
        v3.decode_return(v3.message("get"), b"\x02")
    with pytest.raises(DecodeError, match=r"returns nothing, but got 1 byte"):
        v3.decode_return(v3.message("flip"), b"\x00")
    with pytest.raises(DecodeError, match=r"not valid UTF-8"):
        v4.decode_args(v4.message("set_data"), b"\x00\x04\xff\xfe\x00")
    with pytest.raises(DecodeError, match=r"arguments of message 'transfer'.*truncated"):
        v4.decode_args(v4.message("transfer"), selector_of("transfer") + b"\x01\x02")


# --- metadata files and bundles ----------------------------------------------------------------


def tiny_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(TINY_WAT))


def write_bundle(path: Path, wasm: bytes, declared: bytes | None) -> Path:
    doc = raw("flipper_v4")
    doc["source"]["wasm"] = "0x" + wasm.hex()
    doc["source"]["hash"] = "0x" + (declared if declared is not None else blake2_256(wasm)).hex()
    path.write_text(json.dumps(doc))
    return path


def test_contract_bundle(tmp_path: Path) -> None:
    wasm = tiny_wasm()
    meta = ContractMetadata.load(write_bundle(tmp_path / "flipper.contract", wasm, None))
    assert meta.wasm == wasm and meta.wasm[:4] == b"\0asm"
    assert meta.code_hash == blake2_256(wasm) == meta.source_hash
    assert meta.encode_constructor("new", [True]).hex() == "9bae9d5e01"


def test_bundle_from_another_build_loads_with_a_warning_naming_both_hashes(tmp_path: Path) -> None:
    wasm = tiny_wasm()
    path = write_bundle(tmp_path / "other-build.contract", wasm, b"\x01" * 32)
    with pytest.warns(SourceHashMismatch) as caught:
        meta = ContractMetadata.load(path)
    (warning,) = caught
    text = str(warning.message)
    assert f"source.hash is 0x{'01' * 32}" in text and f"blake2_256(wasm) is 0x{blake2_256(wasm).hex()}" in text
    assert "other-build.contract" in text and "strict=True" in text
    assert warning.filename == __file__  # attributed to the caller of load()
    assert isinstance(warning.message, SourceHashMismatch)
    assert (warning.message.declared, warning.message.actual) == (b"\x01" * 32, blake2_256(wasm))
    # The code given is what runs; the metadata still encodes calls.
    assert meta.wasm == wasm and meta.code_hash == blake2_256(wasm) and meta.source_hash == b"\x01" * 32
    assert meta.source_mismatch is warning.message
    assert meta.encode_constructor("new", [True]).hex() == "9bae9d5e01"


def test_strict_keeps_the_hash_mismatch_an_error(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "bad.contract", tiny_wasm(), b"\x01" * 32)
    with pytest.raises(SourceHashMismatch, match=r"code hash mismatch.*source.hash is 0x0101.*Rebuild"):
        ContractMetadata.load(path, strict=True)
    assert issubclass(SourceHashMismatch, MetadataError)  # so `except MetadataError` still catches it
    doc = json.loads(path.read_text())
    with pytest.raises(SourceHashMismatch):
        ContractMetadata.from_json(doc, strict=True)
    fine = write_bundle(tmp_path / "fine.contract", tiny_wasm(), None)
    assert ContractMetadata.load(fine, strict=True).source_mismatch is None  # matching: no warning


def test_json_with_sibling_wasm_and_wasm_with_sibling_json(tmp_path: Path) -> None:
    wasm = tiny_wasm()
    doc = raw("flipper_v5")
    doc["source"]["hash"] = "0x" + blake2_256(wasm).hex()
    (tmp_path / "flip.json").write_text(json.dumps(doc))
    (tmp_path / "flip.wasm").write_bytes(wasm)
    for path in ("flip.json", "flip.wasm"):
        meta = ContractMetadata.load(tmp_path / path)
        assert meta.wasm == wasm and meta.code_hash == blake2_256(wasm)
    # no sibling: metadata only
    (tmp_path / "flip.wasm").unlink()
    assert ContractMetadata.load(tmp_path / "flip.json").wasm is None
    # a sibling with other code: that code runs, with a warning (strict: an error)
    (tmp_path / "flip.wasm").write_bytes(wasm + b"\x00")
    with pytest.warns(SourceHashMismatch, match="code hash mismatch"):
        assert ContractMetadata.load(tmp_path / "flip.json").wasm == wasm + b"\x00"
    with pytest.raises(SourceHashMismatch):
        ContractMetadata.load(tmp_path / "flip.wasm", strict=True)


def test_from_json_with_wasm_argument() -> None:
    wasm = tiny_wasm()
    doc = raw("token_v3")
    del doc["source"]["hash"]  # nothing declared: nothing to check against
    meta = ContractMetadata.from_json(doc, wasm=wasm)
    assert meta.code_hash == blake2_256(wasm) and meta.source_hash is None
    with pytest.warns(SourceHashMismatch, match="code hash mismatch"):  # the fixture's hash is fake
        assert ContractMetadata.from_json(raw("token_v4"), wasm=wasm).code_hash == blake2_256(wasm)


def test_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.contract"
    with pytest.raises(
        MetadataError, match=r"not found: .*nowhere.contract \(expected a .contract"
    ):
        ContractMetadata.load(missing)
    (tmp_path / "lonely.wasm").write_bytes(tiny_wasm())
    with pytest.raises(
        MetadataError, match=r"no metadata for .*lonely.wasm: expected .*lonely.json"
    ):
        ContractMetadata.load(tmp_path / "lonely.wasm")
    with pytest.raises(MetadataError, match=r"contract code not found: .*ghost.wasm"):
        ContractMetadata.load(tmp_path / "ghost.wasm")
    (tmp_path / "broken.json").write_text("{ not json")
    with pytest.raises(MetadataError, match=r"broken.json is not valid JSON"):
        ContractMetadata.load(tmp_path / "broken.json")


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda d: d.update(version=6), r"unsupported ink! metadata version 6"),
        (lambda d: d.update(version="3.0"), r"unsupported ink! metadata version '3.0'"),
        (lambda d: d.pop("version"), r"unknown metadata format"),
        (lambda d: d.pop("types"), r"no 'types' section"),
        (
            lambda d: d["spec"]["messages"][0].update(selector="0x1234"),
            r"selector of 'flip' must be 4",
        ),
        (lambda d: d["spec"]["messages"][0].update(selector="633aa551"), r"0x-prefixed hex"),
        (
            lambda d: d["spec"]["messages"][1]["returnType"].update(type=99),
            r"message 'get': return type refers to type 99",
        ),
        (
            lambda d: d["types"][1]["type"]["def"]["variant"]["variants"][0]["fields"][0].update(
                type=42
            ),
            r"type 1 refers to type 42, which is missing",
        ),
        (
            lambda d: d["types"][0]["type"].update({"def": {"primitive": "f64"}}),
            r"type 0 is malformed.*unknown primitive 'f64'",
        ),
        (lambda d: d["spec"]["messages"][0].pop("label"), r"malformed 'spec' section"),
        (lambda d: d["source"].update(hash="0x12"), r"source.hash must be 32 bytes"),
    ],
)
def test_bad_metadata(mutate: Any, pattern: str) -> None:
    doc = raw("flipper_v4")
    mutate(doc)
    with pytest.raises(MetadataError, match=pattern):
        ContractMetadata.from_json(doc)


def test_not_an_object() -> None:
    with pytest.raises(MetadataError, match="must be a JSON object"):
        ContractMetadata.from_json([])  # type: ignore[arg-type]


# --- independence and threads ------------------------------------------------------------------


def test_contracts_do_not_share_types() -> None:
    flipper, token = load("flipper_v4"), load("token_v4")  # type 0 is bool in one, u128 in other
    assert flipper.registry.name(0) == "bool" and token.registry.name(0) == "u128"
    assert flipper.encode_constructor("new", [True])[4:] == b"\x01"
    assert token.encode_message("total_supply") == selector_of("total_supply")
    assert token.encode_constructor("new", [1, None])[4:] == (1).to_bytes(16, "little") + b"\0"


def test_concurrent_use() -> None:
    metas = [load(name) for name in TOKENS]
    failures: list[BaseException] = []

    def work(meta: ContractMetadata) -> None:
        try:
            for i in range(200):
                data = meta.encode_message("set_config", [{**CONFIG, "fee_bps": i}])
                assert meta.decode_args(meta.message("set_config"), data)["config"]["fee_bps"] == i
        except BaseException as exc:  # reported below, from the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(m,)) for m in metas * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# --- cross-check against substrate-interface (an independent implementation) -------------------

ORACLE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("transfer", {"to": "0x" + ALICE_HEX, "value": 10**12}),
    ("set_data", {"data": "0x0102ff", "note": "héllo", "limit": 7}),
    ("set_data", {"data": "0x", "note": "", "limit": None}),
    (
        "set_config",
        {
            "config": {
                "owner": "0x" + BOB_HEX,
                "fee_bps": 30,
                "memo": "m",
                "tags": ["a", "b"],
                "weight": 1000,
            }
        },
    ),
    (
        "misc",
        {
            "pair": [7, True],
            "delta": -5,
            "tag": "0x01020304",
            "members": ["0x" + ALICE_HEX, "0x" + BOB_HEX],
        },
    ),
    ("set_code", {"code_hash": "0x" + "ab" * 32}),
]


@pytest.mark.parametrize("name", TOKENS)
def test_encoding_matches_substrate_interface(name: str) -> None:
    from substrateinterface import SubstrateInterface
    from substrateinterface.contracts import ContractMetadata as ReferenceMetadata

    # offline: no I/O in the constructor, and init_runtime (network) replaced by a no-op
    substrate = SubstrateInterface(url="http://127.0.0.1:9", auto_discover=False, ss58_format=42)
    substrate.init_runtime = lambda *a, **k: None  # type: ignore[method-assign]
    reference = ReferenceMetadata(raw(name), substrate)
    meta = load(name)
    for label, args in ORACLE_CASES:
        expected = reference.generate_message_data(label, copy.deepcopy(args)).to_hex()
        assert "0x" + meta.encode_message(label, args).hex() == expected, label
    expected = reference.generate_constructor_data("new", {"total_supply": 5, "owner": None})
    assert "0x" + meta.encode_constructor("new", [5, None]).hex() == expected.to_hex()


def test_public_names_are_pinned() -> None:
    import phat_runtime.codec.metadata as module

    assert sorted(module.__all__) == [
        "ArgSpec",
        "ContractMetadata",
        "DecodedEvent",
        "EventArgSpec",
        "EventSpec",
        "MessageSpec",
        "selector_of",
    ]


def _flipper_from_another_build(tmp_path: Path) -> Path:
    """flipper's real code beside metadata that names another build's hash."""
    examples = Path(__file__).resolve().parent.parent / "contracts_examples" / "flipper"
    doc = json.loads((examples / "flipper.json").read_text())
    doc["source"]["hash"] = "0x" + "ab" * 32
    (tmp_path / "flipper.json").write_text(json.dumps(doc))
    (tmp_path / "flipper.wasm").write_bytes((examples / "flipper.wasm").read_bytes())
    return tmp_path / "flipper.json"


def test_local_cluster_runs_the_given_code_under_metadata_from_another_build(tmp_path: Path) -> None:
    from phat_runtime import LocalCluster

    path = _flipper_from_another_build(tmp_path)
    cluster = LocalCluster()
    with pytest.warns(SourceHashMismatch, match="0x" + "ab" * 32):
        flipper = cluster.deploy(path, "new", [False])
    assert flipper.transact("flip").success and flipper.query("get").output is True
    assert cluster.runtime.records.code(blake2_256((tmp_path / "flipper.wasm").read_bytes())) is not None
    with pytest.raises(SourceHashMismatch):
        LocalCluster(strict_metadata=True).deploy(path, "new", [False])


def test_the_warning_is_shown_to_a_command_line_user(tmp_path: Path) -> None:
    """Under Python's default warning filters (what `phat` runs with) the warning reaches stderr."""
    import subprocess
    import sys

    path = _flipper_from_another_build(tmp_path)
    code = ("from phat_runtime.codec.metadata import ContractMetadata; import sys; "
            "m = ContractMetadata.load(sys.argv[1]); print(m.name)")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": ""}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "flipper"
    assert "SourceHashMismatch" in done.stderr and "0x" + "ab" * 32 in done.stderr
    wasm = (tmp_path / "flipper.wasm").read_bytes()
    assert "0x" + blake2_256(wasm).hex() in done.stderr
