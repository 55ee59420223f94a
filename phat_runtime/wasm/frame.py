"""One call frame's view of linear memory, plus the shim registry and control-flow signals.

Host functions ("shims", in ``seal0.py`` / ``seal1.py`` / ``seal2.py``) receive the
:class:`Frame` as first argument followed by the raw wasm arguments. Everything here follows
HOST-ABI.md §2: bounds-checked reads and writes (out-of-bounds aborts the call), the in/out
length convention with the u32::MAX sentinel, little-endian integers.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wasmtime

from phat_runtime.errors import HostFunctionError, OutOfGas
from phat_runtime.types import SENTINEL
from phat_runtime.wasm.schedule import FUEL_PER_BYTE, HOST_DEBT_LIMIT_FUEL, STORAGE_WRITE_FUEL

if TYPE_CHECKING:
    from phat_runtime.wasm.host import Host

U32_MASK = 0xFFFF_FFFF
#: Largest storage key (pink: MaxStorageKeyLen = 128).
MAX_STORAGE_KEY_LEN = 128
#: Largest storage value / event payload (pink schedule payload_len = 1 MiB).
MAX_VALUE_LEN = 1024 * 1024

_U32 = struct.Struct("<I")
# ctypes keeps ``c_ubyte * n`` types only weakly: hold the few memory sizes (whole pages) here so
# each frame does not build a new array type for the garbage collector to clean up.
_BYTE_ARRAYS: dict[int, type[ctypes.Array[ctypes.c_ubyte]]] = {}


def _byte_array(size: int) -> type[ctypes.Array[ctypes.c_ubyte]]:
    array = _BYTE_ARRAYS.get(size)
    if array is None:
        array = _BYTE_ARRAYS[size] = ctypes.c_ubyte * size
    return array


Shim = Callable[..., Any]
#: impl name (as in ``abi.HostFuncSpec.impl``) → python function(frame, *args)
SHIMS: dict[str, Shim] = {}


def shim(fn: Shim) -> Shim:
    """Register ``fn`` under its own name as the implementation of an ABI entry."""
    SHIMS[fn.__name__] = fn
    return fn


class ContractReturned(Exception):
    """``seal_return``: ends the frame with flags and data. Not a PhatError: never escapes."""

    def __init__(self, flags: int, data: bytes) -> None:
        super().__init__("seal_return")
        self.flags = flags
        self.data = data


class ContractTerminated(Exception):
    """``terminate``: ends the frame; the contract has been removed by the host."""


def host_error(kind: str, message: str) -> HostFunctionError:
    """A pallet-contracts error raised by a host function (aborts the frame)."""
    return HostFunctionError(f"{kind}: {message}", kind=kind)


class Frame:
    """Memory access and per-frame state for the shims of one contract instance.

    Linear memory is reached through a memoryview over its raw bytes, bounds-checked on every
    access. The view is rebuilt when the memory's size changed — only wasm code grows memory,
    and growing is the only way its base address can move — and checked once per host-function
    call (``view`` is reset on every entry from wasm). The view never outlives the frame.
    """

    __slots__ = ("_whole", "debt", "host", "input", "memory", "pending", "store", "view")

    def __init__(self, store: wasmtime.Store, host: Host, input_data: bytes):
        self.store = store
        self.host = host
        self.input: bytes | None = input_data  # None once forwarded (FORWARD_INPUT)
        self.memory: wasmtime.Memory | None = None
        #: Linear memory as checked during the current host call (None: check again).
        self.view: memoryview | None = None
        self._whole: memoryview | None = None  # the last view built, whatever its age
        # The exception a shim raised, recorded here because wasmtime-py keeps the "last
        # exception" in a process-global variable that concurrent executions could overwrite.
        self.pending: BaseException | None = None
        #: Host work charged but not yet taken from the store's fuel (see :meth:`charge`).
        self.debt = 0

    def end(self) -> None:
        """The frame is over: drop everything that points into its store."""
        self.view = self._whole = None
        self.memory = None
        self.pending = None  # an exception's traceback would hold the frame

    # --- memory -------------------------------------------------------------------------
    def _view(self) -> memoryview:
        view = self.view
        if view is None:
            memory = self.memory
            if memory is None:  # pragma: no cover - instantiate sets it first
                raise host_error("OutOfBounds", "no memory")
            size = memory.data_len(self.store)
            view = self._whole
            if view is None or len(view) != size:
                if size:
                    base = ctypes.addressof(memory.data_ptr(self.store).contents)
                    view = memoryview(_byte_array(size).from_address(base)).cast("B")
                else:
                    view = memoryview(b"")
                self._whole = view
            self.view = view
        return view

    def read(self, ptr: int, length: int) -> bytes:
        ptr &= U32_MASK
        end = ptr + (length & U32_MASK)
        view = self._view()
        if end > len(view):
            raise host_error(
                "OutOfBounds", f"read of {length & U32_MASK} bytes at {ptr:#x} is outside linear memory"
            )
        self.charge((end - ptr) * FUEL_PER_BYTE)
        return view[ptr:end].tobytes()

    def write(self, ptr: int, data: bytes) -> None:
        ptr &= U32_MASK
        end = ptr + len(data)
        view = self._view()
        if end > len(view):
            raise host_error(
                "OutOfBounds", f"write of {len(data)} bytes at {ptr:#x} is outside linear memory"
            )
        if data:
            self.charge(len(data) * FUEL_PER_BYTE)
            view[ptr:end] = data

    def read_u32(self, ptr: int) -> int:
        ptr &= U32_MASK
        view = self._view()
        if ptr + 4 > len(view):
            raise host_error("OutOfBounds", f"read of 4 bytes at {ptr:#x} is outside linear memory")
        value: int = _U32.unpack_from(view, ptr)[0]
        return value

    def write_u32(self, ptr: int, value: int) -> None:
        ptr &= U32_MASK
        view = self._view()
        if ptr + 4 > len(view):
            raise host_error("OutOfBounds", f"write of 4 bytes at {ptr:#x} is outside linear memory")
        _U32.pack_into(view, ptr, value)

    def read_u128(self, ptr: int) -> int:
        return int.from_bytes(self.read(ptr, 16), "little")

    def write_out(self, out_ptr: int, out_len_ptr: int, data: bytes, *, allow_skip: bool = False) -> None:
        """The in/out length convention: ``*out_len_ptr`` holds the capacity on entry."""
        if allow_skip and (out_ptr & U32_MASK) == SENTINEL:
            return
        capacity = self.read_u32(out_len_ptr)
        if capacity < len(data):
            raise host_error(
                "OutputBufferTooSmall",
                f"{len(data)} bytes do not fit the contract's {capacity}-byte buffer",
            )
        self.write(out_ptr, data)
        self.write_u32(out_len_ptr, len(data))

    # --- gas ---------------------------------------------------------------------------
    def charge(self, fuel: int) -> None:
        """Charge ``fuel`` for host-side work (``wasm/schedule.py``). It is owed first and taken
        from the store once the debt reaches HOST_DEBT_LIMIT_FUEL (OutOfGas if the frame cannot
        pay): one fuel read and write per forty cheap calls instead of one per call."""
        debt = self.debt + fuel
        self.debt = debt
        if debt >= HOST_DEBT_LIMIT_FUEL:
            self.settle()

    def settle(self) -> None:
        """Take the debt from the store's fuel now; OutOfGas (all fuel gone) if it cannot."""
        debt = self.debt
        if not debt:
            return
        self.debt = 0
        left = self.store.get_fuel()
        if debt > left:
            self.store.set_fuel(0)
            error = OutOfGas("out of gas in a host function")
            self.pending = error  # the executor trusts what the frame recorded
            raise error
        self.store.set_fuel(left - debt)

    def fuel_left(self) -> int:
        self.settle()
        return int(self.store.get_fuel())


def read_storage_key(frame: Frame, key_ptr: int, key_len: int) -> bytes:
    key_len &= U32_MASK
    if key_len > MAX_STORAGE_KEY_LEN:
        raise host_error(
            "DecodingFailed", f"storage key of {key_len} bytes exceeds {MAX_STORAGE_KEY_LEN}"
        )
    return frame.read(key_ptr, key_len)


def read_value(frame: Frame, ptr: int, length: int) -> bytes:
    length &= U32_MASK
    if length > MAX_VALUE_LEN:
        raise host_error("ValueTooLarge", f"value of {length} bytes exceeds {MAX_VALUE_LEN}")
    frame.charge(STORAGE_WRITE_FUEL + length * FUEL_PER_BYTE)  # the write; read() charges the copy
    return frame.read(ptr, length)
