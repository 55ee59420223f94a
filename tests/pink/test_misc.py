"""The remaining pink functions through real wasm, in every mode: 11 getrandom,
12 is_in_transaction, 15 system_contract_id, 16 balance_of, 17 worker_pubkey,
18 untrusted_millis_since_unix_epoch, 19 code_exists, 20 import_latest_system_code,
21 runtime_version, 23 current_event_chain_head, 24 js_eval, 25 worker_sgx_quote."""

from __future__ import annotations

import time

import pytest

from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.pink import js
from phat_runtime.pink.misc import AttestationType, SgxQuote
from phat_runtime.pink.table import build_registries
from phat_runtime.testing.harness import ALICE, INITIAL_BALANCE
from phat_runtime.types import ExecutionMode

from .wat_ext import DETERMINISTIC, MODES, SCRIPT_CONTRACT, PinkHarness, Script, blob

(GETRANDOM, IN_TX, SYSTEM_ID, BALANCE_OF, WORKER_PUBKEY, MILLIS, CODE_EXISTS, IMPORT_SYSTEM,
 VERSION, CHAIN_HEAD, JS_EVAL, SGX_QUOTE) = (11, 12, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25)
Q = ExecutionMode.QUERY


@pytest.fixture()
def h() -> PinkHarness:
    return PinkHarness()


def vec(out: bytes) -> bytes:
    r = Reader(out)
    value = r.blob()
    r.end()
    return value


# --- the table as a whole --------------------------------------------------------------------

MY_IDS = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25]


@pytest.mark.parametrize("mode", MODES)
def test_every_function_is_registered_and_says_where_it_runs(mode: ExecutionMode) -> None:
    registry = build_registries()[mode]
    for func in MY_IDS:
        assert func in registry
        doc = registry._handlers[func].__doc__ or ""
        assert "Availability: query only" in doc or "Availability: query | transaction" in doc, func


@pytest.mark.parametrize("mode", MODES)
def test_the_seal_prefixed_alias_reaches_the_same_table(h: PinkHarness, mode: ExecutionMode) -> None:
    result, outs = h.run(Script().ext(VERSION, alias=True).ext(IN_TX, alias=True), mode)
    assert result.error is None
    assert outs[0].output == (1).to_bytes(4, "little") + (2).to_bytes(4, "little")
    assert outs[1].output == (b"\x00" if mode is Q else b"\x01")


# --- 11 getrandom / 12 is_in_transaction ---------------------------------------------------------


def test_getrandom_in_a_query_gives_fresh_bytes(h: PinkHarness) -> None:
    _, outs = h.run(Script().ext(GETRANDOM, b"\x20").ext(GETRANDOM, b"\x20").ext(GETRANDOM, b"\xff").ext(GETRANDOM, b"\x00"))
    first, second, longest, empty = (vec(o.output) for o in outs)
    assert len(first) == len(second) == 32 and first != second
    assert len(longest) == 255 and empty == b""


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_getrandom_outside_queries_is_empty(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.one(GETRANDOM, b"\x20", mode).output == b"\x00"


@pytest.mark.parametrize("mode", MODES)
def test_getrandom_length_is_a_u8(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.failure(GETRANDOM, b"\x20\x00", mode) == "DecodingFailed"
    assert h.failure(GETRANDOM, b"", mode) == "DecodingFailed"


@pytest.mark.parametrize(("mode", "answer"), [(Q, b"\x00"), *((m, b"\x01") for m in DETERMINISTIC)])
def test_is_in_transaction(h: PinkHarness, mode: ExecutionMode, answer: bytes) -> None:
    assert h.one(IN_TX, b"", mode).output == answer


# --- 15 system_contract_id / 16 balance_of / 20 import_latest_system_code ---------------------


@pytest.mark.parametrize("mode", MODES)
def test_system_contract_id(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.failure(SYSTEM_ID, b"", mode) == "SystemContractMissing"
    h.services.system_contract = h.script
    assert h.one(SYSTEM_ID, b"", mode).output == h.script


@pytest.mark.parametrize("mode", MODES)
def test_balance_of_is_served_to_any_contract(h: PinkHarness, mode: ExecutionMode) -> None:
    """pink's chain_extension.rs: balance_of is "any contract | query | transaction" (only
    import_latest_system_code checks the origin). Phala's own runtime tests read balances from
    an ordinary contract."""
    balance = h.balance(ALICE)
    assert balance > INITIAL_BALANCE // 2
    expected = balance.to_bytes(16, "little") * 2  # (total, free): no locks off-chain
    assert h.one(BALANCE_OF, ALICE, mode).output == expected  # no system contract at all
    h.services.system_contract = h.deploy(SCRIPT_CONTRACT, salt=b"system")
    assert h.one(BALANCE_OF, ALICE, mode).output == expected  # another contract is the system
    h.services.system_contract = h.script
    assert h.one(BALANCE_OF, ALICE, mode).output == expected  # the system contract itself
    assert h.one(BALANCE_OF, bytes(32), mode).output == bytes(32)  # an account that holds nothing
    assert h.failure(BALANCE_OF, ALICE[:31], mode) == "DecodingFailed"


@pytest.mark.parametrize("mode", MODES)
def test_import_latest_system_code(h: PinkHarness, mode: ExecutionMode) -> None:
    payer = ALICE
    assert h.failure(IMPORT_SYSTEM, payer, mode) == "BadOrigin"
    h.services.system_contract = h.script
    assert h.one(IMPORT_SYSTEM, payer, mode).output == b"\x00"  # nothing configured
    h.services.latest_system_code = bytes(32)  # type: ignore[attr-defined]
    assert h.one(IMPORT_SYSTEM, payer, mode).output == b"\x00"  # configured, not in the cluster
    code_hash = h.upload(SCRIPT_CONTRACT)
    h.services.latest_system_code = code_hash  # type: ignore[attr-defined]
    assert h.one(IMPORT_SYSTEM, payer, mode).output == b"\x01" + code_hash
    assert h.failure(IMPORT_SYSTEM, payer + b"\x00", mode) == "DecodingFailed"


# --- 17 worker_pubkey / 18 untrusted_millis ----------------------------------------------------


def test_worker_pubkey_in_a_query(h: PinkHarness) -> None:
    h.services.worker_pubkey = bytes(range(32))
    assert h.one(WORKER_PUBKEY, b"").output == bytes(range(32))


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_worker_pubkey_outside_queries_is_zero(h: PinkHarness, mode: ExecutionMode) -> None:
    h.services.worker_pubkey = bytes(range(32))
    assert h.one(WORKER_PUBKEY, b"", mode).output == bytes(32)


def test_untrusted_millis_in_a_query_is_the_worker_clock(h: PinkHarness) -> None:
    h.clock.now = 1_700_000_000.25
    assert h.one(MILLIS, b"").output == (1_700_000_000_250).to_bytes(8, "little")


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_untrusted_millis_outside_queries_is_zero(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.one(MILLIS, b"", mode).output == bytes(8)


# --- 19 code_exists / 21 runtime_version / 23 current_event_chain_head ------------------------


@pytest.mark.parametrize("mode", MODES)
def test_code_exists(h: PinkHarness, mode: ExecutionMode) -> None:
    code_hash = h.upload(SCRIPT_CONTRACT)
    assert h.one(CODE_EXISTS, code_hash + b"\x00", mode).output == b"\x01"
    assert h.one(CODE_EXISTS, bytes(32) + b"\x00", mode).output == b"\x00"
    assert h.one(CODE_EXISTS, code_hash + b"\x01", mode).output == b"\x00"  # no SideVM programs here
    assert h.failure(CODE_EXISTS, code_hash + b"\x02", mode) == "DecodingFailed"


@pytest.mark.parametrize("mode", MODES)
def test_runtime_version_is_1_2(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.one(VERSION, b"", mode).output == (1).to_bytes(4, "little") + (2).to_bytes(4, "little")


@pytest.mark.parametrize("mode", MODES)
def test_current_event_chain_head(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.one(CHAIN_HEAD, b"", mode).output == bytes(8) + bytes(32)
    h.services.event_chain_head = lambda: (1234, b"\xab" * 32)
    assert h.one(CHAIN_HEAD, b"", mode).output == (1234).to_bytes(8, "little") + b"\xab" * 32
    h.services.event_chain_head = lambda: (1, b"short")
    assert h.failure(CHAIN_HEAD, b"", mode) == "InternalError"


# --- 25 worker_sgx_quote -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provided", "expected"),
    [
        (None, b"\x00"),
        (SgxQuote(AttestationType.DCAP, b"quote"), b"\x01\x01" + blob(b"quote")),
        (b"raw dcap", b"\x01\x01" + blob(b"raw dcap")),
        ((0, b"epid"), b"\x01\x00" + blob(b"epid")),
    ],
)
def test_worker_sgx_quote_in_a_query(h: PinkHarness, provided: object, expected: bytes) -> None:
    h.services.quote_provider = lambda: provided
    assert h.one(SGX_QUOTE, b"").output == expected


def test_worker_sgx_quote_without_a_provider(h: PinkHarness) -> None:
    assert h.one(SGX_QUOTE, b"").output == b"\x00"


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_worker_sgx_quote_outside_queries_is_none(h: PinkHarness, mode: ExecutionMode) -> None:
    h.services.quote_provider = lambda: b"raw dcap"
    assert h.one(SGX_QUOTE, b"", mode).output == b"\x00"


# --- 24 js_eval ----------------------------------------------------------------------------------

JS_TAGS = {0: "Undefined", 1: "Null", 2: "String", 3: "Bytes", 4: "Other", 5: "Exception"}


def js_args(*sources: str, args: tuple[str, ...] = (), bytecode: bytes | None = None) -> bytes:
    w = Writer().compact(len(sources) + (bytecode is not None))
    for source in sources:
        w.u8(0).string(source)
    if bytecode is not None:
        w.u8(1).blob(bytecode)
    return w.vec(list(args), Writer.string).finish()


def js_value(out: bytes) -> tuple[str, object]:
    r = Reader(out)
    tag = JS_TAGS[r.u8()]
    value: object = None
    if tag == "Bytes":
        value = r.blob()
    elif tag != "Undefined" and tag != "Null":
        value = r.string()
    r.end()
    return tag, value


def run_js(h: PinkHarness, *sources: str, mode: ExecutionMode = Q, **kwargs: object) -> tuple[str, object]:
    return js_value(h.one(JS_EVAL, js_args(*sources, **kwargs), mode).output)  # type: ignore[arg-type]


needs_quickjs = pytest.mark.skipif(js.quickjs is None, reason="quickjs-ng is not installed")


@needs_quickjs
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", ("Other", "3")),
        ("'a' + 'b'", ("String", "ab")),
        ("new Uint8Array([1, 2, 255])", ("Bytes", b"\x01\x02\xff")),
        ("undefined", ("Undefined", None)),
        ("null", ("Null", None)),
        ("({a: 1})", ("Other", "[object Object]")),
        ("true", ("Other", "true")),
        ("let x = 5", ("Undefined", None)),
        (r'"a\ud800b"', ("String", "a?b")),  # a lone surrogate is not UTF-8: replaced
    ],
)
def test_js_eval_maps_values(h: PinkHarness, source: str, expected: tuple[str, object]) -> None:
    assert run_js(h, source) == expected


@needs_quickjs
def test_js_eval_script_args_several_codes_output_and_promises(h: PinkHarness) -> None:
    assert run_js(h, "scriptArgs.join('+')", args=("a", "b")) == ("String", "a+b")
    assert run_js(h, "const base = 40", "base + 2") == ("Other", "42")
    assert run_js(h, "scriptOutput = 'set'; 'ignored'") == ("String", "set")
    assert run_js(h, "Promise.resolve(7).then(v => { scriptOutput = 'got ' + v })") == ("String", "got 7")


@needs_quickjs
def test_js_eval_exceptions_are_values(h: PinkHarness) -> None:
    tag, message = run_js(h, "throw new Error('boom')")
    assert tag == "Exception" and isinstance(message, str) and message.startswith("Error: boom")
    tag, message = run_js(h, "syntax error here")
    assert tag == "Exception" and "SyntaxError" in str(message)
    tag, message = run_js(h, "function f() { return f() + 1 } f()")
    assert tag == "Exception" and "stack" in str(message)


@needs_quickjs
def test_js_eval_memory_is_limited(h: PinkHarness) -> None:
    tag, message = run_js(h, "let a = []; while (true) a.push(new Array(100000).fill(1))")
    assert tag == "Exception" and "out of memory" in str(message)


@needs_quickjs
def test_js_eval_stops_a_runaway_script_within_its_budget() -> None:
    started = time.monotonic()
    value = js.evaluate([js.JsCode(source="while (true) {}")], [], time_limit_ms=400)
    assert value == js._exception("Js evaluation timed out after 300 ms")  # 100 ms kept back
    assert time.monotonic() - started < 5  # QuickJS counts CPU time: a loaded machine stretches it


@needs_quickjs
def test_js_eval_is_bounded_by_the_remaining_wall_clock(h: PinkHarness) -> None:
    script = Script().ext(JS_EVAL, js_args("while (true) {}"))
    started = time.monotonic()
    result = h.cluster.call(ALICE, h.script, script.encode(), mode=Q, block=h.block, wall_clock_ms=1000)
    assert time.monotonic() - started < 5
    if result.error is None:  # the JS stopped in time and the contract got the answer back
        tag, message = js_value(script.parse(result.data)[0].output)
        budget = int(str(message).removeprefix("Js evaluation timed out after ").removesuffix(" ms"))
        assert tag == "Exception" and 800 <= budget <= 900  # the remaining time, less 100 ms
    else:  # QuickJS's CPU clock lagged the wall clock: the query's own deadline ended it
        assert result.error.kind == "Timeout"


def test_js_eval_with_no_time_left_does_not_start(h: PinkHarness) -> None:
    assert js.evaluate([js.JsCode(source="1")], [], time_limit_ms=100) == js._exception(
        "Js evaluation timed out: no time left in this execution"
    )


def test_js_eval_refuses_bytecode(h: PinkHarness) -> None:
    tag, message = run_js(h, "1", bytecode=b"\x02\x03")
    assert tag == "Exception" and str(message).startswith("bytecode is not supported")


def test_js_eval_without_quickjs_says_so(h: PinkHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(js, "quickjs", None)
    tag, message = run_js(h, "1 + 2")
    assert tag == "Exception" and "quickjs" in str(message)


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_js_eval_outside_queries_is_an_exception(h: PinkHarness, mode: ExecutionMode) -> None:
    assert run_js(h, "1 + 2", mode=mode) == ("Exception", "Js evaluation is not supported in transaction")


@pytest.mark.parametrize("mode", MODES)
def test_js_eval_arguments_must_decode(h: PinkHarness, mode: ExecutionMode) -> None:
    bad_tag = Writer().compact(1).u8(2).string("1").compact(0).finish()
    assert h.failure(JS_EVAL, bad_tag, mode) == "DecodingFailed"
    assert h.failure(JS_EVAL, js_args("1")[:-1], mode) == "DecodingFailed"
    assert h.failure(JS_EVAL, Writer().compact(0).compact(1).blob(b"\xff").finish(), mode) == "DecodingFailed"
