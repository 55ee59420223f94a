"""Contract info, logs (deployer only), health, metrics and the OpenAPI schema."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from phat_runtime.codec.messages import RequestKind, SignedRequest, encode_logs_query
from phat_runtime.crypto.kdf import contract_key
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.bodies import decode_log_records
from phat_runtime.rpc.client import WorkerError

from .frames import BINARY, error, make_request, post

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
FLIPPER = EXAMPLES / "flipper" / "flipper.contract"


def test_contract_info_serves_metadata_and_public_key(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    info = client.contract_info(flipper.address)
    assert info["code_hash"] == "0x" + (flipper.metadata.code_hash or b"").hex()
    assert info["deployer_hex"] == "0x" + alice.public_key.hex()
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


def _logs_request(client, signer: Signer, address: bytes, **over: Any) -> SignedRequest:  # type: ignore[no-untyped-def]
    return make_request(client, signer, address, encode_logs_query(0, 100), kind=RequestKind.LOGS, **over)


def test_logs_are_one_shot_and_encrypted(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    flipper.query("flip", signer=alice, value=1)  # leaves "unpayable" in the logs
    request = _logs_request(client, alice, flipper.address)
    prepared = client.prepare(request)
    answer = client.http.post(prepared.path, content=prepared.body, headers=BINARY)
    assert answer.status_code == 200
    assert b"unpayable" not in answer.content and b"debug" not in answer.content  # only ciphertext travels
    records = decode_log_records(prepared.open(answer.content))
    assert any("unpayable" in r["message"] for r in records)
    # The same signed request again, freshly sealed: refused, it was used.
    status, code, message = error(post(client, request, "/v2/logs"))
    assert (status, code) == (409, "replayed_nonce") and "fresh" in message
    # The old plaintext endpoint is gone.
    assert client.http.get(f"/v1/contracts/0x{flipper.address.hex()}/logs").status_code == 404


def test_logs_refuse_expired_forged_and_foreign_requests(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    stale = _logs_request(client, alice, flipper.address, deadline_ms=int(time.time() * 1000) - 1)
    assert error(post(client, stale, "/v2/logs"))[:2] == (400, "expired")
    forged = replace(_logs_request(client, alice, flipper.address), signature=bytes(64))
    assert error(post(client, forged, "/v2/logs"))[:2] == (401, "bad_signature")
    elsewhere = _logs_request(client, alice, flipper.address, worker=b"\x05" * 32)
    assert error(post(client, elsewhere, "/v2/logs"))[:2] == (400, "wrong_worker")
    garbled = make_request(client, alice, flipper.address, b"\x01", kind=RequestKind.LOGS)
    assert error(post(client, garbled, "/v2/logs"))[:2] == (400, "bad_request")
    nowhere = _logs_request(client, alice, b"\x09" * 32)
    assert error(post(client, nowhere, "/v2/logs"))[:2] == (404, "unknown_contract")


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
    assert {"/v1/info", "/v2/session", "/v2/query", "/v2/tx", "/v2/logs", "/health", "/metrics"} <= set(schema["paths"])
    query = schema["paths"]["/v2/query"]["post"]
    assert set(query["requestBody"]["content"]) == {"application/octet-stream"}
    assert set(query["responses"]["200"]["content"]) == {"application/octet-stream"}
    assert query["responses"]["409"]["content"]["application/json"]  # errors stay JSON
    assert "phat_rpc_sessions 1.0" in metrics
    assert client.http.get("/docs").status_code == 200
