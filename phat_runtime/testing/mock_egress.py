"""A test double for contract HTTP egress: :class:`MockEgress` swaps the network for a function,
the way ``httpx.MockTransport(handler)`` does.

    egress = MockEgress(lambda request: response(200, b"pong"))
    cluster = Cluster(MemoryBackend(), services=PinkServices(egress=egress))

The handler gets each :class:`~phat_runtime.pink.structs.HttpRequest` (already past pink's request
checks when it comes from a contract) and returns an ``HttpResponse`` or raises
:class:`~phat_runtime.pink.egress.EgressError` to simulate a failure (Timeout, NetworkError...).
Every call is recorded in :attr:`MockEgress.calls` with the timeout it was given. Like the
product egress, a body over 2 MiB is ResponseTooLarge and no time left is Timeout.

Must not: be imported by product code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from phat_runtime.pink.egress import MAX_BODY_SIZE, EgressError, wire_response
from phat_runtime.pink.structs import HttpRequest, HttpRequestError, HttpResponse

Handler = Callable[[HttpRequest], HttpResponse]


def response(status: int = 200, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    """An HttpResponse as the product egress builds it (canonical reason phrase)."""
    return wire_response(status, [(n.encode(), v.encode()) for n, v in headers], body)


class MockEgress:
    """An :class:`~phat_runtime.pink.egress.Egress` whose network is ``handler``. Thread-safe."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        #: (request, timeout in seconds) of every send, in call order.
        self.calls: list[tuple[HttpRequest, float]] = []
        self._lock = threading.Lock()

    def send(self, request: HttpRequest, timeout_s: float) -> HttpResponse:
        with self._lock:
            self.calls.append((request, timeout_s))
        if timeout_s <= 0:
            raise EgressError(HttpRequestError.TIMEOUT, "no time left for the request")
        answer = self.handler(request)
        if len(answer.body) > MAX_BODY_SIZE:
            raise EgressError(HttpRequestError.RESPONSE_TOO_LARGE, f"the response body exceeds {MAX_BODY_SIZE} bytes")
        return answer
