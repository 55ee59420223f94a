"""The cluster settings the system contract controls, kept in the cluster's state.

They are part of the state (and so of the state root): every worker that applies the same
blocks holds the same settings, and a restarted worker finds them again. One namespace byte,
``Y``, next to those of ``runtime/records.py``:

====================  ==============================================================
key                   value
====================  ==============================================================
``Y s``               the system contract's address (32 bytes), set at genesis
``Y l``               the log handler contract (``PinkEvent::SetLogHandler``)
``Y h`` ‖ contract    its ``OnBlockEnd`` hook: selector u32 LE ‖ gas limit u64 LE
``Y w`` ‖ contract    its weight for the query scheduler, u32 LE
====================  ==============================================================

Hooks come back ordered by contract address (the key order), which is the order they run in.
"""

from __future__ import annotations

from dataclasses import dataclass

from phat_runtime.errors import StateError
from phat_runtime.state.kv import KVStore
from phat_runtime.types import AccountId

SETTINGS = b"Y"
_SYSTEM = SETTINGS + b"s"
_LOG_HANDLER = SETTINGS + b"l"
_HOOK = SETTINGS + b"h"
_WEIGHT = SETTINGS + b"w"
_ADDRESS = 32
#: Weight of a contract the system contract never weighed.
DEFAULT_WEIGHT = 1


@dataclass(frozen=True)
class Hook:
    """An ``OnBlockEnd`` hook: at the end of each block, call ``contract`` with input
    ``selector`` as 4 big-endian bytes, origin the contract itself, at most ``gas_limit``."""

    contract: AccountId
    selector: int
    gas_limit: int

    @property
    def input(self) -> bytes:
        return self.selector.to_bytes(4, "big")


class ClusterSettings:
    """Typed accessors over a KVStore (the committed state or a block's overlay)."""

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv

    # --- system contract and log handler ----------------------------------------------------------
    def system_contract(self) -> AccountId | None:
        return self._address(_SYSTEM, "system contract")

    def set_system_contract(self, address: bytes) -> None:
        self.kv.set(_SYSTEM, _checked(address))

    def log_handler(self) -> AccountId | None:
        return self._address(_LOG_HANDLER, "log handler")

    def set_log_handler(self, address: bytes) -> None:
        self.kv.set(_LOG_HANDLER, _checked(address))

    # --- hooks ------------------------------------------------------------------------------------
    def hooks(self) -> list[Hook]:
        """Every hook, ordered by contract address (the order they run in)."""
        return [_hook(key[len(_HOOK):], raw) for key, raw in self.kv.iter_prefix(_HOOK)]

    def hook(self, contract: bytes) -> Hook | None:
        raw = self.kv.get(_HOOK + contract)
        return _hook(contract, raw) if raw is not None else None

    def set_hook(self, hook: Hook) -> None:
        """Set (or replace) ``hook.contract``'s hook: a contract has at most one per block."""
        value = hook.selector.to_bytes(4, "little") + hook.gas_limit.to_bytes(8, "little")
        self.kv.set(_HOOK + _checked(hook.contract), value)

    def remove_hook(self, contract: bytes) -> None:
        self.kv.delete(_HOOK + contract)

    # --- weights ----------------------------------------------------------------------------------
    def weight(self, contract: bytes) -> int:
        raw = self.kv.get(_WEIGHT + contract)
        return int.from_bytes(raw, "little") if raw is not None else DEFAULT_WEIGHT

    def set_weight(self, contract: bytes, weight: int) -> None:
        self.kv.set(_WEIGHT + _checked(contract), weight.to_bytes(4, "little"))

    def weights(self) -> dict[AccountId, int]:
        """The weights the system contract set (contracts not listed weigh DEFAULT_WEIGHT)."""
        return {AccountId(k[len(_WEIGHT):]): int.from_bytes(v, "little") for k, v in self.kv.iter_prefix(_WEIGHT)}

    def _address(self, key: bytes, what: str) -> AccountId | None:
        raw = self.kv.get(key)
        if raw is None:
            return None
        if len(raw) != _ADDRESS:
            raise StateError(f"corrupt {what} record: {len(raw)} bytes, expected {_ADDRESS}")
        return AccountId(raw)


def _checked(address: bytes) -> bytes:
    if len(address) != _ADDRESS:
        raise ValueError(f"an address is {_ADDRESS} bytes, got {len(address)}")
    return bytes(address)


def _hook(contract: bytes, raw: bytes) -> Hook:
    if len(raw) != 12:
        raise StateError(f"corrupt hook record of 0x{contract.hex()}: {len(raw)} bytes, expected 12")
    return Hook(AccountId(bytes(contract)), int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little"))
