from __future__ import annotations

import pytest

from phat_runtime.testing.harness import WatHarness


@pytest.fixture()
def h() -> WatHarness:
    """A fresh cluster with funded ALICE and BOB."""
    return WatHarness()
