"""Weighted-fair admission to the query pool: contract weights (``System::set_contract_weight``).

The system contract sets a weight per contract (``PinkEvent::SetContractWeight``, stored in
the cluster settings: ``runtime/settings.py``; 1 for a contract never weighed). When the query
pool is contended — every run slot taken, queries waiting — a freed slot goes to a waiting
query chosen by *start-time fair queuing* over contracts: each contract's queries get virtual
start tags that advance by ``SCALE // weight`` per admitted query, and the waiting contract
with the smallest tag goes next. So while contracts of weights 1 and 3 both have queries
waiting, they are admitted 1 : 3; a contract that was idle does not bank credit (its tag
starts at the current virtual time), and once nobody waits the history is dropped; queries of
one contract keep their arrival order, and equal tags go in arrival order. Weights below 1
count as 1.

Without contention nothing changes: a free slot is taken at once and no weight is read.

- :class:`FairQueue` is the policy alone: no threads, no clock — deterministic, and tested so.
- :class:`WeightedSlots` is a counting semaphore whose waiters are ordered by a FairQueue; a
  released slot is handed directly to the chosen waiter. ``QueryPool`` (``worker/guards.py``)
  uses it in place of a plain semaphore, with the worker reading weights from the committed
  cluster settings.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
#: Virtual time one admission of a weight-1 contract costs (weights are u32 in pink, so every
#: weight's cost ``SCALE // weight`` is at least 1 and tags stay exact integers).
SCALE = 1 << 32
#: The key of queries that name no contract.
NO_CONTRACT = b""


def cost(weight: int) -> int:
    return SCALE // max(1, min(weight, SCALE))


class FairQueue(Generic[T]):
    """Items waiting per key, popped in weighted-fair order (module docstring). Not thread-safe."""

    def __init__(self) -> None:
        self._waiting: dict[bytes, deque[T]] = {}
        self._weight: dict[bytes, int] = {}  # of keys with items waiting
        self._finish: dict[bytes, int] = {}  # tag after a key's last admission
        self._heap: list[tuple[int, int, bytes]] = []  # (start tag, arrival, key): one per waiting key
        self._virtual = 0
        self._arrivals = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, key: bytes, weight: int, item: T) -> None:
        """Queue ``item`` for ``key``; ``weight`` is the key's weight (read when it starts waiting)."""
        queue = self._waiting.get(key)
        if queue is None:
            queue = self._waiting[key] = deque()
            self._weight[key] = weight
            start = max(self._finish.get(key, 0), self._virtual)
            self._arrivals += 1
            heapq.heappush(self._heap, (start, self._arrivals, key))
        queue.append(item)

    def pop(self) -> T:
        """The next item to admit (IndexError when none waits)."""
        start, _, key = heapq.heappop(self._heap)
        queue = self._waiting[key]
        item = queue.popleft()
        self._virtual = start
        finish = start + cost(self._weight[key])
        self._finish[key] = finish
        if queue:
            self._arrivals += 1
            heapq.heappush(self._heap, (finish, self._arrivals, key))
        else:
            del self._waiting[key], self._weight[key]
        if not self._heap:
            self._finish.clear()  # nobody waits: no contention to be fair about
            return item
        # Virtual time never lags the earliest waiting tag: a contract arriving now starts
        # level with those waiting, not ahead of them (else a stream of new contracts, each
        # with one query, could overtake a waiting one indefinitely).
        self._virtual = max(self._virtual, self._heap[0][0])
        if len(self._finish) > 4 * len(self._waiting) + 64:
            self._forget_idle()
        return item

    def _forget_idle(self) -> None:
        """Drop tags that no longer matter (at or behind virtual time: a key starting again
        would start at the virtual time anyway), so idle contracts cost no memory."""
        self._finish = {k: f for k, f in self._finish.items() if f > self._virtual or k in self._waiting}


class WeightedSlots:
    """``slots`` run slots; waiters are admitted in :class:`FairQueue` order by their key's
    weight (``weight_of(key)``, asked only when the caller has to wait)."""

    def __init__(self, slots: int, weight_of: Callable[[bytes], int] | None = None) -> None:
        self.slots = slots
        self._free = slots
        self._weight_of = weight_of or (lambda _key: 1)
        self._lock = threading.Lock()
        self._queue: FairQueue[threading.Event] = FairQueue()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)

    def weight(self, key: bytes) -> int:
        """The weight the scheduler uses for ``key`` now."""
        return self._weight_of(key)

    def acquire(self, key: bytes = NO_CONTRACT, blocking: bool = True) -> bool:
        """Take a slot: at once if one is free and nobody waits, else (``blocking``) wait for
        the slot a release hands over. False only when not ``blocking`` and none is free."""
        if self._take():
            return True
        if not blocking:
            return False
        weight = self._weight_of(key)  # outside the lock: it may read the state
        ticket = threading.Event()
        with self._lock:
            if self._free > 0 and not self._queue:
                self._free -= 1
                return True
            self._queue.push(key, weight, ticket)
        ticket.wait()  # set by release(), which handed us its slot
        return True

    def release(self) -> None:
        """Give a slot back: to the waiter the fair queue chooses, else to the free count."""
        with self._lock:
            if self._queue:
                self._queue.pop().set()
            else:
                self._free += 1

    def _take(self) -> bool:
        with self._lock:
            if self._free > 0 and not self._queue:
                self._free -= 1
                return True
            return False

    def __enter__(self) -> WeightedSlots:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
