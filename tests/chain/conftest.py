"""One real chopsticks devnet for the chain tests of a session (starting one takes ~10 s).

Skips only when Node.js or npm is missing; the first run installs the pinned npm packages
with ``npm ci`` (CI does that in ``.ci/run`` before the tests)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from phat_runtime.chain.devnet import Devnet
from phat_runtime.tee import WorkerIdentity

#: A worker identity the devnet funds (worker identities sign their own chain messages).
WORKER = WorkerIdentity.from_seed(bytes([7]) * 32)


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: chain tests run chopsticks on "
                    "Node.js ≥ 20 (apt-get install nodejs npm)")
    net = Devnet(tmp_path_factory.mktemp("devnet"), accounts=[WORKER.public_key], progress=print)
    net.start()
    try:
        yield net
    finally:
        net.stop()
