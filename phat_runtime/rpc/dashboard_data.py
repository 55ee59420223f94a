"""What the worker dashboard shows, read from the worker: recent blocks, load, attestation,
contracts, a deployer's logs and, on a chain, published checkpoints and rejections. Plain data for ``templates/dashboard.html``; no HTML here.

Everything that reads state goes through one ``worker.store.reader()`` view (a consistent
committed block) and runs on a read thread, never on the event loop (``rpc/dashboard.py``).
Nothing secret is read: identities, keys and roots shown are public.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phat_runtime.codec.messages import Outcome
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.pink.logs import MAX_PAGE, LogStore
from phat_runtime.rpc.fastpath import RpcMetrics
from phat_runtime.runtime.records import CONTRACT, ContractInfo
from phat_runtime.state.checkpoint import Checkpoint
from phat_runtime.tee.platform import KIND_SIMULATED
from phat_runtime.tee.policy import Policy
from phat_runtime.tee.verify import verify_worker_quote
from phat_runtime.worker.pipeline import BlockResult
from phat_runtime.worker.service import Worker

#: Blocks kept in the ring, contracts listed, log records shown per contract.
RECENT_BLOCKS = 12
CONTRACTS_SHOWN = 100
LOGS_SHOWN = 50
#: Contracts of one deployer whose logs are shown.
LOG_CONTRACTS = 20
#: Published checkpoints and rejections shown on a chain (newest first).
CHAIN_ROWS = 12
#: Rates are averaged over this window (seconds).
RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class BlockRow:
    number: int
    block_hash: str
    state_root: str
    transactions: int | None  # None: committed before this server started
    refused: int | None
    at_ms: int | None


class BlockRing:
    """The last blocks the pipeline committed (a ``BlockPipeline.observers`` callback)."""

    def __init__(self, size: int = RECENT_BLOCKS) -> None:
        self._rows: deque[BlockRow] = deque(maxlen=size)
        self._lock = threading.Lock()

    def seed(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is not None:
            with self._lock:
                self._rows.append(_row(checkpoint, None, None, None))

    def observe(self, result: BlockResult) -> None:
        if result.checkpoint is None:
            return
        ran = sum(isinstance(r, Outcome) for r in result.results)
        row = _row(result.checkpoint, ran, len(result.results) - ran, int(time.time() * 1000))
        with self._lock:
            if self._rows and self._rows[-1].number >= row.number:  # a restarted chain, a reseed
                self._rows.clear()
            self._rows.append(row)

    def recent(self) -> list[BlockRow]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._rows))


def _row(checkpoint: Checkpoint, ran: int | None, refused: int | None, at_ms: int | None) -> BlockRow:
    return BlockRow(checkpoint.number, "0x" + checkpoint.block_hash.hex(), "0x" + checkpoint.state_root.hex(),
                    ran, refused, at_ms)


@dataclass(frozen=True)
class Totals:
    queries_ok: int = 0
    queries_refused: int = 0
    tx_ok: int = 0
    tx_refused: int = 0
    query_seconds: float = 0.0


class LoadMeter:
    """Query and transaction rates over the last minute, from the RPC metrics' counters.

    Sampled every few seconds on the event loop (``tick``) and at every page render; a rate is
    the difference between the newest sample and the oldest one inside the window."""

    def __init__(self, metrics: RpcMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.clock = clock
        self._samples: deque[tuple[float, Totals]] = deque()
        self._lock = threading.Lock()

    def totals(self) -> Totals:
        counts: dict[str, float] = {}
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                if sample.name in ("phat_queries_total", "phat_transactions_total"):
                    ok = sample.labels.get("result") == "ok"
                    key = sample.name + (":ok" if ok else ":refused")
                    counts[key] = counts.get(key, 0.0) + sample.value
                elif sample.name == "phat_query_seconds_sum":
                    counts["seconds"] = sample.value
        return Totals(int(counts.get("phat_queries_total:ok", 0)), int(counts.get("phat_queries_total:refused", 0)),
                      int(counts.get("phat_transactions_total:ok", 0)),
                      int(counts.get("phat_transactions_total:refused", 0)), counts.get("seconds", 0.0))

    def sample(self) -> tuple[float, Totals]:
        now, totals = self.clock(), self.totals()
        with self._lock:
            self._samples.append((now, totals))
            while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
                self._samples.popleft()
        return now, totals

    def snapshot(self) -> dict[str, Any]:
        now, totals = self.sample()
        with self._lock:
            then, old = self._samples[0]
        span = now - then
        out: dict[str, Any] = {"totals": totals, "window_s": None, "query_rate": None, "tx_rate": None,
                               "query_ms": None}
        if span >= 1.0:
            queries = totals.queries_ok - old.queries_ok
            out.update(window_s=round(span), query_rate=queries / span,
                       tx_rate=(totals.tx_ok - old.tx_ok) / span,
                       query_ms=(totals.query_seconds - old.query_seconds) * 1000 / queries if queries else None)
        return out


def attestation(worker: Worker) -> dict[str, Any]:
    """The worker's own quote verified as a client would, under the default (permissive)
    policy, offline: a DCAP quote without collateral shows its claims, unverified."""
    quote = worker.quote
    identity = worker.identity
    verdict = verify_worker_quote(quote.raw, None, identity_pk=identity.public_key,
                                  ecdh_pk=identity.ecdh_public_key, at=int(time.time()),
                                  policy=Policy.permissive())
    return {
        "simulated": quote.kind == KIND_SIMULATED,
        "kind": verdict.platform or quote.kind,
        "quote_version": verdict.quote_version,
        "quote_bytes": len(quote.raw),
        "ok": verdict.ok,
        "signature_verified": verdict.signature_verified,
        "tcb_status": verdict.tcb_status,
        "advisories": list(verdict.advisories),
        "debug": verdict.debug,
        "measurements": {name: (value.hex() if isinstance(value, bytes) else str(value))
                         for name, value in verdict.measurements.items()},
        "binds_identity": verdict.report_data == identity.report_data,
        "checks": [c.to_dict() for c in verdict.checks],
    }


@dataclass(frozen=True)
class ContractRow:
    address: str
    address_hex: str
    name: str | None
    system: bool  # the cluster's system contract
    code_hash: str
    deployer: str
    deployer_hex: str


def contracts(worker: Worker, *, deployer: bytes | None = None,
              limit: int = CONTRACTS_SHOWN) -> tuple[list[ContractRow], int]:
    """Deployed contracts (all, or ``deployer``'s), at most ``limit``, and how many there are."""
    rows: list[ContractRow] = []
    total = 0
    if not worker.ready:  # a chain worker waiting for the cluster key has no state yet
        return rows, total
    with worker.store.reader() as view:
        system = worker.cluster.over(view).system_contract
        for key, raw in view.iter_prefix(CONTRACT):
            info = ContractInfo.decode(raw)
            if deployer is not None and info.deployer != deployer:
                continue
            total += 1
            if len(rows) >= limit:
                continue
            address = key[len(CONTRACT):]
            metadata = worker.metadata.get(view, info.code_hash)
            rows.append(ContractRow(to_ss58(address), "0x" + address.hex(),
                                    metadata.name if metadata is not None else None, address == system,
                                    "0x" + info.code_hash.hex(), to_ss58(info.deployer),
                                    "0x" + info.deployer.hex()))
    return rows, total


def deployer_logs(worker: Worker, account: bytes) -> list[tuple[ContractRow, list[dict[str, Any]]]]:
    """The newest log records of each contract ``account`` deployed, newest first."""
    store: LogStore | None = worker.services.logs
    mine, _ = contracts(worker, deployer=account, limit=LOG_CONTRACTS)
    out = []
    for row in mine:
        newest: deque[dict[str, Any]] = deque(maxlen=LOGS_SHOWN)
        since = 0
        while store is not None:
            page = store.records(bytes.fromhex(row.address_hex[2:]), since=since, limit=MAX_PAGE)
            newest.extend({"sequence": r.sequence, "level": r.level.name.lower(), "timestamp_ms": r.timestamp_ms,
                           "block": r.block_number, "mode": r.mode.value, "kind": r.kind.value,
                           "message": r.message} for r in page)
            if len(page) < MAX_PAGE:
                break
            since = page[-1].sequence
        out.append((row, list(reversed(newest))))
    return out


def chain_records(worker: Worker, limit: int = CHAIN_ROWS) -> dict[str, list[dict[str, Any]]] | None:
    """On a chain, the newest state roots published there next to this worker's own
    (``Worker.checkpoints``) and the newest messages it rejected (``Worker.rejections``);
    None for a standalone worker. Reads the worker's chain journal (SQLite): a read thread only."""
    if worker.chain is None:
        return None
    return {"checkpoints": worker.checkpoints(limit=limit), "rejections": worker.rejections(limit=limit)}
