"""Weighted-fair admission to the query pool (worker/scheduler.py): contracts of weights 1 and
3 contending for the pool are admitted 1 : 3 — on the policy itself, deterministically, and on
the threaded slots, in an order fixed by the policy (no timing)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.guards import QueryPool
from phat_runtime.worker.scheduler import SCALE, FairQueue, WeightedSlots, cost

LIGHT, HEAVY = b"\x01" * 32, b"\x03" * 32
WEIGHTS = {LIGHT: 1, HEAVY: 3}


def _shares(order: list[bytes]) -> tuple[int, int]:
    counts = Counter(order)
    return counts[LIGHT], counts[HEAVY]


def test_two_contended_contracts_of_weights_1_and_3_are_admitted_1_to_3() -> None:
    queue: FairQueue[tuple[bytes, int]] = FairQueue()
    for i in range(400):  # both keep far more waiting than is admitted: contended throughout
        queue.push(LIGHT, 1, (LIGHT, i))
        queue.push(HEAVY, 3, (HEAVY, i))
    order = [queue.pop() for _ in range(400)]
    assert _shares([key for key, _ in order]) == (100, 300)
    for window in range(0, 400, 4):  # and evenly: every 4 admissions are 1 light + 3 heavy
        assert _shares([key for key, _ in order[window:window + 4]]) == (1, 3), window
    # Each contract's own queries keep their arrival order.
    for key in WEIGHTS:
        served = [i for k, i in order if k == key]
        assert served == sorted(served)
    assert len(queue) == 400


def test_shares_follow_any_weights_and_equal_weights_alternate() -> None:
    weights = {bytes([n]) * 32: n for n in (1, 2, 5)}
    queue: FairQueue[bytes] = FairQueue()
    for _ in range(800):
        for key, weight in weights.items():
            queue.push(key, weight, key)
    counts = Counter(queue.pop() for _ in range(800))
    assert [counts[k] for k in weights] == [100, 200, 500]
    same: FairQueue[bytes] = FairQueue()
    for _ in range(3):
        same.push(LIGHT, 1, LIGHT)
        same.push(HEAVY, 1, HEAVY)
    assert [same.pop() for _ in range(6)] == [LIGHT, HEAVY] * 3  # arrival order breaks ties


def test_an_idle_contract_banks_no_credit() -> None:
    queue: FairQueue[bytes] = FairQueue()
    for _ in range(100):
        queue.push(HEAVY, 3, HEAVY)
    for _ in range(60):
        queue.pop()  # only HEAVY ran: LIGHT was idle, not owed 60 admissions
    for _ in range(100):
        queue.push(LIGHT, 1, LIGHT)
    assert _shares([queue.pop() for _ in range(20)]) == (5, 15)


def test_weights_below_1_count_as_1_and_huge_weights_cost_at_least_1() -> None:
    assert cost(0) == cost(1) == SCALE and cost(2**32 - 1) == 1 and cost(2**40) == 1
    queue: FairQueue[bytes] = FairQueue()
    for _ in range(10):
        queue.push(LIGHT, 0, LIGHT)
        queue.push(HEAVY, 1, HEAVY)
    assert _shares([queue.pop() for _ in range(10)]) == (5, 5)


def test_idle_keys_are_forgotten() -> None:
    queue: FairQueue[bytes] = FairQueue()
    queue.push(HEAVY, 3, HEAVY)
    for _ in range(100):
        queue.push(HEAVY, 3, HEAVY)  # always one waiting: contended throughout
    heavy = 0
    for n in range(10_000):  # a stream of contracts with one query each, next to HEAVY's
        key = n.to_bytes(32, "little")
        queue.push(key, 1, key)
        while queue.pop() != key:
            heavy += 1
            queue.push(HEAVY, 3, HEAVY)
        assert len(queue._finish) <= 4 * 1 + 64 + 1  # memory stays bounded
    assert heavy >= 9_999  # not starved by the newcomers: at least one admission per newcomer
    while queue:
        queue.pop()
    assert queue._finish == {}


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def _contend(acquire, release, waiting, per_key: int = 40) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Hold the only slot, queue ``per_key`` waiters of each contract (all waiting before any
    is admitted), then let them through one at a time; the order they were admitted in."""
    order: list[bytes] = []
    acquire(b"holder")

    def run(key: bytes) -> None:
        acquire(key)
        order.append(key)  # holds the only slot: appends are serialized
        release()

    threads = []
    for _ in range(per_key):
        for key in (LIGHT, HEAVY):
            threads.append(threading.Thread(target=run, args=(key,)))
            threads[-1].start()
    _wait_for(lambda: waiting() == 2 * per_key, "every waiter queued")
    release()
    for thread in threads:
        thread.join(60)
    return order


def test_threaded_slots_admit_in_the_fair_order() -> None:
    slots = WeightedSlots(1, WEIGHTS.get)  # type: ignore[arg-type]
    order = _contend(slots.acquire, slots.release, lambda: slots.waiting)
    assert len(order) == 80
    assert _shares(order[:40]) == (10, 30)  # while both wait: 1 : 3
    assert order[-10:] == [LIGHT] * 10  # the light contract's rest, once the heavy one is done
    assert slots.acquire(blocking=False) and not slots.acquire(blocking=False)
    slots.release()


def test_the_query_pool_admits_by_weight_and_still_refuses_beyond_its_backlog() -> None:
    asked: list[bytes] = []

    def weight_of(contract: bytes) -> int:
        asked.append(contract)
        return WEIGHTS.get(contract, 1)

    pool = QueryPool(max_in_flight=1, backlog=200, weight_of=weight_of)
    with pool.slot(LIGHT):
        pass
    assert asked == []  # uncontended: no weight is read
    holders: list[object] = []

    def acquire(key: bytes) -> None:
        holder = pool.slot(key)
        holder.__enter__()
        holders.append(holder)

    def release() -> None:
        holders.pop().__exit__(None, None, None)  # type: ignore[attr-defined]

    order = _contend(acquire, release, lambda: pool.waiting)
    assert _shares(order[:40]) == (10, 30)
    assert pool.weight(HEAVY) == 3 and pool.admitted == 0

    full = QueryPool(max_in_flight=1, backlog=0)
    with full.slot(LIGHT), pytest.raises(RpcError) as refused, full.slot(HEAVY):
        pass
    assert refused.value.code == "pool_full"
