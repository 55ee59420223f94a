"""The query path on its own: what a worker needs to answer a QUERY, in the worker's process or
in a query process of its own (``--query-processes``, ``rpc/processes.py``).

:class:`QueryService` checks a signed request (worker, kind, deadline, signature, nonce), runs
the message in QUERY mode over a read view of the last committed block and signs a receipt with
the worker identity. It reads through anything with ``reader()`` — the worker's own store, or a
:class:`~phat_runtime.state.StoreReader` another process opened read-only — so the same code
serves both.

**Inline runs.** :meth:`QueryService.query_inline` is for a caller on an event loop that wants
to skip the hand-off to a thread when that is safe: only when a run slot is free at once, the
contract's code is compiled already, and the code imports nothing that can wait or leave a
trace (no chain extension — HTTP, cache, logs — and no calls into other contracts), so the run
is pure computation over the view. It then gets a short wall clock (:data:`INLINE_BUDGET_MS`);
a run that outlasts it has changed nothing and is run again in a thread with the full wall
clock (the nonce is used once either way), and its code is not run inline again.

:class:`QueryHandover` is what the worker's main process hands a query process over a pipe at
its start (never on disk, in argv or in the environment): the identity and cluster secrets
(a chain cluster member's key epochs) and the settings the query path needs. A member that
holds no cluster key yet hands over none: its query processes answer ``unavailable`` (like its
main process) until the keys follow over the same channel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from phat_runtime.codec.messages import Outcome, Receipt, RequestKind, SignedRequest
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.e2e import SessionKeys, session_keys
from phat_runtime.errors import ContractNotFound, DecodeError, PhatError
from phat_runtime.pink.logs import LogLevel, LogRecord, LogStore, RecordKind
from phat_runtime.runtime.cluster import Cluster
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.state.checkpoint import CommittedView
from phat_runtime.tee.identity import WorkerIdentity
from phat_runtime.types import AccountId, ExecutionMode
from phat_runtime.worker.contract_meta import MetadataCache
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.guards import NonceGuard, QueryPool
from phat_runtime.worker.pipeline import outcome_of

#: Wall clock of an inline run; longer runs go to a thread.
INLINE_BUDGET_MS = 20
#: Imports that make a run impure (may wait on I/O, leave side effects, or run other code).
_IMPURE = frozenset({"call_chain_extension", "call", "delegate_call", "instantiate", "call_runtime",
                     "xcm_execute", "xcm_send"})


class Readable(Protocol):
    def reader(self) -> Any: ...


class _NotReady:
    """Stands in for the state of a worker that has none yet (a chain worker waiting for the
    cluster key): any use is refused as ``unavailable``."""

    def __getattr__(self, name: str) -> object:
        raise RpcError("unavailable", "this worker holds no cluster key yet, so it has no state to "
                       "serve (registration or key handover pending; GET /v1/info shows its "
                       "membership); try another worker of the cluster")


NOT_READY: Any = _NotReady()


class QueryService:
    """The query path of one worker (thread-safe; one per process)."""

    def __init__(self, identity: WorkerIdentity, store: Readable, cluster: Cluster, *,
                 wall_clock_ms: int, nonces: NonceGuard, pool: QueryPool,
                 metadata: MetadataCache | None = None) -> None:
        self.identity = identity
        self.store = store
        self.cluster = cluster
        self.wall_clock_ms = wall_clock_ms
        self.nonces = nonces
        self.pool = pool
        self.metadata = metadata or MetadataCache()
        self._pure: dict[bytes, bool] = {}  # code hash → may run inline
        self._settings_block = -1
        self._lock = threading.Lock()

    # --- checks ------------------------------------------------------------------------------
    def check_request(self, request: SignedRequest) -> None:
        """Checks every transport applies: addressed to this worker, signed by its origin."""
        if request.worker != self.identity.public_key:
            raise RpcError("wrong_worker", "the request is addressed to another worker's identity key")
        if not request.signature_valid():
            raise RpcError("bad_signature", "the signature does not verify for the origin key; sign signing_bytes()")

    def _check_query(self, request: SignedRequest) -> None:
        self.check_request(request)
        if request.kind is not RequestKind.QUERY:
            raise RpcError("wrong_kind", f"a {request.kind.name} request is not a query; transactions go to /v2/tx, log reads to /v2/logs")
        self.nonces.check_deadline(request.deadline_ms, _now_ms())

    # --- running ----------------------------------------------------------------------------
    def query(self, request: SignedRequest, *, checked: bool = False, admitted: bool = False) -> tuple[Outcome, Receipt]:
        """Run a QUERY request over the last committed block; the output with a signed receipt.

        The query reads a consistent view of one committed block (``reader()``): it never
        waits for the block pipeline, and the pipeline never waits for it. ``checked`` /
        ``admitted``: an inline attempt already checked the request / used its nonce."""
        if not checked:
            self._check_query(request)
        with self.pool.slot(request.contract):  # weighted-fair by contract when contended
            # The nonce is used only once the query holds a run slot: a pool_full refusal
            # leaves it unused, so the retry that refusal suggests succeeds.
            if not admitted:
                self.nonces.admit(request.origin, request.nonce, request.deadline_ms, _now_ms())
            result = self._run(request, self.wall_clock_ms, inline=False)
        assert result is not None
        return result

    def query_inline(self, request: SignedRequest) -> tuple[Outcome, Receipt] | Callable[[], tuple[Outcome, Receipt]]:
        """Answer at once if that is safe (module docstring); otherwise a callable that finishes
        the query, for the caller to run in a thread."""
        self._check_query(request)
        if not self.pool.try_slot():
            return lambda: self.query(request, checked=True)
        admitted = False
        try:
            with self.store.reader() as view:
                info = self.cluster.over(view).records.contract(request.contract)
                if info is None or not self._may_inline(info.code_hash):
                    return lambda: self.query(request, checked=True)
                self.nonces.admit(request.origin, request.nonce, request.deadline_ms, _now_ms())
                admitted = True
                result = self._run_in(view, request, INLINE_BUDGET_MS, inline=True, info=info)
        finally:
            self.pool.release()
        if result is None:  # outlasted the inline budget: nothing changed, run it in a thread
            return lambda: self.query(request, checked=True, admitted=admitted)
        return result

    def _may_inline(self, code_hash: bytes) -> bool:
        pure = self._pure.get(code_hash)
        if pure is None:
            compiled = self.cluster.engine.modules.cached(code_hash)
            if compiled is None:
                return False  # compiling takes long: let a thread do it (and cache it)
            pure = not any(name.removeprefix("seal_") in _IMPURE for _, name in compiled.imports)
            with self._lock:
                self._pure[code_hash] = pure
        return pure

    def _run(self, request: SignedRequest, wall_clock_ms: int, *, inline: bool) -> tuple[Outcome, Receipt] | None:
        with self.store.reader() as view:
            return self._run_in(view, request, wall_clock_ms, inline=inline)

    def _run_in(self, view: CommittedView, request: SignedRequest, wall_clock_ms: int, *,
                inline: bool, info: Any = None) -> tuple[Outcome, Receipt] | None:
        checkpoint = view.checkpoint
        number = checkpoint.number if checkpoint else 0
        cluster = self._over(view, number)
        info = self._check_args(cluster, view, request, info)
        try:
            raw = cluster.call(AccountId(request.origin), request.contract, request.payload,
                               value=request.value, mode=ExecutionMode.QUERY,
                               block=BlockContext(number, _now_ms()),
                               gas_limit=request.gas_limit or None, wall_clock_ms=wall_clock_ms, info=info)
        except ContractNotFound as exc:
            raise RpcError("unknown_contract", str(exc)) from None
        except PhatError as exc:
            raise RpcError("bad_request", str(exc)) from None
        if inline and raw.error is not None and raw.error.kind == "Timeout":
            with self._lock:
                self._pure[info.code_hash] = False  # too slow to run inline: threads from now on
            return None
        outcome = outcome_of(raw)
        return outcome, self.receipt(request, outcome, number, view.state_root)

    def _over(self, view: CommittedView, number: int) -> Cluster:
        cluster = self.cluster.over(view)
        if number != self._settings_block and self.cluster.state is not self.store:
            # Another process commits the blocks: follow the cluster settings they change.
            with self._lock:
                if number != self._settings_block:
                    cluster.sync_services()
                    self._settings_block = number
        return cluster

    def _check_args(self, cluster: Cluster, view: CommittedView, request: SignedRequest,
                    info: Any = None) -> Any:
        """The contract's record; if metadata was uploaded with the code, refuse input that does
        not decode — with the argument and type that failed — instead of letting the contract
        trap on it."""
        if info is None:
            info = cluster.records.contract(request.contract)
        if info is None:
            raise RpcError("unknown_contract", f"no contract at {to_ss58(request.contract)}")
        metadata = self.metadata.get(view, info.code_hash)
        if metadata is None:
            return info
        spec = metadata.by_selector(request.payload[:4])
        if spec is None or spec.is_constructor:
            labels = ", ".join(m.label for m in metadata.messages)
            raise RpcError("bad_args", f"{metadata.name} has no message with selector 0x{request.payload[:4].hex()}; messages: {labels}")
        try:
            metadata.decode_args(spec, request.payload)
        except DecodeError as exc:
            raise RpcError("bad_args", str(exc)) from None
        return info

    def contract_weight(self, contract: bytes) -> int:
        """``contract``'s weight in the last committed block (``System::set_contract_weight``;
        1 if never set) — what the query pool admits by when contended (``worker/scheduler.py``)."""
        with self.store.reader() as view:
            return self.cluster.over(view).settings.weight(contract)

    # --- keys --------------------------------------------------------------------------------
    def session_keys(self, client_pk: bytes, session_id: bytes) -> SessionKeys:
        """The AEAD keys of an RPC session opened with a client's ephemeral X25519 key
        (``rpc/sessions.py``); EnvelopeError for an unusable key."""
        return session_keys(self.identity.ecdh_private_bytes(), client_pk, client_pk,
                            self.identity.ecdh_public_key, session_id)

    def receipt(self, request: SignedRequest, outcome: Outcome, block: int, state_root: bytes) -> Receipt:
        return Receipt(
            worker=self.identity.public_key,
            kind=request.kind,
            contract=outcome.contract or bytes(32),
            code_hash=outcome.code_hash or bytes(32),
            request_hash=request.request_hash,
            output_hash=outcome.output_hash,
            block=block,
            state_root=state_root,
            time_ms=_now_ms(),
        ).signed_by(self.identity)


class ForwardedLogs(LogStore):
    """A query process's log store: every record goes to ``send`` (the main process keeps the
    worker's one log store, where deployers read it and the log handler gets its copy)."""

    def __init__(self, send: Callable[[list[Any]], None]) -> None:
        super().__init__()
        self._send = send

    def append(self, contract: bytes, level: LogLevel, message: str, *, mode: ExecutionMode,
               block_number: int | None = None) -> LogRecord:
        self._send(["log", bytes(contract), int(level), message, mode.value, block_number])
        return LogRecord(0, bytes(contract), level, _now_ms(), block_number, mode, message, RecordKind.LOG, None)


@dataclass(frozen=True)
class QueryHandover:
    """What a query process receives from the worker's main process at start (over a pipe)."""

    identity_secret: bytes
    #: Epoch 0's cluster key; empty while the worker holds none yet (a chain cluster member
    #: waiting for its key: the keys come later over the control channel, ``rpc/control.py``).
    cluster_secret: bytes
    #: A chain cluster member's state keys, epoch → key (``Worker.state_keys``); None: one key,
    #: every epoch derives from ``cluster_secret`` (standalone, development cluster).
    epoch_secrets: dict[int, bytes] | None
    cluster_id: bytes
    state_path: str
    module_cache: str
    wall_clock_ms: int
    max_in_flight: int
    backlog: int
    max_sessions: int
    session_lifetime_s: int
    #: The worker's quote, for ``worker_sgx_quote`` (empty: simulated, contracts see None).
    quote: bytes
    allow_loopback_egress: bool
    index: int

    def __repr__(self) -> str:  # never the secrets
        return f"QueryHandover(index={self.index}, state_path={self.state_path!r})"

    def encode(self) -> bytes:
        return bytes(msgpack.packb(list(self.__dict__.values()), use_bin_type=True))

    @classmethod
    def decode(cls, raw: bytes) -> QueryHandover:
        return cls(*msgpack.unpackb(raw, raw=False, strict_map_key=False))


def _now_ms() -> int:
    return int(time.time() * 1000)
