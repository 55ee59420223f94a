"""Query processes of a chain cluster member (``phat worker --chain WS --cluster ID
--query-processes N`` without a development key), on a real chain (chopsticks): they start
before the worker holds any cluster key and answer ``unavailable`` like the main process; they
get the keys when its state opens and every rotated epoch after (a query process reads a value
sealed under the new epoch); one started again later gets the keys in its handover."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phat_runtime.chain import (
    ChainNode,
    CreateCluster,
    Devnet,
    RotateClusterKey,
    cluster_id,
    free_port,
)
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.chain_client import ChainClient
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.tee import simulated
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.query_process import NOT_READY
from phat_runtime.worker.service import ChainConfig, Worker, WorkerConfig
from tests.rpc.test_query_processes import Conn

FLIPPER = Path(__file__).resolve().parents[2] / "contracts_examples" / "flipper" / "flipper.contract"
POLICY = Policy.from_dict({"platforms": ["simulated"],
                           "simulated": {"measurement": [simulated.DEFAULT_MEASUREMENT.hex()]}})


def _wait(condition: Callable[[], bool], what: Callable[[], str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what()}")
        time.sleep(0.1)


def _ask_each(url: str, prepare: Callable[[], Any], indexes: set[str]) -> dict[str, Any]:
    """Send fresh queries on new connections until every query process in ``indexes`` answered
    one: {index: (status, body, prepared)}."""
    answers: dict[str, Any] = {}
    for _ in range(200):
        prepared = prepare()
        conn = Conn(url)
        try:
            status, headers, body = conn.post(prepared.path, prepared.body)
        finally:
            conn.close()
        index = headers.get("x-phat-query-process")
        assert index is not None, "answered by the main process, not a query process"
        answers.setdefault(index, (status, body, prepared))
        if set(answers) >= indexes:
            return answers
    pytest.fail(f"200 connections reached only query processes {sorted(answers)}")


def test_a_members_query_processes_follow_its_keys(devnet: Devnet, tmp_path: Path) -> None:
    owner = alice = Signer.dev("alice")  # the cluster owner deploys and calls too
    salt = os.urandom(8)
    cluster = cluster_id(owner.public_key, salt)
    with ChainNode(devnet.url) as node:
        start = node.finalized_number() + 1
    port = free_port()
    worker = Worker(WorkerConfig(data_dir=tmp_path / "genesis", chain=ChainConfig(
        devnet.url, cluster, start_block=start, checkpoint_every=0, rpc_url=f"http://127.0.0.1:{port}")))
    assert worker.state_keys() == {} and not worker.ready  # a member: no key at start
    devnet.fund([worker.identity.public_key])
    server = ServerThread(worker, port=port, query_processes=2)
    with server as url:
        processes = server.processes
        assert processes is not None
        both = {"0", "1"}
        # 1. No key yet: both query processes refuse a query as the main process would.
        with pytest.raises(RpcError) as refused:
            NOT_READY.reader()
        early = WorkerClient(url, policy=development_policy())
        for status, body, _ in _ask_each(url, lambda: early.prepare_queries(
                bytes(32), b"\x00" * 4, alice, count=1)[0], both).values():
            assert status == 503
            assert json.loads(body) == refused.value.to_json()
        early.close()

        # 2. The cluster is created: the genesis worker's key opens its state, and the query
        #    processes got it (confirmed) before the worker said it is ready.
        with ChainNode(devnet.url) as node:
            node.submit([CreateCluster(salt, POLICY, worker.identity.public_key)], owner)
        _wait(lambda: worker.ready, lambda: f"the genesis worker ready: {worker.info()['chain']}")
        assert all(c is not None and c.keys_held >= 1 for c in processes.children)
        client = WorkerClient(url, policy=development_policy())
        chain_client = ChainClient(devnet.url, cluster, client)
        flipper = chain_client.deploy(FLIPPER, "new", [True], signer=alice, salt=os.urandom(4))
        get = flipper.metadata.encode_message("get")

        def prepare() -> Any:
            return client.prepare_queries(flipper.address, get, alice, count=1)[0]

        def values() -> dict[str, bytes]:
            out = {}
            for index, (status, body, prepared) in _ask_each(url, prepare, both).items():
                assert status == 200, body
                out[index] = prepared.finish(body).outcome.data
            return out

        assert values() == {"0": b"\x00\x01", "1": b"\x00\x01"}

        # 3. Rotation: epoch 1's key reaches every query process; a value written after it is
        #    sealed under epoch 1 (the main store's epoch), and the query processes read it.
        held = [c.keys_held for c in processes.children if c is not None]
        with ChainNode(devnet.url) as node:
            node.submit([RotateClusterKey(cluster)], owner)
        _wait(lambda: worker.info()["cluster_epoch"] == 1, lambda: f"epoch 1: {worker.membership()}")
        keys = worker.state_keys() or {}
        assert sorted(keys) == [0, 1]
        for pid in processes.pids:  # the keys went over the socket pairs, nowhere a process shows
            for name in ("cmdline", "environ"):
                blob = Path(f"/proc/{pid}/{name}").read_bytes()
                assert not any(n in blob for k in keys.values() for n in (k, k.hex().encode()))
        assert [c.keys_held for c in processes.children if c is not None] > held
        rotated = WorkerClient(url, policy=development_policy())  # a client reads the epoch once
        rotated_chain = ChainClient(devnet.url, cluster, rotated)
        assert rotated_chain.contract(flipper.address, FLIPPER).transact("flip", signer=alice).success
        rotated_chain.close()
        rotated.close()
        assert worker.store.epoch == 1  # type: ignore[attr-defined]
        assert values() == {"0": b"\x00\x00", "1": b"\x00\x00"}

        # 4. A query process killed after the rotation is started again with both epochs'
        #    keys in its handover, and reads the post-rotation value at once.
        killed = processes.pids[0]
        os.kill(killed, signal.SIGKILL)
        _wait(lambda: (c := processes.children[0]) is not None and c.proc.pid != killed and c.ready.is_set(),
              lambda: "query process 0 started again")
        assert values()["0"] == b"\x00\x00"
        chain_client.close()
        client.close()
