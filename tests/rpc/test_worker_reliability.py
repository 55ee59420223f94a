"""The worker under contention and misuse: one owner per data dir, queries that never wait for
a block, replays refused before they make a block, gas caps, standalone quotas, block budgets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import wasmtime

from phat_runtime.codec.messages import RequestKind
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import DataDirLocked
from phat_runtime.rpc.client import WorkerClient, WorkerError, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.state import MemoryBlockStore
from phat_runtime.types import AccountId
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.limits import BlockLimits
from phat_runtime.worker.pipeline import Outcome, Refusal, Transaction, encode_upload
from phat_runtime.worker.service import Worker, WorkerConfig

from .conftest import EXAMPLES
from .test_overload import _background, _loop_contract, _wait_for

FLIPPER = EXAMPLES / "flipper" / "flipper.contract"
ROOT = Path(__file__).resolve().parents[2]


def test_a_second_worker_on_the_same_data_dir_is_refused_naming_the_pid(tmp_path: Path) -> None:
    first = Worker(WorkerConfig(data_dir=tmp_path / "w"))
    try:
        with pytest.raises(DataDirLocked) as refused:
            Worker(WorkerConfig(data_dir=tmp_path / "w"))
        assert refused.value.pid == os.getpid() and str(os.getpid()) in str(refused.value)
        # Another process is refused the same way, and told what to do.
        code = ("import sys; from pathlib import Path; from phat_runtime.worker.service import Worker, "
                "WorkerConfig\ntry:\n Worker(WorkerConfig(data_dir=Path(sys.argv[1])))\n"
                "except Exception as e:\n print(type(e).__name__, e); sys.exit(3)")
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "w")], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout.startswith("DataDirLocked") and f"process {os.getpid()}" in proc.stdout
        assert "--data-dir" in proc.stdout
    finally:
        first.stop()
    # Released on stop: the dir opens again.
    Worker(WorkerConfig(data_dir=tmp_path / "w")).stop()


def test_the_data_dir_and_lock_are_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        worker = Worker(WorkerConfig(data_dir=tmp_path / "w"))
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE((tmp_path / "w").stat().st_mode) == 0o700
        for path in (tmp_path / "w").iterdir():
            if path.is_file():
                assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        worker.stop()


def test_a_query_never_waits_for_a_block_that_waits_for_a_long_query(tmp_path: Path, alice: Signer) -> None:
    """A loop query holds a committed view; a flip commits its block meanwhile; a new ``get``
    sees the flipped value — all while the loop still runs (the old RW lock froze the get)."""
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", query_wall_clock_ms=60_000))
    with ServerThread(worker) as url:
        client = WorkerClient(url, policy=development_policy())
        flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
        loop = _loop_contract(client, alice)
        busy = _background(lambda: client.query(loop, b"", alice))
        _wait_for(lambda: worker.pool.admitted == 1, "the loop query to run")
        flipped = flipper.transact("flip", signer=alice)  # commits while the loop query reads
        assert flipped.verified.receipt.block > 0
        assert flipper.query("get", signer=alice).output is False
        assert busy[0].is_alive(), "the loop query should still be running"
        client.close()
    busy[0].join(timeout=90)


def test_a_replayed_transaction_is_refused_with_409_and_makes_no_block(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    request = client.sign(RequestKind.CALL, alice, contract=flipper.address,
                          payload=flipper.metadata.encode_message("flip"))
    first = worker.submit(request)
    height = worker.pipeline.height
    for _ in range(3):
        with pytest.raises(RpcError) as refused:
            worker.submit(request)
        assert (refused.value.status, refused.value.code) == (409, "replayed_nonce")
    assert worker.pipeline.height == height == first[1].block


def test_a_replay_racing_its_original_is_refused_once_in_flight(tmp_path: Path, alice: Signer) -> None:
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w"))
    worker.start()
    try:
        gate = threading.Event()
        apply_block = worker.pipeline.apply_block

        def held(*args, **kw):  # type: ignore[no-untyped-def]
            gate.wait(60)
            return apply_block(*args, **kw)

        worker.pipeline.apply_block = held  # type: ignore[method-assign]
        wasm = wasmtime.wat2wasm('(module (import "env" "memory" (memory 1 1)) (func (export "deploy")) (func (export "call")))')
        from phat_runtime.codec.messages import SignedRequest
        from phat_runtime.crypto.signer import Scheme

        request = SignedRequest(RequestKind.UPLOAD, worker.identity.public_key, bytes(32), bytes(32),
                                encode_upload(bytes(wasm)), b"", 0, 0, os.urandom(32),
                                int(__import__("time").time() * 1000) + 60_000, Scheme.SR25519,
                                alice.public_key).signed_by(alice)
        original = _background(lambda: worker.submit(request))
        _wait_for(lambda: worker.source.pending >= 0 and bool(worker.source._inflight), "the original in flight")
        with pytest.raises(RpcError) as refused:
            worker.submit(request)
        assert refused.value.code == "replayed_nonce"
        gate.set()
        original[0].join(timeout=60)
        assert original[1] and original[1][0][0].error_kind is None
    finally:
        worker.stop()


def test_a_gas_limit_over_the_cap_is_refused_before_it_runs(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    height = worker.pipeline.height
    cap = worker.config.limits.max_tx_gas
    with pytest.raises(WorkerError) as refused:
        flipper.transact("flip", signer=alice, gas_limit=cap + 1)
    assert (refused.value.status, refused.value.code) == (400, "gas_limit_too_high")
    assert str(cap) in str(refused.value)
    assert worker.pipeline.height == height
    assert client.info().raw["limits"]["max_tx_gas"] == cap


def _tx(origin: Signer, kind: RequestKind, payload: bytes, **kw: object) -> Transaction:
    return Transaction(origin=AccountId(origin.public_key), kind=kind, payload=payload,
                       nonce=os.urandom(32), deadline_ms=2**63, **kw)  # type: ignore[arg-type]


#: A flipper instantiation adds 200 bytes: its contract record (33 + 97) and its value (69 + 1).
INSTANCE_BYTES = 200


@pytest.mark.parametrize(("quota", "expected"), [
    (2 * INSTANCE_BYTES, [None, None, "quota_exceeded", "quota_exceeded"]),  # used up: refused up front
    (INSTANCE_BYTES + 50, [None, "StorageQuotaExceeded", "StorageQuotaExceeded", "StorageQuotaExceeded"]),
])
def test_standalone_quotas_refuse_uploads_and_storage_over_the_limit(
        tmp_path: Path, alice: Signer, bob: Signer, quota: int, expected: list[str | None]) -> None:
    flipper = ContractMetadata.load(FLIPPER)
    assert flipper.wasm is not None
    size = len(encode_upload(flipper.wasm))
    limits = BlockLimits(code_quota_bytes=size + 10, storage_quota_bytes=quota)
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", store=MemoryBlockStore(), limits=limits))
    try:
        pipeline = worker.pipeline

        def block(*txs: Transaction) -> list[Outcome | Refusal]:
            n = pipeline.height + 1
            return pipeline.apply_block(list(txs), number=n, block_hash=n.to_bytes(32, "big"),
                                        timestamp_ms=1_000).results

        upload = encode_upload(flipper.wasm)
        first, second = block(_tx(alice, RequestKind.UPLOAD, upload), _tx(alice, RequestKind.UPLOAD, upload))
        assert isinstance(first, Outcome) and first.error_kind is None
        assert isinstance(second, Refusal) and second.code == "quota_exceeded" and "code quota" in second.message
        [other] = block(_tx(bob, RequestKind.UPLOAD, upload))  # quotas are per origin
        assert isinstance(other, Outcome) and other.error_kind is None
        code_hash = first.code_hash
        assert code_hash is not None
        results = block(*(_tx(alice, RequestKind.INSTANTIATE, flipper.encode_constructor("new", [True]),
                              code_hash=code_hash, salt=bytes([i])) for i in range(4)))
        assert [r.error_kind if isinstance(r, Outcome) else r.code for r in results] == expected
        for result in results:
            if isinstance(result, Outcome) and result.error_kind == "StorageQuotaExceeded":
                assert result.contract is not None  # its writes were dropped: no contract
                assert worker.cluster.records.contract(result.contract) is None
    finally:
        worker.stop()


def test_the_standalone_block_budget_defers_the_rest_to_the_next_block(tmp_path: Path, alice: Signer) -> None:
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", store=MemoryBlockStore(),
                                 limits=BlockLimits(max_block_gas=BlockLimits().max_tx_gas)))
    try:
        wasm = encode_upload(bytes(wasmtime.wat2wasm(
            '(module (import "env" "memory" (memory 1 1)) (func (export "deploy")) (func (export "call")))')))
        n = worker.pipeline.height + 1
        result = worker.pipeline.apply_block(
            [_tx(alice, RequestKind.UPLOAD, wasm), _tx(alice, RequestKind.UPLOAD, wasm)],
            number=n, block_hash=n.to_bytes(32, "big"), timestamp_ms=1_000, always_commit=False,
            deadline=float("inf"))
        # The first upload used no gas, so the second (limit = the cap = the block's gas) still fits.
        assert len(result.results) == 2
        n += 1
        tight = worker.pipeline.apply_block(
            [_tx(alice, RequestKind.UPLOAD, wasm, gas_limit=10**12), _tx(alice, RequestKind.UPLOAD, wasm)],
            number=n, block_hash=n.to_bytes(32, "big"), timestamp_ms=1_000, always_commit=False,
            deadline=0.0)  # the budget is spent at once: one transaction runs, the rest waits
        assert len(tight.results) == 1 and tight.checkpoint is not None
    finally:
        worker.stop()
