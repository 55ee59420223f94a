"""End to end through the real server on loopback: attest, deploy, query, transact, verify
receipts, survive a restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.client import (
    VerificationError,
    WorkerClient,
    check_receipt,
    development_policy,
)
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.service import Worker, WorkerConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"

FLIPPER = EXAMPLES / "flipper" / "flipper.contract"
TOKEN = EXAMPLES / "token" / "token.contract"


def test_deploy_query_transact_with_verified_receipts(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    verdict = client.attest()
    assert verdict.ok
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    got = flipper.query("get", signer=alice)
    assert got.output is True
    receipt = got.verified.receipt
    assert receipt.worker == worker.identity.public_key
    assert receipt.contract == flipper.address
    assert receipt.code_hash == flipper.metadata.code_hash
    flip = flipper.transact("flip", signer=alice)
    assert flip.success
    assert flip.verified.receipt.block >= 3  # upload, instantiate, flip: one block each
    assert flip.verified.receipt.state_root != bytes(32)
    assert flipper.query("get", signer=alice).output is False
    info = client.info(refresh=True)
    assert info.block == flip.verified.receipt.block
    assert info.state_root == flip.verified.receipt.state_root


def test_query_with_args_and_caller(served, alice: Signer, bob: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    token = client.deploy(TOKEN, "new", {"total_supply": 1000}, signer=alice)
    sent = token.transact("transfer", {"to": bob.public_key, "value": 40}, signer=alice)
    assert sent.success and [e.label for e in sent.events] == ["Transfer"]
    assert token.query("balance_of", [bob.public_key], signer=bob).output == 40
    refused = token.transact("transfer", [alice.public_key, 10**6], signer=bob)
    assert refused.output == {"Err": "InsufficientBalance"}


def test_tampered_receipt_or_output_fails_verification(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    got = flipper.query("get", signer=alice).verified
    identity = client.info().identity
    check_receipt(got.request, got.outcome, got.receipt, identity)  # the genuine one passes
    with pytest.raises(VerificationError, match="output"):
        check_receipt(got.request, replace(got.outcome, data=b"\x00\x00"), got.receipt, identity)
    with pytest.raises(VerificationError, match="signature"):
        check_receipt(got.request, got.outcome, replace(got.receipt, block=got.receipt.block + 1), identity)
    with pytest.raises(VerificationError, match="another key"):
        check_receipt(got.request, got.outcome, got.receipt, bytes(32))
    other = replace(got.request, nonce=bytes(32))
    with pytest.raises(VerificationError, match="another request"):
        check_receipt(other, got.outcome, got.receipt, identity)


def test_strict_policy_refuses_the_simulated_worker(served) -> None:  # type: ignore[no-untyped-def]
    client = WorkerClient(served[1].url, policy=Policy())
    with pytest.raises(VerificationError, match="platform"):
        client.attest()
    client.close()


def test_state_survives_a_worker_restart(data_dir: Path, alice: Signer) -> None:
    worker = Worker(WorkerConfig(data_dir=data_dir))
    with ServerThread(worker) as url:
        client = WorkerClient(url, policy=development_policy())
        flipper = client.deploy(FLIPPER, "new", [False], signer=alice)
        flipper.transact("flip", signer=alice)
        before = client.info(refresh=True)
        identity = before.identity
        client.close()
    restarted = Worker(WorkerConfig(data_dir=data_dir))
    with ServerThread(restarted) as url:
        client = WorkerClient(url, policy=development_policy())
        after = client.info()
        assert after.identity == identity  # sealed identity reloaded
        assert (after.block, after.state_root) == (before.block, before.state_root)
        again = client.contract(flipper.address, FLIPPER)
        assert again.query("get", signer=alice).output is True
        client.close()
