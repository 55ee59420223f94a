"""A cluster: its code, contracts and balances over one state store, and the two entry
points every flow ends in — :meth:`Cluster.instantiate` and :meth:`Cluster.call` — in
QUERY (writes discarded), TRANSACTION (writes committed) or ESTIMATE mode.

A block is a sequence of transactions, then :meth:`Cluster.end_block` (hooks, the system
contract's PinkEvents: ``runtime/block_end.py``), then :meth:`Cluster.commit_block`. The
system contract, hooks, log handler and contract weights live in the state
(``runtime/settings.py``).

Bytes in, :class:`ExecResult` out; metadata-aware conveniences live in ``runtime/local.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import (
    CodeNotFound,
    ContractNotFound,
    ExecutionError,
    FloatInstructions,
)
from phat_runtime.pink.events import (
    PinkEventRecord,
    apply_pink_events,
    judge_pink_events,
    split_pink_events,
    system_events,
)
from phat_runtime.pink.extension import ChainExtensionRegistry
from phat_runtime.pink.logs import LogStore, record_debug_message
from phat_runtime.pink.services import PinkServices
from phat_runtime.pink.table import build_registries
from phat_runtime.runtime.block_end import BlockEnd, end_block
from phat_runtime.runtime.execution import (
    BlockContext,
    ContractEvent,
    ExecutionContext,
    _TransferFailed,
    run_frame,
)
from phat_runtime.runtime.records import (
    CodeInfo,
    ContractInfo,
    Records,
    contract_address,
    trie_id_for,
)
from phat_runtime.runtime.settings import ClusterSettings
from phat_runtime.state.checkpoint import BlockStore, Checkpoint
from phat_runtime.state.kv import KVStore, Overlay
from phat_runtime.types import AccountId, CodeHash, ExecutionMode
from phat_runtime.types import code_hash as as_code_hash
from phat_runtime.wasm.engine import DEFAULT_QUERY_GAS, DEFAULT_TX_GAS, Engine
from phat_runtime.wasm.executor import Session
from phat_runtime.wasm.modules import CompiledModule
from phat_runtime.wasm.validate import validate_module


@dataclass
class ExecResult:
    """Everything one execution produced (pallet-contracts' ContractExecResult, plus more)."""

    mode: ExecutionMode
    flags: int = 0
    data: bytes = b""
    gas_used: int = 0
    gas_limit: int = 0
    events: list[ContractEvent] = field(default_factory=list)
    debug_message: str = ""
    error: ExecutionError | None = None
    contract: AccountId | None = None  # the callee, or the new contract of an instantiate
    #: The code the contract ran (its record's code hash when the execution started), so a
    #: caller need not read the contract record again.
    code_hash: CodeHash | None = None
    terminated: list[AccountId] = field(default_factory=list)
    #: The PinkEvents taken out of ``events``, each with what became of it (pink.events).
    pink_events: list[PinkEventRecord] = field(default_factory=list)

    @property
    def reverted(self) -> bool:
        return self.error is None and bool(self.flags & 1)

    @property
    def success(self) -> bool:
        """Ran to the end without trapping and without REVERT."""
        return self.error is None and not self.flags & 1


class _CodeLoader:
    """The compiled code a frame runs: from the engine's module cache when it is there (the
    code record — the whole wasm — is then not read at all), else compiled from the record.

    Every caller has checked that the code exists in this cluster (a contract's record names
    it; delegate_call / instantiate / set_code_hash look it up first)."""

    __slots__ = ("_deterministic", "_modules")

    def __init__(self, engine: Engine, deterministic: bool) -> None:
        self._modules = engine.modules
        self._deterministic = deterministic

    def __call__(self, records: Records, code_hash: bytes) -> CompiledModule:
        if self._deterministic:
            info = records.code_info(code_hash)
            if info is not None and not info.deterministic:
                raise FloatInstructions(
                    f"code 0x{code_hash.hex()} uses float instructions: it may only run in "
                    "queries, not in transactions"
                )
        compiled = self._modules.cached(code_hash)
        if compiled is not None:
            return compiled
        wasm = records.code(code_hash)
        if wasm is None:
            raise CodeNotFound(f"no code with hash 0x{code_hash.hex()} in this cluster")
        return self._modules.get(code_hash, wasm)


class Cluster:
    """One cluster's contracts over a state store. Synchronous; one execution per call."""

    def __init__(
        self,
        state: KVStore,
        *,
        cluster_id: bytes = bytes(32),
        engine: Engine | None = None,
        extension: ChainExtensionRegistry | Mapping[ExecutionMode, ChainExtensionRegistry] | None = None,
        services: PinkServices | None = None,
    ) -> None:
        self.state = state
        # A runtime_checkable Protocol check is slow (~50 µs): decide once.
        self._blocks: BlockStore | None = state if isinstance(state, BlockStore) else None
        self.cluster_id = cluster_id
        self.engine = engine or Engine()
        self.services = services or PinkServices()
        if extension is None:
            extension = build_registries()
        if isinstance(extension, ChainExtensionRegistry):
            extension = dict.fromkeys(ExecutionMode, extension)
        #: The chain extension plugged in per execution mode (query vs deterministic backends).
        self.extensions: dict[ExecutionMode, ChainExtensionRegistry] = dict(extension)
        self._loaders = {mode: _CodeLoader(self.engine, mode.deterministic) for mode in ExecutionMode}
        #: System-contract PinkEvents of the current block, applied by end_block().
        self._pending: list[PinkEventRecord] = []
        self.sync_services()

    @property
    def records(self) -> Records:
        return Records(self.state)

    def over(self, state: KVStore) -> Cluster:
        """This cluster (engine, extensions, services, the block's pending system events) over
        another view of its state — a query's read view, a transaction's scratch overlay —
        without re-reading the settings. The view has no blocks of its own to commit."""
        view = object.__new__(Cluster)
        view.__dict__.update(self.__dict__)
        view.state = state
        view._blocks = None
        return view

    def pending_mark(self) -> int:
        """How many system events the block has collected (see :meth:`drop_pending_since`)."""
        return len(self._pending)

    def drop_pending_since(self, mark: int) -> None:
        """Forget the system events collected after ``mark`` (their transaction was dropped)."""
        del self._pending[mark:]

    # --- blocks (state/checkpoint.py) ---------------------------------------------------------------
    def checkpoint(self) -> Checkpoint | None:
        """The last block the state store committed (None: nothing yet, or a plain store)."""
        return self._blocks.checkpoint if self._blocks is not None else None

    def commit_block(self, number: int, block_hash: bytes) -> Checkpoint | None:
        """Make every transaction since the last block durable as block ``number``, with its
        checkpoint, in one atomic write. A no-op over a store without blocks (MemoryBackend)."""
        if self._blocks is not None:
            return self._blocks.commit_block(number, block_hash)
        return None

    def discard_block(self) -> None:
        """Drop the writes of a block that failed (a store without blocks keeps them), and
        its pending system events."""
        self._pending.clear()
        if self._blocks is not None:
            self._blocks.discard()

    # --- the block's end and the cluster settings (runtime/block_end.py, runtime/settings.py) --
    def end_block(self, block: BlockContext) -> BlockEnd:
        """End ``block`` after its last transaction, before :meth:`commit_block`: run the
        ``OnBlockEnd`` hooks, then apply the system contract's PinkEvents of the block."""
        report = end_block(self, block)
        self.sync_services()
        return report

    def take_pending_system_events(self) -> list[PinkEventRecord]:
        pending = list(self._pending)
        self._pending.clear()  # in place: views made by over() share the list
        return pending

    @property
    def settings(self) -> ClusterSettings:
        """Hooks, log handler, contract weights (for the query scheduler: ``settings.weight``)."""
        return ClusterSettings(self.state)

    @property
    def system_contract(self) -> AccountId | None:
        """The cluster's system contract (what ``system_contract_id`` answers)."""
        return self.settings.system_contract() or self.services.system_contract

    def set_system_contract(self, address: bytes) -> None:
        """Make ``address`` the system contract (genesis: ``runtime/genesis.py``)."""
        self.settings.set_system_contract(address)
        self.sync_services()

    def sync_services(self) -> None:
        """Point the pink services at the settings in the state: the system contract (kept if
        the state names none, e.g. set by hand in tests) and the log handler."""
        settings = self.settings
        system = settings.system_contract()
        if system is not None:
            self.services.system_contract = system
        if isinstance(self.services.logs, LogStore):
            self.services.logs.handler = settings.log_handler()

    def _after_execution(self, ctx: ExecutionContext, origin: AccountId, result: ExecResult) -> None:
        """A top-level execution finished: keep its system events for the block's end, and
        hand a transaction's events and outcome to the log handler (pink/logs.py)."""
        if ctx.mode is not ExecutionMode.TRANSACTION:
            return
        self._pending.extend(system_events(result.pink_events))
        logs = self.services.logs
        if isinstance(logs, LogStore) and logs.handler is not None and result.contract is not None:
            error = f"{result.error.kind}: {result.error}" if result.error is not None else None
            logs.deliver_transaction(origin, result.contract, result.events, flags=result.flags,
                                     data=result.data, error=error, block_number=ctx.block.number)

    # --- code ---------------------------------------------------------------------------------
    def upload_code(self, wasm: bytes, owner: AccountId, *, deterministic: bool = False) -> CodeHash:
        """Validate and store ``wasm``; returns its code hash. Idempotent.

        ``deterministic=True`` refuses float instructions at upload (pallet "Enforced");
        otherwise float code is stored but may only run in queries (pink "Relaxed").
        """
        info = validate_module(wasm, deterministic=deterministic, engine=self.engine.wasmtime)
        code_hash = as_code_hash(blake2_256(wasm))
        records = self.records
        if not records.has_code(code_hash):
            records.put_code(code_hash, wasm, CodeInfo(owner, not info.has_floats, len(wasm)))
        return code_hash

    # --- execution -----------------------------------------------------------------------------
    def _context(
        self,
        mode: ExecutionMode,
        origin: AccountId,
        block: BlockContext,
        gas_limit: int | None,
        wall_clock_ms: int | None,
    ) -> ExecutionContext:
        if gas_limit is None:
            gas_limit = DEFAULT_QUERY_GAS if mode is ExecutionMode.QUERY else DEFAULT_TX_GAS
        return ExecutionContext(
            cluster_id=self.cluster_id,
            mode=mode,
            origin=origin,
            block=block,
            session=Session(self.engine, gas_limit, wall_clock_ms),
            extension=self.extensions[mode],
            load_code=self._loaders[mode],
            services=self.services,
        )

    def instantiate(
        self,
        origin: AccountId,
        code_hash: bytes,
        input_data: bytes,
        *,
        salt: bytes = b"",
        value: int = 0,
        mode: ExecutionMode = ExecutionMode.TRANSACTION,
        block: BlockContext,
        gas_limit: int | None = None,
        wall_clock_ms: int | None = None,
    ) -> ExecResult:
        """Run the constructor ``input_data`` of ``code_hash``; the contract exists if it succeeds."""
        records = self.records
        if not records.has_code(code_hash):
            raise CodeNotFound(f"no code with hash 0x{code_hash.hex()} in this cluster; upload it first")
        address = contract_address(origin, code_hash, self.cluster_id, salt)
        if records.contract(address) is not None:
            raise ExecutionError(
                f"DuplicateContract: a contract already lives at {to_ss58(address)}: the address "
                "depends on deployer, code and salt only, so deploy the same code again with "
                "another salt",
                kind="DuplicateContract",
            )
        ctx = self._context(mode, origin, block, gas_limit, wall_clock_ms)
        root = Overlay(self.state)
        info = ContractInfo(as_code_hash(code_hash), origin, trie_id_for(address, Records(root).next_nonce()))
        return self._execute(ctx, root, origin, address, info, value, input_data, "deploy", new=True)

    def call(
        self,
        origin: AccountId,
        contract: bytes,
        input_data: bytes,
        *,
        value: int = 0,
        mode: ExecutionMode = ExecutionMode.QUERY,
        block: BlockContext,
        gas_limit: int | None = None,
        wall_clock_ms: int | None = None,
        info: ContractInfo | None = None,
    ) -> ExecResult:
        """Run message ``input_data`` on ``contract``. ``info``: its record, if the caller has
        just read it from this same state (saves reading it again)."""
        address = AccountId(bytes(contract))
        if info is None:
            info = self.records.contract(address)
        if info is None:
            raise ContractNotFound(f"no contract at {to_ss58(address)} in this cluster")
        ctx = self._context(mode, origin, block, gas_limit, wall_clock_ms)
        root = Overlay(self.state)
        if mode is ExecutionMode.QUERY and value:
            # pink mints the queried value to the caller so payable messages can be simulated.
            Records(root).set_balance(origin, Records(root).balance(origin) + value)
        return self._execute(ctx, root, origin, address, info, value, input_data, "call")

    def _execute(
        self,
        ctx: ExecutionContext,
        root: Overlay,
        origin: AccountId,
        address: AccountId,
        info: ContractInfo,
        value: int,
        input_data: bytes,
        entry: str,
        *,
        new: bool = False,
    ) -> ExecResult:
        result = ExecResult(
            mode=ctx.mode, gas_limit=ctx.session.gas_limit, contract=address, code_hash=info.code_hash
        )
        try:
            frame, ret = run_frame(
                ctx, root, origin, address, info, info.code_hash, value, input_data, entry, 0, False, new=new
            )
        except _TransferFailed:
            result.error = ExecutionError(
                "TransferFailed: the caller's balance cannot pay the value sent", kind="TransferFailed"
            )
        except ExecutionError as exc:
            result.error = exc
        else:
            result.flags, result.data = ret.flags, ret.data
            if not ret.reverted:
                if frame.events:
                    result.events, emitted = split_pink_events(frame.events)
                    result.pink_events = judge_pink_events(
                        emitted, mode=ctx.mode, system_contract=self.services.system_contract
                    )
                result.terminated = list(ctx.terminated)
                if ctx.mode.commits:
                    root.commit()
                if result.pink_events:  # only once state is final
                    apply_pink_events(result.pink_events, self.services.cache)
        result.gas_used = ctx.session.gas_used
        if ctx.debug:
            result.debug_message = ctx.debug.decode("utf-8", "replace")
            record_debug_message(self.services.logs, address, result.debug_message, mode=ctx.mode,
                                 block_number=ctx.block.number)
        self._after_execution(ctx, origin, result)
        return result
