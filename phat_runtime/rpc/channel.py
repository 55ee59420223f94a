"""The client's end of an encrypted session (wire format v2) and the checks every answer gets.

- :class:`ClientSession` — the keys and counter of one session with one worker;
- :class:`Prepared` — one signed request sealed in a session, ready to send; its
  :meth:`Prepared.finish` opens the answer and verifies the receipt (:func:`check_receipt`);
- the client's errors, all :class:`~phat_runtime.errors.PhatError` with a one-line message.

Importable without wasmtime.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

from phat_runtime.codec.messages import Outcome, Receipt, RequestKind, SignedRequest
from phat_runtime.crypto.e2e import EnvelopeError, SessionKeys, session_keys
from phat_runtime.errors import DecodeError, PhatError
from phat_runtime.rpc import bodies
from phat_runtime.rpc.bodies import BodyError, Route

#: Where each route's frames go.
PATHS = {Route.QUERY: "/v2/query", Route.TX: "/v2/tx", Route.LOGS: "/v2/logs", Route.RESULT: "/v2/result"}
#: A session is renewed this long (at most a tenth of its life) before the worker forgets it.
RENEW_MARGIN_S = 60


class VerificationError(PhatError):
    """The worker's attestation or a receipt did not verify: do not trust the response."""


class WorkerError(PhatError):
    """The worker refused the request; ``code`` is one of docs/rpc.md's error codes."""

    def __init__(self, code: str, message: str, status: int) -> None:
        # Execution errors already start with their kind ("DuplicateContract: ..."): say it once.
        super().__init__(message if message.startswith(f"{code}:") else f"{code}: {message}")
        self.code = code
        self.status = status


class WorkerUnreachable(PhatError):
    """No HTTP exchange with the worker was possible (refused, reset, DNS, TLS)."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach the worker at {url} ({detail}); is `phat serve` running there?")
        self.url = url


class WorkerTimeout(WorkerUnreachable):
    """The worker accepted the connection but did not answer in time. A transaction may still
    be included: query its effect before sending it again."""

    def __init__(self, url: str, timeout_s: float | None) -> None:
        PhatError.__init__(self, f"the worker at {url} did not answer within {timeout_s} s; it may be "
                           "overloaded (a transaction sent may still be included)")
        self.url = url


@dataclass(frozen=True)
class Verified:
    """A response whose receipt verified against the attested worker."""

    request: SignedRequest
    outcome: Outcome
    receipt: Receipt


class ClientSession:
    """One session: its id, both keys, and the next request counter (thread-safe)."""

    def __init__(self, session_id: bytes, keys: SessionKeys, lifetime_s: int) -> None:
        self.id = session_id
        self.keys = keys
        self.renew_at = time.monotonic() + lifetime_s - min(RENEW_MARGIN_S, lifetime_s / 10)
        self._counters = itertools.count(1)
        self._lock = threading.Lock()

    def next_counter(self) -> int:
        with self._lock:
            return next(self._counters)

    @property
    def stale(self) -> bool:
        return time.monotonic() >= self.renew_at

    @staticmethod
    def from_welcome(private: bytes, public: bytes, worker_ecdh: bytes, welcome: bytes) -> ClientSession:
        """The session the worker's answer to our handshake (``encode_hello(public)``) opened;
        VerificationError unless the answer proves the worker holds the attested ECDH key."""
        try:
            session_id, lifetime_s, confirm = bodies.decode_welcome(welcome)
            keys = session_keys(private, worker_ecdh, public, worker_ecdh, session_id)
        except (BodyError, EnvelopeError) as exc:
            raise VerificationError(f"the session answer is unusable: {exc}") from None
        if bodies.confirm_tag(keys, session_id) != confirm:
            raise VerificationError("the worker's session answer does not prove it holds the attested ECDH key")
        return ClientSession(session_id, keys, lifetime_s)


@dataclass(frozen=True)
class Prepared:
    """A signed request sealed in a session under its own counter: send ``body`` to ``path``."""

    route: Route
    request: SignedRequest
    session: ClientSession
    counter: int
    body: bytes
    identity: bytes  # the attested worker identity the receipt must be signed by
    content_type = bodies.CONTENT_TYPE

    @staticmethod
    def seal(route: Route, request: SignedRequest, session: ClientSession, identity: bytes) -> Prepared:
        counter = session.next_counter()
        body = bodies.seal_request(session.keys, session.id, counter, route, request.encode())
        return Prepared(route, request, session, counter, body, identity)

    @property
    def path(self) -> str:
        return PATHS[self.route]

    def open(self, answer: bytes) -> bytes:
        """The plaintext of the worker's answer to this request."""
        try:
            return bodies.open_response(self.session.keys, self.counter, self.route, answer)
        except (BodyError, EnvelopeError) as exc:
            raise VerificationError(f"the response does not open: {exc}") from None

    def finish(self, answer: bytes) -> Verified:
        """Open a query / transaction answer and verify its receipt."""
        try:
            outcome, receipt = bodies.decode_result(self.open(answer))
        except (DecodeError, ValueError) as exc:
            raise VerificationError(f"the response does not decode: {exc}") from None
        check_receipt(self.request, outcome, receipt, self.identity)
        return Verified(self.request, outcome, receipt)


def check_receipt(request: SignedRequest, outcome: Outcome, receipt: Receipt, identity: bytes, *,
                  request_hash: bytes | None = None, kind: RequestKind | None = None) -> None:
    """Raise VerificationError unless ``receipt`` is the attested worker's statement about
    exactly this request and this outcome. A chain transaction's receipt binds the hash of the
    remark that carried it (``request_hash``) and the transaction's ``kind``."""
    problems = []
    if receipt.worker != identity:
        problems.append("signed by another key than the attested worker identity")
    if not receipt.signature_valid():
        problems.append("receipt signature does not verify")
    if receipt.request_hash != (request.request_hash if request_hash is None else request_hash):
        problems.append("receipt is for another request")
    if receipt.output_hash != outcome.output_hash:
        problems.append("output does not match the receipt's output hash")
    if receipt.kind is not (request.kind if kind is None else kind):
        problems.append("receipt kind differs from the request")
    if problems:
        raise VerificationError("; ".join(problems))
