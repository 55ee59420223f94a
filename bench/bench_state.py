"""Benchmark: EncryptedStore write and read throughput vs plain SQLite with the same batches.

Every side writes the same blocks — per-block batches of N writes of 1 KiB values under
contract-storage keys (``S ‖ address ‖ trie id ‖ key``), half of each block new keys and half
overwrites of earlier ones — one SQLite transaction per block, WAL, the same ``synchronous``
setting, in the same directory.

* **plain** — the best a Python host does without encryption: ``kv(key PRIMARY KEY, value)``,
  ``BEGIN IMMEDIATE``, one ``executemany`` of ``INSERT … ON CONFLICT (key) DO UPDATE`` (an
  in-place upsert: measured 1.4–1.6× faster than ``INSERT OR REPLACE``, the baseline before
  2026-12), ``COMMIT``.
* **ours** — ``set`` × N then ``commit_block``: a keyed hash per key, the old entry (from the
  writer's value cache, else read and authenticated), one AES-256-GCM seal per row, the BLAKE3 /
  numpy LtHash state root, the sealed checkpoint.
* **ours, no cache** — the same with ``cache_bytes=0``: every overwrite reads and opens the old row.

Reads are point lookups of random committed keys, 100 per round: ``SELECT`` vs ``view.get``
inside one ``store.reader()`` view per round (the query path: a WAL snapshot, keyed hash, one
AES-GCM open; views never use the writer's cache). The sides alternate round by round so machine
noise hits all alike; each number is the median per round of wall time, and of the thread's CPU
time (which leaves out fsync waits and is steadier on a shared machine).

    python bench/bench_state.py [--blocks N] [--batches 100 1000] [--synchronous FULL] [--json]

Targets (issue 12): write ratio ours/plain ≥ 0.8 with 100-write blocks, ≥ 0.9 with 1,000.
Numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.state import EncryptedStore  # noqa: E402

VALUE_LEN = 1024
CONTRACT = bytes(range(32))
TRIE = bytes(range(32, 64))
TARGETS = {100: 0.8, 1000: 0.9}
_UPSERT = ("INSERT INTO kv (key, value) VALUES (?, ?) "
           "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


class PlainSQLite:
    """The baseline: the same file settings, no encryption, no root."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)")

    def write_block(self, writes: list[tuple[bytes, bytes]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(_UPSERT, writes)
        self.conn.execute("COMMIT")

    def get(self, key: bytes) -> bytes | None:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self.conn.close()


def _blocks(batch: int, count: int, rng: random.Random) -> list[list[tuple[bytes, bytes]]]:
    """``count`` blocks of ``batch`` writes: half new keys, half overwrites (after block 0)."""
    blocks, known, serial = [], [], 0
    for number in range(count):
        writes = []
        for i in range(batch):
            if number and i % 2:
                key = rng.choice(known)
            else:
                key = b"S" + CONTRACT + TRIE + serial.to_bytes(8, "big")
                serial += 1
                known.append(key)
            writes.append((key, rng.randbytes(VALUE_LEN)))
        blocks.append(list(dict(writes).items()))  # one write per key per block, like an overlay
    return blocks


def _alternate(sides: list[Callable[[int], None]], rounds: int) -> list[tuple[float, float]]:
    """(median wall s, median CPU s) per round of each side, the sides alternating round by
    round (medians, because these machines are shared: a burst of other work must not decide)."""
    wall: list[list[float]] = [[] for _ in sides]
    cpu: list[list[float]] = [[] for _ in sides]
    for i in range(rounds):
        for n, side in enumerate(sides):
            start, start_cpu = time.perf_counter(), time.thread_time()
            side(i)
            cpu[n].append(time.thread_time() - start_cpu)
            wall[n].append(time.perf_counter() - start)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


def bench_batch(batch: int, blocks: int, reads: int, synchronous: str, where: Path) -> dict[str, float]:
    rng = random.Random(batch)
    plan = _blocks(batch, blocks, rng)
    plain = PlainSQLite(where / f"plain-{batch}.db", synchronous)
    secret = os.urandom(64)
    ours = EncryptedStore.open(where / f"ours-{batch}.db", secret, synchronous=synchronous)
    cold = EncryptedStore.open(where / f"cold-{batch}.db", secret, synchronous=synchronous,
                               cache_bytes=0)

    def writer(store: EncryptedStore) -> Callable[[int], None]:
        def write(i: int) -> None:
            for key, value in plan[i]:
                store.set(key, value)
            store.commit_block(i + 1, i.to_bytes(32, "little"))
        return write

    (plain_w, plain_wc), (ours_w, ours_wc), (cold_w, cold_wc) = _alternate(
        [lambda i: plain.write_block(plan[i]), writer(ours), writer(cold)], blocks)
    writes = statistics.median(len(b) for b in plan)  # per block (overwrites may repeat a key)

    keys = sorted({k for b in plan for k, _ in b})
    sample = [rng.choice(keys) for _ in range(reads)]
    chunks = [sample[i : i + 100] for i in range(0, len(sample), 100)]

    def read_plain(i: int) -> None:
        for key in chunks[i]:
            assert plain.get(key) is not None

    def read_view(i: int) -> None:
        with ours.reader() as view:
            for key in chunks[i]:
                assert view.get(key) is not None

    (plain_r, plain_rc), (ours_r, ours_rc) = _alternate([read_plain, read_view], len(chunks))
    per_chunk = len(chunks[0])
    with ours.reader() as view:
        for key in sample[:50]:
            assert plain.get(key) == view.get(key) == cold.get(key)
    assert ours.state_root == cold.state_root
    plain.close()
    ours.close()
    cold.close()
    return {
        "batch": batch, "blocks": blocks, "reads": reads,
        "plain_writes_per_s": writes / plain_w, "ours_writes_per_s": writes / ours_w,
        "write_ratio": plain_w / ours_w, "write_ratio_cpu": plain_wc / ours_wc,
        "nocache_writes_per_s": writes / cold_w, "nocache_write_ratio": plain_w / cold_w,
        "nocache_write_ratio_cpu": plain_wc / cold_wc,
        "plain_reads_per_s": per_chunk / plain_r, "ours_reads_per_s": per_chunk / ours_r,
        "read_ratio": plain_r / ours_r, "read_ratio_cpu": plain_rc / ours_rc,
        "target": TARGETS.get(batch, 0.0),
    }


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=30, help="blocks per batch size")
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for batch in args.batches:
            print(f"… {args.blocks} blocks of {batch} writes", file=sys.stderr, flush=True)
            results.append(bench_batch(batch, args.blocks, args.reads, args.synchronous, Path(tmp)))
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    print(f"encrypted store vs plain SQLite — 1 KiB values, WAL, synchronous={args.synchronous}, "
          f"{args.blocks} blocks per batch size; ratios ours/plain (wall, CPU)")
    for r in results:
        target = f"target ≥ {r['target']}" if r["target"] else "no target"
        print(f"  batch {int(r['batch']):5d}: writes plain {r['plain_writes_per_s']:7.0f}/s  ours "
              f"{r['ours_writes_per_s']:7.0f}/s  ratio {r['write_ratio']:.2f} (CPU "
              f"{r['write_ratio_cpu']:.2f}; {target})  no cache {r['nocache_write_ratio']:.2f} "
              f"(CPU {r['nocache_write_ratio_cpu']:.2f})")
        print(f"               reads  plain {r['plain_reads_per_s']:7.0f}/s  view "
              f"{r['ours_reads_per_s']:7.0f}/s  ratio {r['read_ratio']:.2f} (CPU "
              f"{r['read_ratio_cpu']:.2f})")
    return results


if __name__ == "__main__":
    main()
