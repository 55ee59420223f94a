"""ids 1 and 22 outside queries (HOST-ABI §3.2, ARCHITECTURE decision 8): the deterministic
backend answers without touching the network, whatever egress the cluster has."""

from __future__ import annotations

import pytest

from phat_runtime.errors import ChainExtensionError
from phat_runtime.pink import http
from phat_runtime.pink.structs import HttpRequest, HttpRequestError, HttpResponse
from phat_runtime.pink.table import build_registries
from phat_runtime.testing.mock_egress import MockEgress
from phat_runtime.types import ExecutionMode

from .conftest import BATCH_HTTP_REQUEST, DETERMINISTIC, HTTP_REQUEST, HttpHarness, LocalServer


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_http_request_is_523_api_unavailable_and_sends_nothing(
    hh: HttpHarness, server: LocalServer, mode: ExecutionMode
) -> None:
    response = hh.request(HttpRequest(server.url("/echo"), "POST", [("X", "1")], b"body"), mode)
    assert response == HttpResponse(523, "API Unavailable", [], b"HTTP request is not supported in transaction")
    assert server.seen == []


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_batch_is_status_not_allowed_and_sends_nothing(hh: HttpHarness, server: LocalServer, mode: ExecutionMode) -> None:
    assert hh.batch([HttpRequest(server.url("/echo"), "GET")], 5000, mode) == (7, b"")
    assert HttpRequestError.NOT_ALLOWED.status == 7
    assert server.seen == []


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_even_invalid_requests_do_not_fail_a_transaction(hh: HttpHarness, mode: ExecutionMode) -> None:
    # pink's CallInCommand ignores the request: no URL check, no call failure.
    assert hh.request(HttpRequest("not a url", "BAD METHOD"), mode).status_code == 523
    assert hh.batch([HttpRequest("x", "y")] * 6, 0, mode) == (7, b"")


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_arguments_must_still_decode(hh: HttpHarness, mode: ExecutionMode) -> None:
    for func in (HTTP_REQUEST, BATCH_HTTP_REQUEST):
        result = hh.run(func, b"\xff", mode)
        assert isinstance(result.error, ChainExtensionError) and result.error.kind == "DecodingFailed"


def test_the_egress_is_never_asked_outside_queries() -> None:
    mock = MockEgress(lambda request: HttpResponse(200, "OK"))
    hx = HttpHarness(mock)
    for mode in DETERMINISTIC:
        assert hx.request(HttpRequest("http://example.com/", "GET"), mode).status_code == 523
        assert hx.batch([HttpRequest("http://example.com/", "GET")], 1000, mode)[0] == 7
    assert mock.calls == []
    assert hx.request(HttpRequest("http://example.com/", "GET")).status_code == 200  # the query does
    assert len(mock.calls) == 1


def test_every_mode_has_both_functions() -> None:
    for mode, registry in build_registries().items():
        assert HTTP_REQUEST in registry and BATCH_HTTP_REQUEST in registry, mode


@pytest.mark.parametrize(
    "handler",
    [http.http_request, http.batch_http_request, http.http_request_in_transaction,
     http.batch_http_request_in_transaction],
)
def test_every_handler_states_its_availability(handler: object) -> None:
    assert "Availability: query only" in (getattr(handler, "__doc__", "") or "")
