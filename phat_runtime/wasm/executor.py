"""Run a contract entry point (``deploy`` or ``call``) on wasmtime.

A :class:`Session` is one top-level execution: one gas budget shared by every nested frame
and one wall-clock deadline. Each frame gets its own ``Store`` (so its memory and instance are
freed when it returns); fuel left over flows back to the caller's store. Host work a frame owes
(``Frame.debt``, ``wasm/schedule.py``) is settled before a nested frame starts and when the
frame ends: an execution that cannot pay it ends with OutOfGas.

Outcomes of :meth:`Session.run`:
- ``seal_return`` or a plain return → :class:`ExecReturn` (a REVERT is a result, not an error);
- ``terminate`` → ``ExecReturn(0, b"")`` (the host already removed the contract);
- anything else raises an :class:`~phat_runtime.errors.ExecutionError` subclass.
"""

from __future__ import annotations

import traceback

import wasmtime

from phat_runtime.errors import (
    ContractTrapped,
    ExecutionError,
    InternalError,
    OutOfGas,
    PhatError,
    WallClockTimeout,
)
from phat_runtime.wasm.engine import Engine
from phat_runtime.wasm.frame import ContractReturned, ContractTerminated, Frame
from phat_runtime.wasm.host import ExecReturn, Host
from phat_runtime.wasm.linker import enter, leave
from phat_runtime.wasm.modules import CompiledModule
from phat_runtime.wasm.schedule import GAS_PER_FUEL

ENTRY_POINTS = ("deploy", "call")
_TIMED_OUT = "wall-clock budget exceeded: execution interrupted (a timeout is charged the whole gas limit)"


def _trap_error(trap: wasmtime.Trap) -> ExecutionError:
    code = trap.trap_code
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return OutOfGas("out of gas: the gas limit was exhausted")
    if code == wasmtime.TrapCode.INTERRUPT:
        return WallClockTimeout(_TIMED_OUT)
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return ContractTrapped("contract trapped: wasm stack overflow (recursion too deep)")
    name = code.name.lower().replace("_", " ") if code is not None else "trap"
    first_line = str(trap.message).splitlines()[0] if trap.message else name
    return ContractTrapped(f"contract trapped: {name} ({first_line})")


def _drop_frames(exc: BaseException | None) -> None:
    """Clear the locals of the finished frames an exception's traceback holds.

    The way wasmtime-py carries an exception out of a host function (a context manager that
    catches a ``WasmtimeError`` and raises the saved exception from its handler) leaves a
    reference cycle through those frames — and through them the store. Clearing them lets
    reference counting free all of it at once instead of leaving ~50 objects per call to the
    garbage collector. Frames still running (ours, our callers') are skipped.
    """
    for _ in range(3):  # the exception and the exceptions it was raised while handling
        if exc is None:
            return
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__context__


class Session:
    """One top-level execution: gas budget and wall-clock deadline."""

    def __init__(self, engine: Engine, gas_limit: int, wall_clock_ms: int | None = None) -> None:
        self.engine = engine
        self.gas_limit = gas_limit
        self.fuel_left = gas_limit // GAS_PER_FUEL
        budget = wall_clock_ms if wall_clock_ms is not None else engine.config.wall_clock_ms
        self.deadline_epoch = engine.epoch + engine.deadline_ticks(budget)
        self._frames: list[Frame] = []  # the running frames, innermost last

    @property
    def gas_used(self) -> int:
        return self.gas_limit - self.fuel_left * GAS_PER_FUEL

    def run(
        self,
        compiled: CompiledModule,
        entry: str,
        host: Host,
        input_data: bytes,
        gas_limit: int = 0,
    ) -> ExecReturn:
        """Instantiate ``compiled`` in a fresh store and run ``entry``.

        ``gas_limit`` 0 means all remaining gas; otherwise the frame gets at most that much.
        """
        if entry not in ENTRY_POINTS:
            raise ValueError(f"entry must be one of {ENTRY_POINTS}")
        engine = self.engine
        ticks_left = self.deadline_epoch - engine.epoch
        if ticks_left <= 0:
            raise WallClockTimeout("wall-clock budget exceeded before the call started")
        # A nested frame draws on what its caller has left now, not at the caller's start: the
        # caller pays its host debt first (OutOfGas from here fails the caller's call).
        frames = self._frames
        parent = frames[-1].store if frames else None
        if frames:
            frames[-1].settle()
        available = self.fuel_left if parent is None else parent.get_fuel()
        fuel = available if gas_limit == 0 else min(available, gas_limit // GAS_PER_FUEL)
        store = engine.new_store(fuel, ticks_left)
        frame = Frame(store, host, input_data)
        frames.append(frame)
        caller = enter(frame)
        timed_out = False
        try:
            memory_type = compiled.memory_type
            linker = engine.linkers.get()
            if memory_type is not None:
                frame.memory = wasmtime.Memory(store, memory_type)
                linker.define(store, "env", "memory", frame.memory)
            func = linker.instantiate(store, compiled.module).exports(store)[entry]
            assert isinstance(func, wasmtime.Func)
            func(store)
            frame.settle()  # OutOfGas (recorded on the frame) if the host work is not paid for
            return ExecReturn(0, b"")
        except BaseException as exc:
            try:
                return self._outcome(frame, exc)
            except WallClockTimeout:
                timed_out = True
                raise
            finally:  # the shim's exception if it recorded one, else what wasmtime raised
                _drop_frames(frame.pending if frame.pending is not None else exc)
        finally:
            leave(caller)
            frames.pop()
            # wasmtime keeps the fuel counter of a call-free loop in a register and does not
            # write it back when the epoch interrupts, so a timed-out frame's store still shows
            # (nearly) all of its fuel: a wall-clock timeout is charged the frame's whole budget.
            # A frame that trapped pays what it still owes, as far as its fuel goes.
            used = fuel if timed_out else min(fuel, fuel - store.get_fuel() + frame.debt)
            if parent is None:
                self.fuel_left -= used
            else:  # what a callee burnt is paid by its caller, like any instruction
                parent.set_fuel(max(0, parent.get_fuel() - used))
            frame.end()
            store.close()  # frees the instance and its memory now, whoever still holds `store`

    def _outcome(self, frame: Frame, exc: BaseException) -> ExecReturn:
        # Trust what our own shims recorded on the frame: wasmtime-py passes a host
        # function's exception through a process-global variable, so under concurrent
        # executions ``exc`` may be another execution's exception (see Frame.pending).
        cause = frame.pending
        if cause is None:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise exc
            if not isinstance(exc, wasmtime.Trap | wasmtime.WasmtimeError):
                raise self._lost_trap(frame)
            cause = exc
        if isinstance(cause, ContractReturned):
            frame.settle()
            return ExecReturn(cause.flags, cause.data)
        if isinstance(cause, ContractTerminated):
            frame.settle()
            return ExecReturn(0, b"")
        if isinstance(cause, PhatError):
            raise cause
        if isinstance(cause, wasmtime.Trap):
            raise _trap_error(cause) from cause
        if isinstance(cause, wasmtime.WasmtimeError):
            raise ContractTrapped(f"contract could not be instantiated: {cause}") from cause
        raise InternalError(f"host function failed: {cause!r}") from cause

    def _lost_trap(self, frame: Frame) -> ExecutionError:
        """Our wasm trapped but a concurrent execution's exception surfaced instead of the
        trap: recover the cause from the store's fuel and the epoch."""
        if frame.store.get_fuel() == 0:
            return OutOfGas("out of gas: the gas limit was exhausted")
        if self.engine.epoch >= self.deadline_epoch:
            return WallClockTimeout(_TIMED_OUT)
        return ContractTrapped("contract trapped (wasm trap; its details were lost to a concurrent execution)")
