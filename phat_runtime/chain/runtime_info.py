"""What the chain's runtime metadata tells the block reader, per runtime version.

Owns: the call indices of ``timestamp.set``, ``system.remark_with_event`` and the utility
batches for the runtime a block was executed with (looked up by name in the metadata, cached
per spec version), and decoding one signed extrinsic with scalecodec into (signer AccountId,
call bytes). Used by :class:`~phat_runtime.chain.node.ChainNode` only; the caller translates
network errors. Must not: interpret calls (``blocks.py`` does, over raw bytes — scalecodec's
decoded values are ambiguous for ``Vec<u8>``).
"""

from __future__ import annotations

from typing import Any

from phat_runtime.chain.blocks import CallIndices
from phat_runtime.errors import ChainError

BATCH_CALLS = ("batch", "batch_all", "force_batch")


def _call_index(metadata: Any, pallet_name: str, call_name: str) -> bytes | None:
    try:
        pallet = metadata.get_metadata_pallet(pallet_name)
    except Exception:  # scalecodec raises various errors for a missing pallet
        return None
    if pallet is None or not pallet.calls:
        return None
    for call in pallet.calls:
        if call.value["name"] == call_name:
            return bytes([pallet.value["index"], call.value["index"]])
    return None


class RuntimeInfo:
    """Metadata-derived facts over one substrate-interface connection."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self._indices: dict[int, CallIndices] = {}
        self.indices = CallIndices(None, b"", frozenset())

    def at(self, block_hash: str) -> None:
        """Switch to the runtime that executed on top of ``block_hash``."""
        self.api.init_runtime(block_hash=block_hash)
        version = self.api.runtime_version
        if version not in self._indices:
            metadata = self.api.metadata
            remark = _call_index(metadata, "System", "remark_with_event")
            if remark is None:
                raise ChainError("this chain's runtime has no system.remark_with_event; the phat "
                                 "protocol needs it")
            batches = {_call_index(metadata, "Utility", name) for name in BATCH_CALLS}
            self._indices[version] = CallIndices(
                timestamp_set=_call_index(metadata, "Timestamp", "set"),
                remark_with_event=remark,
                batches=frozenset(b for b in batches if b is not None),
            )
        self.indices = self._indices[version]

    def signer_and_call(self, raw: bytes, number: int, index: int) -> tuple[bytes, bytes] | None:
        """(signer AccountId, call bytes) of a signed extrinsic; None if its address is not a
        plain account id (``MultiAddress::Id``) — such extrinsics are ignored.

        Only the envelope is decoded (length, version, address, signature, the signed
        extensions' extra data, in the metadata's order); the call is what remains, as raw
        bytes — decoding a batch of 50 calls with scalecodec would cost ten times more."""
        from scalecodec.base import ScaleBytes
        from scalecodec.utils.ss58 import ss58_decode

        api = self.api
        try:
            envelope = api.runtime_config.create_scale_object("ExtrinsicV4", metadata=api.metadata)
            fields = list(envelope.type_mapping)
            if not fields or fields[-1][0] != "call":
                raise ValueError("the metadata describes no signed extrinsic layout")
            data = ScaleBytes(raw)
            for type_string in ("Compact<u32>", "u8"):
                api.runtime_config.create_scale_object(type_string, data=data).decode(check_remaining=False)
            address: object = None
            for name, type_string in fields[:-1]:
                part = api.runtime_config.create_scale_object(type_string, data=data, metadata=api.metadata)
                part.decode(check_remaining=False)
                if name == "address":
                    address = part.value
            call = raw[data.offset:]
        except Exception as exc:  # scalecodec has no error root; a finalized block must decode
            raise ChainError(f"cannot decode extrinsic {index} of block {number} with the chain's "
                             f"metadata ({type(exc).__name__}: {exc}); this client may be too old "
                             "for the chain's runtime") from exc
        if not isinstance(address, str):
            return None
        try:
            signer = bytes.fromhex(ss58_decode(address))
        except ValueError:
            return None
        return (signer, call) if len(signer) == 32 else None
