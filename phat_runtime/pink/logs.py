"""pink chain-extension function ``log`` (id 10) and the worker's contract log store.

:class:`LogStore` keeps, per contract, a ring buffer of :class:`LogRecord` bounded in bytes
(oldest records go first). It receives what contracts log through pink's logger (``log``,
levels 1 Error … 5 Trace, anything else counts as Error) and, at Debug level, each execution's
``debug_message`` output (the runtime records it after the execution, like pink forwards its
debug buffer to the log server). Records carry a store-wide sequence number so a reader can
page with ``records(contract, since=last_seen)`` — the shape an RPC ``logs`` endpoint needs.

Logging is a local side effect: it works the same in queries and transactions, and a record
stays even if the transaction later reverts (as in pink). Thread-safe.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from phat_runtime.pink.extension import ChainExtensionRegistry, ExtensionEnv, decode
from phat_runtime.pink.misc import OK
from phat_runtime.types import ExecutionMode

LOG = 10

#: Bytes of records kept per contract (message bytes + :data:`RECORD_OVERHEAD` each).
DEFAULT_MAX_BYTES_PER_CONTRACT = 1024 * 1024
#: What a record costs beyond its message (its fields), so empty messages are not free.
RECORD_OVERHEAD = 64
#: Most records one ``records()`` call returns.
MAX_PAGE = 1000


class LogLevel(enum.IntEnum):
    """pink's logger levels (``log::Level``)."""

    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4
    TRACE = 5

    @classmethod
    def from_wire(cls, value: int) -> LogLevel:
        """pink: anything outside 1..=5 is logged as Error."""
        try:
            return cls(value)
        except ValueError:
            return cls.ERROR


@dataclass(frozen=True)
class LogRecord:
    sequence: int
    contract: bytes
    level: LogLevel
    timestamp_ms: int
    block_number: int | None
    mode: ExecutionMode
    message: str

    @property
    def cost(self) -> int:
        return len(self.message.encode("utf-8", "replace")) + RECORD_OVERHEAD


class LogStore:
    """Per-contract ring buffers of log records. ``clock`` returns seconds since the epoch."""

    def __init__(
        self,
        *,
        max_bytes_per_contract: int = DEFAULT_MAX_BYTES_PER_CONTRACT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_bytes_per_contract = max_bytes_per_contract
        self.clock = clock
        self._buffers: dict[bytes, deque[LogRecord]] = {}
        self._sizes: dict[bytes, int] = {}
        self._sequence = 0
        self._lock = threading.Lock()

    def append(
        self,
        contract: bytes,
        level: LogLevel,
        message: str,
        *,
        mode: ExecutionMode,
        block_number: int | None = None,
    ) -> LogRecord:
        """Record ``message``; older records of ``contract`` make room for it."""
        with self._lock:
            self._sequence += 1
            record = LogRecord(
                self._sequence, bytes(contract), level, int(self.clock() * 1000), block_number, mode, message
            )
            if record.cost > self.max_bytes_per_contract:  # keep the head of a huge message
                room = max(0, self.max_bytes_per_contract - RECORD_OVERHEAD)
                text = message.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
                record = LogRecord(record.sequence, record.contract, level, record.timestamp_ms,
                                   block_number, mode, text)
            buffer = self._buffers.setdefault(record.contract, deque())
            size = self._sizes.get(record.contract, 0) + record.cost
            while buffer and size > self.max_bytes_per_contract:
                size -= buffer.popleft().cost
            buffer.append(record)
            self._sizes[record.contract] = size
            return record

    def records(
        self,
        contract: bytes,
        *,
        since: int = 0,
        limit: int = MAX_PAGE,
        min_level: LogLevel = LogLevel.TRACE,
    ) -> list[LogRecord]:
        """Records of ``contract`` with sequence > ``since``, oldest first, at most ``limit``;
        ``min_level`` filters by severity (ERROR = errors only, TRACE = everything)."""
        limit = max(0, min(limit, MAX_PAGE))
        with self._lock:
            found = [
                r for r in self._buffers.get(bytes(contract), ())
                if r.sequence > since and r.level <= min_level
            ]
        return found[:limit]

    def contracts(self) -> list[bytes]:
        with self._lock:
            return list(self._buffers)

    def clear(self, contract: bytes) -> None:
        with self._lock:
            self._buffers.pop(bytes(contract), None)
            self._sizes.pop(bytes(contract), None)


def record_debug_message(
    logs: object, contract: bytes, message: str, *, mode: ExecutionMode, block_number: int | None
) -> None:
    """Keep an execution's ``debug_message`` output at Debug level (if there is a LogStore)."""
    if message and isinstance(logs, LogStore):
        logs.append(contract, LogLevel.DEBUG, message, mode=mode, block_number=block_number)


@runtime_checkable
class _KnowsBlock(Protocol):
    def block_number(self) -> int: ...


def log(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``log(level: u8, message: String)``: append to the contract's log (no log store: dropped).

    Availability: query | transaction
    """
    level, message = decode(data, "log(level: u8, message: String)", lambda r: (r.u8(), r.string()))
    store = env.services.logs
    if isinstance(store, LogStore):
        block = env.block_number() if isinstance(env, _KnowsBlock) else None
        store.append(env.contract, LogLevel.from_wire(level), message, mode=env.mode, block_number=block)
    return OK, b""


def register(registry: ChainExtensionRegistry, mode: ExecutionMode) -> None:
    """Register this module's functions with the behaviour of ``mode`` (the same in all)."""
    registry.register(LOG, log)
