"""State backends: the key-value interface, per-frame overlays, and the encrypted store.

- :class:`KVStore`, :class:`MemoryBackend`, :class:`Overlay` (``kv.py``): the mapping every
  backend implements, a dict backend, and per-frame journals.
- :class:`BlockStore`, :class:`SnapshotStore`, :class:`CommittedView`, :class:`Checkpoint`
  (``checkpoint.py``): a store that commits per block, and read-only views of its last
  committed block (``with store.reader() as view``) that never wait for the writer.
- :class:`EncryptedStore` (``store.py``): SQLite + per-value AES-256-GCM, one SQLite
  transaction per block with its checkpoint, an incremental state root (``root.py``), key
  rotation (``rotation.py``), encrypted snapshots (``snapshot.py``) and WAL read views, also
  from other processes (:class:`StoreReader`, ``views.py``). See ``docs/state.md``.
- :class:`MemoryBlockStore` (``memory.py``): the same block and view semantics in memory.
"""

from phat_runtime.state.checkpoint import BlockStore, Checkpoint, CommittedView, SnapshotStore
from phat_runtime.state.kv import KVStore, MemoryBackend, Overlay
from phat_runtime.state.memory import MemoryBlockStore, MemoryView
from phat_runtime.state.root import EMPTY_ROOT, LtHash, state_root
from phat_runtime.state.store import EncryptedStore
from phat_runtime.state.views import SqliteView, StoreReader

__all__ = [
    "EMPTY_ROOT",
    "BlockStore",
    "Checkpoint",
    "CommittedView",
    "EncryptedStore",
    "KVStore",
    "LtHash",
    "MemoryBackend",
    "MemoryBlockStore",
    "MemoryView",
    "Overlay",
    "SnapshotStore",
    "SqliteView",
    "StoreReader",
    "state_root",
]
