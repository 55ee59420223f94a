"""Hypothesis fuzzes the bodies of every encrypted route over real HTTP: whatever arrives —
random bytes, frames of random sessions, bit-flipped frames, random plaintexts sealed in a
genuine session, mutated signed requests — the worker answers 4xx with a typed error (never
5xx) on a connection that stays open."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phat_runtime.codec.messages import RequestKind, SignedRequest
from phat_runtime.crypto.signer import Scheme, Signer
from phat_runtime.rpc import bodies
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.worker.error_codes import ERROR_CODES
from phat_runtime.worker.service import Worker, WorkerConfig

ROUTES = ["/v2/query", "/v2/tx", "/v2/logs"]
ALL_ROUTES = [*ROUTES, "/v2/session"]


@pytest.fixture(scope="module")
def client() -> Iterator[WorkerClient]:
    # The simulated TEE: development only.
    with tempfile.TemporaryDirectory(prefix="phat-fuzz-") as tmp, \
            ServerThread(Worker(WorkerConfig(data_dir=Path(tmp) / "w"))) as url:
        worker_client = WorkerClient(url, policy=development_policy())
        yield worker_client
        worker_client.close()


def _check(http: httpx.Client, route: str, body: bytes, content_type: str = bodies.CONTENT_TYPE) -> None:
    response = http.post(route, content=body, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500, (route, response.status_code, response.text[:300])
    assert response.json()["error"]["code"] in ERROR_CODES
    assert response.headers.get("connection") != "close"


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(route=st.sampled_from(ALL_ROUTES), body=st.binary(max_size=400), v2=st.booleans())
def test_arbitrary_bytes(client: WorkerClient, route: str, body: bytes, v2: bool) -> None:
    _check(client.http, route, (b"\x02" if v2 else b"") + body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(route=st.sampled_from(ALL_ROUTES), doc=json_values)
def test_json_documents(client: WorkerClient, route: str, doc: Any) -> None:
    _check(client.http, route, json.dumps(doc).encode(), "application/json")


@FUZZ
@given(route=st.sampled_from(ALL_ROUTES), opener=st.sampled_from(["[", "{\"a\":", "\x02["]),
       depth=st.integers(min_value=500, max_value=200_000))
def test_deep_nesting(client: WorkerClient, route: str, opener: str, depth: int) -> None:
    _check(client.http, route, (opener * depth).encode())


@FUZZ
@given(route=st.sampled_from(ROUTES), session_id=st.binary(min_size=16, max_size=16),
       counter=st.integers(min_value=0, max_value=2**64 - 1), rest=st.binary(max_size=200),
       genuine_session=st.booleans())
def test_frames_of_random_sessions_and_counters(client: WorkerClient, route: str, session_id: bytes,
                                               counter: int, rest: bytes, genuine_session: bool) -> None:
    sid = client.session().id if genuine_session else session_id
    _check(client.http, route, b"\x02" + sid + counter.to_bytes(8, "little") + rest)


@FUZZ
@given(route=st.sampled_from(ROUTES), plaintext=st.binary(max_size=300))
def test_random_plaintexts_in_a_genuine_session(client: WorkerClient, route: str, plaintext: bytes) -> None:
    session = client.session()
    frame = bodies.seal_request(session.keys, session.id, session.next_counter(),
                                bodies.Route[route.rsplit("/", 1)[1].upper()], plaintext)
    _check(client.http, route, frame)


@FUZZ
@given(route=st.sampled_from(ROUTES), flip=st.integers(min_value=0, max_value=10_000), bit=st.integers(0, 7))
def test_bit_flipped_frames(client: WorkerClient, route: str, flip: int, bit: int) -> None:
    prepared = client.prepare(_request(client, RequestKind.QUERY, b"\x2f\x86\x5b\xd9"))
    body = bytearray(prepared.body)
    body[flip % len(body)] ^= 1 << bit
    _check(client.http, route, bytes(body))


@FUZZ
@given(kind=st.sampled_from(list(RequestKind)), contract=st.binary(min_size=32, max_size=32),
       payload=st.binary(max_size=64), value=st.integers(0, 2**128 - 1), gas=st.integers(0, 2**64 - 1),
       deadline_s=st.sampled_from([60, 60, 60, 300, -1, 10**6]), scheme=st.sampled_from(list(Scheme)), forge=st.sampled_from([False, False, True]))
def test_mutated_signed_requests(client: WorkerClient, kind: RequestKind, contract: bytes, payload: bytes,
                                 value: int, gas: int, deadline_s: int, scheme: Scheme, forge: bool) -> None:
    signer = Signer.dev("alice") if scheme is Scheme.SR25519 else Signer.ed25519_from_seed(bytes(32))
    deadline = max(0, int((time.time() + deadline_s) * 1000))
    request = SignedRequest(kind, client.info().identity, contract, bytes(32), payload, b"", value, gas,
                            os.urandom(32), deadline, signer.scheme, signer.public_key).signed_by(signer)
    if forge:
        request = SignedRequest(**{**request.__dict__, "signature": os.urandom(64)})
    route = "/v2/tx" if kind.is_transaction else "/v2/logs" if kind is RequestKind.LOGS else "/v2/query"
    prepared = client.prepare(request)
    response = client.http.post(route, content=prepared.body, headers={"content-type": bodies.CONTENT_TYPE})
    # Transactions may be applied (200: an error outcome in a receipt); anything else is 4xx.
    assert response.status_code < 500, (kind, response.status_code, response.text[:300])


def _request(client: WorkerClient, kind: RequestKind, payload: bytes) -> SignedRequest:
    return client.sign(kind, Signer.dev("alice"), contract=bytes(32), payload=payload)
