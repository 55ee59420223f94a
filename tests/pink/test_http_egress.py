"""The egress itself (``pink.egress``), without a contract: the policy on resolved addresses,
DNS done once and bounded, redirect rules, no environment proxies, TLS checked against the
hostname while connecting to the checked IP, pink's request checks, and MockEgress."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from phat_runtime.errors import ConfigError
from phat_runtime.pink.egress import (
    MAX_BODY_SIZE,
    EgressError,
    EgressPolicy,
    HttpxEgress,
    check_request,
    parse_url,
)
from phat_runtime.pink.structs import HttpRequest, HttpRequestError, HttpResponse
from phat_runtime.testing.mock_egress import MockEgress, response

from .conftest import LOOPBACK_ONLY, LocalServer, _Handler, _Server

E = HttpRequestError


def kind_of(egress: HttpxEgress | MockEgress, request: HttpRequest, timeout_s: float = 2.0) -> HttpRequestError:
    with pytest.raises(EgressError) as info:
        egress.send(request, timeout_s)
    return info.value.kind


# --- the policy ------------------------------------------------------------------------------------

REFUSED_BY_DEFAULT = [
    "127.0.0.1", "127.255.0.9", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "100.64.0.1", "fc00::1", "fd12:3456::1", "169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254",
    "100.100.100.200", "0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "255.255.255.255", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "fe80::1%1",
]
PUBLIC = [
    "8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
    "2002:808:808::1", "64:ff9b::808:808",  # 6to4 / NAT64 of a public IPv4
    "192.0.0.9", "2001:4:112::1", "2001:20::1",  # IANA: globally reachable inside special ranges
]
#: Not globally routable, one address per range (issue 11 item 11), with the range's name.
NOT_GLOBAL = {
    "198.18.0.1": "benchmarking", "198.19.255.254": "benchmarking",
    "192.0.2.1": "TEST-NET-1", "198.51.100.7": "TEST-NET-2", "203.0.113.9": "TEST-NET-3",
    "192.0.0.8": "IETF protocol assignment", "192.88.99.1": "6to4 relay anycast",
    "2001:db8::1": "documentation", "3fff::1": "documentation",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo", "2001:0::1": "Teredo",
    "2001:10::1": "IETF protocol assignment", "100::1": "discard-only",
    "64:ff9b:1::1": "local-use NAT64", "fec0::1": "site-local", "5f00::1": "SRv6",
}
#: IPv6 addresses that embed a non-global IPv4 (6to4 2002::/16, NAT64 64:ff9b::/96, mapped):
#: ``is_global`` says True for the first two, so the embedded address must be checked.
EMBEDDING_NOT_GLOBAL = ["2002:c000:201::1", "2002:c612:1::1", "64:ff9b::c000:201", "64:ff9b::c612:1",
                        "::ffff:203.0.113.9", "2002:c0a8:101::1", "64:ff9b::7f00:1"]


@pytest.mark.parametrize("address", REFUSED_BY_DEFAULT)
def test_default_policy_refuses_internal_addresses(address: str) -> None:
    assert EgressPolicy().refusal(address) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_default_policy_allows_public_addresses(address: str) -> None:
    assert EgressPolicy().refusal(address) is None


@pytest.mark.parametrize("address", sorted(NOT_GLOBAL))
def test_default_policy_refuses_every_non_global_range(address: str) -> None:
    why = EgressPolicy().refusal(address)
    assert why is not None and "not globally routable" in why and NOT_GLOBAL[address].lower() in why.lower()


@pytest.mark.parametrize("address", EMBEDDING_NOT_GLOBAL)
def test_embedded_ipv4_of_6to4_and_nat64_is_judged(address: str) -> None:
    why = EgressPolicy().refusal(address)
    assert why is not None and "embeds" in why


def test_allow_non_global_opens_only_the_special_ranges() -> None:
    policy = EgressPolicy(allow_non_global=True)
    for address in [*NOT_GLOBAL, "2002:c000:201::1", "64:ff9b::c612:1"]:
        assert policy.refusal(address) is None, address
    # loopback, private, link-local and metadata keep their own switches
    for address in ["127.0.0.1", "10.0.0.1", "169.254.1.1", "169.254.169.254", "2002:7f00:1::1", "0.0.0.0"]:
        assert policy.refusal(address), address
    # an operator's deny list still wins; allow_networks opens a single range without the switch
    assert EgressPolicy(allow_non_global=True, deny_networks=("198.18.0.0/15",)).refusal("198.18.0.1")
    assert EgressPolicy(allow_networks=("198.18.0.0/15",)).refusal("198.18.0.1") is None
    assert EgressPolicy(allow_networks=("198.18.0.0/15",)).refusal("192.0.2.1")


def test_each_category_opens_only_itself() -> None:
    loopback = EgressPolicy(allow_loopback=True)
    assert loopback.refusal("127.0.0.1") is None and loopback.refusal("::ffff:127.0.0.1") is None
    assert loopback.refusal("10.0.0.1") and loopback.refusal("169.254.169.254")
    private = EgressPolicy(allow_private=True)
    assert private.refusal("10.0.0.1") is None and private.refusal("fc00::1") is None
    assert private.refusal("fd00:ec2::254") and private.refusal("127.0.0.1")  # metadata stays shut
    link = EgressPolicy(allow_link_local=True)
    assert link.refusal("169.254.1.1") is None and link.refusal("169.254.169.254")


def test_explicit_networks_override_categories() -> None:
    policy = EgressPolicy(allow_loopback=True, allow_networks=("169.254.169.254/32",), deny_networks=("127.0.0.2/32",))
    assert policy.refusal("169.254.169.254") is None
    assert policy.refusal("127.0.0.1") is None and policy.refusal("127.0.0.2")
    assert EgressPolicy(deny_networks=("8.8.8.0/24",)).refusal("8.8.8.8")


def test_bad_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        EgressPolicy(allow_networks=("not-a-network",))
    with pytest.raises(ConfigError):
        EgressPolicy(max_redirects=-1)


# --- DNS: resolved once, checked, connected to what was checked ---------------------------------------


class FakeResolver:
    def __init__(self, answers: dict[str, list[str]], delay_s: float = 0.0) -> None:
        self.answers, self.delay_s = answers, delay_s
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        time.sleep(self.delay_s)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


def test_name_is_resolved_by_the_egress_and_connected_to_the_checked_address(server: LocalServer) -> None:
    # The name exists only in our resolver: if anything else resolved it, the request would fail.
    resolver = FakeResolver({"api.only-here.test": ["169.254.169.254", "127.0.0.1"]})
    with HttpxEgress(LOOPBACK_ONLY, resolver=resolver) as egress:
        url = f"http://api.only-here.test:{server.port}/echo"
        first, second = egress.send(HttpRequest(url, "GET"), 2), egress.send(HttpRequest(url, "GET"), 2)
    assert first.status_code == second.status_code == 200
    assert json.loads(first.body)["headers"][0] == ["Host", f"api.only-here.test:{server.port}"]
    assert resolver.lookups == ["api.only-here.test"]  # once per connection; the second reused it


def test_name_resolving_only_to_refused_addresses_is_not_allowed(server: LocalServer) -> None:
    resolver = FakeResolver({"rebind.test": ["169.254.169.254", "10.0.0.7"]})
    with HttpxEgress(LOOPBACK_ONLY, resolver=resolver) as egress, pytest.raises(EgressError) as info:
        egress.send(HttpRequest(f"http://rebind.test:{server.port}/", "GET"), 2)
    assert info.value.kind is E.NOT_ALLOWED and "rebind.test resolves to" in info.value.message


@pytest.mark.parametrize("answer", ["198.18.0.1", "192.0.2.1", "2001:db8::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                                    "2002:c0a8:101::1", "64:ff9b::7f00:1"])
def test_names_resolving_to_non_global_addresses_open_no_socket(answer: str) -> None:
    resolver = FakeResolver({"bench.test": [answer]})
    with HttpxEgress(resolver=resolver) as egress, pytest.raises(EgressError) as info:
        egress.send(HttpRequest("http://bench.test/", "GET"), 2)
    assert info.value.kind is E.NOT_ALLOWED and f"bench.test resolves to {answer}" in info.value.message
    with HttpxEgress() as egress, pytest.raises(EgressError) as literal:  # an IP literal: no DNS at all
        host = f"[{answer}]" if ":" in answer else answer
        egress.send(HttpRequest(f"http://{host}/", "GET"), 2)
    assert literal.value.kind is E.NOT_ALLOWED


def test_slow_dns_is_bounded_by_the_deadline() -> None:
    with HttpxEgress(resolver=FakeResolver({"slow.test": ["8.8.8.8"]}, delay_s=2.0)) as egress:
        start = time.monotonic()
        assert kind_of(egress, HttpRequest("http://slow.test/", "GET"), 0.3) is E.TIMEOUT
        assert time.monotonic() - start < 1.0


def test_unknown_name_is_523_unreachable() -> None:
    with HttpxEgress(resolver=FakeResolver({})) as egress:
        answer = egress.send(HttpRequest("http://nowhere.test/", "GET"), 2)
    assert answer.status_code == 523 and b"could not resolve nowhere.test" in answer.body


# --- redirects, proxies, limits --------------------------------------------------------------------------


def test_307_keeps_method_and_body(egress: HttpxEgress, server: LocalServer) -> None:
    answer = egress.send(HttpRequest(server.url("/redirect?code=307&to=/echo"), "PUT", [], b"abc"), 2)
    seen = json.loads(answer.body)
    assert (seen["method"], seen["body"]) == ("PUT", "abc")


def test_credentials_are_dropped_when_a_redirect_leaves_the_host(egress: HttpxEgress, server: LocalServer) -> None:
    headers = [("Authorization", "Bearer secret"), ("Cookie", "a=b"), ("X-Keep", "1")]
    for target, kept in ((f"http://localhost:{server.port}/echo", False), ("/echo", True)):
        server.seen.clear()
        egress.send(HttpRequest(server.url(f"/redirect?to={target}"), "GET", headers), 2)
        names = {n.lower() for n, _ in server.seen[-1].headers}
        assert "x-keep" in names and ("authorization" in names) is kept and ("cookie" in names) is kept


def test_max_redirects_is_configurable(server: LocalServer) -> None:
    with HttpxEgress(EgressPolicy(allow_loopback=True, max_redirects=0)) as egress:
        answer = egress.send(HttpRequest(server.url("/redirect?to=/echo"), "GET"), 2)
    assert answer.status_code == 523 and len(server.seen) == 1


def test_environment_proxies_are_ignored(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    with HttpxEgress(LOOPBACK_ONLY) as egress:
        assert egress.send(HttpRequest(server.url("/echo"), "GET"), 2).status_code == 200


def test_body_limit_is_exact(egress: HttpxEgress, server: LocalServer) -> None:
    assert len(egress.send(HttpRequest(server.url(f"/chunked/{MAX_BODY_SIZE}"), "GET"), 5).body) == MAX_BODY_SIZE
    assert kind_of(egress, HttpRequest(server.url(f"/chunked/{MAX_BODY_SIZE + 1}"), "GET")) is E.RESPONSE_TOO_LARGE


def test_no_time_is_timeout_without_a_request(egress: HttpxEgress, server: LocalServer) -> None:
    assert kind_of(egress, HttpRequest(server.url("/echo"), "GET"), 0) is E.TIMEOUT
    assert server.seen == []


def test_concurrent_sends_share_one_egress(egress: HttpxEgress, server: LocalServer) -> None:
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(egress.send(HttpRequest(server.url("/slow/200"), "GET"), 3).status_code))
        for _ in range(8)
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8 and time.monotonic() - start < 1.5


# --- TLS: SNI and certificate checked against the hostname, socket to the checked IP ------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "egress test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.egress.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = LocalServer("", "127.0.0.1", int(httpd.server_address[1]))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd.state.port, cert_file
    httpd.shutdown()
    httpd.server_close()


def test_tls_verifies_the_hostname_not_the_connected_ip(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    trust = ssl.create_default_context(cafile=str(ca))
    resolver = FakeResolver({"secure.egress.test": ["127.0.0.1"]})
    with HttpxEgress(LOOPBACK_ONLY, ssl_context=trust, resolver=resolver) as egress:
        ok = egress.send(HttpRequest(f"https://secure.egress.test:{port}/echo", "GET"), 3)
        by_ip = egress.send(HttpRequest(f"https://127.0.0.1:{port}/echo", "GET"), 3)
    assert ok.status_code == 200 and json.loads(ok.body)["path"] == "/echo"
    assert by_ip.status_code == 523 and b"certificate" in by_ip.body.lower()  # cert names the host, not the IP


# --- pink's request checks and URL parsing ----------------------------------------------------------


def test_checks_run_in_pinks_order() -> None:
    def kind(request: HttpRequest) -> HttpRequestError:
        with pytest.raises(EgressError) as info:
            check_request(request)
        return info.value.kind

    assert kind(HttpRequest("bad", "BAD METHOD", [("bad name", "")])) is E.INVALID_URL
    assert kind(HttpRequest("http://a.com/", "BAD METHOD", [("bad name", "")])) is E.INVALID_METHOD
    assert kind(HttpRequest("http://a.com/", "GET", [("bad name", "")] * 257)) is E.TOO_MANY_HEADERS
    assert kind(HttpRequest("http://a.com/", "GET", [("bad name", "\n")])) is E.INVALID_HEADER_NAME
    assert kind(HttpRequest("http://a.com/", "GET", [("ok", "\n")])) is E.INVALID_HEADER_VALUE


@pytest.mark.parametrize(
    ("raw", "host"),
    [("HTTP://Example.COM/a?b#c", "example.com"), ("  https://a.com/x  ", "a.com"), ("http://[::1]:8080/", "::1"),
     ("https://例え.jp/", "例え.jp"), ("http://a.com/path with space", "a.com"), ("ftp://files.test/x", "files.test")],
)
def test_urls_pink_accepts(raw: str, host: str) -> None:
    assert parse_url(raw).host == host


@pytest.mark.parametrize(
    "raw", ["", "not a url", "/path", "//a.com/x", "http://", "http:/a.com", "http://a b.com/", "http://a.com:70000/",
            "http://[::1/", "http://a%20b.com/"],
)
def test_urls_pink_refuses(raw: str) -> None:
    with pytest.raises(EgressError) as info:
        parse_url(raw)
    assert info.value.kind is E.INVALID_URL


def test_header_values_follow_the_http_crate() -> None:
    for value in ("plain", "tab\tinside", " padded ", "ünïcode", ""):
        check_request(HttpRequest("http://a.com/", "GET", [("X", value)]))
    for value in ("cr\r", "lf\n", "nul\x00", "del\x7f", "bell\x07"):
        with pytest.raises(EgressError):
            check_request(HttpRequest("http://a.com/", "GET", [("X", value)]))


# --- MockEgress --------------------------------------------------------------------------------------


def test_mock_egress_records_calls_and_applies_the_body_limit() -> None:
    mock = MockEgress(lambda request: response(200, b"x" * (MAX_BODY_SIZE + 1 if "big" in request.url else 1)))
    assert mock.send(HttpRequest("http://a.com/", "GET"), 1.5) == HttpResponse(200, "OK", [], b"x")
    assert kind_of(mock, HttpRequest("http://a.com/big", "GET")) is E.RESPONSE_TOO_LARGE
    assert kind_of(mock, HttpRequest("http://a.com/", "GET"), 0) is E.TIMEOUT
    assert [(r.url, t) for r, t in mock.calls] == [("http://a.com/", 1.5), ("http://a.com/big", 2.0), ("http://a.com/", 0)]


def test_exported_names() -> None:
    import phat_runtime.pink.egress as egress_module

    for name in ("Egress", "EgressError", "EgressPolicy", "HttpxEgress", "MAX_BODY_SIZE", "MAX_REQUEST_HEADERS"):
        assert hasattr(egress_module, name), name
    assert ipaddress.ip_address("169.254.169.254") in egress_module.METADATA[0]
