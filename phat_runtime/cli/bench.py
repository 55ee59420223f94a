"""``phat bench``: run the benchmarks under ``bench/`` of a source checkout."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def run_bench(iterations: int) -> int:
    script = BENCH_DIR / "bench_query.py"
    if not script.exists():
        print(f"error: {script} not found — `phat bench` needs a source checkout", file=sys.stderr)
        return 1
    sys.argv = [str(script), "--iterations", str(iterations)]
    runpy.run_path(str(script), run_name="__main__")
    return 0
