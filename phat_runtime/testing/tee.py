"""Fake TEE devices, so the Gramine and configfs-tsm file protocols run without hardware.

Both fakes serve a fixed quote (typically a real DCAP sample), so what the platform "produced"
is verified by dcap-qvl like any other quote — its report data will simply not be ours.
Never imported by product code.
"""

from __future__ import annotations

import os
from pathlib import Path

from phat_runtime.tee.gramine import GramineSgxPlatform
from phat_runtime.tee.platform import REPORT_DATA_LEN
from phat_runtime.tee.tdx import TDX_PROVIDER, TdxPlatform

_TSM_ATTRIBUTES = ("provider", "generation", "inblob")


class FakeGramine:
    """A directory laid out like Gramine's ``/dev/attestation`` (plain files).

    ``user_report_data`` records what the platform wrote; ``quote`` returns ``quote``.
    """

    def __init__(self, root: Path, quote: bytes, *, attestation_type: str = "dcap",
                 seal_key: bytes | None = None) -> None:
        self.root = Path(root)
        (self.root / "keys").mkdir(parents=True, exist_ok=True)
        (self.root / "attestation_type").write_text(attestation_type + "\n")
        (self.root / "user_report_data").write_bytes(bytes(REPORT_DATA_LEN))
        (self.root / "quote").write_bytes(quote)
        (self.root / "keys" / "_sgx_mrenclave").write_bytes(seal_key or os.urandom(16))
        (self.root / "keys" / "_sgx_mrsigner").write_bytes(os.urandom(16))

    @property
    def written_report_data(self) -> bytes:
        return (self.root / "user_report_data").read_bytes()

    def platform(self, **kwargs: str) -> GramineSgxPlatform:
        return GramineSgxPlatform(self.root, **kwargs)


class FakeConfigFsTsm:
    """configfs-tsm semantics over a plain directory, as a ``TsmFiles`` implementation.

    ``mkdir`` of an entry creates ``provider`` and ``generation`` (as the kernel does); each
    write to ``inblob`` bumps ``generation``; ``outblob`` returns ``outblob``. Set
    ``interfere`` to simulate another writer touching the entry while the quote is made.
    """

    def __init__(self, report_dir: Path, outblob: bytes, *, provider: str = TDX_PROVIDER) -> None:
        self.report_dir = Path(report_dir)
        self.report_dir.mkdir(parents=True, exist_ok=True)
        self.outblob = outblob
        self.provider = provider
        self.interfere = False
        self.inblobs: list[bytes] = []
        self.created: list[Path] = []

    def _check_entry(self, path: Path) -> None:
        if path.parent != self.report_dir:
            raise PermissionError(f"not a report entry: {path}")

    def mkdir(self, path: Path) -> None:
        self._check_entry(path)
        os.mkdir(path)
        (path / "provider").write_text(self.provider + "\n")
        (path / "generation").write_text("0\n")
        self.created.append(path)

    def rmdir(self, path: Path) -> None:
        self._check_entry(path)
        for name in _TSM_ATTRIBUTES:
            (path / name).unlink(missing_ok=True)
        os.rmdir(path)

    def _bump(self, entry: Path) -> None:
        gen = int((entry / "generation").read_text())
        (entry / "generation").write_text(f"{gen + 1}\n")

    def write(self, path: Path, data: bytes) -> None:
        if path.name != "inblob":
            raise PermissionError(f"{path.name} is read-only")
        if len(data) > REPORT_DATA_LEN:
            raise OSError(22, "inblob takes at most 64 bytes")
        path.write_bytes(data)
        self.inblobs.append(bytes(data))
        self._bump(path.parent)

    def read(self, path: Path) -> bytes:
        if path.name == "outblob":
            if self.interfere:
                self._bump(path.parent)
            return self.outblob
        return path.read_bytes()

    def platform(self, seal_key_file: Path | None = None) -> TdxPlatform:
        return TdxPlatform(self.report_dir, seal_key_file=seal_key_file, files=self)
