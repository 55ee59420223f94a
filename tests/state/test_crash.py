"""Crash safety: SIGKILL a worker at random points, restart it, and end exactly where a run that
never crashed ends — same state root, every transfer applied once, none lost.

The worker (``phat_runtime/testing/state_worker.py``) runs the real runtime: LocalCluster over
an EncryptedStore, the example token contract, several transfers per block, one SQLite
transaction per block. Kills land either a random time after the worker is ready (startup,
genesis, deploy, any block) or a random sub-block delay after its n-th committed block (in the
middle of executing or committing the next one). The reference is the same plan run in-process
over a MemoryBackend, so equal roots also show the root depends on plaintext state only.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from phat_runtime import LocalCluster
from phat_runtime.state import EncryptedStore, MemoryBackend, state_root
from phat_runtime.testing import state_worker
from phat_runtime.testing.state_worker import (
    COUNTER,
    FIRST_TRANSFER_BLOCK,
    SECRET_ENV,
    balances,
    make_plan,
    token_address,
)

ROOT = Path(__file__).resolve().parents[2]
#: No single worker run may take longer (a hung worker fails the test instead of the CI job).
RUN_TIMEOUT_S = 120


@dataclass
class CrashRun:
    kills: int
    starts: int
    root: str
    seconds: float


def _spawn(db: Path, secret: bytes, blocks: int, txs: int, seed: int, log: Path) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
    env = {**os.environ, SECRET_ENV: secret.hex(), "PYTHONPATH": str(ROOT)}
    with log.open("a") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "phat_runtime.testing.state_worker", str(db),
             "--blocks", str(blocks), "--txs", str(txs), "--seed", str(seed)],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT, env=env)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def run_with_kills(db: Path, secret: bytes, *, blocks: int, txs: int, seed: int, kills: int,
                   rng: random.Random, log: Path) -> CrashRun:
    started = time.monotonic()
    killed = starts = 0
    while True:
        proc, lines = _spawn(db, secret, blocks, txs, seed, log)
        starts += 1
        strategy = None
        if killed < kills:  # (after "ready", seconds) or (after n blocks, sub-block seconds)
            strategy = (("ready", 0, rng.uniform(0.0, 0.08)) if rng.random() < 0.5
                        else ("block", rng.randint(1, 5), rng.uniform(0.0, 0.012)))
        kill_at = None
        seen_blocks = 0
        done = None
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            wait = (kill_at if kill_at is not None else deadline) - time.monotonic()
            try:
                line = lines.get(timeout=max(0.0, wait))
            except queue.Empty:
                if kill_at is None:
                    proc.kill()
                    pytest.fail(f"worker hung for {RUN_TIMEOUT_S} s; stderr in {log}")
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed += 1
                proc.wait()
                break
            if line is None:  # the worker exited by itself
                if proc.wait() != 0:
                    pytest.fail(f"worker failed (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
                break
            if strategy is not None and kill_at is None:
                if line == "ready" and strategy[0] == "ready":
                    kill_at = time.monotonic() + strategy[2]
                elif line.startswith("block "):
                    seen_blocks += 1
                    if strategy[0] == "block" and seen_blocks == strategy[1]:
                        kill_at = time.monotonic() + strategy[2]
            if line.startswith("done "):
                done = line.split()[1]
        if done is not None:
            if proc.stdout is not None:
                proc.stdout.close()
            return CrashRun(killed, starts, done, time.monotonic() - started)
        if proc.stdout is not None:
            proc.stdout.close()


def _check(tmp_path: Path, *, kills: int, blocks: int, txs: int, seed: int) -> CrashRun:
    secret = os.urandom(64)
    db = tmp_path / "worker.db"
    log = tmp_path / "worker.log"
    rng = random.Random(seed)
    run = run_with_kills(db, secret, blocks=blocks, txs=txs, seed=seed, kills=kills, rng=rng, log=log)
    assert run.kills >= kills, f"seed {seed}: only {run.kills} kills landed before the plan finished: raise blocks"

    plan, expected = make_plan(blocks, txs, seed)
    memory = MemoryBackend()
    state_worker.reference(plan, memory)
    reference_root = state_root(memory.iter_prefix(b""))
    assert run.root == reference_root.hex(), f"seed {seed}: root differs from the uncrashed run"

    with EncryptedStore.open(db, secret) as store:
        assert store.checkpoint is not None
        assert store.checkpoint.number == FIRST_TRANSFER_BLOCK + blocks - 1, f"seed {seed}"
        assert store.verify() == reference_root, f"seed {seed}"  # every row authenticates
        cluster = LocalCluster(state=store)
        token = cluster.contract(token_address(), cluster.upload(state_worker.TOKEN))
        got = balances(token)
    assert got[COUNTER] == blocks, f"seed {seed}"  # the per-block counter: each block once
    assert got == expected, f"seed {seed}"  # every transfer applied exactly once, none lost
    return run


def test_the_plan_detects_a_lost_or_repeated_block() -> None:
    """The checks can fail: dropping or repeating one block changes the expected balances."""
    plan, expected = make_plan(6, 4, 5)
    for changed in (plan[:3] + plan[4:], [*plan[:3], plan[3], *plan[3:]]):
        ledger = dict.fromkeys(expected, 0)
        ledger[next(iter(expected))] = state_worker.SUPPLY
        for block in changed:
            for tx in block:
                ledger[tx.sender] -= tx.amount
                ledger[tx.to] += tx.amount
        assert ledger != expected


def test_killed_worker_resumes_exactly(tmp_path: Path) -> None:
    run = _check(tmp_path, kills=5, blocks=80, txs=4, seed=11)
    print(f"\ncrash test: {run.kills} kills, {run.starts} starts, {run.seconds:.1f} s")


@pytest.mark.slow
def test_killed_worker_resumes_exactly_many_times(tmp_path: Path) -> None:
    # ~30 s idle, part of the default run (CI runs it); skip locally with `-m "not slow"`.
    # PHAT_CRASH_SEED=N replays a failing run (the seed is printed first).
    seed = int(os.environ.get("PHAT_CRASH_SEED") or int.from_bytes(os.urandom(2), "little"))
    print(f"\ncrash test (slow): seed {seed}")
    run = _check(tmp_path, kills=25, blocks=400, txs=4, seed=seed)
    print(f"crash test (slow): {run.kills} kills, {run.starts} starts, {run.seconds:.1f} s")
