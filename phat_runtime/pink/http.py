"""pink chain-extension functions 1 ``http_request`` and 22 ``batch_http_request`` (HOST-ABI
§3.2–§3.3): SCALE in, the cluster's egress (``PinkServices.egress``, see ``pink.egress``), SCALE
out — and their deterministic stand-ins for transactions and estimates.

How an egress outcome reaches the contract (pink's ``http_request`` / ``batch_http_request``)::

    outcome of one request        http_request (id 1)             in a batch (id 22)
    HttpResponse (incl. 523)      status 0, the response          Ok(response)
    InvalidUrl / InvalidMethod /  the call fails:                 Err(error)
    InvalidHeaderName / -Value /  ChainExtensionError
    FailedToCreateClient /        kind "HttpRequestFailed"
    Timeout (incl. no time left)
    NotAllowed / NetworkError /   status 0, 524 "IO Error",       Err(error)
    ResponseTooLarge /            body "<Error>: <detail>"
    TooManyHeaders

A batch as a whole: more than 5 requests → status TooManyRequests (8); no egress configured →
NotAllowed (7); not finished within its timeout + 200 ms → Timeout (6); otherwise status 0 and
the output is the ``Vec<Result<HttpResponse, HttpRequestError>>`` alone (``handle_status``).
Must not: touch sockets (the egress does) or branch on the execution mode (``register`` picks).
"""

from __future__ import annotations

import threading
import time
from typing import TypeVar

from phat_runtime.codec.scale import Writer
from phat_runtime.errors import ChainExtensionError, InternalError
from phat_runtime.pink.egress import Egress, EgressError, check_request, pink_name
from phat_runtime.pink.extension import ChainExtensionRegistry, ExtensionEnv, decode
from phat_runtime.pink.structs import HttpRequest, HttpRequestError, HttpResponse
from phat_runtime.types import ExecutionMode

T = TypeVar("T")

HTTP_REQUEST, BATCH_HTTP_REQUEST = 1, 22
#: pink: ``MAX_CONCURRENT_REQUESTS = 5``.
MAX_BATCH_REQUESTS = 5
#: pink bounds a whole batch by its timeout plus this much.
BATCH_GRACE_MS = 200
#: Errors of pink runtime 1.0; ``http_request`` fails the call with them (later ones become 524).
FAILS_THE_CALL = frozenset({
    HttpRequestError.INVALID_URL, HttpRequestError.INVALID_METHOD, HttpRequestError.INVALID_HEADER_NAME,
    HttpRequestError.INVALID_HEADER_VALUE, HttpRequestError.FAILED_TO_CREATE_CLIENT, HttpRequestError.TIMEOUT,
})
#: What a transaction gets from ``http_request`` (pink's CallInCommand).
IN_TRANSACTION = HttpResponse(523, "API Unavailable", [], b"HTTP request is not supported in transaction")

Outcome = HttpResponse | HttpRequestError


# --- query backend ------------------------------------------------------------------------------


def http_request(env: ExtensionEnv, input_data: bytes) -> tuple[int, bytes]:
    """``http_request(request: HttpRequest) -> HttpResponse`` with the query's remaining wall
    clock as the timeout.

    Availability: query only
    """
    request = decode(input_data, "http_request(HttpRequest)", HttpRequest.read)
    if request.url.startswith("sidevm://"):
        return 0, _sidevm(request).encode()
    try:
        response = perform(env.services.egress, request, env.remaining_ms())
    except EgressError as exc:
        if exc.kind in FAILS_THE_CALL:
            raise ChainExtensionError(f"HttpRequestFailed: {exc}", kind="HttpRequestFailed") from exc
        response = HttpResponse(524, "IO Error", [], str(exc).encode())
    return 0, response.encode()


def batch_http_request(env: ExtensionEnv, input_data: bytes) -> tuple[int, bytes]:
    """``batch_http_request(requests: Vec<HttpRequest>, timeout_ms: u64) -> Result<Vec<Result<
    HttpResponse, HttpRequestError>>, HttpRequestError>`` (handle_status): at most 5 requests,
    run concurrently, each within min(timeout_ms, remaining wall clock).

    Availability: query only
    """
    requests, timeout_ms = decode(
        input_data, "batch_http_request(Vec<HttpRequest>, u64)", lambda r: (r.vec(HttpRequest.read), r.u64())
    )
    if len(requests) > MAX_BATCH_REQUESTS:
        return HttpRequestError.TOO_MANY_REQUESTS.status, b""
    egress = env.services.egress
    if egress is None:
        return HttpRequestError.NOT_ALLOWED.status, b""
    timeout_ms = min(timeout_ms, env.remaining_ms())
    outcomes = _concurrently(egress, requests, timeout_ms)
    if outcomes is None:
        return HttpRequestError.TIMEOUT.status, b""
    return 0, Writer().vec(outcomes, _write_outcome).finish()


def perform(egress: Egress | None, request: HttpRequest, timeout_ms: int) -> HttpResponse:
    """One request as pink's ``async_http_request``: returns a response or raises EgressError."""
    if egress is None:
        raise EgressError(HttpRequestError.NOT_ALLOWED, "this worker has no HTTP egress configured")
    if timeout_ms <= 0:
        raise EgressError(HttpRequestError.TIMEOUT, "no time left for the request")
    check_request(request)
    return egress.send(request, timeout_ms / 1000)


def _concurrently(egress: Egress, requests: list[HttpRequest], timeout_ms: int) -> list[Outcome] | None:
    """Run every request on its own thread; None if the batch outlives timeout + grace."""
    outcomes: list[Outcome | BaseException | None] = [None] * len(requests)

    def run(index: int, request: HttpRequest) -> None:
        try:
            outcomes[index] = perform(egress, request, timeout_ms)
        except EgressError as exc:
            outcomes[index] = exc.kind
        except BaseException as exc:  # re-raised on the calling thread below
            outcomes[index] = exc

    threads = [
        threading.Thread(target=run, args=item, name=f"phat-http-batch-{item[0]}", daemon=True)
        for item in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    # A straggler (an egress ignoring its timeout) is left behind, never waited for.
    deadline = time.monotonic() + (timeout_ms + BATCH_GRACE_MS) / 1000
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return None
    done: list[Outcome] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException) or outcome is None:
            raise InternalError(f"HTTP egress failed: {outcome!r}") from outcome
        done.append(outcome)
    return done


def _write_outcome(w: Writer, outcome: Outcome) -> None:
    if isinstance(outcome, HttpResponse):
        outcome.write(w.u8(0))
    else:
        w.u8(1).u8(int(outcome))


def _sidevm(request: HttpRequest) -> HttpResponse:
    # pink routes sidevm://<contract id hex> to that contract's SideVM; there is none here, so
    # the answer is what pink gives when the SideVM query fails.
    try:
        ok = len(bytes.fromhex(request.url.removeprefix("sidevm://"))) == 32
    except ValueError:
        ok = False
    if not ok:
        raise ChainExtensionError(
            f"HttpRequestFailed: {pink_name(HttpRequestError.INVALID_URL)}: {request.url!r} is not "
            "sidevm://<32-byte contract id in hex>",
            kind="HttpRequestFailed",
        )
    return HttpResponse(500, "Internal Server Error", [], b"SideVM is not available in this runtime")


# --- deterministic backend (transaction, estimate) -----------------------------------------------


def http_request_in_transaction(env: ExtensionEnv, input_data: bytes) -> tuple[int, bytes]:
    """``http_request`` outside queries: no network, always 523 "API Unavailable".

    Availability: query only (this is the transaction / estimate stand-in)
    """
    decode(input_data, "http_request(HttpRequest)", HttpRequest.read)
    return 0, IN_TRANSACTION.encode()


def batch_http_request_in_transaction(env: ExtensionEnv, input_data: bytes) -> tuple[int, bytes]:
    """``batch_http_request`` outside queries: no network, always status NotAllowed (7).

    Availability: query only (this is the transaction / estimate stand-in)
    """
    decode(input_data, "batch_http_request(Vec<HttpRequest>, u64)", lambda r: (r.vec(HttpRequest.read), r.u64()))
    return HttpRequestError.NOT_ALLOWED.status, b""


def register(registry: ChainExtensionRegistry, mode: ExecutionMode) -> None:
    """Register ids 1 and 22: the network in QUERY, the deterministic stand-ins otherwise."""
    if mode is ExecutionMode.QUERY:
        registry.register(HTTP_REQUEST, http_request)
        registry.register(BATCH_HTTP_REQUEST, batch_http_request)
    else:
        registry.register(HTTP_REQUEST, http_request_in_transaction)
        registry.register(BATCH_HTTP_REQUEST, batch_http_request_in_transaction)
