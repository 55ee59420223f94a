"""Every way a request can be wrong gets a typed error that says what to do; nothing crashes."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from phat_runtime.codec.messages import RequestKind
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.bodies import Route
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.worker.service import Worker, WorkerConfig

from .frames import HEALTH, error, exchange, http_post, make_request, post, post_raw, seal

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
TOKEN = EXAMPLES / "token" / "token.contract"


@pytest.fixture()
def token(served, alice: Signer):  # type: ignore[no-untyped-def]
    _, client = served
    return client.deploy(TOKEN, "new", {"total_supply": 100}, signer=alice)


def test_bad_signature(served, alice: Signer, token) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    req = make_request(client, alice, token.address, token.metadata.encode_message("total_supply"))
    forged = replace(req, signature=bytes(64))
    assert error(post(client, forged))[:2] == (401, "bad_signature")
    other = replace(req, value=5)  # signed fields changed after signing
    assert error(post(client, other))[:2] == (401, "bad_signature")


def test_replayed_nonce(served, alice: Signer, token) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    req = make_request(client, alice, token.address, token.metadata.encode_message("total_supply"))
    assert post(client, req).status_code == 200
    status, code, message = error(post(client, req))
    assert (status, code) == (409, "replayed_nonce") and "fresh" in message


def test_expired_and_far_deadlines(served, alice: Signer, token) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    payload = token.metadata.encode_message("total_supply")
    past = make_request(client, alice, token.address, payload, deadline_ms=int(time.time() * 1000) - 1)
    assert error(post(client, past))[:2] == (400, "expired")
    far = make_request(client, alice, token.address, payload, deadline_ms=int(time.time() * 1000) + 10**9)
    assert error(post(client, far))[:2] == (400, "expired")


def test_unknown_contract(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    assert error(post(client, make_request(client, alice, b"\x07" * 32, b"\x00" * 4)))[:2] == (404, "unknown_contract")


def test_undecodable_args_name_the_argument(served, alice: Signer, token) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    spec = token.metadata.message("transfer")
    truncated = spec.selector + b"\x01" * 10  # `to` needs 32 bytes
    status, code, message = error(post(client, make_request(client, alice, token.address, truncated)))
    assert (status, code) == (400, "bad_args")
    assert "transfer" in message and "to" in message
    unknown = b"\xde\xad\xbe\xef"
    status, code, message = error(post(client, make_request(client, alice, token.address, unknown)))
    assert code == "bad_args" and "balance_of" in message  # lists the messages there are


def test_wrong_worker_and_wrong_kind(served, alice: Signer, token) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    payload = token.metadata.encode_message("total_supply")
    assert error(post(client, make_request(client, alice, token.address, payload, worker=b"\x01" * 32)))[1] == "wrong_worker"
    tx = make_request(client, alice, token.address, payload, kind=RequestKind.CALL)
    assert error(post(client, tx))[1] == "wrong_kind"
    query = make_request(client, alice, token.address, payload)
    for path in ("/v2/tx", "/v2/logs"):
        status, code, message = error(post(client, query, path))
        assert (status, code) == (400, "wrong_kind") and "/v2/query" in message
    logs = make_request(client, alice, token.address, bytes(12), kind=RequestKind.LOGS)
    for path in ("/v2/query", "/v2/tx"):
        assert error(post(client, logs, path))[:2] == (400, "wrong_kind")


def test_a_frame_opens_only_at_its_own_route(served, alice: Signer, token) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    query = make_request(client, alice, token.address, token.metadata.encode_message("total_supply"))
    sealed_for_tx = seal(client, query, route=Route.TX)
    status, code, _ = error(post_raw(client, sealed_for_tx, "/v2/query"))
    assert (status, code) == (400, "bad_envelope")
    assert post(client, query).status_code == 200  # the request itself was not used


V1_ENVELOPE = b'{"v": 1, "client_pk": "' + b"11" * 32 + b'", "nonce": "' + b"00" * 12 + b'", "ciphertext": "AAAA"}'


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"\x00\xff garbage", 400, "malformed_body"),
        (b"", 400, "malformed_body"),
        (V1_ENVELOPE, 400, "malformed_body"),  # the JSON envelope of wire format v1
        (b"\x02" + b"\x01" * 30, 400, "malformed_body"),  # too short for a frame
        (b"\x02" + b"\x01" * 16 + bytes(8) + b"\x00" * 40, 400, "malformed_body"),  # counter 0
        (b"\x02" + b"\x01" * 16 + (1).to_bytes(8, "little") + b"\x00" * 40, 401, "unknown_session"),
        (b"[" * 100_000, 400, "malformed_body"),  # nesting deeper than any parser's recursion
        (b'{"v":' * 50_000, 400, "malformed_body"),
    ],
)
@pytest.mark.parametrize("path", ["/v2/query", "/v2/tx", "/v2/logs"])
def test_garbage_bodies(served, body: bytes, status: int, code: str, path: str) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    # Raw HTTP/1.1 on one kept-alive connection: the refusal is a 4xx and the connection stays
    # usable (an unhandled error would answer 500 and reset it).
    (got, answer), (health_status, _) = exchange(client.url, [http_post(path, body), HEALTH])
    assert (got, json.loads(answer)["error"]["code"]) == (status, code), answer[:200]
    assert health_status == 200  # same connection, still served


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x02" + bytes(32), "bad_envelope"),  # a low-order X25519 key: the shared secret would be zero
        (b"\x02" + bytes(31), "malformed_body"),
        (b"\x01" + bytes(range(32)), "malformed_body"),
        (b"[" * 100_000, "malformed_body"),
    ],
)
def test_garbage_handshakes(served, body: bytes, code: str) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    (got, answer), (health_status, _) = exchange(client.url, [http_post("/v2/session", body), HEALTH])
    assert (got, json.loads(answer)["error"]["code"]) == (400, code), answer[:200]
    assert health_status == 200


def test_decrypted_garbage_is_bad_request(served) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    assert error(post(client, b"\x01\x02\x03"))[:2] == (400, "bad_request")


def test_body_too_large(served) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    assert error(post_raw(client, b"x" * (2 * 1024 * 1024)))[:2] == (413, "body_too_large")
    assert error(post_raw(client, b"x" * (9 * 1024 * 1024), "/v2/tx"))[:2] == (413, "body_too_large")


SLOW = wasmtime.wat2wasm(r"""
(module (import "env" "memory" (memory 1 1)) (func (export "deploy")) (func (export "call") (loop $l (br $l))))
""")


def test_query_pool_full(tmp_path: Path, alice: Signer) -> None:
    # One query slot and no backlog: while a slow query runs, others are refused at once.
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", max_in_flight=1, backlog=0, query_wall_clock_ms=1500))
    with ServerThread(worker) as url:
        client = WorkerClient(url, policy=development_policy())
        code_hash = client.upload(SLOW, alice).outcome.code_hash
        assert code_hash is not None
        slow = client.instantiate(code_hash, b"", alice).outcome.contract
        assert slow is not None
        results: list[Any] = []

        def run() -> None:
            try:
                results.append(client.query(slow, b"", alice).outcome.error_kind)
            except Exception as exc:
                results.append(getattr(exc, "code", repr(exc)))

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
            time.sleep(0.1)
        for t in threads:
            t.join(timeout=30)
        # The slow query ends by wall clock or gas, whichever comes first on this machine.
        assert sorted(map(str, results))[1:] == ["pool_full", "pool_full"]
        assert sorted(map(str, results))[0] in ("Timeout", "OutOfGas")
        client.close()
