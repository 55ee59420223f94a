"""The worker: identity (TEE layer), encrypted state, the contract runtime, a transaction
source, and the query service — wired together.

Reads top to bottom like the two flows of ARCHITECTURE.md:

- :meth:`Worker.query` — check the signed request (worker, kind, deadline, signature, nonce),
  run the message in QUERY mode over the committed state, sign a receipt (``rpc/`` opens and
  seals the encrypted frames around this with :meth:`Worker.session_keys`);
- :meth:`Worker.submit` — the same checks, then hand the request to the transaction source,
  which orders it into a block (``worker/pipeline.py``); the reply carries the block's receipt.

The transaction source is pluggable: this module ships the standalone source (the worker
orders transactions itself — one machine, development; *not decentralized*); the chain source
of a later issue feeds the same :class:`~phat_runtime.worker.pipeline.BlockPipeline`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phat_runtime.codec.messages import Outcome, Receipt, SignedRequest, decode_result_query
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.e2e import SessionKeys
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.crypto.kdf import cluster_ecdh, contract_key, sr25519_pair_from_seed
from phat_runtime.errors import DecodeError
from phat_runtime.pink.cache import LocalCache
from phat_runtime.pink.logs import LogStore
from phat_runtime.pink.services import PinkServices
from phat_runtime.runtime.cluster import Cluster
from phat_runtime.runtime.genesis import genesis
from phat_runtime.state.checkpoint import SnapshotStore
from phat_runtime.tee.backends import IDENTITY_FILE, PlatformConfig, make_platform
from phat_runtime.tee.identity import WorkerIdentity, load_or_create_identity
from phat_runtime.tee.platform import KIND_SIMULATED, Platform
from phat_runtime.types import AccountId
from phat_runtime.wasm.engine import Engine, EngineConfig
from phat_runtime.worker.chain_duties import DEFAULT_FALLBACK_S, MemberDuties, Registration
from phat_runtime.worker.chain_journal import JOURNAL_FILE, ChainJournal
from phat_runtime.worker.chain_source import DEFAULT_CHECKPOINT_EVERY, ChainSource
from phat_runtime.worker.contract_meta import MetadataCache, metadata_json
from phat_runtime.worker.datadir import DataDir
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.guards import NonceGuard, QueryPool
from phat_runtime.worker.keyring import KEYRING_FILE, KeyRing
from phat_runtime.worker.limits import BlockLimits
from phat_runtime.worker.pipeline import APPLIED, BlockPipeline, BlockResult, Transaction
from phat_runtime.worker.query_process import NOT_READY, QueryService
from phat_runtime.worker.standalone import StandaloneSource

log = logging.getLogger(__name__)

CLUSTER_KEY_FILE = "cluster.sealed"
STATE_FILE = "state.sqlite"
DEV_CLUSTER_KEY_DOMAIN = b"phat_runtime/dev-cluster-key/v1"
#: pink's default query wall clock.
DEFAULT_QUERY_MS = 10_000


@dataclass(frozen=True)
class ChainConfig:
    """Follow a Substrate chain (``worker/chain_source.py``) instead of ordering transactions."""

    url: str  # ws:// or wss://
    cluster: bytes  # the cluster id (chain.cluster_id(owner, salt))
    start_block: int = 1  # the first chain block a fresh worker applies
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY  # publish the state root every K blocks (0: never)
    #: DEVELOPMENT ONLY — derive the cluster key from the cluster id, so every worker started
    #: with it shares one key without a handover. Anyone can derive it: it protects nothing.
    dev_cluster_key: bool = False
    #: The URL clients reach this worker's RPC at (registered on chain; "" = none given).
    rpc_url: str = ""
    #: dcap-qvl collateral JSON for this worker's quote (empty for the simulated platform).
    collateral: bytes = b""
    #: Seconds before a key holder at rank k takes over a leader's pending handover or rotation:
    #: k × this (``worker/chain_duties.py``).
    fallback_s: float = DEFAULT_FALLBACK_S


def dev_cluster_secret(cluster: bytes) -> bytes:
    """DEVELOPMENT ONLY: a cluster key anyone can compute from the public cluster id."""
    return sr25519_pair_from_seed(blake2_256(DEV_CLUSTER_KEY_DOMAIN + cluster))[1]


@dataclass
class WorkerConfig:
    data_dir: Path
    platform: str = "simulated"
    #: Device paths and key files of the platform backends (None: the real system paths).
    platform_config: PlatformConfig | None = None
    cluster_id: bytes = bytes(32)
    query_wall_clock_ms: int = DEFAULT_QUERY_MS
    max_in_flight: int | None = None  # default: cores + 2 (pink)
    backlog: int = 32
    #: Outbound HTTP from contracts (``pink.egress`` policy); None: the product default.
    egress: Any = None
    #: Extra PinkServices settings (cache, logs, system contract); None: defaults.
    services: PinkServices | None = None
    #: Use this store instead of the encrypted SQLite file (tests: ``state.MemoryBlockStore``).
    store: SnapshotStore | None = field(default=None, repr=False)
    #: Gas caps, wall-clock budgets and standalone quotas (``worker/limits.py``).
    limits: BlockLimits = field(default_factory=BlockLimits)
    #: The system contract installed at genesis (a bundle; None: ours) and the cluster owner
    #: who deploys and owns it (None: the development account alice) — docs/clusters.md.
    system_contract: Path | None = None
    cluster_owner: bytes | None = None
    #: Follow this chain (None: standalone — the worker orders transactions itself).
    chain: ChainConfig | None = None


class Worker:
    """One worker process. Synchronous core; the RPC server calls it from threads."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        # Held until stop(): a second process on this dir would fork its state.
        self.data_dir = DataDir.open(config.data_dir)
        try:
            self._open(config)
        except BaseException:
            self.data_dir.close()
            raise

    def _open(self, config: WorkerConfig) -> None:
        self.platform: Platform = make_platform(
            config.platform, config.platform_config or PlatformConfig(config.data_dir)
        )
        self.identity: WorkerIdentity = load_or_create_identity(
            self.platform, config.data_dir / IDENTITY_FILE
        )
        chain = config.chain
        self.cluster_id = chain.cluster if chain is not None else config.cluster_id
        limits = config.limits
        if chain is not None and limits == BlockLimits():
            limits = BlockLimits.for_chain()  # fees, not quotas; the wall clock only guards
        self.limits = limits
        self.services = config.services or PinkServices()
        if self.services.cache is None:
            self.services.cache = LocalCache()
        if self.services.logs is None:
            self.services.logs = LogStore()
        self.services.worker_pubkey = self.identity.public_key
        if config.egress is not None:
            self.services.egress = config.egress
        self.engine = Engine(EngineConfig(wall_clock_ms=config.query_wall_clock_ms,
                                          cache_dir=config.data_dir / "module-cache"))
        self.nonces = NonceGuard()
        self.pool = QueryPool(config.max_in_flight, config.backlog, weight_of=self.contract_weight)
        self.metadata = MetadataCache()
        # The query path; its state is attached when the state opens (a chain worker: once it
        # holds the cluster key — until then every query is refused as unavailable).
        self.queries = QueryService(self.identity, NOT_READY, NOT_READY,
                                    wall_clock_ms=config.query_wall_clock_ms, nonces=self.nonces,
                                    pool=self.pool, metadata=self.metadata)
        self.quote = self.platform.quote(self.identity.report_data)
        # pink's worker_sgx_quote: a DCAP quote from real hardware; a simulated quote proves
        # nothing, so contracts see None rather than something that looks like attestation.
        if self.services.quote_provider is None and self.quote.kind != KIND_SIMULATED:
            raw = self.quote.raw
            self.services.quote_provider = lambda: raw
        self._ready = False
        self._block_observers: list[Callable[[BlockResult], None]] = []
        # A chain member's state keys (epoch → key; {} until its state opens) and who follows
        # them; None for a worker with one key (standalone, development cluster).
        self._ring: dict[int, bytes] | None = None
        self._ring_lock = threading.Lock()
        self._key_observers: list[Callable[[dict[int, bytes]], None]] = []
        self.system_contract: AccountId | None = None
        self.cluster_owner: AccountId | None = None
        self.keyring: KeyRing | None = None
        self.duties: MemberDuties | None = None
        self.chain: ChainSource | None = None
        self.source: StandaloneSource | ChainSource
        if chain is None:
            self._open_state({0: self._load_or_create_cluster_secret()})
            self.source = StandaloneSource(self.pipeline)
            return
        journal = ChainJournal(config.data_dir / JOURNAL_FILE)
        publisher = self.identity if chain.checkpoint_every else None
        if chain.dev_cluster_key:
            log.warning("DEVELOPMENT CLUSTER KEY: derived from the public cluster id 0x%s — anyone "
                        "can compute it; this cluster protects nothing", chain.cluster.hex())
            secret = dev_cluster_secret(chain.cluster)
            self.chain = self.source = ChainSource(
                chain.url, chain.cluster, journal=journal, identity=self.identity,
                pipeline=self._open_state({0: secret}), dev_secret=secret, publisher=publisher,
                checkpoint_every=chain.checkpoint_every, start_block=chain.start_block)
            return
        # A member of a real cluster: the key arrives by attested handover (or, on the genesis
        # worker, is generated once its registration passed); state opens when it does.
        self.keyring = KeyRing(config.data_dir / KEYRING_FILE, self.platform)
        self._ring = {}
        self.chain = self.source = ChainSource(
            chain.url, chain.cluster, journal=journal, identity=self.identity, keyring=self.keyring,
            open_state=self._open_state, publisher=publisher,
            checkpoint_every=chain.checkpoint_every, start_block=chain.start_block)
        self.chain.on_key = self._key_added
        self.duties = MemberDuties(self.chain, self.identity, Registration(
            self.platform.name if self.quote.kind == KIND_SIMULATED else self.quote.kind,
            self.quote.raw, chain.collateral, chain.rpc_url), fallback_s=chain.fallback_s)

    def _open_state(self, keys: dict[int, bytes], owner: bytes | None = None) -> BlockPipeline:
        """Open the encrypted state with the cluster keys (epoch 0's is the cluster secret),
        install genesis in a new store — deployed by ``owner`` (a chain cluster's owner, from
        its CreateCluster) unless the configuration names one — and make the block pipeline."""
        cluster_secret = keys[0]
        ring = dict(keys) if self._ring is not None else None
        self.store: SnapshotStore = self.config.store if self.config.store is not None else _open_store(
            self.config.data_dir / STATE_FILE, cluster_secret, ring)
        self.services.cluster_secret = cluster_secret
        self._cluster_secret = cluster_secret
        self.cluster = Cluster(self.store, cluster_id=self.cluster_id, engine=self.engine,
                               services=self.services)
        genesis(self.cluster, self.config.cluster_owner or owner, self.config.system_contract)  # block 0 of a new store
        self.system_contract, self.cluster_owner = _system_and_owner(self.cluster)
        self.queries.store, self.queries.cluster = self.store, self.cluster
        self.pipeline = BlockPipeline(self.cluster, self.limits)
        self.pipeline.observers.extend(self._block_observers)
        if ring is not None:
            with self._ring_lock:
                assert self.keyring is not None
                for epoch, secret in self.keyring.all().items():  # added while the state opened
                    if epoch not in ring:
                        self._add_epoch(epoch, secret)
                        ring[epoch] = secret
                self._ring = ring
            self._keys_changed(ring)  # query processes hold the keys before the worker is ready
        self._ready = True
        return self.pipeline

    def _key_added(self, epoch: int, secret: bytes) -> None:
        """The chain source added a key epoch to the key ring (a handover it opened, or this
        worker's proposal the chain published): only keys the chain published reach the state."""
        with self._ring_lock:
            if not self._ring or self._ring.get(epoch) == secret:
                return  # no state yet: it opens with every key the ring holds then
            self._add_epoch(epoch, secret)
            ring = self._ring = {**self._ring, epoch: secret}
        self._keys_changed(ring)

    def _add_epoch(self, epoch: int, secret: bytes) -> None:
        add = getattr(self.store, "add_epoch_secret", None)
        if add is not None and epoch > 0:
            add(epoch, secret)

    def _keys_changed(self, ring: dict[int, bytes]) -> None:
        for observe in list(self._key_observers):
            try:
                observe(ring)
            except Exception:  # an observer's bug must not stop the chain source or duties
                log.exception("a key observer failed")

    def state_keys(self) -> dict[int, bytes] | None:
        """Epoch → cluster key of every key epoch this worker's state reads (epoch 0's is the
        cluster secret): a chain member's key ring as its state holds it, ``{}`` until its state
        opens. None for a worker with one key (standalone, development cluster), whose epochs
        all derive from the cluster secret. Secrets: never log or return it over RPC."""
        return self._ring

    def add_key_observer(self, observe: Callable[[dict[int, bytes]], None]) -> None:
        """Call ``observe(state_keys())`` whenever a chain member's state keys change: when its
        state opens (the cluster key arrived) and whenever a key epoch is added after (rotation,
        the handover of an epoch), on the thread that added it, before a block sealed under the
        new epoch is applied. Workers with one key never change keys."""
        self._key_observers.append(observe)

    def _require_state(self) -> None:
        if not self._ready:
            waiting = self.chain.status.waiting if self.chain is not None else None
            raise RpcError("unavailable", "this worker holds no cluster key yet, so it has no state to "
                           f"serve ({waiting or 'registration or key handover pending'}); "
                           "GET /v1/info shows its membership; try another worker of the cluster")

    @property
    def ready(self) -> bool:
        """True once the worker has state (a chain worker: once it holds the cluster key)."""
        return self._ready

    def add_block_observer(self, observe: Callable[[BlockResult], None]) -> None:
        """Call ``observe`` after every committed block, including on state opened later."""
        self._block_observers.append(observe)
        if self._ready:
            self.pipeline.observers.append(observe)

    @property
    def height(self) -> int:
        """The last block this worker applied (0 before it has state)."""
        return self.pipeline.height if self._ready else 0

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.source.start()
        if self.duties is not None:
            self.duties.start()

    def stop(self) -> None:
        if self.duties is not None:
            self.duties.stop()
        self.source.stop()
        if self.chain is not None:
            self.chain.journal.close()
        close = getattr(self.store, "close", None) if self._ready else None
        if close is not None:
            close()
        self.data_dir.close()

    def _load_or_create_cluster_secret(self) -> bytes:
        """Standalone mode: the worker is its own cluster and generates the cluster key once,
        sealed by the platform (a chain cluster receives it by attested handover instead)."""
        path = self.config.data_dir / CLUSTER_KEY_FILE
        if path.exists():
            return self.platform.unseal(path.read_bytes())
        _, secret = sr25519_pair_from_seed(os.urandom(32))
        from phat_runtime.tee.sealing import write_private_file

        write_private_file(path, self.platform.seal(secret), exclusive=True)
        return secret

    # --- info --------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        checkpoint = self.cluster.checkpoint() if self._ready else None
        epoch, ecdh = self._cluster_key_public()
        return {
            **self._mode_info(),
            "identity": "0x" + self.identity.public_key.hex(),
            "ecdh": "0x" + self.identity.ecdh_public_key.hex(),
            "platform": self.platform.name,
            "quote": "0x" + self.quote.raw.hex(),
            "cluster": "0x" + self.cluster_id.hex(),
            "cluster_ecdh": None if ecdh is None else "0x" + ecdh.hex(),
            "cluster_epoch": epoch,
            "ready": self._ready,
            "block": checkpoint.number if checkpoint else 0,
            "state_root": "0x" + (checkpoint.state_root.hex() if checkpoint else bytes(32).hex()),
            "runtime_version": [1, 2],
            "system_contract": _account_json(self.system_contract),
            "cluster_owner": _account_json(self.cluster_owner),
            "limits": self.limits.describe(),
        }

    def _cluster_key_public(self) -> tuple[int | None, bytes | None]:
        """The current key epoch and its ECDH public key (what Call payloads are sealed to)."""
        if self.keyring is None:
            return 0, cluster_ecdh(self._cluster_secret)[1]
        assert self.chain is not None
        with self.chain.membership_lock:
            m = self.chain.membership
            current = m.current_epoch
            return current, None if current is None else m.epochs[current].ecdh

    def membership(self) -> dict[str, Any]:
        """The cluster's membership as this worker read it from the chain (public)."""
        if self.chain is None:
            raise RpcError("not_found", "this worker is standalone: it is its own cluster")
        with self.chain.membership_lock:
            m = self.chain.membership
            return {"cluster": "0x" + m.cluster.hex(), "created": m.created,
                    "owner": None if m.owner is None else to_ss58(m.owner),
                    "genesis_worker": None if m.genesis_worker is None else "0x" + m.genesis_worker.hex(),
                    "policy": None if m.policy is None else m.policy.to_dict(),
                    "block": m.cursor, "current_epoch": m.current_epoch,
                    "rotation_requested_at": m.rotation_requested_at,
                    "epochs": [{"epoch": e.epoch, "identity": "0x" + e.identity.hex(), "ecdh": "0x" + e.ecdh.hex(),
                                "published_at": e.published_at, "publisher": to_ss58(e.publisher)}
                               for e in m.epochs.values()],
                    "key_holders": [to_ss58(h.identity) for h in m.holders(m.current_epoch)],
                    "members": [member.to_json() for member in m.members.values()]}

    def _mode_info(self) -> dict[str, Any]:
        if self.chain is None:
            return {"mode": "standalone", "decentralized": False,
                    "note": "standalone mode: this worker orders transactions itself; not decentralized"}
        status = self.chain.status
        dev = self.config.chain is not None and self.config.chain.dev_cluster_key
        return {"mode": "chain", "decentralized": not dev,
                "note": ("chain mode with a DEVELOPMENT cluster key anyone can derive: not secure"
                         if dev else "chain mode: the chain orders every state change"),
                "chain": {"url": status.url, "connected": status.connected, "error": status.error,
                          "last_block": status.last_block, "last_hash": "0x" + status.last_hash.hex(),
                          "membership_block": status.membership_block, "waiting": status.waiting,
                          "keys_held": self.keyring.epochs() if self.keyring is not None else [0],
                          "duties_error": self.duties.last_error if self.duties is not None else None,
                          "published_checkpoint": status.published,
                          "publish_error": status.publish_error,
                          "checkpoint_every": self.chain.checkpoint_every}}

    def contract_weight(self, contract: bytes) -> int:
        """``contract``'s weight in the last committed block (``System::set_contract_weight``;
        1 if never set) — what the query pool admits by when contended."""
        return self.queries.contract_weight(contract)

    # --- chain mode ------------------------------------------------------------------------------
    def rejections(self, *, since_block: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        if self.chain is None:
            raise RpcError("not_found", "this worker is standalone: there is no chain to reject messages")
        return [r.to_json() for r in self.chain.journal.rejections(since_block=since_block, limit=limit)]

    def checkpoints(self, *, worker: bytes | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """State roots published on chain (by ``worker``, or anyone), next to this worker's own."""
        if self.chain is None:
            raise RpcError("not_found", "this worker is standalone: nothing is published on a chain")
        journal = self.chain.journal
        out = []
        for who, block, root in journal.published(worker=worker, limit=limit):
            local = journal.root(block)
            out.append({"worker": to_ss58(who), "worker_hex": "0x" + who.hex(), "block": block,
                        "published_root": "0x" + root.hex(),
                        "local_root": None if local is None else "0x" + local.hex(),
                        "agrees": None if local is None else local == root})
        return out

    def chain_result(self, request: SignedRequest, wait_s: float = 20.0) -> tuple[Outcome, Receipt]:
        """The outcome of the sender's own chain transaction (RESULT request), with a receipt
        whose request hash is the hash of the remark that carried it."""
        self.check_request(request)
        if self.chain is None:
            raise RpcError("not_found", "this worker is standalone: transaction answers come from /v2/tx")
        try:
            block, extrinsic, position = decode_result_query(request.payload)
        except (DecodeError, ValueError) as exc:
            raise RpcError("bad_request", f"a RESULT payload is SCALE (block u64, extrinsic u32, position u32): {exc}") from None
        self.nonces.admit(request.origin, request.nonce, request.deadline_ms, _now_ms())
        if not self.chain.wait_applied(block, wait_s):
            raise RpcError("not_applied", f"this worker has applied up to block {self.chain.status.last_block}, "
                           f"not yet block {block}; retry shortly")
        found = self.chain.result(block, extrinsic, position)
        if found is None:
            for rejection in self.chain.journal.rejections(since_block=block, limit=1000):
                if (rejection.block, rejection.extrinsic, rejection.position) == (block, extrinsic, position):
                    raise RpcError("rejected", f"{rejection.message} rejected: {rejection.reason}")
            raise RpcError("not_applied", f"no transaction of this cluster at block {block} extrinsic "
                           f"{extrinsic} position {position} (or this worker restarted since and no "
                           "longer holds its outcome)")
        if found.sender != request.origin:
            raise RpcError("forbidden", "only the transaction's sender may read its outcome")
        receipt = Receipt(worker=self.identity.public_key, kind=found.kind,
                          contract=found.outcome.contract or bytes(32),
                          code_hash=found.outcome.code_hash or bytes(32),
                          request_hash=found.request_hash, output_hash=found.outcome.output_hash,
                          block=found.block, state_root=found.state_root,
                          time_ms=_now_ms()).signed_by(self.identity)
        return found.outcome, receipt

    def contract_info(self, address: bytes) -> dict[str, Any]:
        self._require_state()
        with self.store.reader() as view:
            info = self.cluster.over(view).records.contract(address)
            if info is None:
                raise RpcError("unknown_contract", f"no contract at {to_ss58(address)}")
            metadata = metadata_json(view, info.code_hash)
        public, _ = contract_key(self._cluster_secret, address)
        return {
            "address": to_ss58(address),
            "address_hex": "0x" + address.hex(),
            "code_hash": "0x" + info.code_hash.hex(),
            "deployer": to_ss58(info.deployer),
            "deployer_hex": "0x" + info.deployer.hex(),
            "public_key": "0x" + public.hex(),
            "metadata": metadata,
        }

    # --- the two flows -------------------------------------------------------------------------
    def check_request(self, request: SignedRequest) -> None:
        """Checks every transport applies: addressed to this worker, signed by its origin."""
        self.queries.check_request(request)

    def query(self, request: SignedRequest) -> tuple[Outcome, Receipt]:
        """Run a QUERY request over the last committed block; the output with a signed receipt
        (``worker/query_process.py``: the same path serves query processes)."""
        return self.queries.query(request)

    def submit(self, request: SignedRequest, timeout_s: float = 60.0) -> tuple[Outcome, Receipt]:
        """Order a transaction into a block; returns once the block is committed.

        Refused before it is queued (nothing changes, no block): a replayed (origin, nonce),
        an expired deadline, a gas limit over the cap."""
        self.check_request(request)
        self._require_state()
        if not request.kind.is_transaction:
            raise RpcError("wrong_kind", f"a {request.kind.name} request is not a transaction; queries go to /v2/query, log reads to /v2/logs")
        self.nonces.check_deadline(request.deadline_ms, _now_ms())
        cap = self.config.limits.max_tx_gas
        if request.gas_limit > cap:
            raise RpcError("gas_limit_too_high", f"gas limit {request.gas_limit} exceeds the "
                           f"per-transaction cap {cap}; pass at most that (0 = the cap)")
        with self.store.reader() as view:
            if view.get(APPLIED + request.origin + request.nonce) is not None:
                raise RpcError("replayed_nonce", "this (origin, nonce) was already applied; sign a "
                               "new request with a fresh nonce")
        included = self.source.submit(transaction_of(request), timeout_s)
        return included.outcome, self.receipt(request, included.outcome, included.block, included.state_root)

    def session_keys(self, client_pk: bytes, session_id: bytes) -> SessionKeys:
        """The AEAD keys of an RPC session opened with a client's ephemeral X25519 key
        (``rpc/sessions.py``); EnvelopeError for an unusable key."""
        return self.queries.session_keys(client_pk, session_id)

    def receipt(self, request: SignedRequest, outcome: Outcome, block: int, state_root: bytes) -> Receipt:
        return self.queries.receipt(request, outcome, block, state_root)


def transaction_of(request: SignedRequest) -> Transaction:
    """An RPC transaction request as the pipeline applies it."""
    return Transaction(origin=AccountId(request.origin), kind=request.kind, payload=request.payload,
                       contract=request.contract, code_hash=request.code_hash, salt=request.salt,
                       value=request.value, gas_limit=request.gas_limit, nonce=request.nonce,
                       deadline_ms=request.deadline_ms, ref=request.request_hash)


def _system_and_owner(cluster: Cluster) -> tuple[AccountId | None, AccountId | None]:
    """The cluster's system contract (installed at genesis; its address never changes) and
    the cluster owner, who deployed it."""
    system = cluster.settings.system_contract()
    info = cluster.records.contract(system) if system is not None else None
    return system, (info.deployer if info is not None else None)


def _account_json(account: bytes | None) -> dict[str, str] | None:
    return None if account is None else {"address": to_ss58(account), "address_hex": "0x" + account.hex()}


def _open_store(path: Path, cluster_secret: bytes, ring: dict[int, bytes] | None) -> SnapshotStore:
    from phat_runtime.state.store import EncryptedStore

    return EncryptedStore.open(path, cluster_secret, epoch_secrets=ring)


def _now_ms() -> int:
    return int(time.time() * 1000)
