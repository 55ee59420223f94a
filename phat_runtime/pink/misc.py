"""pink chain-extension functions: misc (placeholder — being implemented)."""

from __future__ import annotations

from phat_runtime.pink.extension import ChainExtensionRegistry
from phat_runtime.types import ExecutionMode


def register(registry: ChainExtensionRegistry, mode: ExecutionMode) -> None:
    """Register this module's functions with the behaviour of ``mode``."""
