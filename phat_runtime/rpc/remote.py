"""Contracts on a worker called by label through their ink! metadata (the client's convenience
layer over :class:`~phat_runtime.rpc.client.WorkerClient`). Importable without wasmtime."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phat_runtime.codec.metadata import ContractMetadata, DecodedEvent
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import PhatError
from phat_runtime.rpc.channel import Verified

if TYPE_CHECKING:
    from phat_runtime.rpc.client import WorkerClient


@dataclass
class DecodedResult:
    label: str
    value: Any
    verified: Verified
    events: list[DecodedEvent | Any]

    @property
    def output(self) -> Any:
        if isinstance(self.value, dict) and len(self.value) == 1 and "Ok" in self.value:
            return self.value["Ok"]
        return self.value

    @property
    def success(self) -> bool:
        return self.verified.outcome.success


class RemoteContract:
    """A contract on a worker, called by label through its metadata."""

    def __init__(self, client: WorkerClient, address: bytes, metadata: ContractMetadata) -> None:
        self.client = client
        self.address = address
        self.metadata = metadata

    def query(self, label: str, args: Any = None, *, signer: Signer, value: int = 0) -> DecodedResult:
        spec = self.metadata.message(label)
        verified = self.client.query(self.address, self.metadata.encode_message(label, args), signer, value=value)
        return self._decode(spec, verified)

    def transact(self, label: str, args: Any = None, *, signer: Signer, value: int = 0,
                 gas_limit: int = 0) -> DecodedResult:
        """Run ``label`` in a transaction (``gas_limit`` 0: the worker's cap)."""
        spec = self.metadata.message(label)
        verified = self.client.call(self.address, self.metadata.encode_message(label, args), signer,
                                    value=value, gas_limit=gas_limit)
        return self._decode(spec, verified)

    def _decode(self, spec: Any, verified: Verified) -> DecodedResult:
        outcome = verified.outcome
        value = None
        if outcome.error_kind is None:
            value = self.metadata.decode_return(spec, outcome.data)
        events: list[DecodedEvent | Any] = []
        for e in outcome.events:
            try:
                events.append(self.metadata.decode_event(e.data, e.topics) if e.contract == self.address else e)
            except PhatError:
                events.append(e)
        return DecodedResult(spec.label, value, verified, events)


def load_metadata(source: ContractMetadata | str | os.PathLike[str]) -> ContractMetadata:
    return source if isinstance(source, ContractMetadata) else ContractMetadata.load(Path(source))


def metadata_json(source: ContractMetadata | str | os.PathLike[str]) -> bytes:
    """The metadata document without its code, to upload beside the wasm (lets the worker
    check arguments and serve the metadata); empty for an in-memory ContractMetadata."""
    if isinstance(source, ContractMetadata):
        return b""
    doc = json.loads(Path(source).read_text())
    if isinstance(doc.get("source"), dict):
        doc["source"].pop("wasm", None)
    return json.dumps(doc, separators=(",", ":")).encode()


def account(text: str) -> bytes:
    """A 0x-hex or SS58 address as 32 bytes."""
    if text.startswith("0x"):
        return bytes.fromhex(text[2:])
    from scalecodec.utils.ss58 import ss58_decode

    return bytes.fromhex(ss58_decode(text))
