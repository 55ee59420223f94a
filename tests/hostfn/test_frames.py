"""The executor's frames: host functions find the innermost running frame of their own thread,
nested and concurrent executions stay apart, and nothing an execution creates outlives it
(no live wasmtime Store, no growth of wasmtime-py's process-wide callback table)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

import wasmtime
from wasmtime import _func as wasmtime_func  # the callback table ("slab") of wasmtime-py

from phat_runtime.errors import ContractTrapped, HostFunctionError
from phat_runtime.testing.harness import WatHarness, wat
from phat_runtime.wasm.linker import running_frame

from .contracts import ECHO, OOB, TRAPPER, proxy, proxy_input, proxy_result


def live_stores() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, wasmtime.Store))


def callback_entries() -> int:
    gc.collect()
    return len(wasmtime_func.FUNCTIONS.handles)


def run_in_thread(fn: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive() and errors == []


def test_nested_frames_restore_the_caller(h: WatHarness) -> None:
    # The proxy writes the callee's output into its own memory after the callee's frame ended:
    # that only works if its host functions found the proxy's frame again.
    echo, caller = h.deploy(ECHO), h.deploy(proxy())
    for payload in (b"", b"one", b"x" * 3000):
        r = h.call(caller, proxy_input(echo, payload))
        assert (r.error, r.data) == (None, proxy_result(0, payload))
    assert running_frame() is None  # nothing left behind on this thread


def test_a_trapping_callee_does_not_leave_its_frame_running(h: WatHarness) -> None:
    trapper, caller = h.deploy(TRAPPER), h.deploy(proxy())
    assert h.call(caller, proxy_input(trapper, b"x")).data == proxy_result(1)
    assert running_frame() is None


# input byte 0: 0 → call the echo through the proxy, 1 → trap, 2 → out-of-bounds host call.
SWITCH = wat(
    "(i32.store (i32.const 0x0F00) (i32.const 0x4000))"
    "(call $seal0.input (i32.const 0x1000) (i32.const 0x0F00))"
    "(if (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 1)) (then unreachable))"
    f"(if (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 2)) (then (call $seal0.seal_return (i32.const 0) (i32.const {OOB}) (i32.const 4))))"
    "(call $seal0.seal_return (i32.const 0) (i32.const 0x1000) (i32.load (i32.const 0x0F00)))"
)


def test_threads_with_nested_frames_see_their_own_outcomes(h: WatHarness) -> None:
    echo, caller, switch = h.deploy(ECHO), h.deploy(proxy()), h.deploy(SWITCH)
    errors: list[str] = []

    def worker(seed: int) -> None:
        for i in range(60):
            tag = seed.to_bytes(2, "little") + i.to_bytes(2, "little")
            kind = (seed + i) % 3
            if kind == 0:
                r = h.call(caller, proxy_input(echo, tag * 50))
                if (r.error, r.data) != (None, proxy_result(0, tag * 50)):
                    errors.append(f"{seed}/{i}: nested echo got {r.error or r.data!r}")
            elif kind == 1:
                r = h.call(switch, b"\x01" + tag)
                if not isinstance(r.error, ContractTrapped):
                    errors.append(f"{seed}/{i}: expected a trap, got {r.error!r}")
            else:
                r = h.call(switch, b"\x02" + tag)
                if not (isinstance(r.error, HostFunctionError) and r.error.kind == "OutOfBounds"):
                    errors.append(f"{seed}/{i}: expected OutOfBounds, got {r.error!r}")

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []


def test_calls_leave_no_store_and_no_callback_behind(h: WatHarness) -> None:
    echo, trapper, caller = h.deploy(ECHO), h.deploy(TRAPPER), h.deploy(proxy())
    h.call(caller, proxy_input(echo, b"warm-up"))  # this thread's linker exists from here on
    stores, callbacks = live_stores(), callback_entries()
    for i in range(200):
        assert h.call(caller, proxy_input(echo, i.to_bytes(4, "little"))).error is None
        assert h.call(caller, proxy_input(trapper, b"x")).data == proxy_result(1)
        assert h.call(echo, b"direct").data == b"direct"
    # 600 executions, 400 of them with a nested frame (200 trapped): the executor kept nothing.
    assert live_stores() <= stores
    assert callback_entries() <= callbacks


def test_a_threads_host_functions_go_with_the_thread(h: WatHarness) -> None:
    echo = h.deploy(ECHO)
    h.call(echo, b"warm-up")
    callbacks = callback_entries()

    def some_calls() -> None:
        for _ in range(20):
            assert h.call(echo, b"abc").data == b"abc"

    for _ in range(3):  # each thread defines the host functions on a linker of its own...
        run_in_thread(some_calls)
    assert callback_entries() <= callbacks  # ...which is released when the thread ends
