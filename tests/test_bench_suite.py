"""`phat bench --quick` runs the whole suite end to end in its own process and saves the JSON
(with its schema) and the PNG chart. No timing is asserted: the numbers of --quick mean nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = {"query", "rpc", "tx", "state", "module_cache", "rss"}


@pytest.mark.slow
def test_quick_suite_saves_json_and_chart(tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ran = subprocess.run([sys.executable, "-m", "phat_runtime.cli.main", "bench", "--quick", "--out", str(out)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert ran.returncode == 0, ran.stderr[-3000:]
    (saved,) = out.glob("bench-*.json")
    report = json.loads(saved.read_text())
    assert report["schema"] == "phat-bench/1" and report["quick"] is True
    assert report["errors"] == {}
    assert set(report["results"]) == PARTS
    machine = report["machine"]
    assert machine["nproc"] >= 1 and len(machine["load_before"]) == 3 and len(machine["load_after"]) == 3
    results = report["results"]
    assert {"floor_median_us", "cluster_median_us", "cluster_ratio", "local_ratio"} <= set(results["query"])
    assert set(results["rpc"]["levels"]) == {"1", "8", "32"}
    for level in results["rpc"]["levels"].values():
        assert {"health", "query", "cpu_ratio", "transport_us"} <= set(level)  # cpu_ratio None: /health under a tick
        assert {"server_cpu_us", "rps", "p50_ms", "p99_ms", "requests"} <= set(level["query"])
    assert {"tx_per_s", "tx_per_cpu_s"} <= set(results["tx"]["transfer"])
    assert [b["batch"] for b in results["state"]] == [100]
    assert results["module_cache"]["call_runs"] is True
    assert results["module_cache"]["wasm_bytes"] >= 64 * 1024
    assert results["rss"]["queries"] == 200 and results["rss"]["live_stores_added"] == 0
    metrics = {row["metric"] for row in report["summary"]}
    assert "query: Cluster.call / Linker floor" in metrics and "rpc c=8: encrypted queries/s" in metrics
    for row in report["summary"]:
        assert set(row) == {"metric", "value", "unit", "target", "met"}
    png = saved.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert str(saved) in ran.stderr.replace("\n", "")


def test_unknown_part_is_refused_with_the_choices() -> None:
    ran = subprocess.run([sys.executable, "-m", "phat_runtime.cli.main", "bench", "--only", "query,nope"],
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2
    assert "nope" in ran.stderr and "module_cache" in ran.stderr
