"""A worker's data dir, held exclusively for the lifetime of the process that opened it.

Two processes applying blocks to one state file fork it: each commits its own blocks, and
after a restart one history is gone while receipts signed from it are still out there. So
every tool that opens a data dir takes an exclusive ``flock`` on ``<dir>/LOCK`` first and holds
it until it closes the dir (the kernel drops it when the process dies, kill -9 included, so a
stale lock never needs cleaning). The file holds the owner's PID, which the refusal names.

The dir and the lock file are private (0700 / 0600): its contents are sealed or encrypted, but
nothing in it is anyone else's business.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from phat_runtime.errors import ConfigError, DataDirLocked

LOCK_FILE = "LOCK"
DIR_MODE = 0o700
FILE_MODE = 0o600


class DataDir:
    """``with DataDir.open(path) as d:`` — the dir, created if needed, locked while open."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> DataDir:
        """Lock ``path`` (creating it, mode 0700, when ``create``); :class:`DataDirLocked` if
        another process holds it, :class:`ConfigError` if it is not a usable directory."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"data dir {path} exists and is not a directory: pass a directory "
                              "(it is created if missing)")
        if not path.exists():
            if not create:
                raise ConfigError(f"data dir {path} does not exist: start a worker with "
                                  f"--data-dir {path} first, or pass the dir it uses")
            try:
                path.mkdir(parents=True, mode=DIR_MODE)
            except OSError as exc:
                raise ConfigError(f"cannot create data dir {path}: {exc.strerror}; pick a "
                                  "writable location with --data-dir") from exc
        with contextlib.suppress(OSError):  # narrow a dir we may not own; never widen
            if path.stat().st_mode & 0o077:
                path.chmod(DIR_MODE)
        try:
            fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise ConfigError(f"cannot open {path / LOCK_FILE}: {exc.strerror}; is the data "
                              "dir writable by this user?") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"process {pid}" if pid else "another process"
            raise DataDirLocked(
                f"data dir {path} is in use by {who}: two workers on one data dir would fork its "
                f"state. Stop that process, or give this one its own --data-dir", pid=pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        """Release the lock (the LOCK file stays; its content no longer matters)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DataDir:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
