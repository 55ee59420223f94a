"""Every way a request can be wrong gets a typed error that says what to do; nothing crashes."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import wasmtime

from phat_runtime.codec.messages import RequestKind, SignedRequest
from phat_runtime.crypto.e2e import new_x25519, shared_key
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.bodies import RequestEnvelope
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.worker.service import Worker, WorkerConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
TOKEN = EXAMPLES / "token" / "token.contract"


def make_request(client: WorkerClient, signer: Signer, contract: bytes, payload: bytes, **over: Any) -> SignedRequest:
    info = client.info()
    req = SignedRequest(RequestKind.QUERY, info.identity, contract, bytes(32), payload, b"", 0, 0,
                        os.urandom(32), int((time.time() + 60) * 1000), signer.scheme, signer.public_key)
    return replace(req, **over).signed_by(signer) if over.get("signature") is None else replace(req, **over)


def post(client: WorkerClient, request: SignedRequest | bytes, path: str = "/v1/query") -> httpx.Response:
    info = client.info()
    sk, pk = new_x25519()
    key = shared_key(sk, info.ecdh, pk, info.ecdh)
    plaintext = request if isinstance(request, bytes) else request.encode()
    return client.http.post(path, json=RequestEnvelope.make(key, pk, plaintext).to_json())


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


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


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x00\xff garbage", "malformed_body"),
        (b"[]", "malformed_body"),
        (b'{"v": 1, "client_pk": "zz", "nonce": "00", "ciphertext": ""}', "malformed_body"),
        (b'{"v": 1, "client_pk": "' + b"11" * 32 + b'", "nonce": "' + b"00" * 12 + b'", "ciphertext": "AAAA"}', "bad_envelope"),
        # A low-order X25519 key (all zeros): the shared secret would be zero.
        (b'{"v": 1, "client_pk": "' + b"00" * 32 + b'", "nonce": "' + b"00" * 12 + b'", "ciphertext": "AAAA"}', "bad_envelope"),
        (b"[" * 100_000, "malformed_body"),  # nesting deeper than any parser's recursion
        (b'{"v":' * 50_000, "malformed_body"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/query", "/v1/tx"])
def test_garbage_bodies(served, body: bytes, code: str, path: str) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    # Raw HTTP/1.1 on one kept-alive connection: the refusal is a 400 and the connection stays
    # usable (an unhandled error would answer 500 and reset it).
    answers = exchange(client.url, [
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode() + body,
        b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n",
    ])
    (status, answer), (health_status, _) = answers
    assert status == 400 and json.loads(answer)["error"]["code"] == code, answer[:200]
    assert health_status == 200  # same connection, still served


def exchange(url: str, requests: list[bytes]) -> list[tuple[int, bytes]]:
    """Send each raw request on one TCP connection, in turn; (status, body) of each answer."""
    host, port = url.removeprefix("http://").split(":")
    answers = []
    with socket.create_connection((host, int(port)), timeout=30) as sock, sock.makefile("rb") as reader:
        for raw in requests:
            sock.sendall(raw)
            status = int(reader.readline().split()[1])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            answers.append((status, reader.read(length)))
    return answers


def test_decrypted_garbage_is_bad_request(served) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    assert error(post(client, b"\x01\x02\x03"))[:2] == (400, "bad_request")


def test_body_too_large(served) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    response = client.http.post("/v1/query", content=b"x" * (2 * 1024 * 1024),
                                headers={"content-type": "application/json"})
    assert error(response)[:2] == (413, "body_too_large")


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
