"""Benchmark: EncryptedStore write and read throughput vs plain SQLite with the same batches.

Both sides write the same blocks — per-block batches of N writes of 1 KiB values under
contract-storage keys (``S ‖ address ‖ trie id ‖ key``), half of each block new keys and half
overwrites of earlier ones — one SQLite transaction per block, WAL, the same ``synchronous``
setting, in the same directory. Plain SQLite is one ``INSERT OR REPLACE`` per write into
``kv(key PRIMARY KEY, value)``; ours is ``set`` × N then ``commit_block`` (keyed hashes, two
AES-256-GCM seals per row, the old value read back and authenticated, the LtHash state root,
the sealed checkpoint). Reads are point lookups of random committed keys, ``SELECT`` vs
``get`` (keyed hash, owner-tag check, AES-GCM open). The sides alternate block by block so
machine noise hits both alike.

    python bench/bench_state.py [--blocks N] [--batches 100 1000] [--synchronous FULL] [--json]

Prints throughputs and ratios ours/plain (target ≥ 0.5). Numbers go to docs/benchmarks.md.
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


class PlainSQLite:
    """The baseline: the same file settings, no encryption, no root."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)")

    def write_block(self, writes: list[tuple[bytes, bytes]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", writes)
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


def _alternate(a: Callable[[int], None], b: Callable[[int], None], rounds: int) -> tuple[float, float]:
    """Median seconds per round of each side, alternating round by round (the median, because
    these machines are shared: a burst of other work must not decide the ratio)."""
    samples_a, samples_b = [], []
    clock = time.perf_counter
    for i in range(rounds):
        start = clock()
        a(i)
        mid = clock()
        b(i)
        samples_a.append(mid - start)
        samples_b.append(clock() - mid)
    return statistics.median(samples_a), statistics.median(samples_b)


def bench_batch(batch: int, blocks: int, reads: int, synchronous: str, where: Path) -> dict[str, float]:
    rng = random.Random(batch)
    plan = _blocks(batch, blocks, rng)
    plain = PlainSQLite(where / f"plain-{batch}.db", synchronous)
    ours = EncryptedStore.open(where / f"ours-{batch}.db", os.urandom(64), synchronous=synchronous)

    def write_ours(i: int) -> None:
        for key, value in plan[i]:
            ours.set(key, value)
        ours.commit_block(i + 1, i.to_bytes(32, "little"))

    plain_w, ours_w = _alternate(lambda i: plain.write_block(plan[i]), write_ours, blocks)
    writes = statistics.median(len(b) for b in plan)  # per block (overwrites may repeat a key)

    keys = sorted({k for b in plan for k, _ in b})
    sample = [rng.choice(keys) for _ in range(reads)]
    chunks = [sample[i : i + 100] for i in range(0, len(sample), 100)]

    def read(get: Callable[[bytes], bytes | None]) -> Callable[[int], None]:
        def run(i: int) -> None:
            for key in chunks[i]:
                assert get(key) is not None
        return run

    plain_r, ours_r = _alternate(read(plain.get), read(ours.get), len(chunks))
    per_chunk = len(chunks[0])
    for key in sample[:50]:
        assert plain.get(key) == ours.get(key)
    plain.close()
    ours.close()
    return {
        "batch": batch, "blocks": blocks, "reads": reads,
        "plain_writes_per_s": writes / plain_w, "ours_writes_per_s": writes / ours_w,
        "write_ratio": plain_w / ours_w,
        "plain_reads_per_s": per_chunk / plain_r, "ours_reads_per_s": per_chunk / ours_r,
        "read_ratio": plain_r / ours_r,
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

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = [bench_batch(b, args.blocks, args.reads, args.synchronous, Path(tmp)) for b in args.batches]
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    print(f"encrypted store vs plain SQLite — 1 KiB values, WAL, synchronous={args.synchronous}, "
          f"{args.blocks} blocks per batch size")
    for r in results:
        print(f"  batch {int(r['batch']):5d}: writes plain {r['plain_writes_per_s']:9.0f}/s  ours "
              f"{r['ours_writes_per_s']:9.0f}/s  ratio {r['write_ratio']:.2f}   |   reads plain "
              f"{r['plain_reads_per_s']:9.0f}/s  ours {r['ours_reads_per_s']:9.0f}/s  ratio "
              f"{r['read_ratio']:.2f}   (target ≥ 0.5)")
    return results


if __name__ == "__main__":
    main()
