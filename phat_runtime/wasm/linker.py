"""Host functions defined once on a wasmtime ``Linker``, and the frame they run for.

Every host function of the ABI (``abi.HOST_FUNCTIONS``) is defined on a ``wasmtime.Linker``
once per engine and thread; a call only creates a ``Store`` and a ``Memory``, defines that
memory as ``env.memory`` and instantiates through the linker. Defining the memory mutates the
linker, hence one linker per thread (a nested frame reuses its thread's linker: the caller's
instance already exists, so redefining ``env.memory`` for the callee cannot disturb it).

A host function finds the frame it serves through a thread-local stack, not through a closure:
:func:`enter` makes a frame the innermost running frame of this thread and returns the caller's,
which :func:`leave` restores. Closures over per-call objects were a leak: wasmtime-py keeps
every ``Func`` callback in a process-global table until its store dies, and the callback held
the frame that held the store — 3,000 calls left 3,000 live stores.

wasmtime-py hands a host function's exception back through a process-global variable that a
concurrent execution may overwrite, so the wrapper records it on the frame (``Frame.pending``)
before re-raising; the executor trusts that record.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from phat_runtime.wasm import seal0, seal1, seal2  # noqa: F401  (registers the shims)
from phat_runtime.wasm.abi import HOST_FUNCTIONS, HostFuncSpec
from phat_runtime.wasm.frame import SHIMS, Frame
from phat_runtime.wasm.schedule import HOST_CALL_FUEL, HOST_DEBT_LIMIT_FUEL

_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}
# Result width in bits: shims return unsigned values, wasm wants them two's-complement signed.
_RESULT_BITS = {"i32": 32, "i64": 64}


class _Running(threading.local):
    frame: Frame | None = None  # the innermost frame running on this thread


_RUNNING = _Running()


def enter(frame: Frame) -> Frame | None:
    """Make ``frame`` this thread's running frame; returns the frame it interrupts."""
    caller = _RUNNING.frame
    _RUNNING.frame = frame
    return caller


def leave(caller: Frame | None) -> None:
    """The frame started by :func:`enter` has ended: ``caller`` runs again."""
    _RUNNING.frame = caller


def running_frame() -> Frame | None:
    return _RUNNING.frame


def _host_function(shim: Callable[..., Any], spec: HostFuncSpec) -> Callable[..., int]:
    """The raw callback wasmtime calls (its *unchecked* host-function ABI): parameters read
    straight from wasmtime's value slots, the running frame first, the host-call base weight
    charged (``schedule.HOST_CALL_GAS``, owed on the frame), exceptions recorded on the frame
    and turned into a trap, u32/u64 results written back as i32/i64. Closes over process-wide
    objects only.

    wasmtime-py's generic ``define_func`` path converts every parameter and result through
    ``Val`` objects and compares value types with FFI calls on each call; this does neither
    (the linker checks the declared types once, at instantiation).

    Each call resets the frame's memory view: wasm code ran since the last host call and may
    have grown the memory. (The frame is never None here: only Session.run instantiates with
    these functions, after :func:`enter`.)"""
    running = _RUNNING
    # Slots are 16 bytes (wasmtime_val_raw_t); an i32 is the low 4 bytes, an i64 the low 8.
    i32_slots = tuple(4 * i for i, p in enumerate(spec.params) if p == "i32")
    all_i32 = len(i32_slots) == len(spec.params)
    kinds = tuple((p == "i64", (2 if p == "i64" else 4) * i) for i, p in enumerate(spec.params))
    result = spec.results[0] if spec.results else None
    bits = _RESULT_BITS[result] if result else 0
    signed_bit, wrap = (1 << (bits - 1), 1 << bits) if bits else (0, 0)

    def callback(_env: int | None, _caller: int | None, raw: Any, _n: int) -> int:
        frame = running.frame
        try:
            frame.view = None  # type: ignore[union-attr]
            debt = frame.debt + HOST_CALL_FUEL  # type: ignore[union-attr]
            frame.debt = debt  # type: ignore[union-attr]
            if debt >= HOST_DEBT_LIMIT_FUEL:
                frame.settle()  # type: ignore[union-attr]
            if all_i32:
                args = [raw[j] for j in i32_slots]
            else:
                wide = ctypes.cast(raw, _RAW_I64)
                args = [wide[j] if is64 else raw[j] for is64, j in kinds]
            value = shim(frame, *args)
            if bits == 32:
                value = int(value)
                raw[0] = value - wrap if value >= signed_bit else value
            elif bits == 64:
                value = int(value)
                ctypes.cast(raw, _RAW_I64)[0] = value - wrap if value >= signed_bit else value
            return 0
        except BaseException as exc:
            if frame is not None:  # None only if called outside Session.run: a bug
                frame.pending = exc
            return _new_trap()

    return callback


def _new_trap() -> int:
    """A fresh wasm trap for wasmtime to raise (it takes ownership); the cause is on the frame."""
    trap = ffi.wasmtime_trap_new(_TRAP_MESSAGE, len(_TRAP_MESSAGE))
    address: int = ctypes.cast(trap, ctypes.c_void_p).value or 0
    return address


_RAW_I32 = ctypes.POINTER(ctypes.c_int32)
_RAW_I64 = ctypes.POINTER(ctypes.c_int64)
#: A null finalizer: the callbacks live as long as the process.
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()
_TRAP_MESSAGE = b"host function raised (the cause is recorded on the frame)"
#: The C signature of an unchecked host function, with the value slots typed as i32 cells.
_RAW_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, _RAW_I32, ctypes.c_size_t)


def _callbacks() -> dict[str, Any]:
    """One C callback per shim, kept alive for the life of the process."""
    out: dict[str, Any] = {}
    for spec in HOST_FUNCTIONS.values():
        if spec.impl not in out:
            out[spec.impl] = _RAW_CALLBACK(_host_function(SHIMS[spec.impl], spec))
    return out


#: One callback per shim, shared by every linker of the process.
_CALLBACKS = _callbacks()


def _functype(spec: HostFuncSpec) -> wasmtime.FuncType:
    return wasmtime.FuncType([_VALTYPES[p]() for p in spec.params], [_VALTYPES[r]() for r in spec.results])


def build_linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    """A linker with every host function of the ABI defined, shadowing allowed for memory."""
    linker = wasmtime.Linker(engine)
    linker.allow_shadowing = True
    for (module, name), spec in HOST_FUNCTIONS.items():
        module_bytes, name_bytes = module.encode(), name.encode()
        callback = ctypes.cast(_CALLBACKS[spec.impl], ffi.wasmtime_func_unchecked_callback_t)
        functype = _functype(spec)  # alive until the call returns (its __del__ frees the C type)
        error = ffi.wasmtime_linker_define_func_unchecked(
            linker.ptr(), ctypes.create_string_buffer(module_bytes), len(module_bytes),
            ctypes.create_string_buffer(name_bytes), len(name_bytes), functype.ptr(),
            callback, None, _NO_FINALIZER)
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    return linker


class ThreadLinkers:
    """One linker per thread for one wasmtime engine (dropped with its thread)."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._local = threading.local()

    def get(self) -> wasmtime.Linker:
        linker: wasmtime.Linker | None = getattr(self._local, "linker", None)
        if linker is None:
            linker = self._local.linker = build_linker(self._engine)
        return linker
