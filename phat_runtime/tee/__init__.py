"""TEE platforms, worker identity, quotes, and attestation verification.

Owns: the worker identity (sr25519 + derived X25519, sealed by the platform), the platform
backends behind one interface (simulated — development only, Gramine SGX, TDX configfs-tsm),
quote verification with dcap-qvl (offline, given collateral) and the attestation policy.
Imports only ``crypto/``, ``errors`` and ``types`` from the package (ARCHITECTURE.md).

Public surface::

    Platform, Quote                           platform.py   the interface every backend has
    SimulatedPlatform                         simulated.py  development only, NOT SECURE
    GramineSgxPlatform                        gramine.py    /dev/attestation
    TdxPlatform                               tdx.py        configfs-tsm + key-provider file
    make_platform, detect_platform, PlatformConfig         backends.py
    WorkerIdentity, load_or_create_identity, worker_report_data   identity.py
    Policy, load_policy                       policy.py
    verify_quote, verify_worker_quote, detect_kind         verify.py
    Verdict, Check, Evidence                  verdict.py
    collateral_dates, read_collateral         collateral.py
"""

from __future__ import annotations

from phat_runtime.tee.backends import PlatformConfig, detect_platform, make_platform
from phat_runtime.tee.collateral import collateral_dates, fetch_collateral, read_collateral
from phat_runtime.tee.gramine import GramineSgxPlatform
from phat_runtime.tee.identity import WorkerIdentity, load_or_create_identity, worker_report_data
from phat_runtime.tee.platform import REPORT_DATA_LEN, Platform, Quote
from phat_runtime.tee.policy import Policy, load_policy
from phat_runtime.tee.simulated import SimulatedPlatform
from phat_runtime.tee.tdx import TdxPlatform
from phat_runtime.tee.verdict import Check, Evidence, Verdict
from phat_runtime.tee.verify import detect_kind, verify_quote, verify_worker_quote

__all__ = [
    "REPORT_DATA_LEN",
    "Check",
    "Evidence",
    "GramineSgxPlatform",
    "Platform",
    "PlatformConfig",
    "Policy",
    "Quote",
    "SimulatedPlatform",
    "TdxPlatform",
    "Verdict",
    "WorkerIdentity",
    "collateral_dates",
    "detect_kind",
    "detect_platform",
    "fetch_collateral",
    "load_or_create_identity",
    "load_policy",
    "make_platform",
    "read_collateral",
    "verify_quote",
    "verify_worker_quote",
    "worker_report_data",
]
