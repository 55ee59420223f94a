"""Intel TDX through the Linux configfs-tsm report interface.

Owns: the configfs-tsm protocol — ``mkdir /sys/kernel/config/tsm/report/<entry>``, check
``provider`` is ``tdx_guest``, read ``generation``, write ``inblob`` (64 bytes), read
``outblob``, check ``generation`` advanced by exactly one (no other writer), ``rmdir`` — and
sealing with a key file supplied by a key provider. Must not: verify quotes, invent a
sealing key.

**TDX has no hardware sealing key.** Unlike SGX's EGETKEY there is nothing a TD can derive
that a later boot of the same TD, and only it, can derive again. Sealing the worker identity
on TDX therefore needs a *key provider*: something that releases a key only to an attested TD
(a KMS doing remote attestation, a vTPM bound to the TD's measurements, dstack's key
provider…). This backend takes that key as a file (``seal_key_file``, ≥ 16 raw bytes, mode
0600) that the key provider writes into the TD before the worker starts. Without it,
sealing fails with a clear error; it never falls back to a generated key, because a key on
the TD's disk protects nothing against the host.

File operations go through :class:`TsmFiles` so tests can stand in a fake configfs whose
``mkdir`` creates the attribute files, as the kernel does.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Protocol

from phat_runtime.errors import PlatformError, SealingError
from phat_runtime.tee import sealing
from phat_runtime.tee.platform import KIND_TDX, PLATFORM_TDX, Quote, check_report_data

DEFAULT_REPORT_DIR = Path("/sys/kernel/config/tsm/report")
TDX_PROVIDER = "tdx_guest"


class TsmFiles(Protocol):
    """The four file operations of the configfs-tsm protocol."""

    def mkdir(self, path: Path) -> None: ...

    def rmdir(self, path: Path) -> None: ...

    def write(self, path: Path, data: bytes) -> None: ...

    def read(self, path: Path) -> bytes: ...


class OsTsmFiles:
    """The real thing: plain OS calls (configfs creates the attributes on ``mkdir``)."""

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def write(self, path: Path, data: bytes) -> None:
        # One write() call: configfs binary attributes take the whole blob at once.
        fd = os.open(path, os.O_WRONLY)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")

    def read(self, path: Path) -> bytes:
        return path.read_bytes()


class TdxPlatform:
    """A TDX guest using configfs-tsm for quotes and a key-provider file for sealing."""

    name = PLATFORM_TDX
    kind = KIND_TDX

    def __init__(self, report_dir: Path = DEFAULT_REPORT_DIR, *,
                 seal_key_file: Path | None = None, files: TsmFiles | None = None) -> None:
        self.report_dir = Path(report_dir)
        self.seal_key_file = Path(seal_key_file) if seal_key_file is not None else None
        self.files: TsmFiles = files if files is not None else OsTsmFiles()

    # --- quotes ----------------------------------------------------------------------------

    def quote(self, report_data: bytes) -> Quote:
        data = check_report_data(report_data)
        # A private entry per request: nobody else writes to it (the kernel's advice), and the
        # generation check below catches it if someone does anyway.
        entry = self.report_dir / f"phat-{secrets.token_hex(8)}"
        try:
            self.files.mkdir(entry)
        except OSError as exc:
            raise PlatformError(f"cannot create configfs-tsm report entry {entry}: {exc} — "
                                "not a TDX guest, or configfs not mounted?") from exc
        try:
            raw = self._run(entry, data)
        finally:
            try:
                self.files.rmdir(entry)
            except OSError:
                pass  # best effort: a left-over entry holds no secret
        return Quote(kind=self.kind, raw=raw, report_data=data)

    def _run(self, entry: Path, data: bytes) -> bytes:
        try:
            provider = self.files.read(entry / "provider").decode("ascii", "replace").strip()
            if provider != TDX_PROVIDER:
                raise PlatformError(f"configfs-tsm provider is {provider!r}, expected "
                                    f"{TDX_PROVIDER!r} (not a TDX guest?)")
            before = int(self.files.read(entry / "generation"))
            self.files.write(entry / "inblob", data)
            raw = self.files.read(entry / "outblob")
            after = int(self.files.read(entry / "generation"))
        except (OSError, ValueError) as exc:
            raise PlatformError(f"configfs-tsm protocol failed at {entry}: {exc}") from exc
        if after != before + 1:
            raise PlatformError(f"configfs-tsm entry {entry} was written by someone else "
                                f"(generation {before} -> {after}); quote discarded")
        if not raw:
            raise PlatformError(f"{entry / 'outblob'} returned no data")
        return raw

    # --- sealing (key provider) ------------------------------------------------------------

    def _root_key(self) -> bytes:
        if self.seal_key_file is None:
            raise SealingError(
                "TDX has no hardware sealing key: configure seal_key_file with a key released "
                "to this TD by a key provider (KMS / vTPM); see phat_runtime.tee.tdx"
            )
        return sealing.read_key_file(self.seal_key_file)

    def seal(self, plaintext: bytes) -> bytes:
        return sealing.seal(self._root_key(), self.name, plaintext)

    def unseal(self, sealed: bytes) -> bytes:
        return sealing.unseal(self._root_key(), self.name, sealed)
