"""Run a contract entry point (``deploy`` or ``call``) on wasmtime.

A :class:`Session` is one top-level execution: one gas budget shared by every nested frame
and one wall-clock deadline. Each frame gets its own ``Store`` (so its memory and instance are
freed when it returns); fuel left over flows back to the caller's store.

Outcomes of :meth:`Session.run`:
- ``seal_return`` or a plain return → :class:`ExecReturn` (a REVERT is a result, not an error);
- ``terminate`` → ``ExecReturn(0, b"")`` (the host already removed the contract);
- anything else raises an :class:`~phat_runtime.errors.ExecutionError` subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wasmtime

from phat_runtime.errors import (
    BadImports,
    ContractTrapped,
    ExecutionError,
    InternalError,
    OutOfGas,
    PhatError,
    WallClockTimeout,
)
from phat_runtime.wasm import seal0, seal1, seal2  # noqa: F401  (registers the shims)
from phat_runtime.wasm.abi import HOST_FUNCTIONS, MAX_MEMORY_PAGES
from phat_runtime.wasm.engine import GAS_PER_FUEL, Engine
from phat_runtime.wasm.frame import SHIMS, ContractReturned, ContractTerminated, Frame
from phat_runtime.wasm.host import ExecReturn, Host
from phat_runtime.wasm.modules import CompiledModule

ENTRY_POINTS = ("deploy", "call")

_VALTYPES = {"i32": wasmtime.ValType.i32(), "i64": wasmtime.ValType.i64()}
# Result width in bits: shims return unsigned values, wasm wants them two's-complement signed.
_RESULT_BITS = {"i32": 32, "i64": 64}

# (functype, shim, result bits or 0) per import list. FuncTypes belong to one wasmtime engine, so the
# cache lives on the Engine (``Engine.bindings``).
_Binding = tuple[wasmtime.FuncType, Callable[..., Any], int]


def _bindings(engine: Engine, imports: tuple[tuple[str, str], ...]) -> list[_Binding]:
    cache: dict[tuple[tuple[str, str], ...], list[_Binding]] = engine.bindings
    found = cache.get(imports)
    if found is not None:
        return found
    out: list[_Binding] = []
    for key in imports:
        spec = HOST_FUNCTIONS.get(key)
        if spec is None:
            raise BadImports(f"unknown host function {key[0]}.{key[1]}")
        ty = wasmtime.FuncType(
            [_VALTYPES[p] for p in spec.params], [_VALTYPES[r] for r in spec.results]
        )
        bits = _RESULT_BITS[spec.results[0]] if spec.results else 0
        out.append((ty, SHIMS[spec.impl], bits))
    cache[imports] = out
    return out


def _bind(frame: Frame, fn: Callable[..., Any], result_bits: int) -> Callable[..., Any]:
    """Close over the frame; record any exception on it; wrap u32/u64 results to i32/i64."""

    if result_bits:
        signed_bit, wrap = 1 << (result_bits - 1), 1 << result_bits

        def call_returning(*args: int) -> int:
            try:
                result = int(fn(frame, *args))
            except BaseException as exc:
                frame.pending = exc
                raise
            return result - wrap if result >= signed_bit else result

        return call_returning

    def call(*args: int) -> None:
        try:
            fn(frame, *args)
        except BaseException as exc:
            frame.pending = exc
            raise

    return call


def _trap_error(trap: wasmtime.Trap) -> ExecutionError:
    code = trap.trap_code
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return OutOfGas("out of gas: the gas limit was exhausted")
    if code == wasmtime.TrapCode.INTERRUPT:
        return WallClockTimeout("wall-clock budget exceeded: execution interrupted")
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return ContractTrapped("contract trapped: wasm stack overflow (recursion too deep)")
    name = code.name.lower().replace("_", " ") if code is not None else "trap"
    first_line = str(trap.message).splitlines()[0] if trap.message else name
    return ContractTrapped(f"contract trapped: {name} ({first_line})")


class Session:
    """One top-level execution: gas budget and wall-clock deadline."""

    def __init__(self, engine: Engine, gas_limit: int, wall_clock_ms: int | None = None) -> None:
        self.engine = engine
        self.gas_limit = gas_limit
        self.fuel_left = gas_limit // GAS_PER_FUEL
        budget = wall_clock_ms if wall_clock_ms is not None else engine.config.wall_clock_ms
        self.deadline_epoch = engine.epoch + engine.deadline_ticks(budget)
        self._stores: list[wasmtime.Store] = []  # the running frames' stores, innermost last

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
        ticks_left = self.deadline_epoch - self.engine.epoch
        if ticks_left <= 0:
            raise WallClockTimeout("wall-clock budget exceeded before the call started")
        # A nested frame draws on what its caller has left now, not at the caller's start.
        parent = self._stores[-1] if self._stores else None
        available = self.fuel_left if parent is None else parent.get_fuel()
        fuel = available if gas_limit == 0 else min(available, gas_limit // GAS_PER_FUEL)
        store = self.engine.new_store(fuel, ticks_left)
        frame = Frame(self, store, host, input_data)
        self._stores.append(store)
        try:
            func = self._instantiate(compiled, store, frame, entry)
            func(store)
            return ExecReturn(0, b"")
        except BaseException as exc:
            return self._outcome(frame, exc)
        finally:
            self._stores.pop()
            used = fuel - store.get_fuel()
            if parent is None:
                self.fuel_left -= used
            else:  # what a callee burnt is paid by its caller, like any instruction
                parent.set_fuel(parent.get_fuel() - used)

    def _instantiate(
        self, compiled: CompiledModule, store: wasmtime.Store, frame: Frame, entry: str
    ) -> wasmtime.Func:
        bindings = _bindings(self.engine, compiled.imports)
        externs: list[Any] = []
        bound = iter(bindings)
        for imp in compiled.module.imports:
            if isinstance(imp.type, wasmtime.MemoryType):
                maximum = compiled.memory_max if compiled.memory_max is not None else MAX_MEMORY_PAGES
                memory = wasmtime.Memory(
                    store, wasmtime.MemoryType(wasmtime.Limits(compiled.memory_min, maximum))
                )
                frame.memory = memory
                externs.append(memory)
            else:
                ty, fn, result_bits = next(bound)
                externs.append(wasmtime.Func(store, ty, _bind(frame, fn, result_bits)))
        instance = wasmtime.Instance(store, compiled.module, externs)
        func = instance.exports(store)[entry]
        assert isinstance(func, wasmtime.Func)
        return func

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
            return ExecReturn(cause.flags, cause.data)
        if isinstance(cause, ContractTerminated):
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
            return WallClockTimeout("wall-clock budget exceeded: execution interrupted")
        return ContractTrapped("contract trapped (wasm trap; its details were lost to a concurrent execution)")
