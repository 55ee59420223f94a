"""Admission guards of the query service: replay protection and the bounded query pool.

- :class:`NonceGuard`: each (origin, nonce) is accepted once while its deadline is in the
  future; deadlines may lie at most :data:`MAX_DEADLINE_AHEAD_MS` ahead, so the memory it
  needs is bounded by the request rate times that window.
- :class:`QueryPool`: at most ``max_in_flight`` queries run (pink: cores + 2), at most
  ``backlog`` wait (pink: 32); beyond that the request is refused at once with ``pool_full``.
  Waiting queries are admitted weighted-fair by their contract's weight (``worker/scheduler.py``).
"""

from __future__ import annotations

import heapq
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.scheduler import NO_CONTRACT, WeightedSlots

#: How far in the future a request's deadline may be.
MAX_DEADLINE_AHEAD_MS = 10 * 60 * 1000
#: pink's query backlog.
DEFAULT_BACKLOG = 32


def default_in_flight() -> int:
    """pink: number of cores + 2."""
    return (os.cpu_count() or 1) + 2


class NonceGuard:
    def __init__(self) -> None:
        self._seen: set[tuple[bytes, bytes]] = set()
        self._expiry: list[tuple[int, bytes, bytes]] = []
        self._lock = threading.Lock()

    def check_deadline(self, deadline_ms: int, now_ms: int) -> None:
        if deadline_ms <= now_ms:
            raise RpcError("expired", f"the request's deadline passed {now_ms - deadline_ms} ms ago; sign a new request")
        if deadline_ms > now_ms + MAX_DEADLINE_AHEAD_MS:
            raise RpcError(
                "expired",
                f"the deadline is more than {MAX_DEADLINE_AHEAD_MS // 1000} s ahead; use a nearer one",
            )

    def admit(self, origin: bytes, nonce: bytes, deadline_ms: int, now_ms: int) -> None:
        """Accept (origin, nonce) once; raises ``expired`` or ``replayed_nonce``."""
        self.check_deadline(deadline_ms, now_ms)
        key = (origin, nonce)
        with self._lock:
            while self._expiry and self._expiry[0][0] <= now_ms:
                _, o, n = heapq.heappop(self._expiry)
                self._seen.discard((o, n))
            if key in self._seen:
                raise RpcError("replayed_nonce", "this nonce was already used by this origin; use a fresh random nonce")
            self._seen.add(key)
            heapq.heappush(self._expiry, (deadline_ms, origin, nonce))

    def __len__(self) -> int:
        return len(self._seen)


class QueryPool:
    """``weight_of(contract)``: the contract's weight, for weighted-fair admission when the pool
    is contended (``worker/scheduler.py``); None: every contract weighs 1."""

    def __init__(self, max_in_flight: int | None = None, backlog: int = DEFAULT_BACKLOG,
                 weight_of: Callable[[bytes], int] | None = None) -> None:
        self.max_in_flight = max_in_flight or default_in_flight()
        self.backlog = backlog
        self._slots = WeightedSlots(self.max_in_flight, weight_of)
        self._lock = threading.Lock()
        self.admitted = 0  # running + waiting

    def try_slot(self) -> bool:
        """Take a run slot if one is free right now and no query waits for one (so weighted-fair
        admission is never jumped); :meth:`release` gives it back."""
        with self._lock:
            if self.admitted >= self.max_in_flight + self.backlog:
                return False
            if not self._slots.acquire(blocking=False):
                return False
            self.admitted += 1
            return True

    def release(self) -> None:
        """Give back a slot taken by :meth:`try_slot`."""
        self._slots.release()
        with self._lock:
            self.admitted -= 1

    @contextmanager
    def slot(self, contract: bytes = NO_CONTRACT) -> Iterator[None]:
        """Hold a run slot for a query of ``contract``; ``pool_full`` at once if running +
        waiting is at capacity. Waiting queries are admitted weighted-fair by contract."""
        with self._lock:
            if self.admitted >= self.max_in_flight + self.backlog:
                raise RpcError(
                    "pool_full",
                    f"{self.max_in_flight} queries running and {self.backlog} waiting; retry shortly",
                )
            self.admitted += 1
        try:
            self._slots.acquire(contract)
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self.admitted -= 1

    @property
    def waiting(self) -> int:
        """Queries waiting for a run slot."""
        return self._slots.waiting

    def weight(self, contract: bytes) -> int:
        """The weight admission gives ``contract``'s queries when the pool is contended."""
        return self._slots.weight(contract)
