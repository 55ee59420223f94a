from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.worker.service import Worker, WorkerConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "worker"


@pytest.fixture()
def served(data_dir: Path) -> Iterator[tuple[Worker, WorkerClient]]:
    # The simulated TEE: development only (its quotes are accepted only by development_policy).
    worker = Worker(WorkerConfig(data_dir=data_dir, platform="simulated"))
    with ServerThread(worker) as url:
        client = WorkerClient(url, policy=development_policy())
        yield worker, client
        client.close()


@pytest.fixture()
def alice() -> Signer:
    return Signer.dev("alice")


@pytest.fixture()
def bob() -> Signer:
    return Signer.dev("bob")


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Surface leaked sockets in the test that leaked them, not in a later one."""
    yield
    import gc

    gc.collect()
