"""pink's worker_sgx_quote (id 25) serves the worker's real DCAP quote, and None on the
simulated platform (a simulated quote must never look like attestation to a contract)."""

from __future__ import annotations

from pathlib import Path

import wasmtime

from phat_runtime.runtime.execution import BlockContext
from phat_runtime.tee.backends import PlatformConfig
from phat_runtime.testing.tee import FakeGramine
from phat_runtime.types import AccountId, ExecutionMode
from phat_runtime.worker.service import Worker, WorkerConfig

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "attestation"
ALICE = AccountId(b"\xaa" * 32)

# call: chain extension 25 with no input; return its output.
QUOTE_READER = wasmtime.wat2wasm(r"""
(module
  (import "seal0" "seal_return" (func $ret (param i32 i32 i32)))
  (import "seal0" "call_chain_extension" (func $ext (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1))
  (func (export "deploy"))
  (func (export "call")
    (i32.store (i32.const 0) (i32.const 16000))
    (drop (call $ext (i32.const 25) (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 0)))
    (call $ret (i32.const 0) (i32.const 16) (i32.load (i32.const 0)))))
""")


def _quote_seen_by_contract(worker: Worker) -> bytes:
    cluster = worker.cluster
    code = cluster.upload_code(QUOTE_READER, ALICE)
    block = BlockContext(1, 0)
    address = cluster.instantiate(ALICE, code, b"", block=block).contract
    assert address is not None
    result = cluster.call(ALICE, address, b"", mode=ExecutionMode.QUERY, block=block)
    assert result.success, result.error
    return result.data


def test_simulated_worker_reports_no_quote(tmp_path: Path) -> None:
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w"))
    assert _quote_seen_by_contract(worker) == b"\x00"  # Option::None
    worker.stop()


def test_sgx_worker_serves_its_dcap_quote(tmp_path: Path) -> None:
    sample = (SAMPLES / "sgx_quote").read_bytes()
    fake = FakeGramine(tmp_path / "dev-attestation", sample)
    config = PlatformConfig(data_dir=tmp_path / "w", gramine_root=fake.root)
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", platform="gramine-sgx", platform_config=config))
    data = _quote_seen_by_contract(worker)
    # Some(SgxQuote { attestation_type: Dcap (1), quote: Vec<u8> })
    assert data[:2] == b"\x01\x01"
    assert data.endswith(sample)
    worker.stop()
