"""Choosing a platform backend by name.

Owns: :func:`make_platform` (name + configuration → :class:`Platform`) and
:func:`detect_platform` (which TEE interface this machine exposes). Must not: fall back to the
simulated platform silently — detection says ``simulated`` only when nothing else is there, and
the simulated backend logs its warning as soon as it is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phat_runtime.errors import ConfigError
from phat_runtime.tee.gramine import DEFAULT_ROOT, GramineSgxPlatform
from phat_runtime.tee.platform import (
    PLATFORM_GRAMINE_SGX,
    PLATFORM_SIMULATED,
    PLATFORM_TDX,
    PLATFORMS,
    Platform,
)
from phat_runtime.tee.simulated import SimulatedPlatform
from phat_runtime.tee.tdx import DEFAULT_REPORT_DIR, TdxPlatform

#: File name of the sealed identity inside a worker's data directory.
IDENTITY_FILE = "identity.sealed"


@dataclass(frozen=True)
class PlatformConfig:
    """Where each backend finds its devices and keys (defaults: the real system paths)."""

    data_dir: Path
    gramine_root: Path = DEFAULT_ROOT
    gramine_seal_key: str = "_sgx_mrenclave"
    tsm_report_dir: Path = DEFAULT_REPORT_DIR
    tdx_seal_key_file: Path | None = None


def make_platform(name: str, config: PlatformConfig) -> Platform:
    if name == PLATFORM_SIMULATED:
        return SimulatedPlatform(config.data_dir)
    if name == PLATFORM_GRAMINE_SGX:
        return GramineSgxPlatform(config.gramine_root, seal_key_name=config.gramine_seal_key)
    if name == PLATFORM_TDX:
        return TdxPlatform(config.tsm_report_dir, seal_key_file=config.tdx_seal_key_file)
    raise ConfigError(f"unknown TEE platform {name!r} (one of {', '.join(PLATFORMS)})")


def detect_platform(config: PlatformConfig) -> str:
    """``gramine-sgx`` if Gramine's attestation files exist, ``tdx`` if configfs-tsm does,
    else ``simulated``."""
    if (config.gramine_root / "quote").exists():
        return PLATFORM_GRAMINE_SGX
    if config.tsm_report_dir.is_dir():
        return PLATFORM_TDX
    return PLATFORM_SIMULATED
