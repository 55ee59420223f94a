"""The worker's HTTP API: an ASGI app served by uvicorn, with an OpenAPI schema at
``/openapi.json`` and a docs page at ``/docs``.

Endpoints (``docs/rpc.md``): the encrypted routes of wire format v2 — ``POST /v2/session``,
``/v2/query``, ``/v2/tx``, ``/v2/logs`` — served by the lean :class:`~phat_runtime.rpc.fastpath.
FastPath` in front; everything else by FastAPI: ``GET /v1/info``, ``GET /v1/contracts/{address}``,
``GET /health``, ``GET /metrics``. Errors are ``{"error": {"code", "message"}}`` with the codes
of ``worker/error_codes.py``.

The worker core is synchronous and takes locks, so **nothing that touches worker state runs on
the event loop**: queries, transactions and lock-taking reads each run in a thread pool of their
own, so a full class never starves another, and ``/health``, ``/metrics`` and ``/v1/info``
answer from lock-free fields. Transactions beyond :attr:`RpcLimits.tx_queue` are refused at
once (``tx_queue_full``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from pydantic import BaseModel, Field

from phat_runtime.errors import PhatError
from phat_runtime.rpc.bodies import WIRE_VERSION
from phat_runtime.rpc.dashboard import mount_dashboard
from phat_runtime.rpc.fastpath import FastPath, RpcLimits, RpcMetrics
from phat_runtime.worker.error_codes import ERROR_CODES, RpcError
from phat_runtime.worker.service import Worker

__all__ = ["RpcLimits", "create_app"]

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    code: str = Field(description=", ".join(ERROR_CODES))
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in sorted({s for s, _ in ERROR_CODES.values()})
}


def create_app(worker: Worker, limits: RpcLimits | None = None) -> FastPath:
    """The ASGI app; call its ``close()`` once the server stopped (ends its thread pools)."""
    limits = limits or RpcLimits()
    app = FastAPI(
        title="phat_runtime worker",
        version=str(WIRE_VERSION),
        description="Encrypted queries and transactions for ink!/Phat contracts, with signed receipts. "
                    "Encrypted routes take binary frames (wire format v2, docs/rpc.md).",
    )
    metrics = RpcMetrics()
    fast = FastPath(worker.queries, app, limits, metrics, worker=worker)

    @app.exception_handler(RpcError)
    async def _rpc_error(_: Request, exc: RpcError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        err = RpcError("bad_request", f"{where}: {first.get('msg', 'invalid request')}")
        return JSONResponse(err.to_json(), status_code=err.status)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        err = RpcError("internal", f"internal error ({type(exc).__name__}); nothing was changed")
        return JSONResponse(err.to_json(), status_code=err.status)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, Any]:
        return {"ok": True, "block": worker.height}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        metrics.height.set(worker.height)
        metrics.tx_waiting.set(fast.tx_admitted)
        metrics.query_slots.set(worker.pool.admitted)
        metrics.sessions.set(len(fast.sessions))
        return PlainTextResponse(generate_latest(metrics.registry).decode(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/info", tags=["worker"])
    async def info() -> dict[str, Any]:
        """Identity, ECDH key, attestation quote, synced block and state root, wire format."""
        return {**worker.info(), "wire_version": WIRE_VERSION, "session_lifetime_s": limits.session_lifetime_s}

    @app.get("/v1/contracts/{address}", tags=["contracts"], responses=_ERRORS)
    async def contract(address: str) -> dict[str, Any]:
        """Code hash, deployer, metadata (if uploaded with the code) and the contract's public key."""
        result: dict[str, Any] = await fast.in_thread(fast.read_threads, worker.contract_info,
                                                      _account(address))
        return result

    @app.get("/v1/chain/rejections", tags=["chain"], responses=_ERRORS)
    async def rejections(since_block: int = 0, limit: int = 100) -> dict[str, Any]:
        """Chain messages every worker skipped, newest first, with the reason (chain mode)."""
        records = await fast.in_thread(fast.read_threads, lambda: worker.rejections(
            since_block=max(0, since_block), limit=min(max(1, limit), 1000)))
        return {"rejections": records}

    @app.get("/v1/chain/membership", tags=["chain"], responses=_ERRORS)
    async def membership() -> dict[str, Any]:
        """The cluster's owner, policy, key epochs (public halves) and workers with their
        attestation verdicts, as this worker read them from the chain (chain mode)."""
        return await fast.in_thread(fast.read_threads, worker.membership)

    @app.get("/v1/chain/checkpoints", tags=["chain"], responses=_ERRORS)
    async def checkpoints(worker_id: str | None = None, limit: int = 100) -> dict[str, Any]:
        """State roots workers published on chain, next to this worker's root at that block."""
        who = None if worker_id is None else _account(worker_id)
        records = await fast.in_thread(fast.read_threads, lambda: worker.checkpoints(
            worker=who, limit=min(max(1, limit), 1000)))
        return {"checkpoints": records}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema["paths"].update(_encrypted_paths())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    mount_dashboard(app, fast)  # GET / (docs/operations.md "Dashboard")
    return fast


_ROUTES = {
    "/v2/session": ("Open an encrypted session", "version u8 = 2 ‖ client X25519 public key [32]",
                    "version u8 ‖ session id [16] ‖ lifetime s u32 LE ‖ key confirmation [16]"),
    "/v2/query": ("Run a message in QUERY mode (writes discarded)",
                  "request frame sealing a SCALE SignedRequest of kind QUERY",
                  "response frame sealing SCALE (outcome, receipt)"),
    "/v2/tx": ("Submit an upload / instantiate / call; answered once its block is committed",
               "request frame sealing a SCALE SignedRequest of kind UPLOAD, INSTANTIATE or CALL",
               "response frame sealing SCALE (outcome, receipt)"),
    "/v2/logs": ("Read a contract's log records (its deployer only; one-shot)",
                 "request frame sealing a SCALE SignedRequest of kind LOGS",
                 "response frame sealing msgpack log records"),
    "/v2/result": ("Read the outcome of your own chain transaction (chain mode; its sender only)",
                   "request frame sealing a SCALE SignedRequest of kind RESULT",
                   "response frame sealing SCALE (outcome, receipt)"),
}


def _encrypted_paths() -> dict[str, Any]:
    """OpenAPI entries of the binary routes served by FastPath (layouts in docs/rpc.md)."""
    errors = {str(status): {"description": ", ".join(c for c, (s, _) in ERROR_CODES.items() if s == status),
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
              for status in sorted({s for s, _ in ERROR_CODES.values()})}

    def binary(text: str) -> dict[str, Any]:
        return {"description": text, "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}

    return {path: {"post": {
        "tags": ["contracts" if path != "/v2/session" else "sessions"], "summary": summary,
        "operationId": path.strip("/").replace("/", "_"),
        "description": f"Wire format v{WIRE_VERSION} (docs/rpc.md). Body: {request}. Answer: {answer}.",
        "requestBody": {"required": True, **binary(request)},
        "responses": {"200": binary(answer), **errors},
    }} for path, (summary, request, answer) in _ROUTES.items()}


def _account(value: str) -> bytes:
    """A contract address as SS58 (what the CLI prints) or 0x-hex."""
    from phat_runtime.crypto.accounts import parse_account

    try:
        return bytes(parse_account(value))
    except (ValueError, PhatError):
        raise RpcError("bad_request", f"{value!r} is not an address: pass SS58 or 0x-hex of 32 bytes") from None
