"""The PinkEvent side channel (HOST-ABI §2.6): every variant decoded with its field layout,
taken out of the ordinary events, judged as phactory does (query allow-list, system-only
kinds, SideVM unsupported) and recorded in ``ExecResult.pink_events``."""

from __future__ import annotations

import pytest

from phat_runtime.codec.scale import Writer
from phat_runtime.pink.events import (
    HookPoint,
    PinkEvent,
    SidevmConfig,
    Status,
    decode_pink_event,
)
from phat_runtime.pink.structs import PINK_EVENT_TOPIC, CacheOpKind, PinkEventKind
from phat_runtime.types import ExecutionMode

from .wat_ext import SCRIPT_CONTRACT, PinkHarness, Script, blob

K = PinkEventKind
Q, TX, EST = ExecutionMode.QUERY, ExecutionMode.TRANSACTION, ExecutionMode.ESTIMATE
A, B, H = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32


def u32(v: int) -> bytes:
    return v.to_bytes(4, "little")


def u64(v: int) -> bytes:
    return v.to_bytes(8, "little")


# Hand-written SCALE of each variant (codec index first), and what it must decode to.
VARIANTS: list[tuple[str, bytes, PinkEvent]] = [
    ("SetHook", b"\x02\x00" + A + u32(0x12345678) + u64(10**12),
     PinkEvent(K.SET_HOOK, hook=HookPoint.ON_BLOCK_END, contract=A, selector=0x12345678, gas_limit=10**12)),
    ("DeploySidevmTo", b"\x03" + A + H, PinkEvent(K.DEPLOY_SIDEVM_TO, contract=A, code_hash=H)),
    ("SidevmMessage", b"\x04" + blob(b"msg"), PinkEvent(K.SIDEVM_MESSAGE, payload=b"msg")),
    ("CacheOp", b"\x05\x00" + blob(b"k") + blob(b"v"),
     PinkEvent(K.CACHE_OP, cache_op=CacheOpKind.SET, key=b"k", value=b"v")),
    ("CacheOp", b"\x05\x01" + blob(b"k") + u64(60),
     PinkEvent(K.CACHE_OP, cache_op=CacheOpKind.SET_EXPIRATION, key=b"k", expiration=60)),
    ("CacheOp", b"\x05\x02" + blob(b"k"), PinkEvent(K.CACHE_OP, cache_op=CacheOpKind.REMOVE, key=b"k")),
    ("StopSidevm", b"\x06", PinkEvent(K.STOP_SIDEVM)),
    ("ForceStopSidevm", b"\x07" + A, PinkEvent(K.FORCE_STOP_SIDEVM, contract=A)),
    ("SetLogHandler", b"\x08" + A, PinkEvent(K.SET_LOG_HANDLER, contract=A)),
    ("SetContractWeight", b"\x09" + A + u32(7), PinkEvent(K.SET_CONTRACT_WEIGHT, contract=A, weight=7)),
    ("UpgradeRuntimeTo", b"\x0a" + u32(1) + u32(3), PinkEvent(K.UPGRADE_RUNTIME_TO, version=(1, 3))),
    ("SidevmOperation", b"\x0b\x00" + A + H + b"\x01\x08" + A + B + u32(10) + u32(1024) + u64(5) + u32(99),
     PinkEvent(K.SIDEVM_OPERATION, operation=0, contract=A, code_hash=H, workers=[A, B],
               config=SidevmConfig(10, 1024, 5, 99))),
    ("SidevmOperation", b"\x0b\x00" + A + H + b"\x00" + u32(1) + u32(2) + u64(3) + u32(4),
     PinkEvent(K.SIDEVM_OPERATION, operation=0, contract=A, code_hash=H, workers=None,
               config=SidevmConfig(1, 2, 3, 4))),
    ("SidevmOperation", b"\x0b\x01" + A + u32(500), PinkEvent(K.SIDEVM_OPERATION, operation=1, contract=A, deadline=500)),
    ("SetJsRuntime", b"\x0c" + H, PinkEvent(K.SET_JS_RUNTIME, code_hash=H)),
]
# pink's own table (cov_pink_events_display): (is_private, allowed_in_query) per variant.
FLAGS = {
    "SetHook": (False, False), "DeploySidevmTo": (False, True), "SidevmMessage": (True, True),
    "CacheOp": (True, True), "StopSidevm": (False, True), "ForceStopSidevm": (False, True),
    "SetLogHandler": (False, False), "SetContractWeight": (False, False),
    "UpgradeRuntimeTo": (False, False), "SidevmOperation": (False, True), "SetJsRuntime": (False, False),
}
#: The system-contract events that wait for the end of the block (runtime/block_end.py).
BLOCK_END = ["SetHook", "SetLogHandler", "SetContractWeight", "UpgradeRuntimeTo", "SetJsRuntime"]
SIDEVM = ["DeploySidevmTo", "SidevmMessage", "StopSidevm", "ForceStopSidevm", "SidevmOperation"]
SYSTEM_ONLY = {"SetHook", "DeploySidevmTo", "ForceStopSidevm", "SetLogHandler", "SetContractWeight",
               "UpgradeRuntimeTo", "SidevmOperation", "SetJsRuntime"}


def variant(name: str) -> bytes:
    return next(raw for n, raw, _ in VARIANTS if n == name)


@pytest.mark.parametrize(("name", "raw", "expected"), VARIANTS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(VARIANTS)])
def test_every_variant_decodes_and_encodes_back(name: str, raw: bytes, expected: PinkEvent) -> None:
    event = decode_pink_event(raw)
    assert event == expected and event.name == name
    assert (event.is_private, event.allowed_in_query) == FLAGS[name]
    assert event.system_only == (name in SYSTEM_ONLY)
    assert event.encode() == raw


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x01", b"\x0d", b"\x02\x01" + A + u32(0) + u64(0), b"\x05\x03" + blob(b"k"), b"\x0b\x02",
     b"\x0b\x00" + A + H + b"\x02", b"\x03" + A, b"\x09" + A + u32(1)[:3]],
)
def test_malformed_events_do_not_decode(raw: bytes) -> None:
    from phat_runtime.codec.scale import ScaleError

    with pytest.raises(ScaleError):
        decode_pink_event(raw)


def test_trailing_bytes_are_tolerated_like_pinks_decode() -> None:
    assert decode_pink_event(b"\x06extra").kind is K.STOP_SIDEVM


# --- through wasm ------------------------------------------------------------------------------


@pytest.fixture()
def h() -> PinkHarness:
    return PinkHarness()


def statuses(result_events: list) -> list[tuple[str, Status]]:
    return [(r.event.name if r.event else "?", r.status) for r in result_events]


def test_pink_events_are_not_ordinary_events(h: PinkHarness) -> None:
    two_topics = [PINK_EVENT_TOPIC, bytes(32)]
    script = (Script().event(b"plain", [bytes(32)]).pink_event(variant("StopSidevm"))
              .event(b"no topics").event(variant("StopSidevm"), two_topics))
    result, _ = h.run(script, TX)
    assert [e.data for e in result.events] == [b"plain", b"no topics", variant("StopSidevm")]
    assert statuses(result.pink_events) == [("StopSidevm", Status.UNSUPPORTED)]
    assert "not supported" in result.pink_events[0].note and result.pink_events[0].contract == h.script


@pytest.mark.parametrize("mode", [Q, TX])
def test_sidevm_events_are_not_supported(h: PinkHarness, mode: ExecutionMode) -> None:
    h.services.system_contract = h.script
    script = Script()
    for name in SIDEVM:
        script.pink_event(variant(name))
    result, _ = h.run(script, mode)
    assert statuses(result.pink_events) == [(name, Status.UNSUPPORTED) for name in SIDEVM]
    assert all("SideVM is not supported" in r.note for r in result.pink_events)


def test_query_refuses_the_kinds_pink_does_not_allow_in_queries(h: PinkHarness) -> None:
    h.services.system_contract = h.script
    script = Script()
    for name in BLOCK_END:
        script.pink_event(variant(name))
    result, _ = h.run(script.pink_event(variant("CacheOp")), Q)
    assert statuses(result.pink_events) == [(n, Status.REFUSED) for n in BLOCK_END] + [("CacheOp", Status.APPLIED)]
    assert "not allowed in a query" in result.pink_events[0].note
    assert h.cache.get(h.script, b"k") == b"v"  # a query's CacheOp applies at once


def test_system_contract_events_wait_for_the_end_of_the_block(h: PinkHarness) -> None:
    h.services.system_contract = h.script
    script = Script()
    for name in BLOCK_END:
        script.pink_event(variant(name))
    result, _ = h.run(script, TX)
    assert statuses(result.pink_events) == [(n, Status.PENDING) for n in BLOCK_END]
    assert all("end of the block" in r.note for r in result.pink_events)
    hook = result.pink_events[0].event
    assert hook is not None and (hook.contract, hook.selector, hook.gas_limit) == (A, 0x12345678, 10**12)
    # The block's end decides each, in emission order: A is not a contract (no hook, no
    # weight), a log handler needs no contract, runtime 1.3 does not exist here, nor JS runtimes.
    end = h.cluster.end_block(h.block)
    assert end.events == result.pink_events
    assert statuses(result.pink_events) == [
        ("SetHook", Status.REFUSED), ("SetLogHandler", Status.APPLIED), ("SetContractWeight", Status.REFUSED),
        ("UpgradeRuntimeTo", Status.REFUSED), ("SetJsRuntime", Status.REFUSED),
    ]
    notes = [r.note for r in result.pink_events]
    assert "no contract at" in notes[0] and "no contract at" in notes[2]
    assert "pink runtime 1.3 is not implemented by this runtime (it implements 1.2)" in notes[3]
    assert h.cluster.settings.log_handler() == A and h.cluster.settings.hooks() == []
    assert h.cluster.end_block(h.block).events == []  # applied once


@pytest.mark.parametrize("system", [None, "another"])
def test_system_only_events_from_other_contracts_are_refused(h: PinkHarness, system: str | None) -> None:
    if system:
        h.services.system_contract = h.deploy(SCRIPT_CONTRACT, salt=b"system")
    script = Script()
    for name in [*BLOCK_END, "ForceStopSidevm", "SidevmOperation", "DeploySidevmTo", "StopSidevm", "SidevmMessage"]:
        script.pink_event(variant(name))
    result, _ = h.run(script, TX)
    expected = [(n, Status.REFUSED) for n in [*BLOCK_END, "ForceStopSidevm", "SidevmOperation", "DeploySidevmTo"]]
    assert statuses(result.pink_events) == [*expected, ("StopSidevm", Status.UNSUPPORTED), ("SidevmMessage", Status.UNSUPPORTED)]
    assert all("only the cluster's system contract" in r.note for r in result.pink_events[:8])


def test_undecodable_pink_events_are_reported_invalid(h: PinkHarness) -> None:
    result, _ = h.run(Script().pink_event(b"\x63garbage"), TX)
    assert result.success and result.events == []
    [record] = result.pink_events
    assert (record.event, record.status, record.raw) == (None, Status.INVALID, b"\x63garbage")
    assert "unknown PinkEvent variant 99" in record.note


def test_estimate_applies_nothing(h: PinkHarness) -> None:
    h.services.system_contract = h.script
    result, _ = h.run(Script().pink_event(variant("SetHook")).pink_event(variant("CacheOp")), EST)
    assert statuses(result.pink_events) == [("SetHook", Status.NOT_APPLIED), ("CacheOp", Status.NOT_APPLIED)]
    assert h.cache.get(h.script, b"k") is None


def test_a_reverted_execution_has_no_pink_events(h: PinkHarness) -> None:
    h.services.system_contract = h.script
    result, _ = h.run(Script().pink_event(variant("SetHook")).pink_event(variant("CacheOp")), TX, revert=True)
    assert result.reverted and result.pink_events == [] and result.events == []
    assert h.cache.get(h.script, b"k") is None


def test_events_of_nested_calls_keep_their_emitter(h: PinkHarness) -> None:
    callee = h.deploy(SCRIPT_CONTRACT, salt=b"callee")
    h.services.system_contract = callee
    inner = Script().pink_event(variant("SetLogHandler")).event(b"inner plain", [bytes(32)])
    result, _ = h.run(Script().call(callee, inner).pink_event(variant("SetLogHandler")), TX)
    assert [(r.contract, r.status) for r in result.pink_events] == [(callee, Status.PENDING), (h.script, Status.REFUSED)]
    assert [(e.contract, e.data) for e in result.events] == [(callee, b"inner plain")]


def test_event_topic_is_pinks() -> None:
    assert Writer().blob(b"phala.pink.event").finish().ljust(32, b"\0") == PINK_EVENT_TOPIC
