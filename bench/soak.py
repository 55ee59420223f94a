"""Soak: mixed encrypted queries and transactions against ``phat serve`` in its own process,
killed with SIGKILL and restarted at random every ~30 s (issue 11).

``--concurrency`` client threads (default 32) each own one recipient account R of an ERC-20
token that alice deployed, and loop: with probability ``--tx-ratio`` a transaction
``transfer(R, 1)`` signed by alice, otherwise a query ``balance_of(R)``. Each thread knows
exactly how many of its transfers were applied, so every query checks the state:

- a transfer whose receipt arrived counts once;
- a transfer without an answer (the worker was killed, a 503, a timeout) is sent again as the
  *same signed envelope* until it resolves: a receipt (it was not applied before) or 409
  ``replayed_nonce`` "already applied" (it was) — either way it counts once;
- so ``balance_of(R)`` must equal the thread's count at every query and at the end:
  lower is an acknowledged transaction lost, higher is one applied twice.

After ``--duration`` s of kills comes ``--calm`` s of the same load without kills. Then the
worker is killed once more and restarted; every R is checked, alice's balance must be the
supply minus all transfers, and the worker's height must be at least the highest block any
receipt named. Every HTTP status is tallied: no 5xx may appear but 503 (overload / not ready).

The server's RSS is sampled twice a second and fitted against answered requests: per killed
lifetime after its first 5 s ("early life": SQLite reader caches, allocator arenas, the 60 s
query-nonce window and the 32 MB value cache still fill — reported, not bounded here), and in
the calm lifetime after ``--warmup`` s (the steady state, bounded by issue 11's target of
2 KB per request). The simulated TEE is used: development only.

    python bench/soak.py [--duration 600] [--calm 150] [--concurrency 32] [--kill-every 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phat_runtime.codec.messages import RequestKind, SignedRequest  # noqa: E402
from phat_runtime.codec.metadata import ContractMetadata  # noqa: E402
from phat_runtime.crypto.hashing import blake2_256  # noqa: E402
from phat_runtime.crypto.signer import Signer  # noqa: E402
from phat_runtime.rpc.client import (  # noqa: E402
    VerificationError,
    WorkerClient,
    WorkerError,
    WorkerUnreachable,
    development_policy,
)
from phat_runtime.rpc.hosting import free_port  # noqa: E402

TOKEN = ROOT / "contracts_examples" / "token" / "token.contract"
SUPPLY = 10**30
PAGE = os.sysconf("SC_PAGE_SIZE")
#: Samples of a server lifetime taken before this many seconds / answered requests are warm-up.
WARMUP_S, WARMUP_REQUESTS = 5.0, 300
#: 503 codes that mean "overloaded or not ready, retry" (docs/rpc.md).
OVERLOAD = {"pool_full", "tx_queue_full", "unavailable"}


@dataclass
class Lifetime:
    pid: int
    started: float
    start_s: float = 0.0  # spawn → /health answers
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, requests, rss)


class Server:
    """``phat serve`` in its own process group on a fixed port and data dir."""

    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.data_dir, self.port, self.log = data_dir, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.lifetimes: list[Lifetime] = []

    def start(self) -> None:
        t0 = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "phat_runtime.cli.main", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port)],
                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=out, start_new_session=True)
        import httpx

        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                self.kill()
                raise RuntimeError(f"phat serve did not start; see {self.log}")
            time.sleep(0.05)
        self.lifetimes.append(Lifetime(self.proc.pid, time.monotonic(), time.monotonic() - t0))

    def kill(self) -> None:
        """SIGKILL the server's process group (it and anything it started) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=60)

    def rss(self) -> int | None:
        try:
            with open(f"/proc/{self.proc.pid}/statm") as fh:  # type: ignore[union-attr]
                return int(fh.read().split()[1]) * PAGE
        except (OSError, AttributeError):
            return None


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: int = 0  # HTTP answers of any status (what the server did work for)
    queries_ok: int = 0
    tx_acked: int = 0  # receipt on the first answer
    tx_resent_applied: int = 0  # resent after no answer: receipt now
    tx_resent_replayed: int = 0  # resent after no answer: 409 "already applied" (it was)
    unreachable: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # lost, duplicated, 5xx, unexpected errors
    max_block: int = 0

    def add(self, **kw: int) -> None:
        with self.lock:
            for key, n in kw.items():
                setattr(self, key, getattr(self, key) + n)

    def status(self, label: str) -> None:
        with self.lock:
            self.answered += 1
            self.statuses[label] += 1

    def saw_block(self, block: int) -> None:
        with self.lock:
            self.max_block = max(self.max_block, block)

    def fail(self, what: str) -> None:
        with self.lock:
            if len(self.failures) < 200:
                self.failures.append(what)


class Client(threading.Thread):
    def __init__(self, k: int, url: str, token: bytes, meta: ContractMetadata, stats: Stats,
                 stop: threading.Event, tx_ratio: float, seed: int) -> None:
        super().__init__(name=f"soak-{k}", daemon=True)
        self.k, self.token, self.meta, self.stats, self.stop, self.tx_ratio = k, token, meta, stats, stop, tx_ratio
        self.client = WorkerClient(url, policy=development_policy(), timeout_s=180)
        self.alice = Signer.dev("alice")
        self.recipient = blake2_256(b"phat-soak/recipient" + k.to_bytes(4, "little", signed=True))
        self.expected = 0  # transfers to recipient applied, as far as this thread knows
        self.rng = random.Random(seed * 1000 + k)

    def run(self) -> None:
        while not self.stop.is_set():
            if self.rng.random() < self.tx_ratio:
                self.transfer()
            else:
                self.check(self.balance())
        self.client.close()

    def transfer(self) -> None:
        payload = self.meta.encode_message("transfer", [self.recipient, 1])
        request = self.client.sign(RequestKind.CALL, self.alice, contract=self.token, payload=payload,
                                   deadline_s=540)
        resent = False
        while True:  # until it resolves, even after stop: a sent transfer must be accounted for
            answer = self._send(request)
            if isinstance(answer, WorkerError):
                if answer.code == "replayed_nonce" and "already applied" in str(answer):
                    if not resent:
                        self.stats.fail(f"transfer {self.k}: a fresh nonce was refused as applied: {answer}")
                        return
                    self.expected += 1  # the unanswered send before was applied (once)
                    self.stats.add(tx_resent_replayed=1)
                    return
                if answer.status < 500 and answer.code != "replayed_nonce":
                    self.stats.fail(f"transfer {self.k}: {answer.status} {answer}")
                    return  # refused before it ran: nothing changed
            if answer is None or isinstance(answer, WorkerError):  # no answer, 5xx, still waiting
                resent = True
                time.sleep(0.2)
                continue
            self.stats.saw_block(answer.receipt.block)
            if not answer.outcome.success:
                self.stats.fail(f"transfer {self.k} failed: {answer.outcome.error_kind} {answer.outcome.error_message}")
                return
            self.expected += 1
            self.stats.add(**{"tx_resent_applied" if resent else "tx_acked": 1})
            return

    def balance(self, *, patient: bool = False) -> int | None:
        payload = self.meta.encode_message("balance_of", [self.recipient])
        while True:
            answer = self._send(self.client.sign(RequestKind.QUERY, self.alice, contract=self.token, payload=payload))
            if answer is not None and not isinstance(answer, WorkerError):
                self.stats.add(queries_ok=1)
                value = self.meta.decode_return(self.meta.message("balance_of"), answer.outcome.data)
                return int(value["Ok"])
            if isinstance(answer, WorkerError) and answer.status != 503:
                self.stats.fail(f"query {self.k}: {answer.status} {answer}")
            if not patient:
                time.sleep(0.1)
                return None
            time.sleep(0.2)

    def check(self, balance: int | None) -> None:
        if balance is None or balance == self.expected:
            return
        kind = "LOST acknowledged transfer(s)" if balance < self.expected else "APPLIED TWICE"
        self.stats.fail(f"client {self.k}: balance {balance}, expected {self.expected}: {kind}")
        self.expected = balance  # resynchronize so one fault is reported once

    def _send(self, request: SignedRequest) -> Any:
        """The verified answer, a WorkerError (tallied by status), or None (no answer)."""
        try:
            prepared, raw = self.client.send(request)
        except WorkerUnreachable:
            self.stats.add(unreachable=1)
            return None
        except WorkerError as exc:
            self.stats.status(f"{exc.status} {exc.code}")
            if exc.status >= 500 and not (exc.status == 503 and exc.code in OVERLOAD):
                self.stats.fail(f"{exc.status} {exc.code}: {exc}")
            return exc
        self.stats.status("200")
        try:
            return prepared.finish(raw)
        except VerificationError as exc:
            self.stats.fail(f"verification: {exc}")
            return None


#: Bound on RSS growth after warm-up: issue 11's leak target (≤ 2 KB per request).
MAX_GROWTH_PER_1K = 2 * 1024 * 1024


def _sums(points: list[tuple[int, int]]) -> tuple[float, float]:
    """Least-squares sums (Σ dr·dm, Σ dr²) of RSS against answered requests."""
    mr = sum(r for r, _ in points) / len(points)
    mm = sum(m for _, m in points) / len(points)
    return sum((r - mr) * (m - mm) for r, m in points), sum((r - mr) ** 2 for r, _ in points)


def _slope(points: list[tuple[int, int]]) -> float:
    """Least-squares bytes of RSS per answered request."""
    xy, xx = _sums(points)
    return xy / xx


def rss_report(lifetimes: list[Lifetime], steady: Lifetime | None, warmup_s: float) -> dict[str, Any]:
    """Per server lifetime: max RSS and the growth per 1,000 answered requests after its first
    5 s (early life: caches, pools and the query-nonce window still fill). For the long calm
    lifetime: the growth per 1,000 requests after ``warmup_s`` — the steady state."""
    per: list[dict[str, Any]] = []
    sxy = sxx = 0.0  # pooled early-life fit: one intercept per lifetime, one common slope
    for life in lifetimes:
        if not life.samples:
            continue
        first = life.samples[0][1]
        early = [(r, m) for t, r, m in life.samples if t - life.started >= 5]
        entry: dict[str, Any] = {"pid": life.pid, "start_s": round(life.start_s, 2),
                                 "requests": life.samples[-1][1] - first,
                                 "max_rss_mb": round(max(m for _, _, m in life.samples) / 2**20, 1)}
        if len(early) >= 5 and early[-1][0] - early[0][0] >= 500:
            xy, xx = _sums(early)
            entry["early_growth_kb_per_1k"] = round(xy / xx * 1000 / 1024, 1)
            sxy, sxx = sxy + xy, sxx + xx
        per.append(entry)
    report: dict[str, Any] = {"lifetimes": per, "max_rss_mb": max((e["max_rss_mb"] for e in per), default=None),
                              "early_growth_kb_per_1k": round(sxy / sxx * 1000 / 1024, 1) if sxx else None,
                              "steady": None}
    warm = [(r, m) for t, r, m in steady.samples if t - steady.started >= warmup_s] if steady else []
    if len(warm) >= 10 and warm[-1][0] - warm[0][0] >= 1000:
        growth = _slope(warm) * 1000
        report["steady"] = {"warmup_s": warmup_s, "requests": warm[-1][0] - warm[0][0],
                            "rss_mb": [round(warm[0][1] / 2**20, 1), round(warm[-1][1] / 2**20, 1)],
                            "growth_kb_per_1k": round(growth / 1024, 1), "bytes_per_1k": growth}
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--kill-every", type=float, default=30,
                        help="mean seconds between kill -9 + restart (uniform 0.5x–1.5x; 0: never)")
    parser.add_argument("--calm", type=float, default=150,
                        help="then seconds of load without kills, to measure steady-state RSS (0: none)")
    parser.add_argument("--warmup", type=float, default=60,
                        help="seconds of the calm phase before RSS growth is fitted")
    parser.add_argument("--tx-ratio", type=float, default=0.25, help="share of transactions (the rest: queries)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(f"soak: {args.duration:.0f} s, concurrency {args.concurrency}, tx ratio {args.tx_ratio}, "
          f"kill -9 every ~{args.kill_every:.0f} s, then {args.calm:.0f} s without kills; seed {args.seed}", flush=True)

    with tempfile.TemporaryDirectory(prefix="phat-soak-") as tmp:
        server = Server(Path(tmp) / "worker", free_port(), Path(tmp) / "server.log")  # simulated TEE
        lock = threading.Lock()  # held while the server is swapped (the sampler reads its pid)
        stats, stop, done = Stats(), threading.Event(), threading.Event()
        server.start()
        try:
            url = f"http://127.0.0.1:{server.port}"
            setup = WorkerClient(url, policy=development_policy(), timeout_s=180)
            alice = Signer.dev("alice")
            token = setup.deploy(TOKEN, "new", [SUPPLY], signer=alice)
            setup.close()
            clients = [Client(k, url, token.address, token.metadata, stats, stop, args.tx_ratio, args.seed)
                       for k in range(args.concurrency)]

            def sample() -> None:
                while not done.wait(0.5):
                    with lock:
                        rss = server.rss()
                        if rss is not None:
                            server.lifetimes[-1].samples.append((time.monotonic(), stats.answered, rss))

            sampler = threading.Thread(target=sample, name="soak-rss", daemon=True)
            sampler.start()
            for c in clients:
                c.start()
            t0 = time.monotonic()
            kills, steady = 0, None

            def restart() -> None:
                nonlocal kills
                with lock:
                    server.kill()
                    server.start()
                kills += 1

            def phase(end: float, kill_every: float) -> None:
                next_kill = time.monotonic() + rng.uniform(0.5, 1.5) * kill_every if kill_every else float("inf")
                next_print = t0 + 10 * (int((time.monotonic() - t0) / 10) + 1)
                while (now := time.monotonic()) < end:
                    time.sleep(max(0.0, min(end, next_kill, next_print) - now))
                    now = time.monotonic()
                    if next_kill <= now < end:
                        restart()
                        next_kill = time.monotonic() + rng.uniform(0.5, 1.5) * kill_every
                    if now >= next_print:
                        _progress(now - t0, stats, kills, server)
                        next_print += 10

            phase(t0 + args.duration, args.kill_every)
            if args.calm > 0:
                restart()
                steady = server.lifetimes[-1]
                print(f"[{time.monotonic() - t0:5.0f} s] calm phase: {args.calm:.0f} s without kills", flush=True)
                phase(time.monotonic() + args.calm, 0)
            stop.set()
            for c in clients:
                c.join(timeout=600)
            load_s = time.monotonic() - t0
            restart()  # the final state must hold every counted transfer, after one more kill -9
            checker = Client(-1, url, token.address, token.metadata, stats, stop, 0, 0)
            for c in clients:
                checker.recipient, checker.expected = c.recipient, c.expected
                checker.check(checker.balance(patient=True))
            checker.recipient = alice.public_key
            total = sum(c.expected for c in clients)
            checker.expected = SUPPLY - total
            checker.check(checker.balance(patient=True))
            checker.client.close()
            after = WorkerClient(url, policy=development_policy())
            height = after.info().block
            after.close()
            if height < stats.max_block:
                stats.fail(f"the worker is at block {height} after restart, a receipt named block {stats.max_block}")
        finally:
            done.set()
            server.kill()
        stuck = [c.name for c in clients if c.is_alive()]
        if stuck:
            stats.fail(f"client threads did not finish: {stuck}")
        rss = rss_report(server.lifetimes, steady, args.warmup)
        if rss["steady"] is not None and rss["steady"]["bytes_per_1k"] > MAX_GROWTH_PER_1K:
            stats.fail(f"server RSS grew {rss['steady']['growth_kb_per_1k']:.0f} KB per 1,000 requests "
                       f"after warm-up (bound {MAX_GROWTH_PER_1K // 1024} KB)")
        elif rss["steady"] is None and args.calm > 0:
            stats.fail("too few RSS samples after warm-up in the calm phase: make --calm longer")
        five_xx = {k: v for k, v in stats.statuses.items() if k.startswith("5")}
        result = {
            "seed": args.seed, "duration_s": round(load_s, 1), "concurrency": args.concurrency,
            "kills": kills, "answered": stats.answered, "requests_per_s": round(stats.answered / load_s, 1),
            "queries_ok": stats.queries_ok, "tx_acked": stats.tx_acked,
            "tx_resent_applied": stats.tx_resent_applied, "tx_resent_replayed": stats.tx_resent_replayed,
            "transfers_total": total, "unreachable": stats.unreachable, "statuses": dict(stats.statuses),
            "5xx": five_xx, "max_block": stats.max_block, "final_height": height,
            "restart_s": [e["start_s"] for e in rss["lifetimes"][1:]], "rss": rss,
            "failures": stats.failures, "ok": not stats.failures,
        }
    _summary(result)
    if args.json:
        print(json.dumps(result, indent=2))
    return result


def _progress(elapsed: float, stats: Stats, kills: int, server: Server) -> None:
    rss = server.rss()
    with stats.lock:
        n503 = sum(v for k, v in stats.statuses.items() if k.startswith("503"))
        print(f"[{elapsed:5.0f} s] answered {stats.answered}: queries {stats.queries_ok}, transfers "
              f"{stats.tx_acked} + {stats.tx_resent_applied + stats.tx_resent_replayed} resent; 503 {n503}; "
              f"kills {kills}; rss {(rss or 0) / 2**20:.0f} MB; failures {len(stats.failures)}", flush=True)


def _summary(r: dict[str, Any]) -> None:
    rss = r["rss"]
    restarts = r["restart_s"]
    print(f"soak {'PASSED' if r['ok'] else 'FAILED'}: {r['duration_s']} s, {r['kills']} kill -9 + restart "
          f"(restart {min(restarts, default=0):.1f}–{max(restarts, default=0):.1f} s), {r['answered']} answers "
          f"({r['requests_per_s']}/s): {r['queries_ok']} queries, {r['transfers_total']} transfers "
          f"({r['tx_acked']} acknowledged at once, {r['tx_resent_applied']} applied on resend, "
          f"{r['tx_resent_replayed']} found applied on resend), 5xx {r['5xx'] or 'none'}; "
          f"max RSS {rss['max_rss_mb']} MB (per lifetime {[e['max_rss_mb'] for e in rss['lifetimes']]}); "
          f"early-life growth {rss['early_growth_kb_per_1k']} KB per 1k requests (per lifetime "
          f"{[e.get('early_growth_kb_per_1k') for e in rss['lifetimes']]})", flush=True)
    steady = rss["steady"]
    if steady:
        print(f"steady state (calm phase after {steady['warmup_s']:.0f} s): RSS {steady['rss_mb'][0]} → "
              f"{steady['rss_mb'][1]} MB over {steady['requests']} requests = {steady['growth_kb_per_1k']} KB "
              f"per 1k requests (bound {MAX_GROWTH_PER_1K // 1024})", flush=True)
    for failure in r["failures"]:
        print(f"  FAIL {failure}")


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
