"""A local cluster: no chain, no TEE — the development harness and in-process public API.

    from phat_runtime import LocalCluster
    cluster = LocalCluster()                 # genesis: dev accounts endowed, system contract
    flipper = cluster.deploy("contracts_examples/flipper/flipper.contract", "new", [True])
    flipper.query("get").output          # True
    flipper.transact("flip").success     # True (state committed)

Arguments are JSON-like values encoded through the contract's ink! metadata; results come back
decoded, next to the raw :class:`~phat_runtime.runtime.cluster.ExecResult` (flags, data, gas,
events, debug messages). Every transaction is its own block (``with cluster.new_block():``
groups several; :meth:`LocalCluster.produce_block` makes an empty one); each block ends with
its hooks and system events (:attr:`LocalCluster.last_block_end`); queries see the latest
block. Block 0 installs the system contract (``runtime/genesis.py``). Over a durable store
(``LocalCluster(state=EncryptedStore.open(path, cluster_secret))``) each block is committed
atomically with its checkpoint, and a new LocalCluster on the same store resumes after the last
committed block instead of starting a new genesis.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from phat_runtime.codec.metadata import ContractMetadata, DecodedEvent, MessageSpec
from phat_runtime.crypto.accounts import DEV_ACCOUNTS, dev_account, parse_account, to_ss58
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.crypto.kdf import sr25519_pair_from_seed
from phat_runtime.errors import ConfigError, ContractNotFound, MetadataError
from phat_runtime.pink.cache import LocalCache
from phat_runtime.pink.logs import LogStore
from phat_runtime.pink.services import PinkServices
from phat_runtime.runtime.block_end import BlockEnd
from phat_runtime.runtime.cluster import Cluster, ExecResult
from phat_runtime.runtime.execution import BlockContext, ContractEvent
from phat_runtime.runtime.genesis import SystemSource, install_system_contract, load_system_contract
from phat_runtime.runtime.handles import Account, Args, CallResult, Contract, failure
from phat_runtime.state.kv import KVStore, MemoryBackend
from phat_runtime.types import AccountId, ExecutionMode
from phat_runtime.wasm.engine import Engine

#: Balance each development account starts with (1 million units of 10¹² planck).
DEV_ENDOWMENT = 10**18

__all__ = ["DEV_ENDOWMENT", "CallResult", "Contract", "LocalCluster", "local_block_hash"]


class LocalCluster:
    """An in-process cluster with dev accounts endowed, metadata per uploaded code."""

    def __init__(self, *, state: KVStore | None = None, engine: Engine | None = None,
                 cluster_id: bytes = bytes(32), cluster_secret: bytes | None = None,
                 services: PinkServices | None = None, strict_metadata: bool = False,
                 system: SystemSource | bool = True, owner: Account = "alice") -> None:
        """``cluster_secret``: the 64-byte sr25519 cluster key contracts derive their keys from
        (random unless given; clusters given the same one derive the same contract keys).
        ``services`` default to that key, a :class:`LocalCache` and a :class:`LogStore`.
        ``strict_metadata``: refuse metadata whose ``source.hash`` is not its code's hash
        (by default it loads with a :class:`~phat_runtime.errors.SourceHashMismatch` warning).
        ``system``: the system contract installed at genesis — ours (True), a bundle path or
        loaded metadata, or none (False); ``owner`` (the cluster owner) deploys it and owns it.
        Without ``engine``, local clusters share one process-wide :class:`Engine` (one per
        process is its intended shape), so code compiled once — the system contract's at every
        genesis — is reused."""
        self.strict_metadata = strict_metadata
        self.runtime = Cluster(MemoryBackend() if state is None else state, cluster_id=cluster_id,
                               engine=engine or _shared_engine(), services=_local_services(services, cluster_secret))
        resumed = self.runtime.checkpoint()  # a durable store that already holds blocks
        self.block = BlockContext(resumed.number if resumed else 0, int(time.time() * 1000))
        self._metadata: dict[bytes, ContractMetadata] = {}
        self._in_block = False
        #: What the end of the last block did (hooks run, system events applied).
        self.last_block_end: BlockEnd | None = None
        if resumed is None:  # genesis, block 0: endow the dev accounts, install the system contract
            records = self.runtime.records
            for name in DEV_ACCOUNTS:
                account = dev_account(name)
                if records.balance(account) == 0:
                    records.set_balance(account, DEV_ENDOWMENT)
            if system is not False:
                metadata = load_system_contract(None if isinstance(system, bool) else system, strict=strict_metadata)
                install_system_contract(self.runtime, metadata, self.account(owner), self.block)
                assert metadata.code_hash is not None
                self._metadata[metadata.code_hash] = metadata
            self._commit()
        elif system is not False and self.runtime.system_contract is not None:
            self._know_system_metadata(system)

    # --- accounts -------------------------------------------------------------------------------
    @staticmethod
    def account(value: Account) -> AccountId:
        """``"alice"``, ``"//Bob"``, an SS58 address, ``0x``-hex or 32 bytes → AccountId."""
        try:
            return parse_account(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def balance(self, account: Account) -> int:
        return self.runtime.records.balance(self.account(account))

    # --- the system contract ----------------------------------------------------------------------
    @property
    def system_contract(self) -> Contract:
        """The cluster's system contract (installed at genesis)."""
        address = self.runtime.system_contract
        if address is None:
            raise ContractNotFound("this cluster has no system contract (it was created with system=False)")
        return self.contract(address)

    def _know_system_metadata(self, system: SystemSource | bool) -> None:
        """A resumed cluster: the metadata of its system contract, if ``system`` names its code."""
        metadata = load_system_contract(None if isinstance(system, bool) else system, strict=self.strict_metadata)
        info = self.runtime.records.contract(self.runtime.system_contract or b"")
        if info is not None and metadata.code_hash == info.code_hash:
            self._metadata[info.code_hash] = metadata

    # --- code -----------------------------------------------------------------------------------
    def upload(self, source: str | os.PathLike[str] | ContractMetadata, *, owner: Account = "alice") -> ContractMetadata:
        """Upload a ``.contract`` bundle, ``.wasm`` + ``.json``, or loaded metadata with code.

        New code is stored in a block of its own (or in the open ``new_block()``)."""
        metadata, new = self._upload(source, owner)
        if new and not self._in_block:
            self._next_block()
            self._commit()
        return metadata

    def _upload(self, source: str | os.PathLike[str] | ContractMetadata,
                owner: Account) -> tuple[ContractMetadata, bool]:
        """(metadata, whether the code is new); nothing committed."""
        metadata = self._load(source)
        if metadata.wasm is None:
            raise MetadataError(
                f"metadata of {metadata.name!r} carries no code: pass the .contract bundle or "
                "put the .wasm next to the .json"
            )
        new = self.runtime.records.code(blake2_256(metadata.wasm)) is None
        code_hash = self.runtime.upload_code(metadata.wasm, self.account(owner))
        self._metadata[code_hash] = metadata
        return metadata, new

    def metadata_for(self, code_hash: bytes) -> ContractMetadata | None:
        return self._metadata.get(code_hash)

    # --- deploy ---------------------------------------------------------------------------------
    def deploy(self, source: str | os.PathLike[str] | ContractMetadata, constructor: str | None = None,
               args: Args = None, *, caller: Account = "alice", value: int = 0, salt: bytes = b"",
               gas_limit: int | None = None) -> Contract:
        """Upload (if needed) and instantiate; raises ExecutionError if the constructor fails."""
        metadata = self._load(source)
        spec = self._constructor(metadata, constructor)
        input_data = metadata.encode_constructor(spec.label, args)
        origin = self.account(caller)
        self._upload(metadata, caller)  # in the same block as the constructor
        block = self._next_block()
        assert metadata.code_hash is not None
        try:
            raw = self.runtime.instantiate(origin, metadata.code_hash, input_data, salt=salt,
                                           value=value, block=block, gas_limit=gas_limit)
        finally:
            self._commit()
        result = self._result(metadata, spec, raw)
        if not raw.success:
            raise failure(f"constructor {spec.label!r} of {metadata.name}", result)
        assert raw.contract is not None
        return Contract(self, raw.contract, metadata)

    def contract(self, address: Account, metadata: ContractMetadata | None = None) -> Contract:
        """A handle on an existing contract (metadata looked up from its code if not given)."""
        account = self.account(address)
        info = self.runtime.records.contract(account)
        if info is None:
            raise ContractNotFound(f"no contract at {to_ss58(account)}")
        metadata = metadata or self._metadata.get(info.code_hash)
        if metadata is None:
            raise MetadataError(f"no metadata known for code 0x{info.code_hash.hex()}; pass metadata=")
        return Contract(self, account, metadata)

    # --- calls ----------------------------------------------------------------------------------
    def call(self, contract: Contract, message: str, args: Args = None, *, caller: Account = "alice",
             value: int = 0, mode: ExecutionMode = ExecutionMode.QUERY,
             gas_limit: int | None = None) -> CallResult:
        spec = contract.metadata.message(message)
        # A message without arguments is its selector (what encode_call would build, cheaper).
        input_data = spec.selector if args is None and not spec.args else contract.metadata.encode_call(spec, args)
        block = self._next_block() if mode is ExecutionMode.TRANSACTION else self._query_block()
        try:
            raw = self.runtime.call(self.account(caller), contract.address, input_data, value=value,
                                    mode=mode, block=block, gas_limit=gas_limit)
        finally:
            if mode is ExecutionMode.TRANSACTION:
                self._commit()
        return self._result(contract.metadata, spec, raw)

    # --- helpers --------------------------------------------------------------------------------
    def _load(self, source: str | os.PathLike[str] | ContractMetadata) -> ContractMetadata:
        if isinstance(source, ContractMetadata):
            return source
        return ContractMetadata.load(source, strict=self.strict_metadata)  # warns on a mismatch

    @staticmethod
    def _constructor(metadata: ContractMetadata, label: str | None) -> MessageSpec:
        if label is not None:
            return metadata.constructor(label)
        spec = metadata.default_constructor()
        if spec is None:
            spec = metadata.constructors[0] if len(metadata.constructors) == 1 else None
        if spec is None:
            names = ", ".join(c.label for c in metadata.constructors)
            raise ConfigError(f"{metadata.name} has several constructors ({names}); name one")
        return spec

    # --- blocks ---------------------------------------------------------------------------------
    @contextmanager
    def new_block(self) -> Iterator[BlockContext]:
        """Run several transactions in one block, committed together when the body ends; if it
        raises, a durable store drops the block's writes and the block number is not used."""
        if self._in_block:
            raise ConfigError("blocks do not nest")
        previous = self.block
        block = self._next_block()
        self._in_block = True
        try:
            yield block
        except BaseException:
            self._in_block = False
            self.runtime.discard_block()
            self.block = previous
            raise
        self._in_block = False
        self._commit()

    def produce_block(self) -> BlockEnd:
        """An empty block: only its end runs (hooks, pending system events). What it did."""
        self._next_block()
        self._commit()
        assert self.last_block_end is not None
        return self.last_block_end

    def _commit(self) -> None:
        """End the current block (unless ``new_block()`` is open): run its end (hooks, system
        events), then a durable store commits it."""
        if not self._in_block:
            self.last_block_end = self.runtime.end_block(self.block)
            self.runtime.commit_block(self.block.number, local_block_hash(self.block))

    def _next_block(self) -> BlockContext:
        if self._in_block:
            return self.block
        now = max(int(time.time() * 1000), self.block.timestamp_ms)
        self.block = BlockContext(self.block.number + 1, now)
        return self.block

    def _query_block(self) -> BlockContext:
        return BlockContext(self.block.number, max(int(time.time() * 1000), self.block.timestamp_ms))

    def _result(self, metadata: ContractMetadata, spec: MessageSpec, raw: ExecResult) -> CallResult:
        value: Any = None
        problem: MetadataError | None = None
        if raw.error is None:
            try:
                value = metadata.decode_return(spec, raw.data)
            except MetadataError as exc:
                problem = MetadataError(
                    f"{spec.label!r} returned 0x{raw.data.hex()}, which the metadata of "
                    f"{metadata.name} cannot decode: {exc}"
                )
        events = [self._decode_event(e) for e in raw.events]
        return CallResult(spec.label, value, raw, events, problem)

    def _decode_event(self, event: ContractEvent) -> DecodedEvent | ContractEvent:
        info = self.runtime.records.contract(event.contract)
        metadata = self._metadata.get(info.code_hash) if info else None
        if metadata is None:
            return event
        try:
            return metadata.decode_event(event.data, event.topics)
        except MetadataError:
            return event


_ENGINE_LOCK = threading.Lock()
_ENGINE: list[Engine] = []


def _shared_engine() -> Engine:
    with _ENGINE_LOCK:
        if not _ENGINE:
            _ENGINE.append(Engine())
        return _ENGINE[0]


def local_block_hash(block: BlockContext) -> bytes:
    """A local cluster has no chain: its block hash is blake2_256 of the block's number and time."""
    return blake2_256(b"phat/local-block" + block.number.to_bytes(8, "little")
                      + block.timestamp_ms.to_bytes(8, "little"))


def _local_services(services: PinkServices | None, cluster_secret: bytes | None) -> PinkServices:
    services = services or PinkServices()
    if cluster_secret is None:
        cluster_secret = services.cluster_secret
    if cluster_secret is None:  # never logged: it is the root of every contract key
        cluster_secret = sr25519_pair_from_seed(os.urandom(32))[1]
    return replace(
        services,
        cluster_secret=cluster_secret,
        cache=LocalCache() if services.cache is None else services.cache,
        logs=LogStore() if services.logs is None else services.logs,
    )
