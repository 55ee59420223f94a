"""The one interface every TEE backend implements, and the quote it produces.

Owns: :class:`Platform` (``name``, ``kind``, ``seal``, ``unseal``, ``quote``), :class:`Quote`,
and the names of platforms and quote kinds. Must not: do I/O, know any backend.

Two vocabularies, kept apart on purpose:

* a *platform* is the backend that runs the worker: ``simulated``, ``gramine-sgx``, ``tdx``;
* a quote's *kind* is what the quote proves: ``sgx``, ``tdx`` or ``simulated``. Policies and
  verdicts speak in kinds, because an SGX quote verifies the same way whichever SGX runtime
  produced it — the measurements pin *which* enclave it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: Size of the user data a quote binds (SGX REPORTDATA, TDX REPORTDATA, configfs inblob).
REPORT_DATA_LEN = 64

KIND_SGX = "sgx"
KIND_TDX = "tdx"
KIND_SIMULATED = "simulated"
QUOTE_KINDS = (KIND_SGX, KIND_TDX, KIND_SIMULATED)

PLATFORM_SIMULATED = "simulated"
PLATFORM_GRAMINE_SGX = "gramine-sgx"
PLATFORM_TDX = "tdx"
PLATFORMS = (PLATFORM_SIMULATED, PLATFORM_GRAMINE_SGX, PLATFORM_TDX)


@dataclass(frozen=True)
class Quote:
    """A quote as produced by a platform.

    ``report_data`` is what the producer *asked* to bind; a verifier never trusts it and reads
    the report data from the verified quote instead.
    """

    kind: str
    raw: bytes
    report_data: bytes

    def __repr__(self) -> str:
        return f"Quote(kind={self.kind!r}, {len(self.raw)} bytes)"


class Platform(Protocol):
    """A TEE backend: seals data to itself and produces quotes over 64 bytes of report data."""

    @property
    def name(self) -> str:
        """Backend name: one of :data:`PLATFORMS`."""
        ...

    @property
    def kind(self) -> str:
        """Kind of quote it produces: one of :data:`QUOTE_KINDS`."""
        ...

    def seal(self, plaintext: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` so only this platform can unseal it."""
        ...

    def unseal(self, sealed: bytes) -> bytes:
        """Inverse of :meth:`seal`; raises ``SealingError`` on tampered or foreign data."""
        ...

    def quote(self, report_data: bytes) -> Quote:
        """A quote binding exactly 64 bytes of ``report_data``."""
        ...


def check_report_data(report_data: bytes) -> bytes:
    """Report data must be exactly :data:`REPORT_DATA_LEN` bytes (no silent padding)."""
    if len(report_data) != REPORT_DATA_LEN:
        raise ValueError(f"report data is {REPORT_DATA_LEN} bytes, got {len(report_data)}")
    return bytes(report_data)
