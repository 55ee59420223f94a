"""Chain protocol messages v1: committed vectors for every message, and every way a remark can
be refused (trailing bytes, unknown version or variant, oversize or malformed fields,
non-canonical encodings) with a ProtocolError that says why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from phat_runtime.chain.policy_codec import (
    PLATFORM_CODES,
    TCB_STATUS_CODES,
    decode_policy,
    encode_policy,
)
from phat_runtime.chain.protocol import (
    MAX_CODE_LEN,
    MAX_REMARK_LEN,
    MESSAGE_TYPES,
    Call,
    CheckpointPublished,
    CreateCluster,
    Instantiate,
    RegisterWorker,
    RotateClusterKey,
    UploadCode,
    cluster_id,
    decode_message,
    encode_message,
    is_protocol_remark,
)
from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import PhatError, ProtocolError
from phat_runtime.tee.platform import QUOTE_KINDS
from phat_runtime.tee.policy import TCB_STATUSES, Policy
from tests.chain import vectors

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
COMMITTED: dict[str, str] = json.loads(vectors.FILE.read_text())
C = vectors.CLUSTER


@pytest.mark.parametrize("name", sorted(vectors.messages()))
def test_vector_encodes_and_decodes(name: str) -> None:
    message = vectors.messages()[name]
    assert message.encode().hex() == COMMITTED[name]
    assert decode_message(bytes.fromhex(COMMITTED[name])) == message


def test_vectors_cover_every_message_type() -> None:
    assert {type(m) for m in vectors.messages().values()} == set(MESSAGE_TYPES)
    assert [cls.INDEX for cls in MESSAGE_TYPES] == list(range(len(MESSAGE_TYPES)))


def test_documented_vectors_are_the_committed_ones() -> None:
    text = DOCS.read_text()
    shown = re.findall(r"`(70686174[0-9a-f]+)`", text)
    assert len(shown) >= 3
    for hexed in shown:
        assert hexed in COMMITTED.values(), hexed[:40]


def test_policy_round_trips_with_every_field() -> None:
    w = Writer()
    encode_policy(w, vectors.POLICY)
    r = Reader(w.finish())
    assert decode_policy(r) == vectors.POLICY
    r.end()


def test_code_tables_cover_tee_names_and_never_reuse_codes() -> None:
    assert set(TCB_STATUS_CODES) == set(TCB_STATUSES)
    assert set(PLATFORM_CODES) == set(QUOTE_KINDS)
    assert len(set(TCB_STATUS_CODES.values())) == len(TCB_STATUS_CODES)


def test_cluster_id_is_owner_and_salt_bound() -> None:
    owner = vectors.OWNER
    assert cluster_id(owner, b"dev") == blake2_256(b"phat_runtime/cluster-id/v1" + owner + b"dev")
    assert cluster_id(owner, b"dev") != cluster_id(owner, b"dev2") != cluster_id(bytes(32), b"dev")


def test_only_phat_remarks_are_ours() -> None:
    assert is_protocol_remark(b"phat\x01\x05")
    assert not is_protocol_remark(b"hello") and not is_protocol_remark(b"pha")
    with pytest.raises(ProtocolError, match="not a phat protocol remark"):
        decode_message(b"hello world")


# --- refusals --------------------------------------------------------------------------------


def _refused(raw: bytes, pattern: str) -> None:
    with pytest.raises(ProtocolError, match=pattern) as info:
        decode_message(raw)
    assert isinstance(info.value, PhatError)


def test_trailing_bytes_are_refused() -> None:
    _refused(RotateClusterKey(C).encode() + b"\x00", "trailing")


def test_truncated_message_is_refused() -> None:
    _refused(CheckpointPublished(C, 1, bytes(32)).encode()[:-1], "truncated")


def test_unknown_version_and_variant_are_refused() -> None:
    _refused(b"phat\x02\x05" + C, "unsupported protocol version 2")
    _refused(b"phat\x01\x0b" + C, "unknown message variant 11")
    _refused(b"phat\x01", "truncated")


def test_oversize_fields_are_refused_before_reading_them() -> None:
    # UploadCode whose wasm claims 2 MiB + 1 bytes: refused from the length prefix alone.
    raw = Writer().raw(b"phat\x01").u8(UploadCode.INDEX).raw(C).compact(MAX_CODE_LEN + 1).finish()
    _refused(raw, r"UploadCode.wasm is 2097153 bytes, the limit is 2097152")
    with pytest.raises(ProtocolError, match="UploadCode.wasm"):
        UploadCode(C, bytes(MAX_CODE_LEN + 1), None).encode()
    _refused(b"phat" + bytes(MAX_REMARK_LEN), "limit")


def test_non_canonical_compact_length_is_refused() -> None:
    good = Instantiate(C, C, b"", b"", 0, 0).encode()
    # salt length 0 as a two-byte compact (0x01 0x00) instead of 0x00
    at = len(b"phat\x01\x08") + 64
    assert good[at] == 0
    _refused(good[:at] + b"\x01\x00" + good[at + 1:], "non-canonical compact")


def test_bad_option_tag_platform_and_utf8_are_refused() -> None:
    raw = bytearray(UploadCode(C, b"w", None).encode())
    raw[-1] = 2
    _refused(bytes(raw), "invalid Option tag")
    reg = RegisterWorker(C, C, C, "sgx", b"q", b"c", "http://x").encode()
    at = len(b"phat\x01\x02") + 96
    assert reg[at] == PLATFORM_CODES["sgx"]
    _refused(reg[:at] + b"\x09" + reg[at + 1:], "unknown platform code 9")
    _refused(reg[:-1] + b"\xff", "not UTF-8")


def test_non_canonical_policy_sets_are_refused() -> None:
    good = CreateCluster(b"", Policy(), C).encode()
    # default platforms {sgx, tdx} are written sorted as 08 00 01; swap to 08 01 00
    at = len(b"phat\x01\x00") + 1
    assert good[at : at + 3] == b"\x08\x00\x01"
    _refused(good[:at] + b"\x08\x01\x00" + good[at + 3:], "not sorted and unique")
    _refused(good[:at] + b"\x08\x00\x00" + good[at + 3:], "not sorted and unique")
    _refused(good[:at] + b"\x04\x07" + good[at + 3:], "unknown platform code 7")


def test_encoding_refuses_bad_values_with_the_field_name() -> None:
    with pytest.raises(ProtocolError, match="CheckpointPublished.state_root must be 32 bytes"):
        CheckpointPublished(C, 1, b"short").encode()
    with pytest.raises(ProtocolError, match="Instantiate.value must be an integer that fits in a u128"):
        Instantiate(C, C, b"", b"", 1 << 128, 0).encode()
    with pytest.raises(ProtocolError, match="RegisterWorker.platform must be one of"):
        RegisterWorker(C, C, C, "sev", b"", b"", "").encode()
    with pytest.raises(ProtocolError, match="Call.sealed_payload must be a SealedBox"):
        Call(C, C, 0, b"plain", 0).encode()  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="not a protocol message"):
        encode_message(object())  # type: ignore[arg-type]


def test_repr_hides_large_fields_and_sealed_contents() -> None:
    text = repr(vectors.messages()["call"])
    assert "sealed" in text and "0x3333" in text
    assert "<40 bytes>" in repr(UploadCode(C, b"x" * 40, None))
