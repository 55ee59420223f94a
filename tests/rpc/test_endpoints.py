"""Contract info, logs (deployer only), health, metrics and the OpenAPI schema."""

from __future__ import annotations

import time
from pathlib import Path

from phat_runtime.crypto.kdf import contract_key
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.client import WorkerError

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
FLIPPER = EXAMPLES / "flipper" / "flipper.contract"


def test_contract_info_serves_metadata_and_public_key(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    info = client.contract_info(flipper.address)
    assert info["code_hash"] == "0x" + (flipper.metadata.code_hash or b"").hex()
    assert info["deployer"] == "0x" + alice.public_key.hex()
    assert info["metadata"]["contract"]["name"] == "flipper"
    assert "wasm" not in info["metadata"]["source"]  # metadata only, the code is not re-served
    expected, _ = contract_key(worker.cluster.services.cluster_secret, flipper.address)
    assert info["public_key"] == "0x" + expected.hex()
    assert "secret" not in str(info).lower()


def test_logs_only_for_the_deployer(served, alice: Signer, bob: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    # A paid call to a non-payable message traps and leaves a debug message in the logs.
    flipper.query("flip", signer=alice, value=1)  # queries mint the value they send (pink)
    records = client.logs(flipper.address, alice)
    assert any("unpayable" in r["message"] for r in records), records
    assert all(r["level"] == "debug" for r in records)
    try:
        client.logs(flipper.address, bob)
    except WorkerError as exc:
        assert exc.code == "forbidden"
    else:
        raise AssertionError("a non-deployer read the logs")


def test_logs_refuse_stale_and_forged_requests(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    stale = int(time.time() * 1000) - 10 * 60 * 1000
    sig = alice.sign(b"phat_runtime/logs/v1" + flipper.address + stale.to_bytes(8, "little"))
    params = {"origin": alice.public_key.hex(), "timestamp": stale, "signature": sig.hex()}
    response = client.http.get(f"/v1/contracts/0x{flipper.address.hex()}/logs", params=params)
    assert response.json()["error"]["code"] == "expired"
    params["timestamp"] = int(time.time() * 1000)
    response = client.http.get(f"/v1/contracts/0x{flipper.address.hex()}/logs", params=params)
    assert response.json()["error"]["code"] == "bad_signature"


def test_health_metrics_and_openapi(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    flipper.query("get", signer=alice)
    assert client.http.get("/health").json()["ok"] is True
    metrics = client.http.get("/metrics").text
    assert 'phat_queries_total{result="ok"} 1.0' in metrics
    assert 'phat_transactions_total{result="ok"} 2.0' in metrics
    assert "phat_block_height 2.0" in metrics
    schema = client.http.get("/openapi.json").json()
    assert {"/v1/info", "/v1/query", "/v1/tx", "/health", "/metrics"} <= set(schema["paths"])
    assert client.http.get("/docs").status_code == 200
