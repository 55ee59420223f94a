"""The PinkEvent side channel (HOST-ABI §2.6): decoding, policy, and acting on the events.

Contracts talk to the runtime by emitting SCALE ``PinkEvent`` values as events whose single
topic is :data:`~phat_runtime.pink.structs.PINK_EVENT_TOPIC`. The runtime takes them out of the
ordinary event stream (:func:`split_pink_events`), decodes them (:func:`decode_pink_event`), judges them
(:func:`judge_pink_events`) and acts once the execution's state is final (:func:`apply_pink_events`):

- ``CacheOp`` — applied to the worker's cache after a transaction commits, straight after a
  query; never after a revert, never for an estimate;
- ``SetHook``, ``SetLogHandler``, ``SetContractWeight``, ``UpgradeRuntimeTo``,
  ``SetJsRuntime`` (system contract only) — ``PENDING`` until the end of the block, when the
  runtime (``runtime/block_end.py``) applies or refuses each in emission order and sets its
  final status and note; see docs/clusters.md;
- SideVM events (``DeploySidevmTo``, ``SidevmMessage``, ``StopSidevm``, ``ForceStopSidevm``,
  ``SidevmOperation``) — not supported by this runtime: recorded as such ("SideVM is not
  supported by this runtime").

Policy as phactory applies it: in queries only ``allowed_in_query`` kinds are accepted; the
system-only kinds are refused from any other contract. Every judged event stays visible in
``ExecResult.pink_events`` with its status and a note.

Must not: import runtime/ — events are passed in as (contract, topics, data).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from phat_runtime.codec.scale import Reader, ScaleError, Writer
from phat_runtime.pink.cache import LocalCache, apply_cache_op
from phat_runtime.pink.structs import PINK_EVENT_TOPIC, CacheOpKind, PinkEventKind
from phat_runtime.types import AccountId, ExecutionMode

_ACCOUNT = 32
_HASH = 32


class HookPoint(enum.IntEnum):
    ON_BLOCK_END = 0


@dataclass(frozen=True)
class SidevmConfig:
    max_code_size: int
    max_memory_pages: int
    vital_capacity: int
    deadline: int


@dataclass(frozen=True)
class PinkEvent:
    """One decoded event. ``kind`` says which variant; only that variant's fields are set.

    Fields by kind (codec index): 2 SetHook{hook, contract, selector: u32, gas_limit: u64} ·
    3 DeploySidevmTo{contract, code_hash} · 4 SidevmMessage(payload) · 5 CacheOp(cache_op: 0
    Set{key, value} | 1 SetExpiration{key, expiration: u64} | 2 Remove{key}) · 6 StopSidevm ·
    7 ForceStopSidevm{contract} · 8 SetLogHandler(contract) · 9 SetContractWeight{contract,
    weight: u32} · 10 UpgradeRuntimeTo{version: (u32, u32)} · 11 SidevmOperation(operation: 0
    Start{contract, code_hash, workers, config} | 1 SetDeadline{contract, deadline: u32}) ·
    12 SetJsRuntime(code_hash).
    ``workers`` is None for ``Workers::All``, else the list of worker ids.
    """

    kind: PinkEventKind
    contract: bytes | None = None
    code_hash: bytes | None = None
    hook: HookPoint | None = None
    selector: int | None = None
    gas_limit: int | None = None
    payload: bytes | None = None
    cache_op: CacheOpKind | None = None
    key: bytes | None = None
    value: bytes | None = None
    expiration: int | None = None
    weight: int | None = None
    version: tuple[int, int] | None = None
    operation: int | None = None  # SidevmOperation: 0 Start, 1 SetDeadline
    workers: list[bytes] | None = None
    config: SidevmConfig | None = None
    deadline: int | None = None

    @property
    def name(self) -> str:
        return "".join(part.capitalize() for part in self.kind.name.split("_"))

    @property
    def allowed_in_query(self) -> bool:
        return self.kind in QUERY_KINDS

    @property
    def is_private(self) -> bool:
        """pink keeps these out of the published events (their payloads are contract secrets)."""
        return self.kind in (PinkEventKind.SIDEVM_MESSAGE, PinkEventKind.CACHE_OP)

    @property
    def system_only(self) -> bool:
        return self.kind in SYSTEM_ONLY_KINDS

    def encode(self) -> bytes:
        return _encode(self)


QUERY_KINDS = frozenset({
    PinkEventKind.DEPLOY_SIDEVM_TO, PinkEventKind.SIDEVM_MESSAGE, PinkEventKind.CACHE_OP,
    PinkEventKind.STOP_SIDEVM, PinkEventKind.FORCE_STOP_SIDEVM, PinkEventKind.SIDEVM_OPERATION,
})
#: phactory's ``ensure_system!()`` kinds.
SYSTEM_ONLY_KINDS = frozenset({
    PinkEventKind.SET_HOOK, PinkEventKind.DEPLOY_SIDEVM_TO, PinkEventKind.FORCE_STOP_SIDEVM,
    PinkEventKind.SET_LOG_HANDLER, PinkEventKind.SET_CONTRACT_WEIGHT, PinkEventKind.UPGRADE_RUNTIME_TO,
    PinkEventKind.SIDEVM_OPERATION, PinkEventKind.SET_JS_RUNTIME,
})
SIDEVM_KINDS = frozenset({
    PinkEventKind.DEPLOY_SIDEVM_TO, PinkEventKind.SIDEVM_MESSAGE, PinkEventKind.STOP_SIDEVM,
    PinkEventKind.FORCE_STOP_SIDEVM, PinkEventKind.SIDEVM_OPERATION,
})


# --- SCALE ---------------------------------------------------------------------------------------


def _read_config(r: Reader) -> SidevmConfig:
    return SidevmConfig(r.u32(), r.u32(), r.u64(), r.u32())


def _read_workers(r: Reader) -> list[bytes] | None:
    tag = r.u8()
    if tag == 0:
        return None
    if tag == 1:
        return r.vec(lambda rr: rr.array(32))
    raise ScaleError(f"invalid Workers variant {tag}")


def decode_pink_event(data: bytes) -> PinkEvent:
    """SCALE ``PinkEvent`` → :class:`PinkEvent` (trailing bytes are ignored, as pink's
    ``decode``). Raises :class:`ScaleError` for anything else."""
    r = Reader(data)
    tag = r.u8()
    try:
        kind = PinkEventKind(tag)
    except ValueError:
        raise ScaleError(f"unknown PinkEvent variant {tag}") from None
    K = PinkEventKind
    if kind is K.SET_HOOK:
        hook = r.u8()
        if hook != HookPoint.ON_BLOCK_END:
            raise ScaleError(f"unknown HookPoint {hook}")
        return PinkEvent(kind, hook=HookPoint(hook), contract=r.array(_ACCOUNT), selector=r.u32(), gas_limit=r.u64())
    if kind is K.DEPLOY_SIDEVM_TO:
        return PinkEvent(kind, contract=r.array(_ACCOUNT), code_hash=r.array(_HASH))
    if kind is K.SIDEVM_MESSAGE:
        return PinkEvent(kind, payload=r.blob())
    if kind is K.CACHE_OP:
        op = r.u8()
        if op == CacheOpKind.SET:
            return PinkEvent(kind, cache_op=CacheOpKind.SET, key=r.blob(), value=r.blob())
        if op == CacheOpKind.SET_EXPIRATION:
            return PinkEvent(kind, cache_op=CacheOpKind.SET_EXPIRATION, key=r.blob(), expiration=r.u64())
        if op == CacheOpKind.REMOVE:
            return PinkEvent(kind, cache_op=CacheOpKind.REMOVE, key=r.blob())
        raise ScaleError(f"unknown CacheOp variant {op}")
    if kind is K.STOP_SIDEVM:
        return PinkEvent(kind)
    if kind in (K.FORCE_STOP_SIDEVM, K.SET_LOG_HANDLER):
        return PinkEvent(kind, contract=r.array(_ACCOUNT))
    if kind is K.SET_CONTRACT_WEIGHT:
        return PinkEvent(kind, contract=r.array(_ACCOUNT), weight=r.u32())
    if kind is K.UPGRADE_RUNTIME_TO:
        return PinkEvent(kind, version=(r.u32(), r.u32()))
    if kind is K.SIDEVM_OPERATION:
        op = r.u8()
        if op == 0:
            return PinkEvent(kind, operation=0, contract=r.array(_ACCOUNT), code_hash=r.array(_HASH),
                             workers=_read_workers(r), config=_read_config(r))
        if op == 1:
            return PinkEvent(kind, operation=1, contract=r.array(_ACCOUNT), deadline=r.u32())
        raise ScaleError(f"unknown SidevmOperation variant {op}")
    return PinkEvent(kind, code_hash=r.array(_HASH))  # SET_JS_RUNTIME


def _encode(e: PinkEvent) -> bytes:
    w = Writer().u8(int(e.kind))
    K = PinkEventKind
    if e.kind is K.SET_HOOK:
        w.u8(int(e.hook or 0)).raw(e.contract or b"").u32(e.selector or 0).u64(e.gas_limit or 0)
    elif e.kind is K.DEPLOY_SIDEVM_TO:
        w.raw(e.contract or b"").raw(e.code_hash or b"")
    elif e.kind is K.SIDEVM_MESSAGE:
        w.blob(e.payload or b"")
    elif e.kind is K.CACHE_OP:
        w.u8(int(e.cache_op or 0)).blob(e.key or b"")
        if e.cache_op is CacheOpKind.SET:
            w.blob(e.value or b"")
        elif e.cache_op is CacheOpKind.SET_EXPIRATION:
            w.u64(e.expiration or 0)
    elif e.kind in (K.FORCE_STOP_SIDEVM, K.SET_LOG_HANDLER):
        w.raw(e.contract or b"")
    elif e.kind is K.SET_CONTRACT_WEIGHT:
        w.raw(e.contract or b"").u32(e.weight or 0)
    elif e.kind is K.UPGRADE_RUNTIME_TO:
        major, minor = e.version or (0, 0)
        w.u32(major).u32(minor)
    elif e.kind is K.SIDEVM_OPERATION:
        w.u8(e.operation or 0).raw(e.contract or b"")
        if e.operation == 1:
            w.u32(e.deadline or 0)
        else:
            w.raw(e.code_hash or b"")
            if e.workers is None:
                w.u8(0)
            else:
                w.u8(1).vec(e.workers, Writer.raw)
            c = e.config or SidevmConfig(0, 0, 0, 0)
            w.u32(c.max_code_size).u32(c.max_memory_pages).u64(c.vital_capacity).u32(c.deadline)
    elif e.kind is K.SET_JS_RUNTIME:
        w.raw(e.code_hash or b"")
    return w.finish()


# --- judging and acting ------------------------------------------------------------------------


class EmittedEvent(Protocol):
    """What the runtime's event records look like to us."""

    @property
    def contract(self) -> AccountId: ...
    @property
    def topics(self) -> tuple[bytes, ...]: ...
    @property
    def data(self) -> bytes: ...


class Status(enum.Enum):
    APPLIED = "applied"  # done: CacheOp to the worker's cache, a system event at block end
    PENDING = "pending"  # accepted; applied once the execution's (or the block's) state is final
    UNSUPPORTED = "not supported"  # SideVM: out of scope for this runtime
    REFUSED = "refused"  # not allowed in a query / not from the system contract / refused at block end
    NOT_APPLIED = "not applied"  # estimate: nothing takes effect
    INVALID = "invalid"  # not a decodable PinkEvent


@dataclass
class PinkEventRecord:
    contract: AccountId
    event: PinkEvent | None
    status: Status
    note: str = ""
    raw: bytes = field(default=b"", repr=False)


def is_pink_event(topics: Sequence[bytes]) -> bool:
    return len(topics) == 1 and bytes(topics[0]) == PINK_EVENT_TOPIC


E = TypeVar("E", bound=EmittedEvent)


def split_pink_events(events: Iterable[E]) -> tuple[list[E], list[E]]:
    """(ordinary events, PinkEvents), order kept."""
    ordinary: list[E] = []
    pink: list[E] = []
    for event in events:
        (pink if is_pink_event(event.topics) else ordinary).append(event)
    return ordinary, pink


def judge_pink_events(events: Iterable[EmittedEvent], *, mode: ExecutionMode,
          system_contract: bytes | None) -> list[PinkEventRecord]:
    """Decode and judge the PinkEvents of one finished (not reverted) execution."""
    records = []
    for emitted in events:
        contract = emitted.contract
        try:
            event = decode_pink_event(emitted.data)
        except ScaleError as exc:
            records.append(PinkEventRecord(contract, None, Status.INVALID, f"not a PinkEvent: {exc}", emitted.data))
            continue
        records.append(PinkEventRecord(contract, event, *_verdict(event, contract, mode, system_contract), raw=emitted.data))
    return records


def _verdict(event: PinkEvent, origin: bytes, mode: ExecutionMode,
             system_contract: bytes | None) -> tuple[Status, str]:
    if mode is ExecutionMode.QUERY and not event.allowed_in_query:
        return Status.REFUSED, f"{event.name} is not allowed in a query"
    if event.system_only and (system_contract is None or bytes(origin) != bytes(system_contract)):
        return Status.REFUSED, f"only the cluster's system contract may emit {event.name}"
    if event.kind in SIDEVM_KINDS:
        return Status.UNSUPPORTED, f"{event.name}: SideVM is not supported by this runtime"
    if mode is ExecutionMode.ESTIMATE:
        return Status.NOT_APPLIED, "estimate: side effects are not applied"
    if event.kind is PinkEventKind.CACHE_OP:
        return Status.PENDING, "applied when the execution's state is final"
    return Status.PENDING, f"{event.name} takes effect at the end of the block"


def system_events(records: Iterable[PinkEventRecord]) -> list[PinkEventRecord]:
    """The accepted system-contract events, waiting for the end of the block."""
    return [r for r in records
            if r.status is Status.PENDING and r.event is not None and r.event.system_only]


def apply_pink_events(records: Iterable[PinkEventRecord], cache: object) -> None:
    """Apply the accepted cache operations (call after a transaction committed, or a query
    finished); system events wait for the end of the block (:func:`system_events`)."""
    for record in records:
        event = record.event
        if record.status is not Status.PENDING or event is None or event.cache_op is None:
            continue
        if not isinstance(cache, LocalCache):
            record.status, record.note = Status.NOT_APPLIED, "this worker has no local cache"
            continue
        apply_cache_op(cache, record.contract, event.cache_op, event.key or b"",
                       event.value or b"", event.expiration or 0)
        record.status, record.note = Status.APPLIED, "applied to the local cache"
