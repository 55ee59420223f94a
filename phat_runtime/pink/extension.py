"""The chain-extension dispatch point (``call_chain_extension``), its registry, and what a
handler may see of the running call.

pink's convention (HOST-ABI §3.1): ``ext_id = func_id >> 16`` must be 0, ``func = func_id &
0xFFFF`` selects the function (1–25). Handlers get the call's environment and the SCALE input,
and return ``(status, SCALE output)``. An unknown id fails the contract call with a clear
:class:`ChainExtensionError`. Which behaviour a function has (query vs transaction) is decided
by which registry the cluster plugs in for the execution mode, not by ``if`` in handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from phat_runtime.codec.scale import Reader, ScaleError
from phat_runtime.errors import ChainExtensionError
from phat_runtime.types import AccountId, ExecutionMode

if TYPE_CHECKING:
    from phat_runtime.pink.services import PinkServices

#: pink accepts only extension id 0.
PINK_EXTENSION_ID = 0
#: Gas (ref_time weight) of every chain-extension call on top of the host call itself: the
#: dispatch and SCALE work in Python, ~9 µs (docs/host-abi.md, "Gas"). Functions doing more
#: declare their extra gas when they register (signatures: ``crypto.signatures.SIGNATURE_GAS``).
#: Consensus-relevant, like ``wasm/schedule.py``.
CHAIN_EXTENSION_GAS = 10_000_000


class ExtensionEnv(Protocol):
    """What a chain-extension handler may know about, and do in, the running call.

    Implemented by the runtime's per-frame host (``runtime/execution.py::FrameHost``).
    """

    @property
    def mode(self) -> ExecutionMode: ...

    @property
    def contract(self) -> AccountId: ...

    @property
    def services(self) -> PinkServices: ...

    def caller(self) -> AccountId: ...

    def deposit_event(self, topics: list[bytes], data: bytes) -> None:
        """Emit an event from the calling contract (PinkEvents use pink's fixed topic)."""
        ...

    def balance_of(self, account: bytes) -> tuple[int, int]:
        """(total, free) balance of ``account`` as this execution sees it."""
        ...

    def code_exists(self, code_hash: bytes) -> bool: ...

    def remaining_ms(self) -> int:
        """Milliseconds left of this execution's wall-clock budget."""
        ...


Handler = Callable[[ExtensionEnv, bytes], tuple[int, bytes]]
T = TypeVar("T")


def decode(data: bytes, signature: str, read: Callable[[Reader], T]) -> T:
    """Decode a function's whole argument tuple (pallet-contracts ``read_as_unbounded`` =
    ``decode_all``): bad or trailing bytes fail the call with ``DecodingFailed``."""
    reader = Reader(data)
    try:
        value = read(reader)
        reader.end()
    except ScaleError as exc:
        raise ChainExtensionError(f"DecodingFailed: arguments of {signature}: {exc}", kind="DecodingFailed") from None
    return value


class ChainExtensionRegistry:
    """func id → handler. One registry per (cluster, execution mode)."""

    def __init__(self) -> None:
        self._handlers: dict[int, Handler] = {}
        self._gas: dict[int, int] = {}

    def register(self, func: int, handler: Handler, *, gas: int = 0) -> None:
        """``gas``: what a call costs beyond :data:`CHAIN_EXTENSION_GAS` (the same in every
        execution mode, so estimating a transaction's gas in a query is exact)."""
        self._handlers[func] = handler
        self._gas[func] = gas

    def gas(self, func_id: int) -> int:
        """Gas charged before ``func_id`` runs (unknown ids too: they fail after paying)."""
        return CHAIN_EXTENSION_GAS + self._gas.get(func_id & 0xFFFF if func_id >> 16 == PINK_EXTENSION_ID else -1, 0)

    def __contains__(self, func: int) -> bool:
        return func in self._handlers

    def dispatch(self, func_id: int, env: ExtensionEnv, input_data: bytes) -> tuple[int, bytes]:
        ext_id, func = func_id >> 16, func_id & 0xFFFF
        if ext_id != PINK_EXTENSION_ID:
            raise ChainExtensionError(
                f"UnknownChainExtensionId: chain extension id {ext_id} (func_id {func_id:#x}); "
                "this runtime serves pink's extension, id 0",
                kind="UnknownChainExtensionId",
            )
        handler = self._handlers.get(func)
        if handler is None:
            raise ChainExtensionError(
                f"UnknownChainExtensionFunction: chain-extension function {func} is not "
                "available in this runtime",
                kind="UnknownChainExtensionFunction",
            )
        return handler(env, input_data)
