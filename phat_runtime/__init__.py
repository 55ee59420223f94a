"""phat_runtime — an off-chain confidential contract runtime for ink!/Phat contracts.

The public in-process API is imported lazily, so light users (the RPC client) never load
wasmtime::

    from phat_runtime import LocalCluster
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from phat_runtime.codec.metadata import ContractMetadata
    from phat_runtime.runtime.cluster import Cluster, ExecResult
    from phat_runtime.runtime.local import CallResult, Contract, LocalCluster

_LAZY = {
    "LocalCluster": "phat_runtime.runtime.local",
    "Contract": "phat_runtime.runtime.local",
    "CallResult": "phat_runtime.runtime.local",
    "Cluster": "phat_runtime.runtime.cluster",
    "ExecResult": "phat_runtime.runtime.cluster",
    "ContractMetadata": "phat_runtime.codec.metadata",
}

__all__ = [
    "CallResult",
    "Cluster",
    "Contract",
    "ContractMetadata",
    "ExecResult",
    "LocalCluster",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'phat_runtime' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
