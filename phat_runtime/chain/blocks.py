"""Finalized chain blocks as the worker sees them, and how they are read out of a block body.

Owns: :class:`ChainBlock` / :class:`Remark` (what :class:`~phat_runtime.chain.node.ChainNode`
yields) and the pure parsing rules (``docs/protocol.md`` "Reading blocks"):

* **timestamp** — the ``timestamp.set`` inherent of the block (``Compact<u64>`` milliseconds);
* **remarks** — a signed extrinsic counts only if its call is ``system.remark_with_event`` or a
  ``utility.batch`` / ``batch_all`` / ``force_batch`` whose calls are, recursively, only those.
  Such an extrinsic cannot fail once included (remarks do not fail, fees are paid before
  dispatch), so the block body alone says what executed — no events, no state, which pruned
  nodes no longer have. An extrinsic that mixes in any other call is ignored as a whole.
  The extrinsic's signer (``MultiAddress::Id``) is every remark's origin: batches keep it.
  Remarks not starting with ``b"phat"`` are dropped here.

Must not: touch the network or decode messages (``protocol.py`` does, with its own errors).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from phat_runtime.chain.protocol import is_protocol_remark
from phat_runtime.codec.scale import Reader, ScaleError
from phat_runtime.errors import ChainError

#: Deepest batch nesting we follow (Substrate's utility pallet allows a few levels).
MAX_BATCH_DEPTH = 8


class Remark(NamedTuple):
    """One of our remarks: ``extrinsic`` index in the block, ``signer`` AccountId (32 bytes),
    ``data`` the remark bytes (``b"phat" ‖ …``). Order inside a block = execution order."""

    extrinsic: int
    signer: bytes
    data: bytes


@dataclass(frozen=True)
class ChainBlock:
    """A finalized block: number, hash, parent hash, ``timestamp.set`` in ms, our remarks."""

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp_ms: int
    remarks: tuple[Remark, ...] = field(default=())

    def numbered(self) -> Iterator[tuple[int, Remark]]:
        """Each remark with its position among its extrinsic's remarks (a batch holds several):
        (block, extrinsic, position) names one message everywhere (rejections, RESULT)."""
        positions: dict[int, int] = {}
        for remark in self.remarks:
            position = positions.get(remark.extrinsic, 0)
            positions[remark.extrinsic] = position + 1
            yield position, remark

    def __repr__(self) -> str:
        return (f"ChainBlock(#{self.number}, 0x{self.hash.hex()[:16]}…, t={self.timestamp_ms}, "
                f"{len(self.remarks)} remark(s))")


@dataclass(frozen=True)
class CallIndices:
    """``pallet ‖ call`` index bytes of the calls we read, from the block's runtime metadata."""

    timestamp_set: bytes | None
    remark_with_event: bytes
    batches: frozenset[bytes]


def _body(extrinsic: bytes) -> Reader:
    """A reader positioned after the extrinsic's length prefix."""
    r = Reader(extrinsic)
    length = r.compact()
    if length != len(extrinsic) - r.pos:
        raise ScaleError(f"extrinsic length prefix says {length}, body has {len(extrinsic) - r.pos} bytes")
    return r


def is_signed(extrinsic: bytes) -> bool:
    """True for a signed (v4) extrinsic: version byte 0x84."""
    try:
        return _body(extrinsic).u8() == 0x84
    except ScaleError:
        return False


def timestamp_of(extrinsics: list[bytes], indices: CallIndices) -> int | None:
    """Milliseconds from the block's ``timestamp.set`` inherent, or None if it has none."""
    if indices.timestamp_set is None:
        return None
    for raw in extrinsics:
        try:
            r = _body(raw)
            if r.u8() not in (0x04, 0x05):  # unsigned / bare
                continue
            if r.take(2, "call index") != indices.timestamp_set:
                continue
            value = r.compact()
            r.end()
            return value
        except ScaleError as exc:
            raise ChainError(f"cannot read the timestamp.set inherent: {exc}") from exc
    return None


def protocol_remarks(call: bytes, indices: CallIndices) -> list[bytes] | None:
    """Our remarks in a signed extrinsic's call, in execution order; None if the call is not
    made only of ``remark_with_event`` and batches of them (then it is ignored as a whole)."""
    found: list[bytes] = []
    r = Reader(call)
    try:
        if not _walk(r, indices, found, 0):
            return None
        r.end()
    except ScaleError:
        return None
    return [data for data in found if is_protocol_remark(data)]


def _walk(r: Reader, indices: CallIndices, found: list[bytes], depth: int) -> bool:
    index = r.take(2, "call index")
    if index == indices.remark_with_event:
        found.append(r.blob())
        return True
    if index in indices.batches and depth < MAX_BATCH_DEPTH:
        count = r.compact()
        return all(_walk(r, indices, found, depth + 1) for _ in range(count))
    return False
