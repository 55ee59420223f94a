"""State backends: the key-value interface, per-frame overlays, and the encrypted store.

- :class:`KVStore`, :class:`MemoryBackend`, :class:`Overlay` (``kv.py``): the mapping every
  backend implements, a dict backend, and per-frame journals.
- :class:`BlockStore`, :class:`Checkpoint` (``blocks.py``): a store that commits per block.
- :class:`EncryptedStore` (``store.py``): SQLite + per-value AES-256-GCM, one SQLite
  transaction per block with its checkpoint, an incremental state root (``root.py``), key
  rotation (``rotation.py``) and encrypted snapshots (``snapshot.py``). See ``docs/state.md``.
"""

from phat_runtime.state.checkpoint import BlockStore, Checkpoint
from phat_runtime.state.kv import KVStore, MemoryBackend, Overlay
from phat_runtime.state.root import EMPTY_ROOT, LtHash, state_root
from phat_runtime.state.store import EncryptedStore

__all__ = [
    "EMPTY_ROOT",
    "BlockStore",
    "Checkpoint",
    "EncryptedStore",
    "KVStore",
    "LtHash",
    "MemoryBackend",
    "Overlay",
    "state_root",
]
