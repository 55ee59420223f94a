"""Clients of a whole cluster on a real chain (chopsticks): membership read from the chain,
queries failing over between three workers while one stops, transactions sealed to the key
epoch the chain published, receipts of a revoked worker refused, receipt files verified.

The workers are in-process chain workers that join as real members do: each registers itself
(its quote binding its identity and ECDH key, and its RPC URL), the genesis worker generates
key epoch 0 and publishes its public halves, and it hands the key over to the other two — no
development key. ``test_cluster_processes.py`` does the failover with worker processes and
``kill -9``."""

from __future__ import annotations

import json
import os
import shlex
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from phat_runtime.chain import (
    ChainNode,
    CreateCluster,
    Devnet,
    RegisterWorker,
    RevokeWorker,
    cluster_id,
    free_port,
)
from phat_runtime.cli.chain import DEVNET_CLUSTER_SALT
from phat_runtime.cli.main import main
from phat_runtime.codec.messages import Outcome
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.kdf import cluster_ecdh
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc import cluster_directory
from phat_runtime.rpc.client import development_policy
from phat_runtime.rpc.cluster_client import ClusterClient
from phat_runtime.rpc.cluster_directory import ClusterDirectory, UntrustedWorker
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.runtime.records import contract_address
from phat_runtime.tee import WorkerIdentity, simulated
from phat_runtime.tee.identity import worker_report_data
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig, dev_cluster_secret

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contracts_examples"
TOKEN = EXAMPLES / "token" / "token.contract"
SUPPLY = 1_000_000
POLICY = Policy.from_dict({"platforms": ["simulated"]})


class Cluster:
    """Three running chain workers of a fresh cluster, and the chain block to scan from. The
    first is the genesis worker; the cluster exists once :meth:`create` returns."""

    def __init__(self, devnet: Devnet, tmp: pytest.TempPathFactory) -> None:
        self.devnet, self.owner, self.salt = devnet, Signer.dev("alice"), os.urandom(8)
        self.id = cluster_id(self.owner.public_key, self.salt)
        with ChainNode(devnet.url) as node:
            self.since = node.finalized_number() + 1
        ports = [free_port() for _ in range(3)]
        self.workers = [Worker(WorkerConfig(data_dir=tmp.mktemp(f"cw{i}"), chain=ChainConfig(
            devnet.url, self.id, start_block=self.since, checkpoint_every=0, rpc_url=f"http://127.0.0.1:{port}")))
            for i, port in enumerate(ports)]
        devnet.fund([w.identity.public_key for w in self.workers])  # they sign their own registrations
        self.servers = [ServerThread(w, port=port) for w, port in zip(self.workers, ports, strict=True)]
        self.running = {w.identity.public_key: s for w, s in zip(self.workers, self.servers, strict=True)}

    def create(self, timeout_s: float = 120) -> None:
        """CreateCluster naming the first worker, then until every worker holds the key."""
        with ChainNode(self.devnet.url) as node:
            node.submit([CreateCluster(self.salt, POLICY, self.workers[0].identity.public_key)], self.owner)
        deadline = time.monotonic() + timeout_s
        for w in self.workers:
            while not w.info()["ready"]:
                assert time.monotonic() < deadline, f"worker not ready: {w.info()['chain']}"
                time.sleep(0.1)

    def stop(self, identity: bytes) -> None:
        self.running.pop(identity).__exit__(None, None, None)

    def client(self, cache: Path, **kw: object) -> ClusterClient:
        return ClusterClient(self.devnet.url, self.id, policy=development_policy(), since=self.since,
                             cache_dir=cache, **kw)  # type: ignore[arg-type]

    def cli(self, *args: str) -> list[str]:
        return [*args, "--chain", self.devnet.url, "--cluster", "0x" + self.id.hex(), "--since", str(self.since)]


@pytest.fixture(scope="module")
def cluster(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    made = Cluster(devnet, tmp_path_factory)
    try:
        for server in made.servers:
            server.__enter__()
        made.create()
        yield made
    finally:
        for identity in list(made.running):
            made.stop(identity)


@pytest.fixture(scope="module")
def token_address(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A token (supply SUPPLY, owned by alice) deployed through the cluster, for the tests that
    only read its total supply (a deployment costs two chain transactions)."""
    client = cluster.client(tmp_path_factory.mktemp("deployer"))
    address = client.deploy(TOKEN, "new", [SUPPLY], signer=Signer.dev("alice"), salt=os.urandom(4)).address
    client.close()
    return address


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cluster_directory, "DEFAULT_CACHE_DIR", tmp_path / "cache")  # for the CLI
    return tmp_path / "cache"


def test_the_directory_reads_members_and_key_from_the_chain_and_caches_the_scan(cluster: Cluster,
                                                                               cache_dir: Path) -> None:
    first = ClusterDirectory(cluster.devnet.url, cluster.id, since=cluster.since, cache_dir=cache_dir)
    seen: list[tuple[int, int]] = []
    membership = first.refresh(lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] >= 6  # create, three registrations, the key, its handover
    # Every worker, at the URL it registered itself with (in the order they happened to register).
    assert {m.identity: m.rpc_url for m in first.live_workers()} == {
        w.identity.public_key: s.url for w, s in zip(cluster.workers, cluster.servers, strict=True)}
    assert len(first.live_workers()) == 3
    # Call payloads go to the key the genesis worker generated, which the others hold too.
    secret = cluster.workers[0].keyring.get(0)  # type: ignore[union-attr]
    assert secret is not None and all(w.keyring.get(0) == secret for w in cluster.workers)  # type: ignore[union-attr]
    assert (first.call_key().epoch, first.call_key().ecdh) == (0, cluster_ecdh(secret)[1])
    assert secret != dev_cluster_secret(cluster.id)  # not the development key anyone can derive
    assert first.is_trusted(cluster.workers[1].identity.public_key)
    with pytest.raises(UntrustedWorker, match="is not registered"):
        first.check_trusted(os.urandom(32))
    first.close()
    # A second run starts from the cached cursor: it reads only blocks finalized since.
    again = ClusterDirectory(cluster.devnet.url, cluster.id, since=cluster.since, cache_dir=cache_dir)
    later: list[tuple[int, int]] = []
    assert again.refresh(lambda done, total: later.append((done, total))).digest() == membership.digest()
    assert sum(total for _, total in later[-1:]) < seen[-1][1]
    again.close()
    # A cache whose cursor block is not on this chain any more is dropped: a full scan again.
    (path,) = (cache_dir / "membership").iterdir()
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "cursor_hash": "00" * 32}))
    third = ClusterDirectory(cluster.devnet.url, cluster.id, since=cluster.since, cache_dir=cache_dir)
    rescanned: list[tuple[int, int]] = []
    assert third.refresh(lambda done, total: rescanned.append((done, total))).digest() == membership.digest()
    assert rescanned[-1][1] >= seen[-1][1]
    third.close()
    # A cluster that does not exist says which blocks were searched.
    missing = ClusterDirectory(cluster.devnet.url, os.urandom(32), since=cluster.since, cache_dir=cache_dir)
    with pytest.raises(Exception, match="was created on .* in blocks"):
        missing.refresh()
    missing.close()


def test_deploy_transact_and_query_through_the_cluster_and_verify_the_receipt_files(
        cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob = Signer.dev("alice"), Signer.dev("bob")
    client = cluster.client(tmp_path / "c")
    token = client.deploy(TOKEN, "new", [SUPPLY], signer=alice, salt=os.urandom(4))
    sent = token.transact("transfer", {"to": bob.public_key, "value": 1234}, signer=alice)
    assert sent.success, sent.verified.outcome
    assert client.directory.is_trusted(sent.verified.receipt.worker)
    assert token.query("balance_of", [bob.public_key], signer=bob).output == 1234
    client.close()

    # The CLI, with no --url: the cluster's workers come from the chain.
    address = "0x" + token.address.hex()
    saved = tmp_path / "balance.json"
    assert main(cluster.cli("query", address, "balance_of", "--args", '["bob"]', "--dev", "--save", str(saved))) == 0
    assert "verify-receipt" in capsys.readouterr().out
    assert main(cluster.cli("tx", address, "transfer", "--args", '{"to": "bob", "value": 1}', "--dev",
                            "--json")) == 0
    tx = json.loads(capsys.readouterr().out)
    assert tx["success"] is True and tx["receipt"]["kind"] == "CALL"
    doc = json.loads(saved.read_text())
    assert doc["value"] == {"Ok": 1234} and doc["format"] == "phat-receipt/v1"
    assert main(cluster.cli("verify-receipt", str(saved), "--metadata", str(TOKEN))) == 0
    out = capsys.readouterr().out
    assert "receipt verified" in out and "ok   the output hash" in out and "metadata" in out
    tx_file = tmp_path / "tx.json"
    tx_file.write_text(json.dumps(tx))
    assert main(cluster.cli("verify-receipt", str(tx_file), "--json")) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is True

    # Tampering: the signed output bytes, or only the readable value.
    outcome = Outcome.decode(bytes.fromhex(doc["outcome"][2:]))
    data = bytearray(outcome.data)
    data[1] ^= 1  # the balance
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps({**doc, "outcome": "0x" + replace(outcome, data=bytes(data)).encode().hex()}))
    assert main(cluster.cli("verify-receipt", str(altered))) == 1
    assert "the output was altered" in capsys.readouterr().err
    altered.write_text(json.dumps({**doc, "value": {"Ok": 999_999}, "output": 999_999}))
    assert main(cluster.cli("verify-receipt", str(altered), "--metadata", str(TOKEN))) == 1
    assert "the file was altered" in capsys.readouterr().err
    # `phat workers` lists the three with their verdicts.
    assert main(cluster.cli("workers", "--json")) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["development"] is True and listed["current_epoch"] == 0  # the policy accepts the simulated TEE
    genesis = cluster.workers[0].identity.public_key
    assert [(e["epoch"], e["publisher"]) for e in listed["epochs"]] == [(0, to_ss58(genesis))]
    # Each holds epoch 0: the genesis worker made it, the others received it by handover.
    assert sorted((m["rpc_url"], m["passed"], m["live"], m["epochs"]) for m in listed["members"]) == sorted(
        (s.url, True, True, [0]) for s in cluster.servers)
    assert main(cluster.cli("workers")) == 0
    assert "3 live of 3 registered" in capsys.readouterr().err


def test_the_commands_of_operations_using_a_cluster_run(cluster: Cluster, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """docs/operations.md "Using a cluster", verbatim but for the chain, cluster and address."""
    from doc_session import section_commands

    commands = section_commands(ROOT / "docs" / "operations.md", "Using a cluster")
    assert [c.split()[1] for c in commands] == ["workers", "deploy", "query", "tx", "verify-receipt"]
    alice = Signer.dev("alice").public_key
    code_hash = ContractMetadata.load(TOKEN).code_hash
    assert code_hash is not None
    devnet_cluster = cluster_id(alice, DEVNET_CLUSTER_SALT)  # what `phat devnet` creates
    swap = {"ws://127.0.0.1:9944": cluster.devnet.url, devnet_cluster.hex(): cluster.id.hex(),
            to_ss58(contract_address(alice, code_hash, devnet_cluster, b"docs")):
                to_ss58(contract_address(alice, code_hash, cluster.id, b"docs")),
            "contracts_examples/": str(EXAMPLES) + "/"}
    monkeypatch.chdir(tmp_path)
    outputs = []
    for command in commands:
        assert "--chain ws://127.0.0.1:9944" in command and f"--cluster 0x{devnet_cluster.hex()}" in command
        for shown, actual in swap.items():
            command = command.replace(shown, actual)
        assert main([*shlex.split(command)[1:], "--since", str(cluster.since)]) == 0, command
        outputs.append(capsys.readouterr())
    assert "3 live of 3 registered" in outputs[0].err
    assert "deployed" in outputs[1].out and to_ss58(contract_address(alice, code_hash, cluster.id, b"docs")) in outputs[1].out
    assert "1000000" in outputs[2].out and (tmp_path / "supply.json").exists()
    assert "receipt verified" in outputs[4].out and "the value, decoded" in outputs[4].out


def test_a_member_behind_the_state_the_client_saw_is_passed_over(cluster: Cluster, token_address: bytes,
                                                                  tmp_path: Path) -> None:
    alice, someone = Signer.dev("alice"), os.urandom(32)
    lagging, other = cluster.workers[2], cluster.workers[0]
    client = cluster.client(tmp_path / "c")
    token = client.contract(token_address, TOKEN)
    assert token.query("total_supply", signer=alice).output == SUPPLY
    lagging.chain.stop()  # type: ignore[union-attr]  # it stops applying blocks; its RPC stays up
    try:
        client._preferred = other.identity.public_key
        sent = token.transact("transfer", {"to": someone, "value": 7}, signer=alice)
        assert sent.success and client.seen_block >= sent.verified.receipt.block
        assert lagging.info()["block"] < sent.verified.receipt.block
        # Asked first, the lagging member would answer 0 from its older state: it is passed over.
        client._preferred = lagging.identity.public_key
        answer = token.query("balance_of", [someone], signer=alice)
        assert answer.output == 7 and answer.verified.receipt.worker != lagging.identity.public_key
    finally:
        lagging.chain.start()  # type: ignore[union-attr]
    deadline = time.monotonic() + 60
    while lagging.info()["block"] < client.seen_block:
        assert time.monotonic() < deadline, f"the worker did not catch up: {lagging.info()['chain']}"
        time.sleep(0.1)
    client._preferred = lagging.identity.public_key  # caught up: it answers again
    answer = token.query("balance_of", [someone], signer=alice)
    assert answer.output == 7 and answer.verified.receipt.worker == lagging.identity.public_key
    client.close()


def test_queries_keep_succeeding_when_one_of_three_workers_stops(cluster: Cluster, token_address: bytes,
                                                                 tmp_path: Path) -> None:
    alice = Signer.dev("alice")
    client = cluster.client(tmp_path / "c")
    token = client.contract(token_address, TOKEN)
    before, after = 20, 30  # queries before the stop begins, and after it has finished
    answered: list[bytes] = []
    at_stop: list[int] = []
    errors: list[BaseException] = []
    stopped = threading.Event()

    def run_queries() -> None:
        try:
            while not at_stop or len(answered) < at_stop[0] + after:
                result = token.query("total_supply", signer=alice)
                assert result.output == SUPPLY
                answered.append(result.verified.receipt.worker)
                if stopped.is_set() and not at_stop:
                    at_stop.append(len(answered))
        except BaseException as exc:  # reported below
            errors.append(exc)

    runner = threading.Thread(target=run_queries)
    runner.start()
    deadline = time.monotonic() + 120
    while len(answered) < before and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    victim = client.preferred
    assert victim is not None and runner.is_alive(), errors
    cluster.stop(victim)  # mid-run: the worker the client is using goes away
    stopped.set()
    runner.join(timeout=300)
    assert not errors, errors
    assert at_stop and len(answered) == at_stop[0] + after
    assert victim in answered[:before]  # it served before the stop …
    assert victim not in answered[at_stop[0]:]  # … and none of the queries sent after it
    # Transactions keep working too: the outcome is read from a member that is still up.
    sent = token.transact("transfer", {"to": Signer.dev("bob").public_key, "value": 5}, signer=alice)
    assert sent.success and sent.verified.receipt.worker != victim
    client.close()


class _Overloaded(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"error": {"code": "overloaded", "message": "too many requests in flight"}}'
        self.send_response(503)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_overloaded_member_is_skipped_and_a_revoked_members_receipts_are_refused(
        cluster: Cluster, token_address: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alice = Signer.dev("alice")
    # A fourth member that only ever answers 503: requests go to another member.
    busy = WorkerIdentity.generate()
    cluster.devnet.fund([busy.public_key])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Overloaded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    quote = simulated.encode_quote(simulated.DEFAULT_MEASUREMENT,
                                   worker_report_data(busy.public_key, busy.ecdh_public_key))
    with ChainNode(cluster.devnet.url) as node:
        node.submit([RegisterWorker(cluster.id, busy.public_key, busy.ecdh_public_key, "simulated", quote, b"",
                                    f"http://127.0.0.1:{server.server_port}")], busy)
    client = cluster.client(tmp_path / "c")
    token = client.contract(token_address, TOKEN)
    client._preferred = busy.public_key
    assert token.query("total_supply", signer=alice).output == SUPPLY
    assert client.preferred != busy.public_key
    server.shutdown()
    server.server_close()

    # Revoke a running worker: its receipts — old and new — are refused.
    revoked = next(iter(cluster.running))
    member = client.directory.membership.members[revoked]
    saved = tmp_path / "before.json"
    assert main(["query", "0x" + token.address.hex(), "total_supply", "--url", member.rpc_url, "--dev",
                 "--save", str(saved)]) == 0
    assert main(cluster.cli("verify-receipt", str(saved))) == 0
    from_revoked = client.worker(member).query(token.address, token.metadata.encode_message("total_supply", None),
                                               alice)
    # A client that reads the chain rarely, using the worker about to be revoked.
    stale = cluster.client(tmp_path / "s", directory=ClusterDirectory(
        cluster.devnet.url, cluster.id, since=cluster.since, cache_dir=tmp_path / "s", max_age_s=3600))
    stale._preferred = revoked
    assert token.metadata  # same contract, through the stale client
    stale_token = stale.contract(token.address, TOKEN)
    assert stale_token.query("total_supply", signer=alice).verified.receipt.worker == revoked
    with ChainNode(cluster.devnet.url) as node:
        at = node.submit([RevokeWorker(cluster.id, revoked)], cluster.owner).block_number
    client.refresh()
    with pytest.raises(UntrustedWorker, match=f"revoked by the cluster owner at chain block {at}"):
        client.check_receipt_signer(from_revoked)
    assert revoked not in [m.identity for m in client.directory.live_workers()]
    capsys.readouterr()
    assert main(cluster.cli("verify-receipt", str(saved))) == 1
    assert f"was revoked by the cluster owner at chain block {at}" in capsys.readouterr().err
    # Once the revoked worker has applied the revocation, its receipts name a block the stale
    # client has not read: it reads the chain, refuses the receipt and asks a live member.
    worker = next(w for w in cluster.workers if w.identity.public_key == revoked)
    deadline = time.monotonic() + 90
    while worker.chain.status.last_block < at:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the revoked worker did not apply the revocation block"
        time.sleep(0.1)
    answer = stale_token.query("total_supply", signer=alice)
    assert answer.output == SUPPLY and answer.verified.receipt.worker in set(cluster.running) - {revoked}
    assert stale.preferred != revoked
    stale.close()
    client.close()
