"""Typed, documented RPC error codes. Each says what went wrong and what to do.

``RpcError(code, message)`` carries an HTTP status; the server renders
``{"error": {"code": ..., "message": ...}}``. The table is published in ``docs/rpc.md``.
"""

from __future__ import annotations

from phat_runtime.errors import PhatError

#: code → (HTTP status, what it means)
ERROR_CODES: dict[str, tuple[int, str]] = {
    "malformed_body": (400, "the body is not a v2 frame (version, session id, counter, ciphertext; docs/rpc.md)"),
    "bad_envelope": (400, "the X25519 key is unusable, or the ciphertext does not open with the session's key"),
    "unknown_session": (401, "no such session (expired, evicted, worker restarted); open a new one, send again"),
    "replayed_counter": (409, "this session already received that message counter"),
    "bad_request": (400, "the decrypted request is not a valid SignedRequest"),
    "wrong_worker": (400, "the request names another worker's identity key"),
    "wrong_kind": (400, "a request of another kind than the route takes (query, transaction, logs)"),
    "bad_signature": (401, "the origin's signature does not verify"),
    "expired": (400, "the deadline has passed, or lies too far in the future"),
    "replayed_nonce": (409, "this (origin, nonce) was already used"),
    "gas_limit_too_high": (400, "the gas limit exceeds the per-transaction cap (GET /v1/info names it; 0 = the cap)"),
    "quota_exceeded": (403, "standalone mode: the origin's code or storage quota is used up (docs/operations.md)"),
    "bad_args": (400, "the input does not decode against the contract's metadata (names the argument and type)"),
    "unknown_contract": (404, "no contract at that address"),
    "unknown_code": (404, "no code with that hash"),
    "invalid_code": (422, "the uploaded wasm was refused (see message)"),
    "duplicate_contract": (409, "a contract already lives at the derived address"),
    "body_too_large": (413, "the request body exceeds the limit"),
    "pool_full": (503, "too many queries in flight; retry with backoff (the request's nonce was not used)"),
    "tx_queue_full": (503, "too many transactions waiting for a block; retry with backoff (nothing was queued)"),
    "not_found": (404, "no such resource"),
    "not_applied": (404, "the chain transaction is not applied by this worker yet (or was pruned from its memory); retry later"),
    "rejected": (422, "the chain message was skipped by every worker; the message says why"),
    "use_chain": (400, "this worker follows a chain: transactions are chain messages (phat tx --chain …)"),
    "method_not_allowed": (405, "the route takes another HTTP method (the encrypted routes take POST)"),
    "forbidden": (403, "the signer may not read this resource"),
    "unavailable": (503, "the worker is not ready (syncing or stopping)"),
    "internal": (500, "a bug in the worker; the request changed nothing"),
}


class RpcError(PhatError):
    """An error with a public code; safe to show to the client (never holds secrets)."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown RPC error code {code!r}")
        super().__init__(message)
        self.code = code
        self.status = ERROR_CODES[code][0]

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": str(self)}}
