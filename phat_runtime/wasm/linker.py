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

import threading
from collections.abc import Callable
from typing import Any

import wasmtime

from phat_runtime.wasm import seal0, seal1, seal2  # noqa: F401  (registers the shims)
from phat_runtime.wasm.abi import HOST_FUNCTIONS, HostFuncSpec
from phat_runtime.wasm.frame import SHIMS, Frame

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


def _host_function(shim: Callable[..., Any], result_bits: int) -> Callable[..., Any]:
    """The callback wasmtime calls: the running frame first, exceptions recorded on it, u32/u64
    results wrapped to i32/i64. Closes over process-wide objects only.

    Each call resets the frame's memory view: wasm code ran since the last host call and may
    have grown the memory. (The frame is never None here: only Session.run instantiates with
    these functions, after :func:`enter`.)"""
    running = _RUNNING

    if result_bits:
        signed_bit, wrap = 1 << (result_bits - 1), 1 << result_bits

        def call_returning(*args: int) -> int:
            frame = running.frame
            try:
                frame.view = None  # type: ignore[union-attr]
                result = int(shim(frame, *args))
            except BaseException as exc:
                if frame is not None:  # None only if called outside Session.run: a bug
                    frame.pending = exc
                raise
            return result - wrap if result >= signed_bit else result

        return call_returning

    def call(*args: int) -> None:
        frame = running.frame
        try:
            frame.view = None  # type: ignore[union-attr]
            shim(frame, *args)
        except BaseException as exc:
            if frame is not None:
                frame.pending = exc
            raise

    return call


def _callbacks() -> dict[str, Callable[..., Any]]:
    out: dict[str, Callable[..., Any]] = {}
    for spec in HOST_FUNCTIONS.values():
        if spec.impl not in out:
            bits = _RESULT_BITS[spec.results[0]] if spec.results else 0
            out[spec.impl] = _host_function(SHIMS[spec.impl], bits)
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
        linker.define_func(module, name, _functype(spec), _CALLBACKS[spec.impl])
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
