"""Hypothesis fuzzes the request bodies of every POST route over real HTTP: whatever arrives,
the worker answers 4xx with a typed error (never 5xx), and the connection stays usable."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.worker.error_codes import ERROR_CODES
from phat_runtime.worker.service import Worker, WorkerConfig

ROUTES = ["/v1/query", "/v1/tx"]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # The simulated TEE: development only.
    with tempfile.TemporaryDirectory(prefix="phat-fuzz-") as tmp, \
            ServerThread(Worker(WorkerConfig(data_dir=Path(tmp) / "w"))) as url, \
            httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        yield client


def _check(http: httpx.Client, route: str, body: bytes) -> None:
    response = http.post(route, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.json()["error"]["code"] in ERROR_CODES
    assert response.headers.get("connection") != "close"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
hexes = st.binary(max_size=40).map(bytes.hex) | st.text(alphabet="0123456789abcdefxX", max_size=80)
envelopes = st.fixed_dictionaries(
    {},
    optional={"v": st.sampled_from([1, 2, 0, "1", None]), "client_pk": hexes | json_values,
              "nonce": hexes | json_values, "ciphertext": st.text(max_size=80) | json_values},
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=512))
def test_arbitrary_bytes(http: httpx.Client, route: str, body: bytes) -> None:
    _check(http, route, body)


@FUZZ
@given(route=st.sampled_from(ROUTES), doc=envelopes | json_values)
def test_arbitrary_json_shaped_like_an_envelope(http: httpx.Client, route: str, doc: Any) -> None:
    _check(http, route, json.dumps(doc).encode())


@FUZZ
@given(route=st.sampled_from(ROUTES), opener=st.sampled_from(["[", "{\"a\":", "[{\"v\":"]),
       depth=st.integers(min_value=500, max_value=200_000))
def test_deep_nesting(http: httpx.Client, route: str, opener: str, depth: int) -> None:
    _check(http, route, (opener * depth).encode())
