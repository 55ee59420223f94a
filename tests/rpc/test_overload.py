"""Overload and admission: the event loop never blocks, a refused query keeps its nonce, the
transaction queue is bounded, and other routes keep answering while it is full."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import wasmtime

from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.client import WorkerClient, WorkerError, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.rpc.server import RpcLimits
from phat_runtime.worker.service import Worker, WorkerConfig

from .frames import error, make_request, post

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
FLIPPER = EXAMPLES / "flipper" / "flipper.contract"
LOOP = wasmtime.wat2wasm(r"""
(module (import "env" "memory" (memory 1 1)) (func (export "deploy")) (func (export "call") (loop $l (br $l))))
""")


def _background(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _loop_contract(client: WorkerClient, signer: Signer) -> bytes:
    code_hash = client.upload(LOOP, signer).outcome.code_hash
    assert code_hash is not None
    address = client.instantiate(code_hash, b"", signer).outcome.contract
    assert address is not None
    return address


def test_health_answers_while_the_worker_is_saturated(tmp_path: Path, alice: Signer) -> None:
    # Two loop queries run and two wait (the pool is full), a transaction waits for its block to
    # commit, and a logs request waits for the state: /health must still answer at once.
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", max_in_flight=2, backlog=2, query_wall_clock_ms=2000))
    with ServerThread(worker) as url:
        client = WorkerClient(url, policy=development_policy())
        loop = _loop_contract(client, alice)
        flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
        busy = [_background(lambda: client.query(loop, b"", alice)) for _ in range(4)]
        _wait_for(lambda: worker.pool.admitted == 4, "four loop queries in the pool")
        tx = _background(lambda: flipper.transact("flip", signer=alice))
        time.sleep(0.3)  # the block is applied and waits to commit
        logs = _background(lambda: client.logs(flipper.address, alice))
        time.sleep(0.3)
        probes = []
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as probe:
            for _ in range(8):
                start = time.perf_counter()
                assert probe.get("/health").json()["ok"] is True
                probes.append(time.perf_counter() - start)
                time.sleep(0.05)
        # Typically ~3 ms each. A /health queued behind the pool, the block commit or the state
        # lock would wait for a loop query's 2 s wall clock; one slow probe on a loaded machine
        # (a scheduler hiccup of a few hundred ms) is not that.
        took = sorted(probes)
        assert took[len(took) // 2] < 0.1, f"/health took {took[len(took) // 2] * 1000:.0f} ms (median) while busy"
        assert took[-1] < 1.0, f"/health took {took[-1] * 1000:.0f} ms while the worker was busy"
        assert worker.pool.admitted == 4, "the probes must run while the worker is saturated"
        for thread, _ in [*busy, tx, logs]:
            thread.join(timeout=60)
        assert tx[1] and tx[1][0].success, tx[1]
        assert isinstance(logs[1][0], list), logs[1]
        client.close()


def test_pool_full_leaves_the_nonce_unused(tmp_path: Path, alice: Signer) -> None:
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", max_in_flight=1, backlog=0, query_wall_clock_ms=1500))
    with ServerThread(worker) as url:
        client = WorkerClient(url, policy=development_policy())
        loop = _loop_contract(client, alice)
        flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
        request = make_request(client, alice, flipper.address, flipper.metadata.encode_message("get"))
        busy = _background(lambda: client.query(loop, b"", alice))
        _wait_for(lambda: worker.pool.admitted == 1, "the loop query to hold the only slot")
        status, code, message = error(post(client, request))
        assert (status, code) == (503, "pool_full") and "retry" in message
        busy[0].join(timeout=30)
        retried = post(client, request)  # the very same signed request, as the message suggests
        assert retried.status_code == 200, retried.text
        assert error(post(client, request))[:2] == (409, "replayed_nonce")  # now it is used
        client.close()


def test_tx_queue_is_bounded_and_other_routes_keep_answering(tmp_path: Path, alice: Signer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w"))
    with ServerThread(worker, limits=RpcLimits(tx_queue=2)) as url:
        client = WorkerClient(url, policy=development_policy())
        flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
        # Hold the block producer so submitted transactions stay queued.
        gate = threading.Event()
        apply_block = worker.pipeline.apply_block

        def held(*args: Any, **kw: Any) -> Any:
            gate.wait(60)
            return apply_block(*args, **kw)

        monkeypatch.setattr(worker.pipeline, "apply_block", held)
        waiting = [_background(lambda: flipper.transact("flip", signer=alice)) for _ in range(2)]
        _wait_for(lambda: "phat_transactions_waiting 2.0" in client.http.get("/metrics").text,
                  "two transactions in the queue")
        with pytest.raises(WorkerError) as refused:
            flipper.transact("flip", signer=alice)
        assert (refused.value.status, refused.value.code) == (503, "tx_queue_full")
        # Reads and queries keep answering while the queue is full.
        assert client.contract_info(flipper.address)["deployer_hex"] == "0x" + alice.public_key.hex()
        assert flipper.query("get", signer=alice).output is True
        gate.set()
        for thread, result in waiting:
            thread.join(timeout=60)
            assert result and result[0].success, result
        assert flipper.query("get", signer=alice).output is True  # flipped twice
        client.close()
