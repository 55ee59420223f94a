"""Chain-extension id 22 ``batch_http_request`` in queries, through real wasm and a real local
server: concurrency, the 5-request limit, per-request errors inside the vector, timeouts
(per request, bounded by the wall clock, and the whole batch), ``handle_status`` output."""

from __future__ import annotations

import threading
import time

import pytest

from phat_runtime.errors import ChainExtensionError
from phat_runtime.pink.egress import EgressError
from phat_runtime.pink.structs import HttpRequest, HttpRequestError, HttpResponse
from phat_runtime.testing.mock_egress import MockEgress, response

from .conftest import BATCH_HTTP_REQUEST, HttpHarness, LocalServer, encode_batch


def get(url: str) -> HttpRequest:
    return HttpRequest(url, "GET")


def statuses(outcomes: object) -> list[int | HttpRequestError]:
    assert isinstance(outcomes, list)
    return [o.status_code if isinstance(o, HttpResponse) else o for o in outcomes]


def test_five_requests_run_concurrently(hh: HttpHarness, server: LocalServer) -> None:
    hh.batch([get(server.url("/echo"))], 5000)  # warm the contract up
    start = time.monotonic()
    status, outcomes = hh.batch([get(server.url(f"/slow/400?i={i}")) for i in range(5)], 5000)
    elapsed = time.monotonic() - start
    assert status == 0 and statuses(outcomes) == [200] * 5
    assert all(isinstance(o, HttpResponse) and o.body == b"slow" for o in outcomes)
    assert elapsed < 1.2, f"5 × 400 ms took {elapsed:.2f}s: not concurrent"  # sequential: ≥ 2 s


def test_results_keep_the_order_of_the_requests(hh: HttpHarness, server: LocalServer) -> None:
    status, outcomes = hh.batch([get(server.url(f"/status/{c}")) for c in (404, 200, 201, 503)], 5000)
    assert status == 0 and statuses(outcomes) == [404, 200, 201, 503]
    assert isinstance(outcomes[0], HttpResponse) and outcomes[0].reason_phrase == "Not Found"


def test_six_requests_are_too_many_and_nothing_is_sent(hh: HttpHarness, server: LocalServer) -> None:
    status, output = hh.batch([get(server.url("/echo"))] * 6, 5000)
    assert (status, output) == (HttpRequestError.TOO_MANY_REQUESTS.status, b"")  # status 8, empty output
    assert server.seen == []


def test_per_request_errors_are_returned_inside_the_vector(
    hh: HttpHarness, server: LocalServer, closed_port: int
) -> None:
    status, outcomes = hh.batch(
        [
            get(server.url("/echo")),
            get("not a url"),
            HttpRequest(server.url("/echo"), "BAD METHOD"),
            HttpRequest(server.url("/echo"), "GET", [("Bad Name", "x")]),
            HttpRequest(server.url("/echo"), "GET", [("X", "\n")]),
        ],
        5000,
    )
    assert status == 0
    assert statuses(outcomes) == [
        200, HttpRequestError.INVALID_URL, HttpRequestError.INVALID_METHOD,
        HttpRequestError.INVALID_HEADER_NAME, HttpRequestError.INVALID_HEADER_VALUE,
    ]
    status, outcomes = hh.batch(
        [
            get(f"http://127.0.0.1:{closed_port}/"),  # could not connect: a 523 response, not an error
            get(server.url(f"/bytes/{3 * 1024 * 1024}")),
            get("http://10.0.0.1/"),
            HttpRequest(server.url("/echo"), "GET", [(f"X-{i}", "v") for i in range(257)]),
            get(server.url("/cut")),
        ],
        5000,
    )
    assert status == 0
    assert statuses(outcomes) == [
        523, HttpRequestError.RESPONSE_TOO_LARGE, HttpRequestError.NOT_ALLOWED,
        HttpRequestError.TOO_MANY_HEADERS, HttpRequestError.NETWORK_ERROR,
    ]


def test_each_request_times_out_at_the_requested_timeout(hh: HttpHarness, server: LocalServer) -> None:
    start = time.monotonic()
    status, outcomes = hh.batch([get(server.url("/slow/2500")), get(server.url("/echo"))], 300)
    elapsed = time.monotonic() - start
    assert status == 0 and statuses(outcomes) == [HttpRequestError.TIMEOUT, 200]
    assert 0.25 < elapsed < 1.0, elapsed


def test_request_timeout_is_bounded_by_the_remaining_wall_clock(hh: HttpHarness, server: LocalServer) -> None:
    start = time.monotonic()
    status, outcomes = hh.batch([get(server.url("/slow/2500"))], 60_000, wall_clock_ms=400)
    assert status == 0 and statuses(outcomes) == [HttpRequestError.TIMEOUT]
    assert time.monotonic() - start < 1.2


def test_zero_timeout_gives_timeout_for_every_request(hh: HttpHarness, server: LocalServer) -> None:
    status, outcomes = hh.batch([get(server.url("/echo"))] * 2, 0)
    assert status == 0 and statuses(outcomes) == [HttpRequestError.TIMEOUT] * 2
    status, outcomes = hh.batch([get(server.url("/echo"))], 5000, burn_clock=True, wall_clock_ms=60)
    assert status == 0 and statuses(outcomes) == [HttpRequestError.TIMEOUT]
    assert server.seen == []


def test_timeouts_given_to_the_egress() -> None:
    mock = MockEgress(lambda request: response(200))
    hx = HttpHarness(mock)
    hx.batch([get("http://example.com/a"), get("http://example.com/b")], 1234)
    hx.batch([get("http://example.com/c")], 60_000, wall_clock_ms=500)
    timeouts = sorted(t for _, t in mock.calls)
    assert timeouts[1:] == [1.234, 1.234] and 0.4 < timeouts[0] <= 0.5


def test_whole_batch_is_bounded_by_timeout_plus_200ms() -> None:
    release = threading.Event()

    def ignores_its_timeout(request: HttpRequest) -> HttpResponse:
        release.wait(5)  # an egress that does not honour the timeout it was given
        return response(200)

    try:
        start = time.monotonic()
        status, output = HttpHarness(MockEgress(ignores_its_timeout)).batch([get("http://example.com/")] * 2, 100)
        elapsed = time.monotonic() - start
    finally:
        release.set()
    assert (status, output) == (HttpRequestError.TIMEOUT.status, b"")  # status 6
    assert 0.25 < elapsed < 1.0, elapsed


def test_mock_errors_land_in_the_vector() -> None:
    def flaky(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/down"):
            raise EgressError(HttpRequestError.NETWORK_ERROR, "simulated")
        return response(200, b"up", [("X-A", "1")])

    status, outcomes = HttpHarness(MockEgress(flaky)).batch([get("http://e.com/up"), get("http://e.com/down")], 1000)
    assert status == 0 and outcomes == [HttpResponse(200, "OK", [("x-a", "1")], b"up"), HttpRequestError.NETWORK_ERROR]


def test_no_egress_configured_is_status_not_allowed(server: LocalServer) -> None:
    assert HttpHarness(None).batch([get(server.url("/echo"))], 1000) == (HttpRequestError.NOT_ALLOWED.status, b"")


def test_empty_batch_is_an_empty_vector(hh: HttpHarness) -> None:
    status, output = hh.status_output(hh.run(BATCH_HTTP_REQUEST, encode_batch([], 1000)))
    assert (status, output) == (0, b"\x00")


@pytest.mark.parametrize("payload", [b"", b"\x04", encode_batch([], 1000) + b"\x00"])
def test_undecodable_arguments_fail_with_decoding_failed(hh: HttpHarness, payload: bytes) -> None:
    result = hh.run(BATCH_HTTP_REQUEST, payload)
    assert isinstance(result.error, ChainExtensionError) and result.error.kind == "DecodingFailed"


def test_outcome_encoding_is_result_ok_0_err_1(hh: HttpHarness, server: LocalServer) -> None:
    status, output = hh.status_output(hh.run(BATCH_HTTP_REQUEST, encode_batch([get("bad"), get(server.url("/status/204"))], 1000)))
    assert status == 0
    # compact(2) ‖ Err(InvalidUrl = 0) ‖ Ok(HttpResponse { 204, "No Content", .. })
    assert output[:4] == b"\x08\x01\x00\x00" and output[4:6] == (204).to_bytes(2, "little")
