"""The encrypted routes (wire format v2, ``rpc/bodies.py``) as a lean ASGI app in front of the
FastAPI app that serves everything else.

``POST /v2/session``, ``/v2/query``, ``/v2/tx`` and ``/v2/logs`` carry binary frames, so
there is nothing for a validation framework to do: the body is read as bytes, and everything
that touches worker state runs in a thread pool of its own class (queries, transactions,
reads), never on the event loop. Every refusal is a typed JSON error; an unexpected exception
is logged and answered ``500 internal`` — the connection stays open either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Receive, Scope, Send

from phat_runtime.codec.messages import RequestKind, SignedRequest, decode_logs_query
from phat_runtime.crypto.e2e import EnvelopeError
from phat_runtime.errors import DecodeError
from phat_runtime.rpc import bodies
from phat_runtime.rpc.bodies import Route
from phat_runtime.rpc.sessions import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_LIFETIME_S,
    RpcSession,
    SessionPeers,
    SessionTable,
)
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.query_process import QueryService
from phat_runtime.worker.service import Worker

log = logging.getLogger(__name__)

#: Largest query or log-read body (an encrypted ink! message).
MAX_QUERY_BODY = 1024 * 1024
#: Largest transaction body (an upload of 2 MiB of wasm plus its metadata).
MAX_TX_BODY = 8 * 1024 * 1024

Read = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class RpcLimits:
    """Server-side limits (the query pool's own limits live in ``WorkerConfig``)."""

    #: Transactions admitted at once (running + waiting for their block); beyond it
    #: ``/v2/tx`` answers 503 ``tx_queue_full`` at once.
    tx_queue: int = 128
    #: Threads for reads that take the state lock (contract info, logs).
    read_threads: int = 8
    #: Encrypted sessions alive at once (least recently used evicted beyond it) and their life.
    max_sessions: int = DEFAULT_MAX_SESSIONS
    session_lifetime_s: int = DEFAULT_SESSION_LIFETIME_S


class RpcMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queries = Counter("phat_queries", "queries by result", ["result"], registry=self.registry)
        self.transactions = Counter("phat_transactions", "transactions by result", ["result"],
                                    registry=self.registry)
        self.query_seconds = Histogram("phat_query_seconds", "query latency", registry=self.registry)
        self.height = Gauge("phat_block_height", "last committed block", registry=self.registry)
        self.tx_waiting = Gauge("phat_transactions_waiting", "transactions admitted, not yet answered",
                                registry=self.registry)
        self.query_slots = Gauge("phat_queries_admitted", "queries running or waiting in the pool",
                                 registry=self.registry)
        self.sessions = Gauge("phat_rpc_sessions", "encrypted sessions alive", registry=self.registry)


class FastPath:
    """The encrypted routes. ``queries`` answers sessions and queries; ``worker`` (the process
    that owns the worker) adds ``/v2/tx``, ``/v2/logs`` and ``/v2/result`` — a query process has none and its
    ``fallback`` forwards those to the worker's process. ``peers`` shares sessions between the
    processes of one worker (``rpc/sessions.py``)."""

    def __init__(self, queries: QueryService, fallback: ASGIApp, limits: RpcLimits, metrics: RpcMetrics,
                 worker: Worker | None = None, peers: SessionPeers | None = None) -> None:
        self.queries = queries
        self._worker = worker
        self.fallback = fallback
        self.limits = limits
        self.metrics = metrics
        self.sessions = SessionTable(queries.session_keys, max_sessions=limits.max_sessions,
                                     lifetime_s=limits.session_lifetime_s, peers=peers)
        # Room for every query the pool admits plus a few to answer pool_full at once.
        self.query_threads = ThreadPoolExecutor(queries.pool.max_in_flight + queries.pool.backlog + 4,
                                                thread_name_prefix="phat-query")
        self.tx_threads = ThreadPoolExecutor(limits.tx_queue, thread_name_prefix="phat-tx")
        self.read_threads = ThreadPoolExecutor(limits.read_threads, thread_name_prefix="phat-read")
        self.tx_admitted = 0  # only touched on the event loop
        #: Set in a query process: its number, sent as ``x-phat-query-process`` on its answers.
        self.index: int | None = None
        self._queries_ok = metrics.queries.labels("ok")  # looked up once: it is on every query
        self.routes: dict[str, Callable[[Read], Awaitable[bytes]]] = {
            "/v2/session": self._session, "/v2/query": self._query}
        if worker is not None:
            self.routes.update({"/v2/tx": self._tx, "/v2/logs": self._logs, "/v2/result": self._result})

    @property
    def worker(self) -> Worker:
        """The worker: only in its own process (a query process has none, and none of the
        routes that need it)."""
        assert self._worker is not None, "a query process has no worker"
        return self._worker

    def close(self) -> None:
        for pool in (self.query_threads, self.tx_threads, self.read_threads):
            pool.shutdown(wait=False, cancel_futures=True)

    async def in_thread(self, pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    # --- ASGI ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            await self.fallback(scope, receive, send)
            return
        content_type = bodies.CONTENT_TYPE
        try:
            if scope["method"] != "POST":
                raise RpcError("method_not_allowed", f"{scope['path']} takes POST with a binary body (docs/rpc.md)")
            status, answer = 200, await handler(lambda: _read_body(scope, receive, self._limit(scope["path"])))
        except RpcError as exc:
            status, answer, content_type = exc.status, json.dumps(exc.to_json()).encode(), "application/json"
        except Exception as exc:
            log.exception("internal error on %s", scope["path"])
            err = RpcError("internal", f"internal error ({type(exc).__name__}); nothing was changed")
            status, answer, content_type = err.status, json.dumps(err.to_json()).encode(), "application/json"
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(answer)).encode())]
        if self.index is not None:
            headers.append((b"x-phat-query-process", str(self.index).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    @staticmethod
    def _limit(path: str) -> int:
        return MAX_TX_BODY if path == "/v2/tx" else MAX_QUERY_BODY

    # --- routes ----------------------------------------------------------------------------------
    async def _session(self, read: Read) -> bytes:
        body = await read()
        try:
            client_pk = bodies.decode_hello(body)
            session, confirm = self.sessions.open(client_pk)  # one X25519: short, lock-free work
        except bodies.BodyError as exc:
            raise RpcError("malformed_body", str(exc)) from None
        except EnvelopeError as exc:
            raise RpcError("bad_envelope", str(exc)) from None
        return bodies.encode_welcome(session.id, self.sessions.lifetime_s, confirm)

    async def _query(self, read: Read) -> bytes:
        body = await read()
        started = time.perf_counter()
        try:
            session, counter, request = self._open(body, Route.QUERY)
            # A short, pure query is answered here; anything else finishes in a query thread
            # (worker/query_process.py says when running on the event loop is safe).
            result = self.queries.query_inline(request)
            if callable(result):
                result = await self.in_thread(self.query_threads, result)
        except RpcError as exc:
            self.metrics.queries.labels(exc.code).inc()
            raise
        answer = bodies.seal_response(session.keys, counter, Route.QUERY, bodies.encode_result(*result))
        self._queries_ok.inc()
        self.metrics.query_seconds.observe(time.perf_counter() - started)
        return answer

    async def _tx(self, read: Read) -> bytes:
        if self.tx_admitted >= self.limits.tx_queue:
            self.metrics.transactions.labels("tx_queue_full").inc()
            raise RpcError("tx_queue_full", f"{self.limits.tx_queue} transactions are already waiting for a "
                           "block; retry shortly (this one was not queued)")
        self.tx_admitted += 1
        try:
            body = await read()
            answer: bytes = await self.in_thread(self.tx_threads, self._run_tx, body)
        except RpcError as exc:
            self.metrics.transactions.labels(exc.code).inc()
            raise
        finally:
            self.tx_admitted -= 1
        self.metrics.transactions.labels("ok").inc()
        return answer

    async def _logs(self, read: Read) -> bytes:
        body = await read()
        answer: bytes = await self.in_thread(self.read_threads, self._run_logs, body)
        return answer

    async def _result(self, read: Read) -> bytes:
        body = await read()
        answer: bytes = await self.in_thread(self.read_threads, self._run_result, body)
        return answer

    # --- in threads ------------------------------------------------------------------------------
    def _open(self, body: bytes, route: Route) -> tuple[RpcSession, int, SignedRequest]:
        """Frame → (session, counter, request); every failure a typed RpcError."""
        try:
            frame = bodies.parse_request(body)
        except bodies.BodyError as exc:
            raise RpcError("malformed_body", str(exc)) from None
        session = self.sessions.get(frame.session_id)
        try:
            plaintext = bodies.open_request(session.keys, frame, route)
        except EnvelopeError as exc:
            raise RpcError("bad_envelope", str(exc)) from None
        self.sessions.admit(session, frame.counter)
        try:
            return session, frame.counter, SignedRequest.decode(plaintext)
        except (DecodeError, ValueError) as exc:
            raise RpcError("bad_request", f"not a SignedRequest: {exc}") from None

    def _run_tx(self, body: bytes) -> bytes:
        session, counter, request = self._open(body, Route.TX)
        plaintext = bodies.encode_result(*self.worker.submit(request))
        return bodies.seal_response(session.keys, counter, Route.TX, plaintext)

    def _run_result(self, body: bytes) -> bytes:
        """The outcome of the sender's own chain transaction, with the worker's receipt."""
        session, counter, request = self._open(body, Route.RESULT)
        if request.kind is not RequestKind.RESULT:
            raise RpcError("wrong_kind", f"a {request.kind.name} request is not a result read")
        plaintext = bodies.encode_result(*self.worker.chain_result(request))
        return bodies.seal_response(session.keys, counter, Route.RESULT, plaintext)

    def _run_logs(self, body: bytes) -> bytes:
        """A one-shot, signed read of a contract's log records by its deployer."""
        session, counter, request = self._open(body, Route.LOGS)
        if request.kind is not RequestKind.LOGS:
            raise RpcError("wrong_kind", f"a {request.kind.name} request is not a log read; it goes to "
                           + ("/v2/query" if request.kind is RequestKind.QUERY else "/v2/tx"))
        worker = self.worker
        worker.check_request(request)  # addressed to this worker, signed by its origin
        try:
            since, limit = decode_logs_query(request.payload)
        except (DecodeError, ValueError) as exc:
            raise RpcError("bad_request", f"a LOGS payload is SCALE (since: u64, limit: u32): {exc}") from None
        worker.nonces.admit(request.origin, request.nonce, request.deadline_ms, int(time.time() * 1000))
        info = worker.contract_info(request.contract)  # reads the store: we are in a thread
        if info["deployer_hex"] != "0x" + request.origin.hex():
            raise RpcError("forbidden", "only the contract's deployer may read its logs")
        store = worker.services.logs
        records = store.records(request.contract, since=since, limit=limit) if store is not None else []
        plaintext = bodies.encode_log_records([
            {"sequence": r.sequence, "level": r.level.name.lower(), "timestamp_ms": r.timestamp_ms,
             "block": r.block_number, "mode": r.mode.value, "message": r.message}
            for r in records
        ])
        return bodies.seal_response(session.keys, counter, Route.LOGS, plaintext)


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise RpcError("body_too_large", f"body of {int(value)} bytes exceeds {limit}")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # nobody reads the answer (uvicorn drops it)
            raise RpcError("malformed_body", "the client went away before its body arrived")
        body += message.get("body", b"")
        if len(body) > limit:
            raise RpcError("body_too_large", f"body exceeds {limit} bytes")
        if not message.get("more_body"):
            return bytes(body)
