"""Chain-extension id 1 ``http_request`` in queries, through real wasm and a real local server
(HOST-ABI §3.3): the response as pink builds it, every error path, limits and time bounds."""

from __future__ import annotations

import json
import time

import pytest

from phat_runtime.errors import ChainExtensionError, HostFunctionError, InternalError
from phat_runtime.pink.egress import EgressPolicy, HttpxEgress
from phat_runtime.pink.structs import HttpRequest, HttpResponse
from phat_runtime.testing.mock_egress import MockEgress

from .conftest import HTTP_REQUEST, INK_CAP, HttpHarness, LocalServer, encode_request


def get(url: str, headers: list[tuple[str, str]] | None = None) -> HttpRequest:
    return HttpRequest(url, "GET", headers or [])


def failed_with(result: object, name: str) -> None:
    error = getattr(result, "error", None)
    assert isinstance(error, ChainExtensionError), error
    assert error.kind == "HttpRequestFailed" and f"HttpRequestFailed: {name}:" in str(error), str(error)


# --- what a contract gets back ---------------------------------------------------------------


def test_get_with_headers_returns_pinks_response(hh: HttpHarness, server: LocalServer) -> None:
    response = hh.request(get(server.url("/echo?q=1"), [("X-Trace", "abc"), ("Accept", "text/plain")]))
    assert (response.status_code, response.reason_phrase) == (200, "OK")
    headers = response.headers
    assert ("content-type", "application/json") in headers
    assert [v for n, v in headers if n == "x-echo"] == ["yes", "twice"]  # repeated headers stay pairs
    assert ("x-latin", "") in headers  # not visible ASCII → "" (http::HeaderValue::to_str)
    assert all(n == n.lower() for n, _ in headers)
    seen = json.loads(response.body)
    assert seen["method"] == "GET" and seen["path"] == "/echo?q=1"
    sent = {n.lower(): v for n, v in seen["headers"]}
    assert sent["x-trace"] == "abc" and sent["accept"] == "text/plain"
    assert "user-agent" not in sent and "accept-encoding" not in sent  # reqwest sends neither


def test_post_sends_body_and_last_value_of_a_repeated_header(hh: HttpHarness, server: LocalServer) -> None:
    request = HttpRequest(server.url("/echo"), "POST", [("X-Dup", "first"), ("x-dup", "last")], b"\x00payload\xff")
    response = hh.request(request)
    assert response.status_code == 200
    (seen,) = server.seen
    assert (seen.method, seen.body) == ("POST", b"\x00payload\xff")
    assert [v for n, v in seen.headers if n.lower() == "x-dup"] == ["last"]  # HeaderMap::insert


@pytest.mark.parametrize(
    ("code", "reason"),
    [(201, "Created"), (203, "Non Authoritative Information"), (404, "Not Found"), (418, "I'm a teapot"),
     (503, "Service Unavailable"), (599, "")],
)
def test_status_and_canonical_reason(hh: HttpHarness, server: LocalServer, code: int, reason: str) -> None:
    response = hh.request(get(server.url(f"/status/{code}")))
    assert (response.status_code, response.reason_phrase, response.body) == (code, reason, b"")


def test_extension_methods_are_sent_as_given(hh: HttpHarness, server: LocalServer) -> None:
    assert hh.request(HttpRequest(server.url("/echo"), "PROPFIND")).status_code == 200
    assert server.seen[0].method == "PROPFIND"


# --- limits ----------------------------------------------------------------------------------------


def test_body_of_exactly_2_mib_is_returned(hh: HttpHarness, server: LocalServer) -> None:
    response = hh.request(get(server.url(f"/bytes/{2 * 1024 * 1024}")))
    assert (response.status_code, len(response.body)) == (200, 2 * 1024 * 1024)


@pytest.mark.parametrize("route", [f"/bytes/{2 * 1024 * 1024 + 1}", f"/chunked/{3 * 1024 * 1024}"])
def test_body_over_2_mib_is_524_response_too_large(hh: HttpHarness, server: LocalServer, route: str) -> None:
    response = hh.request(get(server.url(route)))
    assert (response.status_code, response.reason_phrase, response.headers) == (524, "IO Error", [])
    assert response.body.startswith(b"ResponseTooLarge: ")


def test_head_of_a_huge_resource_is_not_too_large(hh: HttpHarness, server: LocalServer) -> None:
    response = hh.request(HttpRequest(server.url("/huge-head"), "HEAD"))
    assert (response.status_code, response.body) == (200, b"")
    assert ("content-length", str(1 << 30)) in response.headers


def test_256_request_headers_are_sent_257_are_524_too_many_headers(hh: HttpHarness, server: LocalServer) -> None:
    headers = [(f"X-H{i}", str(i)) for i in range(256)]
    assert hh.request(get(server.url("/echo"), headers)).status_code == 200
    response = hh.request(get(server.url("/echo"), [*headers, ("X-One-Too-Many", "1")]))
    assert (response.status_code, response.reason_phrase) == (524, "IO Error")
    assert response.body.startswith(b"TooManyHeaders: ")
    assert len(server.seen) == 1  # the 257-header request never left


def test_a_body_larger_than_the_contract_buffer_fails_the_call(hh: HttpHarness, server: LocalServer) -> None:
    result = hh.run(HTTP_REQUEST, encode_request(get(server.url("/bytes/20000"))), capacity=INK_CAP)
    assert isinstance(result.error, HostFunctionError) and result.error.kind == "ContractIoBufferOverflow"


# --- time --------------------------------------------------------------------------------------------


def test_slow_server_times_out_at_the_remaining_wall_clock(hh: HttpHarness, server: LocalServer) -> None:
    start = time.monotonic()
    result = hh.failure(get(server.url("/slow/2500")), wall_clock_ms=400)
    elapsed = time.monotonic() - start
    failed_with(result, "Timeout")
    assert 0.3 < elapsed < 1.5, elapsed


def test_trickling_body_is_bounded_by_the_same_deadline(hh: HttpHarness, server: LocalServer) -> None:
    start = time.monotonic()
    failed_with(hh.failure(get(server.url("/slowbody/2500")), wall_clock_ms=400), "Timeout")
    assert time.monotonic() - start < 1.5


def test_a_server_trickling_bytes_cannot_stretch_the_deadline(hh: HttpHarness, server: LocalServer) -> None:
    # Every byte arrives well within any per-read timeout; only the one deadline stops it.
    start = time.monotonic()
    failed_with(hh.failure(get(server.url("/trickle/100/40")), wall_clock_ms=500), "Timeout")
    assert time.monotonic() - start < 1.2


def test_no_time_left_fails_with_timeout_and_sends_nothing(hh: HttpHarness, server: LocalServer) -> None:
    failed_with(hh.failure(get(server.url("/echo")), burn_clock=True, wall_clock_ms=60), "Timeout")
    assert server.seen == []


def test_timeout_given_to_the_egress_is_the_remaining_wall_clock() -> None:
    mock = MockEgress(lambda request: HttpResponse(200, "OK"))
    hx = HttpHarness(mock)
    hx.request(get("http://example.com/"), wall_clock_ms=3000)
    hx.request(get("http://example.com/"))
    (_, short), (_, default) = mock.calls
    assert 2.5 < short <= 3.0 and 9.5 < default <= 10.0


# --- network failures ---------------------------------------------------------------------------------


def test_unreachable_port_is_523_with_the_error_text(hh: HttpHarness, closed_port: int) -> None:
    response = hh.request(get(f"http://127.0.0.1:{closed_port}/x"))
    assert (response.status_code, response.reason_phrase, response.headers) == (523, "Unreachable", [])
    assert b"refused" in response.body.lower()


def test_connection_cut_mid_body_is_524_network_error(hh: HttpHarness, server: LocalServer) -> None:
    response = hh.request(get(server.url("/cut")))
    assert response.status_code == 524 and response.body.startswith(b"NetworkError: ")


# --- malformed requests fail the call (pink runtime 1.0 errors) ---------------------------------------


@pytest.mark.parametrize(
    ("request_", "name"),
    [
        (HttpRequest("not a url", "GET"), "InvalidUrl"),
        (HttpRequest("http://", "GET"), "InvalidUrl"),
        (HttpRequest("http://exa mple.com/", "GET"), "InvalidUrl"),
        (HttpRequest("http://127.0.0.1:99999/", "GET"), "InvalidUrl"),
        (HttpRequest("/relative/path", "GET"), "InvalidUrl"),
        (HttpRequest("http://127.0.0.1/", "GE T"), "InvalidMethod"),
        (HttpRequest("http://127.0.0.1/", ""), "InvalidMethod"),
        (HttpRequest("http://127.0.0.1/", "GET", [("Bad Name", "v")]), "InvalidHeaderName"),
        (HttpRequest("http://127.0.0.1/", "GET", [("X:y", "v")]), "InvalidHeaderName"),
        (HttpRequest("http://127.0.0.1/", "GET", [("X-Ok", "a\r\nInjected: 1")]), "InvalidHeaderValue"),
        (HttpRequest("http://127.0.0.1/", "GET", [("X-Ok", "nul\x00")]), "InvalidHeaderValue"),
    ],
)
def test_malformed_requests_fail_the_call(hh: HttpHarness, server: LocalServer, request_: HttpRequest, name: str) -> None:
    failed_with(hh.failure(request_), name)
    assert server.seen == []


def test_sidevm_urls_answer_as_pink_does_without_a_sidevm(hh: HttpHarness) -> None:
    response = hh.request(HttpRequest("sidevm://" + "ab" * 32, "POST", [], b"query"))
    assert (response.status_code, response.reason_phrase) == (500, "Internal Server Error")
    failed_with(hh.failure(HttpRequest("sidevm://not-hex", "POST")), "InvalidUrl")


def test_closed_egress_fails_with_failed_to_create_client(server: LocalServer) -> None:
    egress = HttpxEgress(EgressPolicy(allow_loopback=True))
    egress.close()
    failed_with(HttpHarness(egress).failure(get(server.url("/echo"))), "FailedToCreateClient")


def test_undecodable_arguments_fail_with_decoding_failed(hh: HttpHarness, server: LocalServer) -> None:
    for payload in (b"\xff\x01", encode_request(get(server.url("/echo"))) + b"\x00"):
        result = hh.run(HTTP_REQUEST, payload)
        assert isinstance(result.error, ChainExtensionError) and result.error.kind == "DecodingFailed"
    assert server.seen == []


def test_an_egress_bug_is_an_internal_error_not_a_crash(server: LocalServer) -> None:
    def broken(request: HttpRequest) -> HttpResponse:
        raise KeyError("bug")

    result = HttpHarness(MockEgress(broken)).run(HTTP_REQUEST, encode_request(get(server.url("/echo"))))
    assert isinstance(result.error, InternalError)


# --- the policy, seen from a contract -------------------------------------------------------------------


def test_no_egress_configured_is_524_not_allowed(server: LocalServer) -> None:
    response = HttpHarness(None).request(get(server.url("/echo")))
    assert response.status_code == 524 and response.body.startswith(b"NotAllowed: ")
    assert server.seen == []


def test_default_policy_refuses_loopback_even_by_name(server: LocalServer) -> None:
    with HttpxEgress() as egress:
        hx = HttpHarness(egress)
        for url in (server.url("/echo"), f"http://localhost:{server.port}/echo", f"http://[::1]:{server.port}/"):
            response = hx.request(get(url))
            assert response.status_code == 524 and response.body.startswith(b"NotAllowed: "), url
    assert server.seen == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/file", "file:///etc/passwd", "gopher://127.0.0.1/"])
def test_schemes_other_than_http_and_https_are_not_allowed(hh: HttpHarness, url: str) -> None:
    response = hh.request(get(url))
    assert response.status_code == 524 and response.body.startswith(b"NotAllowed: ")


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/", "http://10.0.0.1/admin",
     "http://192.168.1.1/", "http://[::ffff:169.254.169.254]/"],
)
def test_redirect_into_a_refused_address_is_524_not_allowed(
    hh: HttpHarness, server: LocalServer, target: str
) -> None:
    start = time.monotonic()
    response = hh.request(get(server.url(f"/redirect?to={target}")))
    assert response.status_code == 524 and response.body.startswith(b"NotAllowed: "), response.body
    assert time.monotonic() - start < 1.0  # refused before any connect attempt: no hang
    assert [s.path.split("?")[0] for s in server.seen] == ["/redirect"]


def test_redirects_are_followed_and_303_turns_post_into_get(hh: HttpHarness, server: LocalServer) -> None:
    request = HttpRequest(server.url("/redirect?code=303&to=/echo"), "POST", [("Content-Type", "text/plain")], b"x")
    response = hh.request(request)
    assert response.status_code == 200 and json.loads(response.body)["method"] == "GET"
    assert [s.method for s in server.seen] == ["POST", "GET"]


def test_redirect_loop_stops_after_10_hops_with_523(hh: HttpHarness, server: LocalServer) -> None:
    response = hh.request(get(server.url("/loop")))
    assert response.status_code == 523 and b"too many redirects" in response.body
    assert len(server.seen) == 11  # the request and 10 redirects followed
