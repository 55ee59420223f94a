"""seal0.deposit_event (SCALE Vec<[u8; 32]> topics, at most 4) and seal0.debug_message."""

from __future__ import annotations

import pytest

from phat_runtime.errors import HostFunctionError
from phat_runtime.runtime.execution import MAX_DEBUG_BUFFER, ContractEvent
from phat_runtime.testing.harness import WatHarness, data, ret, wat
from phat_runtime.types import ExecutionMode

from .contracts import FREE, IN, collect, proxy, proxy_input, proxy_result, u32s

TOPICS, DATA = FREE, FREE + 0x1000
PAYLOAD = b"event data"


def topic(i: int) -> bytes:
    return bytes([i]) * 32


def emitter(raw_topics: bytes, topics_len: int | None = None, *, after: str = "") -> str:
    """A contract depositing one event with ``raw_topics`` (length ``topics_len``) and PAYLOAD."""
    length = len(raw_topics) if topics_len is None else topics_len
    return wat(
        f"(call $seal0.deposit_event (i32.const {TOPICS}) (i32.const {length}) "
        f"(i32.const {DATA}) (i32.const {len(PAYLOAD)}))" + after,
        extra=data(TOPICS, raw_topics) + data(DATA, PAYLOAD),
    )


def compact_vec(count: int) -> bytes:
    return bytes([count << 2]) + b"".join(topic(i + 1) for i in range(count))


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("mode", [ExecutionMode.QUERY, ExecutionMode.TRANSACTION])
def test_event_with_up_to_four_topics(h: WatHarness, count: int, mode: ExecutionMode) -> None:
    addr = h.deploy(emitter(compact_vec(count)))
    r = h.call(addr, mode=mode)
    topics = tuple(topic(i + 1) for i in range(count))
    assert (r.error, r.events) == (None, [ContractEvent(addr, topics, PAYLOAD)])


def test_topics_len_zero_means_no_topics(h: WatHarness) -> None:
    addr = h.deploy(emitter(b"\xff garbage never read", topics_len=0))
    assert h.call(addr).events == [ContractEvent(addr, (), PAYLOAD)]


def test_five_topics_fail(h: WatHarness) -> None:
    r = h.call(h.deploy(emitter(compact_vec(5))))
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "TooManyTopics"
    assert r.events == []


BAD_TOPICS = {
    "one topic short": b"\x04" + topic(1)[:31],
    "one byte extra": b"\x04" + topic(1) + b"\x00",
    "count without topics": b"\x08" + topic(1),
    "non-canonical compact": b"\x05\x00" + topic(1),  # 1 in two-byte mode: SCALE refuses it
    "big-integer compact": b"\x03\x01\x00\x00\x00" + topic(1),
    "truncated two-byte compact": b"\x05",
}


@pytest.mark.parametrize("name", sorted(BAD_TOPICS))
def test_undecodable_topics_fail(h: WatHarness, name: str) -> None:
    r = h.call(h.deploy(emitter(BAD_TOPICS[name])))
    assert isinstance(r.error, HostFunctionError) and r.error.kind == "DecodingFailed"


def test_events_of_a_reverted_call_are_dropped(h: WatHarness) -> None:
    r = h.call(h.deploy(emitter(compact_vec(1), after=ret(0, 0, flags=1))))
    assert (r.reverted, r.events) == (True, [])


@pytest.mark.parametrize("revert", [False, True])
def test_events_of_a_reverted_callee_are_dropped(h: WatHarness, revert: bool) -> None:
    callee = h.deploy(emitter(compact_vec(1), after=ret(0, 0, flags=int(revert))))
    # The caller emits the callee's address (read from its input) after the call returns.
    emit = f"(call $seal0.deposit_event (i32.const 0) (i32.const 0) (i32.const {IN + 4}) (i32.const 32))"
    caller = h.deploy(proxy(after=emit))
    r = h.call(caller, proxy_input(callee))
    assert r.data == proxy_result(2 if revert else 0, b"")
    caller_event = ContractEvent(caller, (), callee)
    callee_events = [] if revert else [ContractEvent(callee, (topic(1),), PAYLOAD)]
    assert r.events == [*callee_events, caller_event]


MESSAGES = FREE


def debugger(*messages: bytes, after: str = "") -> str:
    offsets = [MESSAGES + 0x100 * i for i in range(len(messages))]
    placed = list(zip(offsets, messages, strict=True))
    calls = [f"(call $seal0.debug_message (i32.const {o}) (i32.const {len(m)}))" for o, m in placed]
    segments = "".join(data(o, m) for o, m in placed)
    return wat(collect(*calls) if not after else "".join(f"(drop {c})" for c in calls) + after, extra=segments)


def test_debug_messages_are_appended_and_return_success(h: WatHarness) -> None:
    r = h.call(h.deploy(debugger(b"hello ", "wörld".encode(), b"")))
    assert (u32s(r.data), r.debug_message) == ([0, 0, 0], "hello wörld")


def test_debug_message_that_is_not_utf8_is_dropped(h: WatHarness) -> None:
    r = h.call(h.deploy(debugger(b"a", b"\xff\xfe", b"b")))
    assert (u32s(r.data), r.debug_message) == ([0, 0, 0], "ab")


def test_debug_messages_survive_revert_and_trap(h: WatHarness) -> None:
    assert h.call(h.deploy(debugger(b"before revert", after=ret(0, 0, flags=1)))).debug_message == "before revert"
    trapped = h.call(h.deploy(debugger(b"before trap", after="unreachable"), salt=b"t"))
    assert trapped.error is not None and trapped.debug_message == "before trap"


def test_debug_buffer_is_capped_at_128_kib(h: WatHarness) -> None:
    # A message that no longer fits is dropped whole; the call still gets Success.
    fill = wat(
        collect(
            f"(call $seal0.debug_message (i32.const 0) (i32.const {MAX_DEBUG_BUFFER - 1}))",
            f"(call $seal0.debug_message (i32.const {MESSAGES}) (i32.const 2))",
            f"(call $seal0.debug_message (i32.const {MESSAGES}) (i32.const 1))",
        ),
        extra=data(MESSAGES, b"xy"),
        memory="(memory 3 3)",
    )
    r = h.call(h.deploy(fill))
    assert u32s(r.data) == [0, 0, 0]
    assert len(r.debug_message) == MAX_DEBUG_BUFFER and r.debug_message.endswith("\0x")
