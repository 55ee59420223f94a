"""Contract metadata uploaded with code, for checking query arguments and for the RPC.

An UPLOAD may carry the ink! metadata JSON next to the wasm; the pipeline stores it as opaque
bytes under ``b"M" ‖ code hash`` (part of the state root; never re-serialized, so no JSON
library can change its bytes). Readers take it from whatever view they read through.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.errors import PhatError
from phat_runtime.state.kv import KVStore

#: Contract metadata uploaded with code: b"M" ‖ code hash → JSON bytes.
METADATA = b"M"
#: Loaded metadata kept per code hash (it never changes for a code hash).
MAX_CACHED = 256


def metadata_json(kv: KVStore, code_hash: bytes) -> Any:
    """The metadata JSON uploaded with ``code_hash``, parsed, or None."""
    raw = kv.get(METADATA + code_hash)
    return json.loads(raw) if raw else None


class MetadataCache:
    """Loaded :class:`ContractMetadata` per code hash (code is immutable, so is its metadata)."""

    def __init__(self) -> None:
        self._loaded: dict[bytes, ContractMetadata | None] = {}
        self._lock = threading.Lock()

    def get(self, kv: KVStore, code_hash: bytes) -> ContractMetadata | None:
        with self._lock:
            if code_hash in self._loaded:
                return self._loaded[code_hash]
        doc = metadata_json(kv, code_hash)
        try:
            loaded = ContractMetadata.from_json(doc) if doc else None
        except PhatError:
            loaded = None
        if doc is None:
            return None  # not uploaded (yet): don't remember the absence
        with self._lock:
            if len(self._loaded) >= MAX_CACHED:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[code_hash] = loaded
        return loaded
