"""State backends: key-value store with per-frame overlays (snapshot, commit, revert)."""

from phat_runtime.state.kv import KVStore, MemoryBackend, Overlay

__all__ = ["KVStore", "MemoryBackend", "Overlay"]
