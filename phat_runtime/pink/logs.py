"""pink chain-extension function ``log`` (id 10) and the worker's contract log store.

:class:`LogStore` keeps, per contract, a ring buffer of :class:`LogRecord` bounded in bytes
(oldest records go first). It receives what contracts log through pink's logger (``log``,
levels 1 Error … 5 Trace, anything else counts as Error) and, at Debug level, each execution's
``debug_message`` output (the runtime records it after the execution, like pink forwards its
debug buffer to the log server). Records carry a store-wide sequence number so a reader can
page with ``records(contract, since=last_seen)`` — the shape an RPC ``logs`` endpoint needs.

Logging is a local side effect: it works the same in queries and transactions, and a record
stays even if the transaction later reverts (as in pink). Thread-safe.

**The cluster's log handler.** When the system contract sets one (``PinkEvent::SetLogHandler``,
applied at the end of a block; the runtime then sets :attr:`LogStore.handler`), every record of
every other contract is also delivered to the handler's buffer, marked with its ``source``,
as pink sends ``PinkLog`` system messages to the log server; and the runtime delivers what
pink's ``PinkEvent`` and ``PinkMessageOutput`` messages carry (:meth:`LogStore.deliver_event`,
:meth:`LogStore.deliver_output`). The handler's deployer reads them like any contract's logs.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
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


class _Event(Protocol):
    """An emitted event as the runtime records it (runtime.execution.ContractEvent)."""

    @property
    def contract(self) -> bytes: ...
    @property
    def topics(self) -> Sequence[bytes]: ...
    @property
    def data(self) -> bytes: ...


class RecordKind(enum.Enum):
    """What a record is: a log line, or (log handler only) an event or a transaction's output."""

    LOG = "log"  # pink's log (id 10) or an execution's debug_message output
    EVENT = "event"  # an ordinary (ink!) event of a committed transaction; message = JSON
    OUTPUT = "output"  # a transaction's outcome; message = JSON


@dataclass(frozen=True)
class LogRecord:
    sequence: int
    contract: bytes  # whose buffer holds the record
    level: LogLevel
    timestamp_ms: int
    block_number: int | None
    mode: ExecutionMode
    message: str
    kind: RecordKind = RecordKind.LOG
    #: The contract the record is about, when it was delivered to the log handler.
    source: bytes | None = None

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
        #: The cluster's log handler contract (set by the runtime from the cluster state).
        self.handler: bytes | None = None

    def append(
        self,
        contract: bytes,
        level: LogLevel,
        message: str,
        *,
        mode: ExecutionMode,
        block_number: int | None = None,
    ) -> LogRecord:
        """Record ``message``; older records of ``contract`` make room for it. A copy goes to
        the log handler (if there is one and it is not ``contract`` itself)."""
        with self._lock:
            record = self._add(bytes(contract), level, message, mode, block_number, RecordKind.LOG, None)
            handler = self.handler
            if handler is not None and bytes(handler) != record.contract:
                self._add(bytes(handler), level, message, mode, block_number, RecordKind.LOG, record.contract)
            return record

    def deliver_transaction(self, origin: bytes, contract: bytes, events: Iterable[_Event], *, flags: int,
                            data: bytes, error: str | None, block_number: int | None) -> None:
        """A transaction finished: to the log handler (if any) go its ordinary events if it
        committed (pink's ``PinkEvent`` system message; message ``{"topics": ["0x…"], "data":
        "0x…"}``, source = the emitter), then its outcome (``PinkMessageOutput``; message
        ``{"origin": "0x…", "flags": n, "data": "0x…", "error": null | "Kind: why"}``, source =
        the contract called)."""
        for event in events:
            text = json.dumps({"topics": ["0x" + bytes(t).hex() for t in event.topics],
                               "data": "0x" + bytes(event.data).hex()})
            self._deliver(event.contract, RecordKind.EVENT, text, block_number)
        text = json.dumps({"origin": "0x" + bytes(origin).hex(), "flags": flags, "data": "0x" + data.hex(),
                           "error": error})
        self._deliver(contract, RecordKind.OUTPUT, text, block_number)

    def _deliver(self, source: bytes, kind: RecordKind, text: str, block_number: int | None) -> LogRecord | None:
        with self._lock:
            handler = self.handler
            if handler is None:
                return None
            return self._add(bytes(handler), LogLevel.INFO, text, ExecutionMode.TRANSACTION, block_number,
                             kind, bytes(source))

    def _add(self, contract: bytes, level: LogLevel, message: str, mode: ExecutionMode,
             block_number: int | None, kind: RecordKind, source: bytes | None) -> LogRecord:
        """Append one record to ``contract``'s buffer (the caller holds the lock)."""
        self._sequence += 1
        now = int(self.clock() * 1000)
        record = LogRecord(self._sequence, contract, level, now, block_number, mode, message, kind, source)
        if record.cost > self.max_bytes_per_contract:  # keep the head of a huge message
            room = max(0, self.max_bytes_per_contract - RECORD_OVERHEAD)
            text = message.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
            record = LogRecord(record.sequence, contract, level, now, block_number, mode, text, kind, source)
        buffer = self._buffers.setdefault(contract, deque())
        size = self._sizes.get(contract, 0) + record.cost
        while buffer and size > self.max_bytes_per_contract:
            size -= buffer.popleft().cost
        buffer.append(record)
        self._sizes[contract] = size
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
