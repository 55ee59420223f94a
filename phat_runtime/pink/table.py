"""The pink function table: one registry per execution mode, filled by each function module.

Each module (``http``, ``signing``, ``cache``, ``logs``, ``misc``) exposes
``register(registry, mode)`` and plugs in its QUERY or its deterministic (TRANSACTION /
ESTIMATE) implementation once, here — handlers never branch on the mode (HOST-ABI §3.2,
ARCHITECTURE decision 8).
"""

from __future__ import annotations

from phat_runtime.pink import cache, http, logs, misc, signing
from phat_runtime.pink.extension import ChainExtensionRegistry
from phat_runtime.types import ExecutionMode

_MODULES = (http, signing, cache, logs, misc)


def build_registries() -> dict[ExecutionMode, ChainExtensionRegistry]:
    """A fresh registry per execution mode with every pink function registered."""
    registries: dict[ExecutionMode, ChainExtensionRegistry] = {}
    for mode in ExecutionMode:
        registry = ChainExtensionRegistry()
        for module in _MODULES:
            module.register(registry, mode)
        registries[mode] = registry
    return registries
