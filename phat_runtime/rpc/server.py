"""The worker's HTTP API: an ASGI app (FastAPI, served by uvicorn) with an OpenAPI schema and
a docs page at ``/docs``.

Endpoints (``docs/rpc.md``): ``GET /v1/info``, ``POST /v1/query``, ``POST /v1/tx``,
``GET /v1/contracts/{address}``, ``GET /v1/contracts/{address}/logs``, ``GET /health``,
``GET /metrics``. Query and transaction bodies are end-to-end encrypted envelopes; errors are
``{"error": {"code", "message"}}`` with the codes of ``worker/error_codes.py``.

The worker core is synchronous and takes locks, so **nothing that touches worker state runs on
the event loop**: queries, transactions and reads (contract info, logs) each run in threads
under a limiter of their own, so a full class never starves another, and ``/health`` answers
from lock-free fields. Transactions beyond :attr:`RpcLimits.tx_queue` are refused at once
(``tx_queue_full``) instead of queueing for a thread.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field

from phat_runtime.codec.messages import SignedRequest
from phat_runtime.crypto.e2e import EnvelopeError
from phat_runtime.crypto.signer import Scheme, verify
from phat_runtime.errors import DecodeError
from phat_runtime.rpc.bodies import BodyError, RequestEnvelope, seal_response
from phat_runtime.worker.error_codes import ERROR_CODES, RpcError
from phat_runtime.worker.service import Worker

log = logging.getLogger(__name__)

#: Largest query body (an encrypted ink! message).
MAX_QUERY_BODY = 1024 * 1024
#: Largest transaction body (an upload of 2 MiB of wasm, base64 inside JSON, plus metadata).
MAX_TX_BODY = 8 * 1024 * 1024
#: How far a signed log request's timestamp may be from the worker's clock.
LOG_REQUEST_SKEW_MS = 5 * 60 * 1000
LOGS_DOMAIN = b"phat_runtime/logs/v1"

T = TypeVar("T")


@dataclass(frozen=True)
class RpcLimits:
    """Server-side admission limits (the query pool's own limits live in ``WorkerConfig``)."""

    #: Transactions admitted at once (running + waiting for their block); beyond it
    #: ``/v1/tx`` answers 503 ``tx_queue_full`` at once.
    tx_queue: int = 128
    #: Threads for reads that take the state lock (contract info, logs).
    read_threads: int = 8


class Envelope(BaseModel):
    """An encrypted request: ciphertext of a SCALE SignedRequest (docs/rpc.md)."""

    v: int = Field(1, description="protocol version")
    client_pk: str = Field(description="client's ephemeral X25519 public key, hex (32 bytes)")
    nonce: str = Field(description="AEAD nonce, hex (12 bytes)")
    ciphertext: str = Field(description="ChaCha20-Poly1305 ciphertext, base64")


class SealedResponse(BaseModel):
    v: int
    nonce: str
    ciphertext: str = Field(description="SCALE (outcome, receipt), encrypted back to the client")


class ErrorBody(BaseModel):
    code: str = Field(description=", ".join(ERROR_CODES))
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in sorted({s for s, _ in ERROR_CODES.values()})
}


def create_app(worker: Worker, limits: RpcLimits | None = None) -> FastAPI:
    limits = limits or RpcLimits()
    app = FastAPI(
        title="phat_runtime worker",
        version="1",
        description="Encrypted queries and transactions for ink!/Phat contracts, with signed receipts.",
    )
    metrics = _Metrics()
    # Each class of work has its own threads: queries (the pool admits or refuses them in the
    # thread), transactions (bounded by tx_queue) and lock-taking reads.
    query_threads = anyio.CapacityLimiter(worker.pool.max_in_flight + worker.pool.backlog + 16)
    tx_threads = anyio.CapacityLimiter(limits.tx_queue)
    read_threads = anyio.CapacityLimiter(limits.read_threads)
    tx_admitted = 0  # only touched on the event loop

    @app.exception_handler(RpcError)
    async def _rpc_error(_: Request, exc: RpcError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        err = RpcError("malformed_body", f"{where}: {first.get('msg', 'invalid body')}")
        return JSONResponse(err.to_json(), status_code=err.status)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        err = RpcError("internal", f"internal error ({type(exc).__name__}); nothing was changed")
        return JSONResponse(err.to_json(), status_code=err.status)

    def _open(body: Any) -> tuple[SignedRequest, bytes]:
        """Envelope → (request, session key); every failure a typed RpcError."""
        try:
            envelope = RequestEnvelope.from_json(body)
        except BodyError as exc:
            raise RpcError("malformed_body", str(exc)) from None
        try:
            key = worker.session_key(envelope.client_pk)
            plaintext = envelope.open(key)
        except EnvelopeError as exc:
            raise RpcError("bad_envelope", f"{exc}; encrypt to the ECDH key from /v1/info") from None
        try:
            return SignedRequest.decode(plaintext), key
        except (DecodeError, ValueError) as exc:
            raise RpcError("bad_request", f"not a SignedRequest: {exc}") from None

    def _query(body: Any) -> dict[str, Any]:
        request, key = _open(body)
        return seal_response(key, *worker.query(request))

    def _submit(body: Any) -> dict[str, Any]:
        request, key = _open(body)
        return seal_response(key, *worker.submit(request))

    async def _body(request: Request, limit: int) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RpcError("body_too_large", f"body of {declared} bytes exceeds {limit}")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise RpcError("body_too_large", f"body exceeds {limit} bytes")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise RpcError("malformed_body", "the body is not JSON; send an Envelope object") from None
        except RecursionError:
            raise RpcError("malformed_body", "the body nests too deeply; send an Envelope object") from None

    async def _in_thread(fn: Callable[..., T], *args: Any, limiter: anyio.CapacityLimiter) -> T:
        """Run ``fn`` in a thread; an unexpected exception becomes a logged ``internal`` error
        (answered as JSON on a connection that stays open) instead of escaping to the server."""
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)
        except RpcError:
            raise
        except Exception as exc:
            log.exception("internal error")
            raise RpcError("internal", f"internal error ({type(exc).__name__}); nothing was changed") from None

    def _log_records(contract_id: bytes, signer: bytes, since: int, limit: int) -> list[Any]:
        info = worker.contract_info(contract_id)  # takes the state lock: runs in a thread
        if info["deployer"] != "0x" + signer.hex():
            raise RpcError("forbidden", "only the contract's deployer may read its logs")
        store = worker.cluster.services.logs
        return store.records(contract_id, since=since, limit=limit) if store is not None else []

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, Any]:
        return {"ok": True, "block": worker.pipeline.height}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        metrics.height.set(worker.pipeline.height)
        metrics.tx_waiting.set(tx_admitted)
        metrics.query_slots.set(worker.pool.admitted)
        return PlainTextResponse(generate_latest(metrics.registry).decode(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/info", tags=["worker"])
    async def info() -> dict[str, Any]:
        """Identity, attestation quote, synced block and state root."""
        return worker.info()

    @app.post("/v1/query", tags=["contracts"], response_model=SealedResponse, responses=_ERRORS,
              openapi_extra=_body_schema())
    async def query(request: Request) -> Any:
        """Run a message in QUERY mode (writes discarded); returns output + signed receipt."""
        body = await _body(request, MAX_QUERY_BODY)
        started = time.perf_counter()
        try:
            result = await _in_thread(_query, body, limiter=query_threads)
        except RpcError as exc:
            metrics.queries.labels(exc.code).inc()
            raise
        metrics.queries.labels("ok").inc()
        metrics.query_seconds.observe(time.perf_counter() - started)
        return result

    @app.post("/v1/tx", tags=["contracts"], response_model=SealedResponse, responses=_ERRORS,
              openapi_extra=_body_schema())
    async def transaction(request: Request) -> Any:
        """Submit an upload / instantiate / call; answers once it is in a committed block."""
        nonlocal tx_admitted
        if tx_admitted >= limits.tx_queue:
            metrics.transactions.labels("tx_queue_full").inc()
            raise RpcError("tx_queue_full", f"{limits.tx_queue} transactions are already waiting for a block; "
                           "retry shortly (this one was not queued)")
        tx_admitted += 1
        try:
            body = await _body(request, MAX_TX_BODY)
            result = await _in_thread(_submit, body, limiter=tx_threads)
        except RpcError as exc:
            metrics.transactions.labels(exc.code).inc()
            raise
        finally:
            tx_admitted -= 1
        metrics.transactions.labels("ok").inc()
        return result

    @app.get("/v1/contracts/{address}", tags=["contracts"], responses=_ERRORS)
    async def contract(address: str) -> dict[str, Any]:
        """Code hash, deployer, metadata (if uploaded with the code) and the contract's public key."""
        return await _in_thread(worker.contract_info, _hex32(address, "address"), limiter=read_threads)

    @app.get("/v1/contracts/{address}/logs", tags=["contracts"], responses=_ERRORS)
    async def logs(address: str, origin: str, timestamp: int, signature: str, since: int = 0,
                   limit: int = 100, scheme: int = int(Scheme.SR25519)) -> dict[str, Any]:
        """A contract's log records, for its deployer only. Sign
        ``b"phat_runtime/logs/v1" ‖ address ‖ timestamp (u64 LE ms)`` with the deployer key."""
        contract_id = _hex32(address, "address")
        signer = _hex32(origin, "origin")
        now = int(time.time() * 1000)
        if abs(now - timestamp) > LOG_REQUEST_SKEW_MS:
            raise RpcError("expired", "timestamp is more than 5 minutes from the worker's clock; sign a fresh one")
        message = LOGS_DOMAIN + contract_id + timestamp.to_bytes(8, "little")
        if not verify(scheme, signer, message, _hex(signature, "signature")):
            raise RpcError("bad_signature", "the log request signature does not verify")
        records = await _in_thread(_log_records, contract_id, signer, since, limit, limiter=read_threads)
        return {"records": [
            {"sequence": r.sequence, "level": r.level.name.lower(), "timestamp_ms": r.timestamp_ms,
             "block": r.block_number, "mode": r.mode.value, "message": r.message}
            for r in records
        ]}

    return app


def _body_schema() -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": Envelope.model_json_schema()}}}}


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise RpcError("bad_request", f"{what} is not hex") from None


def _hex32(value: str, what: str) -> bytes:
    raw = _hex(value, what)
    if len(raw) != 32:
        raise RpcError("bad_request", f"{what} must be 32 bytes of hex")
    return raw


class _Metrics:
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
