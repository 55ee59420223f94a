"""Domain types shared by every layer: ids, execution modes, flags, return codes.

Bytes inside, hex/SS58 only at the edges: ``AccountId`` and ``CodeHash`` are plain 32-byte
``bytes`` values (``NewType`` so mypy keeps them apart).
"""

from __future__ import annotations

import enum
from typing import NewType

AccountId = NewType("AccountId", bytes)
CodeHash = NewType("CodeHash", bytes)

ACCOUNT_ID_LEN = 32
HASH_LEN = 32
#: u32::MAX — "none" as a return value, "skip the copy" as an out pointer (HOST-ABI §2.1).
SENTINEL = 0xFFFF_FFFF
U128_MAX = (1 << 128) - 1


class ExecutionMode(enum.Enum):
    """How a contract runs. Determinism is chosen by the backend plugged in for the mode."""

    QUERY = "query"  # off-chain: HTTP, randomness, clock allowed; writes discarded
    TRANSACTION = "transaction"  # deterministic; writes committed
    ESTIMATE = "estimate"  # dry-run of a transaction: deterministic, writes discarded

    @property
    def deterministic(self) -> bool:
        return self is not ExecutionMode.QUERY

    @property
    def commits(self) -> bool:
        return self is ExecutionMode.TRANSACTION


class ReturnCode(enum.IntEnum):
    """u32 codes returned by host functions (pallet-contracts ReturnErrorCode)."""

    SUCCESS = 0
    CALLEE_TRAPPED = 1
    CALLEE_REVERTED = 2
    KEY_NOT_FOUND = 3
    BELOW_SUBSISTENCE_THRESHOLD = 4
    TRANSFER_FAILED = 5
    ENDOWMENT_TOO_LOW = 6
    CODE_NOT_FOUND = 7
    NOT_CALLABLE = 8
    LOGGING_DISABLED = 9
    CALL_RUNTIME_FAILED = 10
    ECDSA_RECOVERY_FAILED = 11
    SR25519_VERIFY_FAILED = 12


class ReturnFlags(enum.IntFlag):
    """Flags of ``seal_return``; any bit other than REVERT is an InvalidCallFlags error."""

    REVERT = 1


class CallFlags(enum.IntFlag):
    """Flags of ``call`` / ``delegate_call``."""

    FORWARD_INPUT = 1
    CLONE_INPUT = 2
    TAIL_CALL = 4
    ALLOW_REENTRY = 8
    READ_ONLY = 16


def account_id(value: bytes) -> AccountId:
    """Check and wrap a 32-byte account id."""
    if len(value) != ACCOUNT_ID_LEN:
        raise ValueError(f"an AccountId is 32 bytes, got {len(value)}")
    return AccountId(bytes(value))


def code_hash(value: bytes) -> CodeHash:
    """Check and wrap a 32-byte code hash."""
    if len(value) != HASH_LEN:
        raise ValueError(f"a code hash is 32 bytes, got {len(value)}")
    return CodeHash(bytes(value))
