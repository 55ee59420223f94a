"""A client of a whole cluster: the chain says which workers to use, any live one answers.

:class:`ClusterClient` is built from a chain node and a cluster id instead of one worker URL.
It reads the cluster's live members from the chain (:class:`ClusterDirectory`), talks to one of
them over the encrypted RPC — a :class:`WorkerClient` per worker, whose attestation is checked
against the client's policy *and* whose identity and ECDH keys must be the ones registered on
chain for that URL — and fails over to the next member when a worker cannot be reached, times
out, is overloaded (HTTP 503), or is no longer a live member. When every member failed it
re-reads the chain and tries the members it now lists once more, then raises
:class:`ClusterUnreachable` naming each failure.

Answers never go back in time: the client remembers the newest chain block whose state it has
seen an answer from, and a member still behind that block (catching up, or just restarted) is
passed over — or, when every member is behind, waited for — instead of answering from older
state (a contract the client just deployed would be "unknown" there).

Every receipt must be signed by a live member: one from a worker that was never registered,
failed the policy or was revoked is refused (:class:`UntrustedWorker`), and the request goes
to the next member. Transactions go through the chain (:class:`ChainTransactions`), their Call
payloads sealed to the current key epoch the chain published; their outcome is read back from
any live member that has applied the block.

    client = ClusterClient("ws://127.0.0.1:9944", cluster, policy=development_policy())
    token = client.deploy("token.contract", "new", [1000], signer=alice)   # through the chain
    token.query("total_supply", signer=alice)                             # any live member
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from phat_runtime.chain import Inclusion, Member
from phat_runtime.codec.messages import RequestKind
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import PhatError
from phat_runtime.rpc.chain_client import (
    DEFAULT_APPLY_TIMEOUT_S,
    ChainTransactions,
    read_outcome_from,
)
from phat_runtime.rpc.channel import VerificationError, Verified, WorkerError, WorkerUnreachable
from phat_runtime.rpc.client import WorkerClient
from phat_runtime.rpc.cluster_directory import ClusterDirectory, Progress, UntrustedWorker
from phat_runtime.tee.policy import Policy

log = logging.getLogger("phat_runtime.rpc")
T = TypeVar("T")
#: HTTP statuses after which the same request goes to another member (the worker is overloaded
#: or shedding load; it did not run the request).
FAILOVER_STATUSES = frozenset({502, 503, 504})
#: Pause between rounds while no member has applied a transaction's block yet.
NOT_APPLIED_PAUSE_S = 0.2


class ClusterUnreachable(WorkerUnreachable):
    """No live member of the cluster could answer; ``failures`` maps each worker's URL to why."""

    def __init__(self, cluster: bytes, failures: dict[str, PhatError]) -> None:
        shown = "; ".join(f"{url}: {exc}" for url, exc in failures.items()) or "the chain lists no live worker"
        PhatError.__init__(self, f"no live worker of cluster 0x{cluster.hex()} could answer ({shown})")
        self.url = ", ".join(failures)
        self.failures = failures


class MemberBehind(PhatError):
    """A member's state is older than a chain block whose state this client has already seen."""

    def __init__(self, url: str, block: int, seen: int) -> None:
        super().__init__(f"the worker at {url} has applied chain block {block}, older than block {seen} "
                         "whose state this client has already seen (it is catching up)")
        self.url, self.block, self.seen = url, block, seen


def _waits(exc: PhatError, wait_codes: frozenset[str]) -> bool:
    """True if the member may do it later: it is catching up, or said so (``wait_codes``)."""
    return isinstance(exc, MemberBehind) or (isinstance(exc, WorkerError) and exc.code in wait_codes)


def _fails_over(exc: PhatError) -> bool:
    """True if the request may go to another member: it did not run, or its answer is refused."""
    if isinstance(exc, WorkerError):
        return exc.status in FAILOVER_STATUSES
    return isinstance(exc, WorkerUnreachable | VerificationError)


class ClusterClient(ChainTransactions):
    """The cluster ``cluster`` on the chain at ``chain_url``: queries to any live member,
    transactions through the chain. ``policy`` is what each worker's attestation must pass
    (default: the strict :class:`Policy`; ``development_policy()`` accepts simulated TEEs)."""

    def __init__(self, chain_url: str, cluster: bytes, *, policy: Policy | None = None,
                 collateral: str | None = None, since: int = 1, cache_dir: Path | None = None,
                 timeout_s: float = 30.0, apply_timeout_s: float = DEFAULT_APPLY_TIMEOUT_S,
                 directory: ClusterDirectory | None = None) -> None:
        super().__init__(chain_url, cluster, apply_timeout_s=apply_timeout_s)
        self.directory = directory or ClusterDirectory(chain_url, cluster, since=since, cache_dir=cache_dir)
        self.policy = policy if policy is not None else Policy()
        self.collateral = collateral
        self.timeout_s = timeout_s
        self._clients: dict[bytes, WorkerClient] = {}
        self._preferred: bytes | None = None
        self._seen_block = 0  # the newest chain block whose state an answer came from
        self._applied: dict[bytes, int] = {}  # the newest block each member is known to have applied
        self._lock = threading.Lock()

    def close(self) -> None:
        super().close()
        self.directory.close()
        for client in self._clients.values():
            client.close()

    def refresh(self, progress: Progress | None = None) -> None:
        """Read the chain's new finalized blocks now (``progress`` for a long first scan)."""
        self.directory.refresh(progress)

    # --- choosing a worker ---------------------------------------------------------------------------
    def worker(self, member: Member) -> WorkerClient:
        """An attested client of ``member``: VerificationError unless the worker at its URL
        passes the policy and holds exactly the keys the chain registered."""
        with self._lock:
            client = self._clients.get(member.identity)
            if client is None or client.url != member.rpc_url.rstrip("/"):
                client = WorkerClient(member.rpc_url, policy=self.policy, collateral=self.collateral,
                                      timeout_s=self.timeout_s)
                self._clients[member.identity] = client
        if client.verdict is None:
            info = client.info(refresh=True)
            if info.identity != member.identity or info.ecdh != member.ecdh:
                raise UntrustedWorker(f"the worker at {member.rpc_url} is {to_ss58(info.identity)}, not the "
                                      f"member {to_ss58(member.identity)} the chain registered at that URL")
            if info.raw.get("cluster") != "0x" + self.cluster.hex():
                raise UntrustedWorker(f"the worker at {member.rpc_url} serves cluster {info.raw.get('cluster')}")
            client.attest()
        return client

    @property
    def preferred(self) -> bytes | None:
        """The identity of the member asked first (the one that answered last)."""
        return self._preferred

    def candidates(self) -> list[Member]:
        """Live members, the one that answered last first (a random one at the start)."""
        live = self.directory.live_workers()
        if self._preferred is None and live:
            self._preferred = random.choice(live).identity
        return sorted(live, key=lambda m: m.identity != self._preferred)

    @property
    def seen_block(self) -> int:
        """The newest chain block whose state an answer to this client came from; no later
        query is answered from an older state."""
        return self._seen_block

    def with_failover(self, action: Callable[[WorkerClient], T], *, wait_codes: frozenset[str] = frozenset()) -> T:
        """``action`` on the first live member that can do it. A member behind :attr:`seen_block`,
        or answering a WorkerError code in ``wait_codes``, is passed over; when no member could
        do it and some of them were only behind or waiting, the round is repeated every
        NOT_APPLIED_PAUSE_S until ``apply_timeout_s`` (then that error is raised). Otherwise
        ClusterUnreachable names each member's failure."""
        deadline = time.monotonic() + self.apply_timeout_s
        while True:
            try:
                return self._round(action, wait_codes)
            except ClusterUnreachable as exc:
                waiting = [e for e in exc.failures.values() if _waits(e, wait_codes)]
                if not waiting:
                    raise
                if time.monotonic() > deadline:
                    raise waiting[0] from None
            time.sleep(NOT_APPLIED_PAUSE_S)

    def _round(self, action: Callable[[WorkerClient], T], wait_codes: frozenset[str]) -> T:
        failures: dict[str, PhatError] = {}
        for attempt in (1, 2):
            if attempt == 2:
                self.directory.refresh()  # the members may have changed
            for member in self.candidates():
                if member.rpc_url in failures:
                    continue  # the second round is for members the chain lists anew
                try:
                    worker = self.worker(member)
                    self._check_caught_up(member, worker)
                    result = action(worker)
                    if isinstance(result, Verified):
                        self.check_receipt_signer(result)
                        self._saw(member, result)
                except PhatError as exc:
                    waits = _waits(exc, wait_codes)
                    if not (waits or _fails_over(exc)):
                        raise
                    if not waits:
                        log.warning("worker %s failed (%s); trying another member", member.rpc_url, exc)
                    failures[member.rpc_url] = exc
                    continue
                self._preferred = member.identity
                return result
        raise ClusterUnreachable(self.cluster, failures)

    def _check_caught_up(self, member: Member, worker: WorkerClient) -> None:
        """MemberBehind unless ``member`` has applied :attr:`seen_block` (asked only while it is
        not known to have)."""
        seen = self._seen_block
        if self._applied.get(member.identity, -1) >= seen:
            return
        block = worker.applied_block()
        with self._lock:
            self._applied[member.identity] = max(self._applied.get(member.identity, -1), block)
        if block < seen:
            raise MemberBehind(member.rpc_url, block, seen)

    def _saw(self, member: Member, verified: Verified) -> None:
        """Remember the block of an answer's state; a query answered from a state older than one
        already seen is MemberBehind (a transaction's outcome names its own block instead)."""
        block, seen = verified.receipt.block, self._seen_block
        if verified.receipt.kind == RequestKind.QUERY and block < seen:
            raise MemberBehind(member.rpc_url, block, seen)
        with self._lock:
            self._applied[member.identity] = max(self._applied.get(member.identity, -1), block)
            self._seen_block = max(self._seen_block, block)

    def check_receipt_signer(self, verified: Verified) -> None:
        """UntrustedWorker unless the receipt's signer is a live member as of its block (the
        directory is re-read when the receipt is from a block it has not seen)."""
        if verified.receipt.block > self.directory.membership.cursor:
            self.directory.refresh()
        self.directory.check_trusted(verified.receipt.worker)

    # --- queries and reads -----------------------------------------------------------------------
    def query(self, contract: bytes, payload: bytes, signer: Signer, **kw: Any) -> Verified:
        return self.with_failover(lambda w: w.query(contract, payload, signer, **kw))

    def contract_info(self, address: bytes) -> dict[str, Any]:
        return self.with_failover(lambda w: w.contract_info(address))

    def logs(self, address: bytes, signer: Signer, *, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return self.with_failover(lambda w: w.logs(address, signer, since=since, limit=limit))

    # --- transactions ------------------------------------------------------------------------------
    def call_key(self) -> tuple[int, bytes]:
        key = self.directory.call_key()
        return key.epoch, key.ecdh

    def read_outcome(self, remark: bytes, inclusion: Inclusion, kind: RequestKind, signer: Signer) -> Verified:
        return self.with_failover(lambda w: read_outcome_from(w, remark, inclusion, kind, signer),
                                  wait_codes=frozenset({"not_applied"}))
