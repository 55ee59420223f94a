"""The local cache through real wasm: ids 6 cache_set, 7 cache_set_expiration, 8 cache_get,
9 cache_remove (HOST-ABI §3.4) — queries write directly, transactions emit CacheOp events that
apply only after the commit, estimates change nothing — and the LocalCache store itself."""

from __future__ import annotations

import threading

import pytest

from phat_runtime.codec.scale import Writer
from phat_runtime.pink.cache import DEFAULT_LIFETIME_S, DEFAULT_MAX_BYTES, LocalCache
from phat_runtime.pink.events import Status
from phat_runtime.pink.services import PinkServices
from phat_runtime.pink.structs import PINK_EVENT_TOPIC, CacheOpKind, PinkEventKind
from phat_runtime.types import ExecutionMode

from .wat_ext import (
    DETERMINISTIC,
    MODES,
    SCRIPT_CONTRACT,
    FakeClock,
    Out,
    PinkHarness,
    Script,
    blob,
)

SET, SET_EXPIRATION, GET, REMOVE = 6, 7, 8, 9
Q, TX, EST = ExecutionMode.QUERY, ExecutionMode.TRANSACTION, ExecutionMode.ESTIMATE
NONE = b"\x00"


def some(value: bytes) -> bytes:
    return b"\x01" + blob(value)


def set_args(key: bytes, value: bytes) -> bytes:
    return blob(key) + blob(value)


def expire_args(key: bytes, seconds: int) -> bytes:
    return blob(key) + Writer().u64(seconds).finish()


@pytest.fixture()
def h() -> PinkHarness:
    return PinkHarness()


# --- queries ---------------------------------------------------------------------------------


def test_query_set_get_remove(h: PinkHarness) -> None:
    result, outs = h.run(
        Script().ext(SET, set_args(b"k", b"v1")).ext(GET, blob(b"k")).ext(REMOVE, blob(b"k"))
        .ext(GET, blob(b"k")).ext(REMOVE, blob(b"k"))
    )
    assert result.error is None
    assert outs[0].status == 0 and outs[0].output == b""  # Ok(()): status 0, empty output
    assert [o.output for o in outs[1:]] == [some(b"v1"), some(b"v1"), NONE, NONE]
    assert result.pink_events == [] and result.events == []


def test_query_writes_survive_the_query(h: PinkHarness) -> None:
    h.one(SET, set_args(b"k", b"kept"))
    assert h.one(GET, blob(b"k")).output == some(b"kept")
    assert h.cache.get(h.script, b"k") == b"kept"


def test_contracts_have_separate_namespaces(h: PinkHarness) -> None:
    other = h.deploy(SCRIPT_CONTRACT, salt=b"other")
    h.one(SET, set_args(b"k", b"mine"))
    _, outs = h.run(Script().ext(GET, blob(b"k")), contract=other)
    assert outs[0].output == NONE


def test_quota_exceeded_is_status_1_and_keeps_the_old_value() -> None:
    clock = FakeClock()
    h = PinkHarness(PinkServices(cache=LocalCache(max_bytes=20, clock=clock)))
    assert h.one(SET, set_args(b"key", b"0123456789")).status == 0  # 13 bytes
    over = h.one(SET, set_args(b"two", b"0123456789"))  # 13 more: 26 > 20
    assert (over.status, over.output) == (1, b"")
    replace = h.one(SET, set_args(b"key", b"0123456789abcdefg"))  # 3 + 17 = 20 exactly: fits
    assert replace.status == 0
    too_big = h.one(SET, set_args(b"key", b"0123456789abcdefgh"))
    assert too_big.status == 1
    assert h.one(GET, blob(b"key")).output == some(b"0123456789abcdefg")


def test_quota_is_shared_by_contracts_and_expired_items_make_room() -> None:
    cache = LocalCache(max_bytes=30, clock=FakeClock())
    h = PinkHarness(PinkServices(cache=cache))
    other = h.deploy(SCRIPT_CONTRACT, salt=b"other")
    h.one(SET, set_args(b"a", bytes(19)))  # 20 bytes
    _, outs = h.run(Script().ext(SET, set_args(b"b", bytes(19))), contract=other)
    assert outs[0].status == 1  # the other contract's 20 bytes do not fit the shared 30
    h.one(SET_EXPIRATION, expire_args(b"a", 5))
    assert isinstance(cache.clock, FakeClock)
    cache.clock.advance(6)
    _, outs = h.run(Script().ext(SET, set_args(b"b", bytes(19))), contract=other)
    assert outs[0].status == 0  # the expired item was collected before refusing
    assert cache.size == 20


def test_no_cache_on_the_worker_means_no_room() -> None:
    h = PinkHarness(PinkServices())
    assert h.one(SET, set_args(b"k", b"v")).status == 1
    assert h.one(GET, blob(b"k")).output == NONE
    assert h.one(REMOVE, blob(b"k")).output == NONE
    assert h.one(SET_EXPIRATION, expire_args(b"k", 0)).status == 0


def test_items_expire_after_seven_days_by_default(h: PinkHarness) -> None:
    h.one(SET, set_args(b"k", b"v"))
    h.clock.advance(DEFAULT_LIFETIME_S - 1)
    assert h.one(GET, blob(b"k")).output == some(b"v")
    h.clock.advance(1)
    assert h.one(GET, blob(b"k")).output == NONE
    assert h.cache.size == 0  # read lazily collected it


def test_set_expiration_moves_the_deadline_and_zero_removes(h: PinkHarness) -> None:
    h.one(SET, set_args(b"a", b"1"))
    h.one(SET, set_args(b"b", b"2"))
    h.one(SET_EXPIRATION, expire_args(b"a", 10))
    h.one(SET_EXPIRATION, expire_args(b"b", 0))
    h.one(SET_EXPIRATION, expire_args(b"missing", 10))  # nothing to do
    assert h.one(GET, blob(b"b")).output == NONE
    h.clock.advance(9)
    assert h.one(GET, blob(b"a")).output == some(b"1")
    h.clock.advance(1)
    assert h.one(GET, blob(b"a")).output == NONE


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("func", "payload"),
    [(SET, blob(b"k")), (SET_EXPIRATION, blob(b"k") + bytes(7)), (GET, b"\x08k"), (REMOVE, blob(b"k") + b"!")],
)
def test_undecodable_arguments_fail(h: PinkHarness, mode: ExecutionMode, func: int, payload: bytes) -> None:
    assert h.failure(func, payload, mode) == "DecodingFailed"


# --- transactions and estimates --------------------------------------------------------------------


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_cache_get_outside_queries_is_always_none(h: PinkHarness, mode: ExecutionMode) -> None:
    h.cache.set(h.script, b"k", b"v")
    assert h.one(GET, blob(b"k"), mode).output == NONE
    assert h.one(GET, blob(b"k"), Q).output == some(b"v")


def test_transaction_ops_apply_after_the_commit(h: PinkHarness) -> None:
    h.cache.set(h.script, b"old", b"x")
    h.cache.set(h.script, b"moving", b"y")
    result, outs = h.run(
        Script().ext(SET, set_args(b"k", b"v")).ext(GET, blob(b"k")).ext(REMOVE, blob(b"old"))
        .ext(SET_EXPIRATION, expire_args(b"moving", 60)),
        TX,
    )
    assert result.success
    assert outs[0] == Out(0, b"")
    assert outs[1].output == NONE  # not readable in the transaction, not even its own write
    assert outs[2].output == NONE  # a transaction's remove answers None
    assert result.events == []  # CacheOps are not ordinary events
    ops = [(r.event.cache_op, r.status) for r in result.pink_events if r.event]
    assert ops == [
        (CacheOpKind.SET, Status.APPLIED), (CacheOpKind.REMOVE, Status.APPLIED),
        (CacheOpKind.SET_EXPIRATION, Status.APPLIED),
    ]
    assert all(r.contract == h.script and r.event and r.event.kind is PinkEventKind.CACHE_OP for r in result.pink_events)
    assert h.cache.get(h.script, b"k") == b"v" and h.cache.get(h.script, b"old") is None
    h.clock.advance(61)
    assert h.cache.get(h.script, b"moving") is None


def test_ops_are_applied_only_once_the_transaction_is_committed(h: PinkHarness) -> None:
    seen: list[int] = []

    class WatchingCache(LocalCache):
        def set(self, contract: bytes, key: bytes, value: bytes) -> bool:
            seen.append(h.balance(h.script))  # what the committed state says at that moment
            return super().set(contract, key, value)

    h.services.cache = WatchingCache(clock=h.clock)
    before = h.balance(h.script)
    result = h.call(h.script, Script().ext(SET, set_args(b"k", b"v")).encode(), mode=TX, value=1000)
    assert result.success and seen == [before + 1000]


def test_reverted_transaction_applies_nothing(h: PinkHarness) -> None:
    result, outs = h.run(Script().ext(SET, set_args(b"k", b"v")).ext(REMOVE, blob(b"kept")), TX, revert=True)
    assert result.reverted and outs[0].status == 0
    assert result.pink_events == []
    assert h.cache.get(h.script, b"k") is None


def test_failed_transaction_applies_nothing(h: PinkHarness) -> None:
    result, _ = h.run(Script().ext(SET, set_args(b"k", b"v")).ext(SET, blob(b"broken")), TX)
    assert result.error is not None and result.error.kind == "DecodingFailed"
    assert h.cache.get(h.script, b"k") is None


def test_ops_of_a_reverted_callee_are_dropped_and_a_succeeding_callees_kept(h: PinkHarness) -> None:
    callee = h.deploy(SCRIPT_CONTRACT, salt=b"callee")
    inner = Script().ext(SET, set_args(b"inner", b"1"))
    script = Script().call(callee, inner, revert=True).call(callee, Script().ext(SET, set_args(b"ok", b"2")))
    result, outs = h.run(script.ext(SET, set_args(b"outer", b"3")), TX)
    assert result.success and [o.status for o in outs] == [2, 0, 0]  # CalleeReverted, Success, Ok
    assert h.cache.get(callee, b"inner") is None
    assert h.cache.get(callee, b"ok") == b"2"
    assert h.cache.get(h.script, b"outer") == b"3"
    assert [r.contract for r in result.pink_events] == [callee, h.script]


def test_estimate_emits_but_changes_nothing(h: PinkHarness) -> None:
    h.cache.set(h.script, b"kept", b"x")
    h.cache.set(h.script, b"lasting", b"y")
    result, outs = h.run(
        Script().ext(SET, set_args(b"k", b"v")).ext(REMOVE, blob(b"kept"))
        .ext(SET_EXPIRATION, expire_args(b"lasting", 0)).ext(GET, blob(b"kept")),
        EST,
    )
    assert result.success and [(o.status, o.output) for o in outs] == [(0, b""), (0, NONE), (0, b""), (0, NONE)]
    assert [r.status for r in result.pink_events] == [Status.NOT_APPLIED] * 3
    assert h.cache.get(h.script, b"k") is None and h.cache.get(h.script, b"kept") == b"x"
    assert h.cache.get(h.script, b"lasting") == b"y"


def test_transaction_set_ignores_the_quota_at_call_time_and_drops_at_apply() -> None:
    # pink answers Ok in the transaction; a set that does not fit is dropped when applied.
    h = PinkHarness(PinkServices(cache=LocalCache(max_bytes=4, clock=FakeClock())))
    result, outs = h.run(Script().ext(SET, set_args(b"key", b"too long")), TX)
    assert outs[0].status == 0 and result.pink_events[0].status is Status.APPLIED
    assert h.cache.get(h.script, b"key") is None


def test_the_cache_op_event_is_pinks_encoding(h: PinkHarness) -> None:
    result, _ = h.run(Script().ext(SET, set_args(b"k", b"v")), TX)
    assert result.pink_events[0].raw == bytes([5, 0]) + blob(b"k") + blob(b"v")
    assert b"\x40phala.pink.event" + bytes(15) == PINK_EVENT_TOPIC


# --- LocalCache itself -----------------------------------------------------------------------


def test_size_counts_keys_and_values() -> None:
    cache = LocalCache(clock=FakeClock())
    assert cache.max_bytes == DEFAULT_MAX_BYTES == 20 * 1024 * 1024
    assert cache.set(b"c", b"foo", b"bar") and cache.size == 6
    assert cache.set(b"c", b"foo", b"foobar") and cache.size == 9
    assert cache.set(b"c", b"foo", b"foo") and cache.size == 6
    assert cache.remove(b"c", b"foo") == b"foo" and cache.size == 0 and len(cache) == 0


def test_periodic_gc_sweeps_expired_items_of_every_contract() -> None:
    clock = FakeClock()
    cache = LocalCache(gc_interval=3, default_lifetime_s=10, clock=clock)
    cache.set(b"a", b"k1", b"v")
    cache.set(b"b", b"k2", b"v")
    clock.advance(10)
    assert len(cache) == 2  # expired, but nobody looked yet
    cache.set(b"c", b"k3", b"v")  # third write: sweep
    assert len(cache) == 1 and cache.size == 3
    clock.advance(10)
    assert cache.collect() == 1 and cache.size == 0


def test_remove_of_an_expired_item_returns_none() -> None:
    clock = FakeClock()
    cache = LocalCache(default_lifetime_s=1, clock=clock)
    cache.set(b"c", b"k", b"v")
    clock.advance(1)
    assert cache.remove(b"c", b"k") is None and cache.size == 0


def test_concurrent_writers_keep_the_size_consistent() -> None:
    cache = LocalCache(max_bytes=10_000, clock=FakeClock())

    def writer(n: int) -> None:
        for i in range(500):
            cache.set(bytes([n]), str(i % 50).encode(), bytes(i % 7))
            cache.remove(bytes([n]), str((i + 25) % 50).encode())

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = sum(
        len(k) + len(v) for c in range(8) for k in (str(i).encode() for i in range(50))
        if (v := cache.get(bytes([c]), k)) is not None
    )
    assert cache.size == expected
