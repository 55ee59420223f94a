"""Fixtures for the encrypted store: a cluster secret and a fresh store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from phat_runtime.state import EncryptedStore


@pytest.fixture()
def secret() -> bytes:
    return os.urandom(64)


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture()
def store(db_path: Path, secret: bytes) -> Iterator[EncryptedStore]:
    with EncryptedStore.open(db_path, secret) as opened:
        yield opened
