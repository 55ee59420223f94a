"""Memory stays flat over many queries (issue 11 item 1: ~44 KB per execution used to stay
behind for good). The 10,000-query measurement lives in ``bench/bench_query.py``."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from phat_runtime import LocalCluster

FLIPPER = Path(__file__).resolve().parent.parent / "contracts_examples" / "flipper" / "flipper.contract"
QUERIES = 3000
#: Growth allowed per query after warm-up: generous (allocator noise), but far below a leak.
MAX_GROWTH_PER_QUERY = 2048


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_rss_stays_flat_over_flipper_queries() -> None:
    cluster = LocalCluster()
    flipper = cluster.deploy(str(FLIPPER), "new", [True])
    for _ in range(300):  # warm-up: module cache, linker, allocator pools
        assert flipper.query("get").output is True
    gc.collect()
    before = rss_bytes()
    for _ in range(QUERIES):
        flipper.query("get")
    gc.collect()
    growth = (rss_bytes() - before) / QUERIES
    assert growth <= MAX_GROWTH_PER_QUERY, f"RSS grew {growth:.0f} bytes per query"
