"""Reading a block body without the network: the timestamp inherent, and which remarks count
(only extrinsics made of remark_with_event and batches of them; only b"phat" remarks)."""

from __future__ import annotations

from phat_runtime.chain.blocks import (
    MAX_BATCH_DEPTH,
    CallIndices,
    is_signed,
    protocol_remarks,
    timestamp_of,
)
from phat_runtime.codec.scale import Writer

# Rococo Asset Hub's indices (runtime 900): Timestamp 3, System 0, Utility 40.
IDX = CallIndices(timestamp_set=b"\x03\x00", remark_with_event=b"\x00\x08",
                  batches=frozenset({b"\x28\x00", b"\x28\x02"}))
BATCH, BATCH_ALL, TRANSFER = b"\x28\x00", b"\x28\x02", b"\x0a\x03"


def remark(data: bytes) -> bytes:
    return IDX.remark_with_event + Writer().blob(data).finish()


def batch(index: bytes, *calls: bytes) -> bytes:
    return index + Writer().compact(len(calls)).finish() + b"".join(calls)


def extrinsic(version: int, body: bytes) -> bytes:
    inner = bytes([version]) + body
    return Writer().compact(len(inner)).finish() + inner


def test_timestamp_from_the_inherent() -> None:
    now = 1_796_000_012_000
    ts = extrinsic(0x04, IDX.timestamp_set + Writer().compact(now).finish())  # type: ignore[operator]
    other = extrinsic(0x04, b"\x01\x00" + b"\x00" * 10)
    assert timestamp_of([other, ts], IDX) == now
    assert timestamp_of([other], IDX) is None
    assert timestamp_of([ts], CallIndices(None, IDX.remark_with_event, IDX.batches)) is None
    signed_lookalike = extrinsic(0x84, IDX.timestamp_set + b"\x00")  # type: ignore[operator]
    assert timestamp_of([signed_lookalike], IDX) is None
    assert is_signed(signed_lookalike) and not is_signed(ts) and not is_signed(b"\xff")


def test_single_remark_and_batches_in_execution_order() -> None:
    assert protocol_remarks(remark(b"phat\x01a"), IDX) == [b"phat\x01a"]
    call = batch(BATCH_ALL, remark(b"phat\x01a"), remark(b"not ours"),
                 batch(BATCH, remark(b"phat\x01b"), remark(b"phat\x01c")), remark(b"phat\x01d"))
    assert protocol_remarks(call, IDX) == [b"phat\x01a", b"phat\x01b", b"phat\x01c", b"phat\x01d"]


def test_extrinsic_mixing_other_calls_is_ignored_whole() -> None:
    transfer = TRANSFER + b"\x00" + bytes(32) + b"\x04"
    assert protocol_remarks(batch(BATCH_ALL, remark(b"phat\x01a"), transfer), IDX) is None
    assert protocol_remarks(transfer, IDX) is None


def test_malformed_and_too_deep_calls_are_ignored() -> None:
    assert protocol_remarks(remark(b"phat\x01a") + b"\x00", IDX) is None  # trailing bytes
    assert protocol_remarks(remark(b"phat\x01a")[:-1], IDX) is None  # truncated
    deep = remark(b"phat\x01deep")
    for _ in range(MAX_BATCH_DEPTH):
        deep = batch(BATCH, deep)
    assert protocol_remarks(deep, IDX) == [b"phat\x01deep"]
    assert protocol_remarks(batch(BATCH, deep), IDX) is None


def test_non_phat_remarks_are_dropped() -> None:
    assert protocol_remarks(batch(BATCH, remark(b"hello"), remark(b"0x70686174")), IDX) == []
