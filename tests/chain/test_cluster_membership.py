"""Cluster membership over a real chain (chopsticks): attested registration, the genesis
worker's key, handover to later workers, failing attestations, rotation and revocation, and a
cluster that goes on without its leader.

Workers here run in this process (each with its own data dir, identity, RPC server and chain
connections); ``test_chain_processes.py`` runs them as separate processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from phat_runtime.chain import (
    CallPayload,
    ChainNode,
    CreateCluster,
    Devnet,
    RegisterWorker,
    RevokeWorker,
    RotateClusterKey,
    cluster_id,
    free_port,
    open_call_payload,
    seal_call_payload,
)
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.kdf import cluster_ecdh
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import PhatError, ProtocolError
from phat_runtime.rpc.chain_client import ChainClient
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.state.store import EncryptedStore
from phat_runtime.tee import simulated
from phat_runtime.tee.identity import WorkerIdentity, worker_report_data
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "attestation"
TOKEN = EXAMPLES / "token" / "token.contract"
POLICY = Policy.from_dict({"platforms": ["simulated"],
                           "simulated": {"measurement": [simulated.DEFAULT_MEASUREMENT.hex()]}})


def _wait(condition, what, timeout_s: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.2)


@dataclass
class Running:
    worker: Worker
    url: str
    server: ServerThread
    stopped: bool = False

    def stop(self) -> None:
        """Close its RPC server and stop the worker (chain threads, duties, store)."""
        if not self.stopped:
            self.stopped = True
            self.server.__exit__(None, None, None)


class Cluster:
    def __init__(self, devnet: Devnet, root: Path, stack: contextlib.ExitStack, *,
                 fallback_s: float | None = None) -> None:
        self.devnet, self.root, self.stack = devnet, root, stack
        self.fallback_s = fallback_s
        self.owner = Signer.dev("alice")
        self.salt = os.urandom(8)
        self.id = cluster_id(self.owner.public_key, self.salt)
        with ChainNode(devnet.url) as node:
            self.start = node.finalized_number() + 1
        self.workers: list[Running] = []

    def worker(self, name: str) -> Worker:
        port = free_port()
        fallback = {} if self.fallback_s is None else {"fallback_s": self.fallback_s}
        return Worker(WorkerConfig(data_dir=self.root / name, chain=ChainConfig(
            self.devnet.url, self.id, start_block=self.start, checkpoint_every=0,
            rpc_url=f"http://127.0.0.1:{port}", **fallback)))

    def run(self, worker: Worker) -> Running:
        self.devnet.fund([worker.identity.public_key])
        port = int(worker.config.chain.rpc_url.rsplit(":", 1)[1])  # type: ignore[union-attr]
        server = ServerThread(worker, port=port)
        running = Running(worker, server.__enter__(), server)
        self.stack.callback(running.stop)
        self.workers.append(running)
        return running

    def create(self, genesis: Worker, policy: Policy = POLICY) -> None:
        with ChainNode(self.devnet.url) as node:
            node.submit([CreateCluster(self.salt, policy, genesis.identity.public_key)], self.owner)

    def wait_ready(self, *workers: Worker) -> None:
        for w in workers:
            _wait(lambda w=w: w.info()["ready"], lambda w=w: f"worker ready: {w.info()['chain']}")

    def wait_same_root(self, workers: list[Worker], timeout_s: float = 120) -> int:
        with ChainNode(self.devnet.url) as node:
            head = node.finalized_number()
        for w in workers:
            _wait(lambda w=w: w.chain.status.last_block >= head,  # type: ignore[union-attr]
                  lambda w=w: f"worker at block {head}: {w.info()['chain']}", timeout_s)
        roots = {w.chain.journal.root(head) for w in workers}  # type: ignore[union-attr]
        if len(roots) != 1 or None in roots:
            table = {n: [(w.chain.journal.root(n) or b"").hex()[:8] + "/" + (w.chain.journal.membership_digest(n) or b"").hex()[:6]  # type: ignore[union-attr]
                         for w in workers] for n in range(self.start, head + 1)}
            raise AssertionError(f"roots differ at block {head}: {table}")
        return head


#: Short, for the test of a leader that went away: the key holder at rank k takes over a
#: pending handover or rotation after k × this many seconds.
FALLBACK_S = 1.5


@pytest.fixture(scope="module")
def cluster(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with contextlib.ExitStack() as stack:
        yield Cluster(devnet, tmp_path_factory.mktemp("members"), stack, fallback_s=FALLBACK_S)


def _register_by_hand(devnet: Devnet, cluster: Cluster, *, measurement: bytes, bind_other: bool) -> bytes:
    """A registration made to fail: a simulated quote with another measurement, or one whose
    report data binds other keys than the ones registered."""
    who, other = WorkerIdentity.generate(), WorkerIdentity.generate()
    bound = other if bind_other else who
    quote = simulated.encode_quote(measurement, worker_report_data(bound.public_key, bound.ecdh_public_key))
    devnet.fund([who.public_key])
    with ChainNode(devnet.url) as node:
        node.submit([RegisterWorker(cluster.id, who.public_key, who.ecdh_public_key, "simulated", quote,
                                    b"", "http://127.0.0.1:9")], who)
    return who.public_key


def test_genesis_key_handover_equal_roots_and_a_late_joiner(devnet: Devnet, cluster: Cluster) -> None:
    w1, w2, w3 = (cluster.worker(f"w{i}") for i in (1, 2, 3))
    for w in (w1, w2, w3):
        cluster.run(w)
    cluster.create(w1)
    cluster.wait_ready(w1, w2, w3)
    # w1 generated epoch 0; w2 and w3 received it by handover (nobody derived it).
    assert w1.keyring.get(0) == w2.keyring.get(0) == w3.keyring.get(0) is not None  # type: ignore[union-attr]
    members = w1.membership()["members"]
    assert [m["passed"] for m in members] == [True, True, True]
    alice, bob = Signer.dev("alice"), Signer.dev("bob")
    first = WorkerClient(cluster.workers[1].url, policy=development_policy())
    client = ChainClient(devnet.url, cluster.id, first)
    token = client.deploy(TOKEN, "new", [10**15], signer=alice, salt=os.urandom(4))
    assert token.transact("transfer", {"to": bob.public_key, "value": 1234}, signer=alice).success
    cluster.wait_same_root([w1, w2, w3])
    # A fourth worker joins later: registers, receives the key, replays the chain, agrees.
    w4 = cluster.worker("w4")
    cluster.run(w4)
    cluster.wait_ready(w4)
    cluster.wait_same_root([w1, w2, w3, w4])
    asked = WorkerClient(cluster.workers[3].url, policy=development_policy())
    assert ChainClient(devnet.url, cluster.id, asked).contract(token.address, TOKEN).query(
        "balance_of", [bob.public_key], signer=bob).output == 1234
    client.close()
    first.close()
    asked.close()


def test_failing_attestations_get_no_key_and_the_same_reason_everywhere(devnet: Devnet, cluster: Cluster) -> None:
    wrong = _register_by_hand(devnet, cluster, measurement=bytes(32), bind_other=False)
    unbound = _register_by_hand(devnet, cluster, measurement=simulated.DEFAULT_MEASUREMENT, bind_other=True)
    live = [r.worker for r in cluster.workers]
    cluster.wait_same_root(live)
    reasons = []
    for w in live:
        by_id = {m["identity_hex"]: m for m in w.membership()["members"]}
        a, b = by_id["0x" + wrong.hex()], by_id["0x" + unbound.hex()]
        assert not a["passed"] and "measurement.measurement" in a["reason"]
        assert not b["passed"] and "report_data" in b["reason"]
        assert a["epochs"] == [] and b["epochs"] == []  # nobody handed them a key
        rejected = {r["signer_hex"]: r["reason"] for r in w.rejections(limit=1000)}
        reasons.append((rejected["0x" + wrong.hex()], rejected["0x" + unbound.hex()]))
    assert len(set(reasons)) == 1, reasons


def test_rotation_and_revocation_cut_a_worker_off(devnet: Devnet, cluster: Cluster, tmp_path: Path) -> None:
    live = [r.worker for r in cluster.workers]
    revoked, kept = live[2], [w for i, w in enumerate(live) if i != 2]
    with ChainNode(devnet.url) as node:
        node.submit([RevokeWorker(cluster.id, revoked.identity.public_key), RotateClusterKey(cluster.id)],
                    cluster.owner)
    for w in kept:
        _wait(lambda w=w: w.keyring.has(1), lambda w=w: f"epoch 1 at {w.info()['chain']}")  # type: ignore[union-attr]
    assert not revoked.keyring.has(1)  # type: ignore[union-attr]
    # A transfer after the rotation: sealed to epoch 1, applied by the members that hold it.
    alice, bob = Signer.dev("alice"), Signer.dev("bob")
    member = WorkerClient(cluster.workers[0].url, policy=development_policy())
    client = ChainClient(devnet.url, cluster.id, member)
    info = kept[0].info()
    assert info["cluster_epoch"] == 1
    token_address = next(iter(_contracts(kept[0])))
    token = client.contract(token_address, TOKEN)
    assert token.transact("transfer", {"to": bob.public_key, "value": 1}, signer=alice).success
    head = cluster.wait_same_root(kept)
    # The revoked worker stopped where epoch 1 begins and says why.
    assert revoked.chain.status.last_block < head  # type: ignore[union-attr]
    assert "revoked" in (revoked.chain.status.waiting or "")  # type: ignore[union-attr]
    # It cannot open a payload sealed to epoch 1 …
    sealed = seal_call_payload(CallPayload(b"\x01"), cluster_ecdh_public=bytes.fromhex(info["cluster_ecdh"][2:]),
                               cluster=cluster.id, contract=token_address, epoch=1, sender=alice.public_key)
    own = revoked.keyring.all()  # type: ignore[union-attr]
    with pytest.raises(ProtocolError):
        open_call_payload(sealed, cluster_ecdh_private=cluster_ecdh(own[0])[0], cluster=cluster.id,
                          contract=token_address, epoch=1, sender=alice.public_key)
    # … nor read the state a member wrote after the rotation (a copy of its file, its own keys).
    copy = tmp_path / "state.sqlite"
    with kept[0].store.reader():  # a consistent moment to copy the committed file
        shutil.copy(kept[0].config.data_dir / "state.sqlite", copy)
        for suffix in ("-wal", "-shm"):
            src = kept[0].config.data_dir / f"state.sqlite{suffix}"
            if src.exists():
                shutil.copy(src, tmp_path / f"state.sqlite{suffix}")
    reader = EncryptedStore.open_reader(copy, own[0], epoch_secrets=own)
    with pytest.raises(PhatError, match="epoch 1"), reader.reader() as view:
        list(view.iter_prefix(b""))
    reader.close()
    client.close()
    member.close()


@pytest.mark.slow  # 25-50 s: a join and a rotation through the chain, each waiting for fallbacks
def test_without_its_leader_the_cluster_still_admits_workers_and_rotates(devnet: Devnet, cluster: Cluster) -> None:
    """After the rotation above: the leader — the earliest-registered live holder of the key —
    goes away for good. Its fallbacks hand the keys to a newcomer and complete a rotation."""
    running = [r for r in cluster.workers if not r.stopped]
    holders = running[0].worker.membership()["key_holders"]
    by_id = {to_ss58(r.worker.identity.public_key): r for r in running}
    assert len(holders) == 3 and set(holders) <= set(by_id)  # the members kept by the rotation
    leader, others = by_id[holders[0]], [by_id[h] for h in holders[1:]]
    token_address = next(iter(_contracts(leader.worker)))
    leader.stop()  # its RPC server closes, its worker (chain threads, duties) stops
    started = time.monotonic()

    # (a) A newcomer still receives every key epoch — from the first fallback — and serves.
    newcomer = cluster.run(cluster.worker("w5"))
    cluster.wait_ready(newcomer.worker)
    joined_s = time.monotonic() - started
    members = [r.worker for r in [*others, newcomer]]
    cluster.wait_same_root(members)  # it caught up
    assert newcomer.worker.keyring.all() == others[0].worker.keyring.all()  # type: ignore[union-attr]
    alice, bob = Signer.dev("alice"), Signer.dev("bob")
    asked = WorkerClient(newcomer.url, policy=development_policy())
    cluster.stack.callback(asked.close)
    client = ChainClient(devnet.url, cluster.id, asked)
    cluster.stack.callback(client.close)
    token = client.contract(token_address, TOKEN)
    assert token.query("total_supply", signer=bob).output == 10**15

    # (b) The owner rotates: a fallback publishes epoch 2 (rank 1 after 1 × FALLBACK_S; rank 2
    # only if rank 1's had not landed after 2 × — then the first on chain wins and the other
    # discards its own and takes the winner's by handover), the others receive it, and every
    # member left moves to epoch 2.
    rotated = time.monotonic()
    with ChainNode(devnet.url) as node:
        node.submit([RotateClusterKey(cluster.id)], cluster.owner)
    for w in members:
        _wait(lambda w=w: w.keyring.has(2), lambda w=w: f"epoch 2 at {w.info()['chain']}", 60)  # type: ignore[union-attr]
    rotation_s = time.monotonic() - rotated
    assert len({w.keyring.get(2) for w in members}) == 1  # type: ignore[union-attr]
    assert all(w.keyring.proposed_epochs() == [] for w in members)  # type: ignore[union-attr]
    publisher = next(e["publisher"] for e in newcomer.worker.membership()["epochs"] if e["epoch"] == 2)
    # A fallback — rank 1 normally; a later rank only if the earlier ones' had not landed in time
    # (a slow machine) — never the leader that went away.
    assert publisher != holders[0] and publisher in {to_ss58(w.identity.public_key) for w in members}
    before = token.query("balance_of", [bob.public_key], signer=bob).output
    assert token.transact("transfer", {"to": bob.public_key, "value": 5}, signer=alice).success
    cluster.wait_same_root(members)
    assert all(w.info()["cluster_epoch"] == 2 for w in members)
    assert token.query("balance_of", [bob.public_key], signer=bob).output == before + 5
    print(f"leader gone: a newcomer was ready after {joined_s:.1f} s, a rotation took {rotation_s:.1f} s "
          f"(fallback {FALLBACK_S} s)")


def _contracts(worker: Worker) -> list[bytes]:
    from phat_runtime.runtime.records import CONTRACT

    with worker.store.reader() as view:
        return [key[1:] for key, _ in view.iter_prefix(CONTRACT)
                if worker.contract_info(key[1:])["code_hash"] and _is_token(worker, key[1:])]


def _is_token(worker: Worker, address: bytes) -> bool:
    meta = worker.contract_info(address)["metadata"]
    return bool(meta) and "token" in str(meta).lower()


# --- real DCAP samples: a chain whose clock is inside their collateral's validity window ------

#: The SGX sample's collateral is valid 2025-06-19 10:56 → 2025-07-19 10:01 UTC
#: (tests/fixtures/attestation/SOURCES.md); registrations are verified at the block's time.
SGX_WINDOW_MS = 1_751_328_000_000  # 2025-07-01 00:00 UTC: the chain's genesis time
#: The outdated TDX sample's collateral is valid 2026-02-18 10:41 → 2026-03-20 10:41 UTC.
TDX_OUTDATED_WINDOW_MS = 1_772_323_200_000  # 2026-03-01 00:00 UTC
SGX_MR_ENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
TDX_OUTDATED_MR_TD = ("273828c46252fcbdd8ad2dd907130222b03466d52a2911d70c1a5950895d6bd1"
                      "ae451d382d5a9b1b4c0ed0e5ae9a3dbd")


@pytest.fixture
def devnet_2025(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """A chain of its own that begins inside the SGX sample's window (the session's devnet keeps
    the real time: other tests follow it)."""
    net = Devnet(tmp_path_factory.mktemp("devnet-2025"), genesis_time_ms=SGX_WINDOW_MS, progress=print)
    net.start()
    try:
        yield net
    finally:
        net.stop()


def _register_sample(node: ChainNode, cluster: Cluster, who: WorkerIdentity, platform: str, quote: str) -> None:
    """``who`` registers with a real quote and its collateral (the quote's report data binds
    someone else's keys: no real sample can bind a key made here)."""
    node.submit([RegisterWorker(cluster.id, who.public_key, who.ecdh_public_key, platform,
                                (SAMPLES / quote).read_bytes(), (SAMPLES / f"{quote}_collateral.json").read_bytes(),
                                "http://127.0.0.1:9")], who)


@pytest.mark.slow
def test_outdated_tcb_gets_no_key_and_the_same_reason_everywhere(devnet_2025: Devnet, tmp_path: Path) -> None:
    # The policy accepts the simulated members, and SGX / TDX with the samples' measurements
    # and any advisory: what fails the samples is their TCB (and, unavoidably, the binding).
    policy = Policy.from_dict({
        "platforms": ["simulated", "sgx", "tdx"], "advisories": "*",
        "simulated": {"measurement": [simulated.DEFAULT_MEASUREMENT.hex()]},
        "sgx": {"mr_enclave": [SGX_MR_ENCLAVE]}, "tdx": {"mr_td": [TDX_OUTDATED_MR_TD]}})
    sgx, tdx = WorkerIdentity.generate(), WorkerIdentity.generate()
    devnet_2025.fund([sgx.public_key, tdx.public_key])
    with contextlib.ExitStack() as stack:
        cluster = Cluster(devnet_2025, tmp_path, stack)
        live = [cluster.worker("w1"), cluster.worker("w2")]
        for w in live:
            cluster.run(w)
        cluster.create(live[0], policy)
        # The samples register while the members register and hand over the key.
        with ChainNode(devnet_2025.url) as node:
            _register_sample(node, cluster, sgx, "sgx", "sgx_quote")
            # Forward to the outdated TDX sample's window (the next block is one slot later).
            devnet_2025.rpc("dev_timeTravel", [TDX_OUTDATED_WINDOW_MS])
            _register_sample(node, cluster, tdx, "tdx", "tdx_quote_outdated")
        cluster.wait_ready(*live)
        cluster.wait_same_root(live)
        seen = []
        for w in live:
            by_id = {m["identity_hex"]: m for m in w.membership()["members"]}
            s, t = by_id["0x" + sgx.public_key.hex()], by_id["0x" + tdx.public_key.hex()]
            # dcap-qvl verified the SGX quote at the 2025 block's time; the policy refused its TCB.
            assert not s["passed"] and s["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
            assert "tcb_status: ConfigurationAndSWHardeningNeeded not accepted" in s["reason"]
            assert "report_data" in s["reason"] and "measurement" not in s["reason"]
            # The TDX platform's TCB is below every level its collateral lists: dcap-qvl refuses it.
            assert not t["passed"] and "No matching TCB level found" in t["reason"]
            assert s["epochs"] == [] and t["epochs"] == []  # nobody handed them a key
            assert [m["passed"] for m in by_id.values() if m["platform"] == "simulated"] == [True, True]
            rejected = {r["signer_hex"]: r["reason"] for r in w.rejections(limit=1000)}
            seen.append((s["reason"], t["reason"], rejected["0x" + sgx.public_key.hex()],
                         rejected["0x" + tdx.public_key.hex()]))
        assert len(set(seen)) == 1, seen
