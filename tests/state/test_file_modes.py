"""State files are 0600 and the directories the store creates 0700, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from phat_runtime.state import EncryptedStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def open_umask() -> Iterator[None]:
    """umask 000: any private mode seen below was set by the store, not inherited."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_new_store_files_and_directories_are_private(tmp_path: Path, secret: bytes,
                                                      open_umask: None) -> None:
    path = tmp_path / "worker" / "state" / "state.db"
    before = _mode(tmp_path)
    with EncryptedStore.open(path, secret) as store:
        store.set(b"Ba", b"1")
        store.commit_block(1, bytes(32))
        files = [path, path.with_name("state.db-wal"), path.with_name("state.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert _mode(tmp_path / "worker") == _mode(tmp_path / "worker" / "state") == 0o700
        snapshot = tmp_path / "exports" / "snap"
        store.export_snapshot(snapshot)
        assert _mode(snapshot) == 0o600 and _mode(snapshot.parent) == 0o700
    assert _mode(tmp_path) == before  # a directory it did not create is left alone
    imported = tmp_path / "imported" / "state.db"
    EncryptedStore.import_snapshot(snapshot, imported, secret).close()
    assert _mode(imported) == 0o600 and _mode(imported.parent) == 0o700


def test_an_existing_store_with_wide_modes_is_narrowed(tmp_path: Path, secret: bytes,
                                                       open_umask: None) -> None:
    path = tmp_path / "state.db"
    with EncryptedStore.open(path, secret) as store:
        store.set(b"Ba", b"1")
        store.commit_block(1, bytes(32))
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        if (tmp_path / name).exists():
            os.chmod(tmp_path / name, 0o644)
    before = _mode(tmp_path)
    with EncryptedStore.open(path, secret) as store:
        assert store.get(b"Ba") == b"1"
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            assert _mode(tmp_path / name) == 0o600, name
    assert _mode(tmp_path) == before  # a directory the store did not create keeps its mode
