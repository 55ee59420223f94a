"""Contract logs through real wasm: id 10 log(level, message), the debug_message buffer kept
at Debug level after each execution, and the LogStore ring buffers behind both."""

from __future__ import annotations

import pytest

from phat_runtime.codec.scale import Writer
from phat_runtime.pink.logs import RECORD_OVERHEAD, LogLevel, LogStore
from phat_runtime.pink.services import PinkServices
from phat_runtime.runtime.local import LocalCluster
from phat_runtime.testing.harness import to_wasm
from phat_runtime.types import ExecutionMode

from .wat_ext import MODES, SCRIPT_CONTRACT, FakeClock, PinkHarness, Script, blob

LOG = 10


def log_args(level: int, message: str) -> bytes:
    return bytes([level]) + Writer().string(message).finish()


@pytest.fixture()
def h() -> PinkHarness:
    return PinkHarness()


def store(h: PinkHarness) -> LogStore:
    assert isinstance(h.services.logs, LogStore)
    return h.services.logs


@pytest.mark.parametrize("mode", MODES)
def test_log_levels_and_record_fields(h: PinkHarness, mode: ExecutionMode) -> None:
    h.clock.now = 1_700_000_123.456
    script = Script()
    for level in (1, 2, 3, 4, 5, 0, 6, 255):
        script.ext(LOG, log_args(level, f"level {level}"))
    result, outs = h.run(script, mode)
    assert result.error is None and all(o == outs[0] for o in outs) and outs[0].output == b""
    records = store(h).records(h.script)
    assert [(r.level, r.message) for r in records] == [
        (LogLevel.ERROR, "level 1"), (LogLevel.WARN, "level 2"), (LogLevel.INFO, "level 3"),
        (LogLevel.DEBUG, "level 4"), (LogLevel.TRACE, "level 5"),
        (LogLevel.ERROR, "level 0"), (LogLevel.ERROR, "level 6"), (LogLevel.ERROR, "level 255"),
    ]
    first = records[0]
    assert (first.contract, first.mode, first.block_number, first.timestamp_ms) == (
        h.script, mode, h.block.number, 1_700_000_123_456,
    )


def test_logs_of_a_reverted_transaction_stay(h: PinkHarness) -> None:
    result, _ = h.run(Script().ext(LOG, log_args(3, "before the revert")), ExecutionMode.TRANSACTION, revert=True)
    assert result.reverted
    assert [r.message for r in store(h).records(h.script)] == ["before the revert"]


@pytest.mark.parametrize("mode", MODES)
def test_a_message_that_is_not_utf8_fails_the_call(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.failure(LOG, b"\x03" + blob(b"\xff\xfe"), mode) == "DecodingFailed"
    assert h.failure(LOG, b"\x03", mode) == "DecodingFailed"


def test_without_a_log_store_logs_are_dropped() -> None:
    h = PinkHarness(PinkServices())
    assert h.one(LOG, log_args(1, "nowhere")).status == 0


@pytest.mark.parametrize("mode", MODES)
def test_debug_messages_are_kept_at_debug_level(h: PinkHarness, mode: ExecutionMode) -> None:
    result, _ = h.run(Script().debug("hello ").ext(LOG, log_args(3, "logged")).debug("world"), mode)
    assert result.debug_message == "hello world"
    records = store(h).records(h.script)
    assert [(r.level, r.message) for r in records] == [(LogLevel.INFO, "logged"), (LogLevel.DEBUG, "hello world")]
    assert records[1].mode is mode and records[1].block_number == h.block.number


def test_debug_messages_of_a_failed_execution_are_kept(h: PinkHarness) -> None:
    result, _ = h.run(Script().debug("last words").ext(LOG, b"\x03"))
    assert result.error is not None
    assert [r.message for r in store(h).records(h.script)] == ["last words"]


def test_an_execution_without_debug_output_records_nothing(h: PinkHarness) -> None:
    h.run(Script().ext(21))
    assert store(h).records(h.script) == []


def test_local_cluster_keeps_logs_by_default() -> None:
    cluster = LocalCluster()
    alice = cluster.account("alice")
    runtime = cluster.runtime
    code = runtime.upload_code(to_wasm(SCRIPT_CONTRACT), alice)
    contract = runtime.instantiate(alice, code, b"", block=cluster.block).contract
    assert contract is not None
    script = Script().ext(LOG, log_args(2, "warned")).debug("dbg")
    runtime.call(alice, contract, script.encode(), mode=ExecutionMode.QUERY, block=cluster.block)
    logs = runtime.services.logs
    assert isinstance(logs, LogStore)
    assert [(r.level, r.message) for r in logs.records(contract)] == [(LogLevel.WARN, "warned"), (LogLevel.DEBUG, "dbg")]


# --- LogStore -----------------------------------------------------------------------------------


def test_ring_buffer_drops_the_oldest_records_first() -> None:
    logs = LogStore(max_bytes_per_contract=3 * (RECORD_OVERHEAD + 5), clock=FakeClock())
    for i in range(5):
        logs.append(b"c", LogLevel.INFO, f"msg-{i}", mode=ExecutionMode.QUERY)
    assert [r.message for r in logs.records(b"c")] == ["msg-2", "msg-3", "msg-4"]
    logs.append(b"other", LogLevel.INFO, "separate", mode=ExecutionMode.QUERY)
    assert len(logs.records(b"c")) == 3 and logs.contracts() == [b"c", b"other"]


def test_a_huge_message_is_cut_to_fit() -> None:
    logs = LogStore(max_bytes_per_contract=RECORD_OVERHEAD + 10, clock=FakeClock())
    logs.append(b"c", LogLevel.INFO, "é" * 100, mode=ExecutionMode.QUERY)
    [record] = logs.records(b"c")
    assert record.message == "é" * 5 and record.cost <= logs.max_bytes_per_contract


def test_paging_with_since_limit_and_level() -> None:
    logs = LogStore(clock=FakeClock())
    for i, level in enumerate([LogLevel.ERROR, LogLevel.DEBUG, LogLevel.WARN, LogLevel.TRACE]):
        logs.append(b"c", level, str(i), mode=ExecutionMode.TRANSACTION, block_number=i)
    page = logs.records(b"c", limit=2)
    assert [r.message for r in page] == ["0", "1"]
    assert [r.message for r in logs.records(b"c", since=page[-1].sequence)] == ["2", "3"]
    assert [r.message for r in logs.records(b"c", min_level=LogLevel.WARN)] == ["0", "2"]
    assert logs.records(b"unknown") == []
    logs.clear(b"c")
    assert logs.records(b"c") == []
