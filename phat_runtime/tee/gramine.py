"""Intel SGX through Gramine's ``/dev/attestation`` pseudo-filesystem.

Owns: the Gramine file protocol — write 64 bytes to ``user_report_data``, read ``quote`` —
and sealing under Gramine's SGX sealing key file ``keys/_sgx_mrenclave`` (16 raw bytes).
Must not: verify quotes (that is ``verify.py``), use the raw sealing key for anything but key
derivation (Gramine warns against double use of its keys), log any key.

The root directory is configurable (default ``/dev/attestation``) so tests drive the same
protocol against a fake directory.

Sealing key choice: ``_sgx_mrenclave`` (default) binds sealed data to this exact enclave
build: an upgraded enclave cannot unseal the identity and must register as a new worker —
the safe default, since a new build must be attested anyway. ``_sgx_mrsigner`` lets later
builds from the same signer unseal it (and therefore also any other enclave that signer
ships); choose it only with that in mind.
"""

from __future__ import annotations

import os
from pathlib import Path

from phat_runtime.errors import PlatformError, SealingError
from phat_runtime.tee import sealing
from phat_runtime.tee.platform import KIND_SGX, PLATFORM_GRAMINE_SGX, Quote, check_report_data

DEFAULT_ROOT = Path("/dev/attestation")
SEAL_KEY_NAMES = ("_sgx_mrenclave", "_sgx_mrsigner")
#: Gramine's SGX sealing keys are 16-byte raw values.
SGX_SEAL_KEY_LEN = 16


def _write_once(path: Path, data: bytes) -> None:
    """One ``write`` on an ``O_WRONLY`` descriptor, as Gramine's pseudo-files expect (no
    create, no truncate)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):
        raise OSError(f"short write to {path}: {written} of {len(data)} bytes")


class GramineSgxPlatform:
    """SGX enclave under Gramine with DCAP attestation."""

    name = PLATFORM_GRAMINE_SGX
    kind = KIND_SGX

    def __init__(self, root: Path = DEFAULT_ROOT, *, seal_key_name: str = "_sgx_mrenclave") -> None:
        if seal_key_name not in SEAL_KEY_NAMES:
            raise ValueError(f"seal_key_name must be one of {SEAL_KEY_NAMES}")
        self.root = Path(root)
        self.seal_key_name = seal_key_name

    # --- quotes ----------------------------------------------------------------------------

    def attestation_type(self) -> str:
        """``none``, ``epid`` or ``dcap`` (Gramine's ``attestation_type`` file)."""
        path = self.root / "attestation_type"
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise PlatformError(
                f"cannot read {path}: {exc.strerror} — not running inside a Gramine SGX enclave?"
            ) from exc

    def quote(self, report_data: bytes) -> Quote:
        data = check_report_data(report_data)
        kind = self.attestation_type()
        if kind != "dcap":
            raise PlatformError(f"Gramine attestation type is {kind!r}; DCAP quotes need "
                                "sgx.remote_attestation = \"dcap\" in the manifest")
        try:
            # One write of exactly 64 bytes, then a fresh open of `quote`: Gramine builds the
            # quote over the report data last written (stale data otherwise).
            _write_once(self.root / "user_report_data", data)
            raw = (self.root / "quote").read_bytes()
        except OSError as exc:
            raise PlatformError(f"Gramine quote protocol failed: {exc}") from exc
        if not raw:
            raise PlatformError(f"{self.root / 'quote'} returned no data")
        return Quote(kind=self.kind, raw=raw, report_data=data)

    # --- sealing ---------------------------------------------------------------------------

    def _root_key(self) -> bytes:
        path = self.root / "keys" / self.seal_key_name
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise SealingError(f"cannot read Gramine sealing key {path}: {exc.strerror}") from exc
        if len(key) != SGX_SEAL_KEY_LEN:
            raise SealingError(f"Gramine sealing key {path} is {len(key)} bytes, "
                               f"expected {SGX_SEAL_KEY_LEN}")
        return key

    def seal(self, plaintext: bytes) -> bytes:
        return sealing.seal(self._root_key(), self.name, plaintext)

    def unseal(self, sealed: bytes) -> bytes:
        return sealing.unseal(self._root_key(), self.name, sealed)
