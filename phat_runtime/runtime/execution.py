"""Executing one message: the execution context, the call stack and the per-frame host.

Reads top to bottom like pallet-contracts' ``exec.rs``: an :class:`ExecutionContext` lives
for one top-level call (mode, origin, block, gas session, events, debug buffer);
:func:`run_frame` pushes a frame — new state overlay, value transfer, wasm run — and commits
the overlay on success or drops it on revert/trap. :class:`FrameHost` is what the seal shims
see (``wasm.host.Host``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import (
    CallDepthExceeded,
    ExecutionError,
    FloatInstructions,
    HostFunctionError,
    ReentranceDenied,
    WallClockTimeout,
)
from phat_runtime.pink.extension import ChainExtensionRegistry
from phat_runtime.pink.services import PinkServices
from phat_runtime.runtime.records import ContractInfo, Records, contract_address, trie_id_for
from phat_runtime.state.kv import Overlay
from phat_runtime.types import AccountId, CallFlags, CodeHash, ExecutionMode, ReturnCode
from phat_runtime.wasm.engine import EPOCH_TICK_MS
from phat_runtime.wasm.executor import Session
from phat_runtime.wasm.host import CallOutcome, ExecReturn
from phat_runtime.wasm.modules import CompiledModule

#: pink: ``CallStack = [Frame; 5]``: the frames *below* the first one, so up to 6 frames run at
#: once (pallet-contracts: "the allowed depth is ``CallStack::size() + 1``").
MAX_CALL_DEPTH = 5
#: pink: MaxDebugBufferLen = 128 KiB.
MAX_DEBUG_BUFFER = 128 * 1024
#: Existential deposit reported by ``minimum_balance`` (pink: 1).
MINIMUM_BALANCE = 1


@dataclass(frozen=True)
class BlockContext:
    number: int
    timestamp_ms: int


@dataclass(frozen=True)
class ContractEvent:
    contract: AccountId
    topics: tuple[bytes, ...]
    data: bytes


@dataclass
class ExecutionContext:
    """State of one top-level execution."""

    cluster_id: bytes
    mode: ExecutionMode
    origin: AccountId
    block: BlockContext
    session: Session
    extension: ChainExtensionRegistry
    load_code: Callable[[Records, bytes], CompiledModule]
    services: PinkServices = field(default_factory=PinkServices)
    debug: bytearray = field(default_factory=bytearray)
    stack: list[FrameHost] = field(default_factory=list)
    terminated: list[AccountId] = field(default_factory=list)

    def debug_append(self, message: bytes) -> None:
        # pallet-contracts drops a message that no longer fits, and still reports success.
        if len(self.debug) + len(message) <= MAX_DEBUG_BUFFER:
            self.debug += message


class FrameHost:
    """The ``wasm.host.Host`` of one frame: a contract account running some code."""

    def __init__(
        self,
        ctx: ExecutionContext,
        overlay: Overlay,
        account: AccountId,
        caller: AccountId,
        value: int,
        info: ContractInfo,
        code_hash: CodeHash,
        read_only: bool = False,
        records: Records | None = None,
    ) -> None:
        self.ctx = ctx
        self.overlay = overlay
        self.records = records if records is not None else Records(overlay)
        self.account = account
        self._caller = caller
        self._value = value
        self.info = info
        self.code_hash = code_hash  # differs from info.code_hash in a delegate call
        self.read_only = read_only
        self.allows_reentry = True
        self.events: list[ContractEvent] = []

    # --- ExtensionEnv -------------------------------------------------------------------------
    @property
    def mode(self) -> ExecutionMode:
        return self.ctx.mode

    @property
    def contract(self) -> AccountId:
        return self.account

    @property
    def services(self) -> PinkServices:
        return self.ctx.services

    def balance_of(self, account: bytes) -> tuple[int, int]:
        balance = self.records.balance(account)
        return balance, balance  # no locks or reserves off-chain: total == free

    def code_exists(self, code_hash: bytes) -> bool:
        return self.records.has_code(code_hash)

    def remaining_ms(self) -> int:
        session = self.ctx.session
        return max(0, (session.deadline_epoch - session.engine.epoch) * EPOCH_TICK_MS)

    # --- context ------------------------------------------------------------------------------
    def caller(self) -> AccountId:
        return self._caller

    def address(self) -> AccountId:
        return self.account

    def balance(self) -> int:
        return self.records.balance(self.account)

    def value_transferred(self) -> int:
        return self._value

    def now_ms(self) -> int:
        return self.ctx.block.timestamp_ms

    def block_number(self) -> int:
        return self.ctx.block.number

    def minimum_balance(self) -> int:
        return MINIMUM_BALANCE

    def own_code_hash(self) -> CodeHash:
        return self.info.code_hash

    def caller_is_origin(self) -> bool:
        return self._caller == self.ctx.origin

    def caller_is_root(self) -> bool:
        return False

    def instantiation_nonce(self) -> int:
        return self.records.nonce()

    def weight_to_fee(self, gas: int) -> int:
        return gas

    def random(self, subject: bytes) -> tuple[bytes, int]:
        block = self.ctx.block.number
        return blake2_256(subject + block.to_bytes(4, "little")), block

    # --- storage -------------------------------------------------------------------------------
    def get_storage(self, key: bytes) -> bytes | None:
        return self.records.storage_get(self.account, self.info.trie_id, key)

    def set_storage(self, key: bytes, value: bytes | None) -> bytes | None:
        if self.read_only:
            raise HostFunctionError("StateChangeDenied: storage write in a read-only call", kind="StateChangeDenied")
        previous = self.records.storage_get(self.account, self.info.trie_id, key)
        self.records.storage_set(self.account, self.info.trie_id, key, value)
        return previous

    # --- events / debug -------------------------------------------------------------------------
    def deposit_event(self, topics: list[bytes], data: bytes) -> None:
        self.events.append(ContractEvent(self.account, tuple(topics), data))

    def debug_message(self, message: bytes) -> bool:
        self.ctx.debug_append(message)
        return True

    # --- chain extension ------------------------------------------------------------------------
    def chain_extension(self, func_id: int, input_data: bytes, output_capacity: int) -> tuple[int, bytes]:
        return self.ctx.extension.dispatch(func_id, self, input_data)

    def chain_extension_gas(self, func_id: int) -> int:
        return self.ctx.extension.gas(func_id)

    # --- balances and contracts -------------------------------------------------------------------
    def transfer(self, to: bytes, value: int) -> ReturnCode:
        if self.read_only and value:
            raise HostFunctionError("StateChangeDenied: transfer in a read-only call", kind="StateChangeDenied")
        ok = self.records.transfer(self.account, to, value)
        return ReturnCode.SUCCESS if ok else ReturnCode.TRANSFER_FAILED

    def is_contract(self, account: bytes) -> bool:
        return self.records.contract(account) is not None

    def code_hash_of(self, account: bytes) -> CodeHash | None:
        info = self.records.contract(account)
        return info.code_hash if info else None

    def set_code_hash(self, code_hash: bytes) -> ReturnCode:
        if not self.records.has_code(code_hash):
            return ReturnCode.CODE_NOT_FOUND
        self.info = ContractInfo(CodeHash(bytes(code_hash)), self.info.deployer, self.info.trie_id)
        self.records.put_contract(self.account, self.info)
        return ReturnCode.SUCCESS

    def call_runtime(self, call: bytes) -> ReturnCode:
        # pink's CallFilter admits no runtime call.
        return ReturnCode.CALL_RUNTIME_FAILED

    def lock_delegate_dependency(self, code_hash: bytes, lock: bool) -> None:
        if lock and not self.records.has_code(code_hash):
            raise HostFunctionError("CodeNotFound: no code with that hash to depend on", kind="CodeNotFound")

    def terminate(self, beneficiary: bytes) -> None:
        if sum(1 for f in self.ctx.stack if f.account == self.account) > 1:
            raise HostFunctionError(
                "TerminatedWhileReentrant: the contract is on the call stack more than once",
                kind="TerminatedWhileReentrant",
            )
        self.records.transfer(self.account, beneficiary, self.records.balance(self.account))
        self.records.remove_contract(self.account)
        self.ctx.terminated.append(self.account)

    # --- nested execution ------------------------------------------------------------------------
    def call(self, callee: bytes, value: int, input_data: bytes, gas_limit: int, flags: int) -> CallOutcome:
        callee_id = AccountId(bytes(callee))
        self.allows_reentry = bool(flags & CallFlags.ALLOW_REENTRY)
        try:
            if any(f.account == callee_id and not f.allows_reentry for f in self.ctx.stack):
                raise ReentranceDenied("ReentranceDenied: re-entering a contract needs ALLOW_REENTRY")
            info = self.records.contract(callee_id)
            if info is None:
                return CallOutcome(ReturnCode.NOT_CALLABLE)
            read_only = self.read_only or bool(flags & CallFlags.READ_ONLY)
            if read_only and value:
                raise HostFunctionError("StateChangeDenied: value transfer in a read-only call", kind="StateChangeDenied")
            return _nested(self, callee_id, info, info.code_hash, value, input_data, "call", gas_limit, read_only)
        finally:
            self.allows_reentry = True

    def delegate_call(self, code_hash: bytes, input_data: bytes, flags: int) -> CallOutcome:
        if not self.records.has_code(code_hash):
            return CallOutcome(ReturnCode.CODE_NOT_FOUND)
        return _nested(
            self, self.account, self.info, CodeHash(bytes(code_hash)), self._value, input_data,
            "call", 0, self.read_only, delegate_caller=self._caller,
        )

    def instantiate(self, code_hash: bytes, value: int, input_data: bytes, salt: bytes, gas_limit: int) -> CallOutcome:
        if self.read_only:
            raise HostFunctionError("StateChangeDenied: instantiate in a read-only call", kind="StateChangeDenied")
        if not self.records.has_code(code_hash):
            return CallOutcome(ReturnCode.CODE_NOT_FOUND)
        address = contract_address(self.account, code_hash, self.ctx.cluster_id, salt)
        if self.records.contract(address) is not None:
            raise HostFunctionError(f"DuplicateContract: a contract already lives at {to_ss58(address)}",
                                    kind="DuplicateContract")
        info = ContractInfo(CodeHash(bytes(code_hash)), self.account, trie_id_for(address, self.records.next_nonce()))
        outcome = _nested(self, address, info, info.code_hash, value, input_data, "deploy", gas_limit, False, new=True)
        if outcome.code == ReturnCode.SUCCESS:
            return CallOutcome(outcome.code, outcome.output, address)
        return outcome


def _nested(
    parent: FrameHost,
    account: AccountId,
    info: ContractInfo,
    code_hash: CodeHash,
    value: int,
    input_data: bytes,
    entry: str,
    gas_limit: int,
    read_only: bool,
    *,
    new: bool = False,
    delegate_caller: AccountId | None = None,
) -> CallOutcome:
    """Run a callee from a contract and turn the result into what the caller sees."""
    if len(parent.ctx.stack) > MAX_CALL_DEPTH:
        # The calling frame's own error (pallet: ErrorOrigin::Caller): it traps the caller.
        raise CallDepthExceeded(f"MaxCallDepthReached: at most {MAX_CALL_DEPTH} nested frames")
    try:
        frame, ret = run_frame(
            parent.ctx, parent.overlay, parent.account, account, info, code_hash, value,
            input_data, entry, gas_limit, read_only, new=new, delegate_caller=delegate_caller,
        )
    except _TransferFailed:
        return CallOutcome(ReturnCode.TRANSFER_FAILED)
    except WallClockTimeout:
        raise  # the whole execution is out of time, not just the callee
    except (ExecutionError, FloatInstructions):
        # Anything that failed inside the callee — its own denied re-entry or too-deep call
        # included, or float code it cannot run in this mode — is the callee's failure
        # (pallet: ErrorOrigin::Callee).
        return CallOutcome(ReturnCode.CALLEE_TRAPPED)
    if ret.reverted:
        return CallOutcome(ReturnCode.CALLEE_REVERTED, ret.data)
    parent.events.extend(frame.events)
    return CallOutcome(ReturnCode.SUCCESS, ret.data)


class _TransferFailed(Exception):
    pass


def run_frame(
    ctx: ExecutionContext,
    parent_state: Overlay,
    caller: AccountId,
    account: AccountId,
    info: ContractInfo,
    code_hash: CodeHash,
    value: int,
    input_data: bytes,
    entry: str,
    gas_limit: int,
    read_only: bool,
    *,
    new: bool = False,
    delegate_caller: AccountId | None = None,
) -> tuple[FrameHost, ExecReturn]:
    """Push a frame, run ``entry`` of ``code_hash`` as ``account``; commit unless it reverted.

    Raises ExecutionError if the callee trapped; the frame's writes are then dropped.
    """
    if len(ctx.stack) > MAX_CALL_DEPTH:
        raise CallDepthExceeded(f"MaxCallDepthReached: at most {MAX_CALL_DEPTH} nested frames")
    overlay = parent_state.child()
    records = Records(overlay)
    if new:
        records.put_contract(account, info)
    if delegate_caller is None and not records.transfer(caller, account, value):
        raise _TransferFailed()
    compiled = ctx.load_code(records, code_hash)
    frame = FrameHost(
        ctx, overlay, account, delegate_caller or caller, value, info, code_hash, read_only, records
    )
    terminated_before = len(ctx.terminated)  # terminations are rolled back with the frame
    ctx.stack.append(frame)
    try:
        ret = ctx.session.run(compiled, entry, frame, input_data, gas_limit)
    except BaseException:
        del ctx.terminated[terminated_before:]
        raise
    finally:
        ctx.stack.pop()
    if new and not ret.reverted and account in ctx.terminated[terminated_before:]:
        del ctx.terminated[terminated_before:]
        raise ExecutionError(
            "TerminatedInConstructor: a contract may not terminate in its constructor",
            kind="TerminatedInConstructor",
        )
    if ret.reverted:
        del ctx.terminated[terminated_before:]
    else:
        overlay.commit()
    return frame, ret

