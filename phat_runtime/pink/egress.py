"""HTTP egress for contracts: the one interface pink's ``http_request`` / ``batch_http_request``
send through, the operator's :class:`EgressPolicy`, and the product implementation over httpx.

Owns: :class:`Egress` (``send(request, timeout_s) -> HttpResponse``), :class:`EgressError`,
pink's request checks (:func:`check_request`, :func:`parse_url`), the limits (2 MiB response
body, 256 request headers, 10 redirects), :class:`EgressPolicy` and :class:`HttpxEgress`.
Must not: know about contracts, execution modes or SCALE (``pink.http`` does), read proxy
settings from the environment, or let any socket reach an address the policy refuses.

What ``send`` does, mirroring pink's ``async_http_request`` (chain-extension/src/lib.rs)::

    returns HttpResponse           the server answered (any status), or 523 "Unreachable"
                                   when the request could not be sent (refused connection,
                                   DNS failure, TLS failure, too many redirects)
    raises EgressError(kind, msg)  kind is pink's HttpRequestError:
        InvalidUrl / InvalidMethod / InvalidHeaderName / InvalidHeaderValue / TooManyHeaders
                                   the request itself is malformed (check_request)
        NotAllowed                 the policy refuses the scheme or every resolved address
        Timeout                    no time left, or the deadline passed (connect, send, wait
                                   for the answer, read the body — one deadline for all)
        NetworkError               the connection broke while reading the body
        ResponseTooLarge           the body exceeds 2 MiB (reading stops at the limit)
        FailedToCreateClient       the egress was closed

``EgressError`` derives from :class:`~phat_runtime.errors.PhatError`; it never leaves the pink
layer (``pink.http`` turns it into a status, a 524 response or a ChainExtensionError).

Why a guarded httpcore network backend (and not "resolve, check, then hand httpx the URL"):
``HttpxEgress`` gives httpx a transport whose connection pool opens sockets through
:class:`_GuardedBackend`. Its ``connect_tcp`` resolves the host itself, checks every address
against the policy and connects to a checked address — the address that was checked is the
address connected, so DNS rebinding between check and connect is impossible, nothing in httpx
resolves the name again, and the URL keeps its hostname, so TLS SNI and certificate checks use
the real name and pooled connections stay keyed by hostname. Redirects are followed here (not
by httpx), so every hop goes through the same gate. Every socket read/write/connect is clipped
to the request's deadline, so a server that trickles bytes cannot stretch a request past it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpcore
import httpx

from phat_runtime.errors import ConfigError, PhatError
from phat_runtime.pink.structs import Headers, HttpRequest, HttpRequestError, HttpResponse

#: pink: ``MAX_BODY_SIZE = 2 MiB``; a response body may be exactly this long.
MAX_BODY_SIZE = 2 * 1024 * 1024
#: pink: ``MAX_ALLOWED_HEADERS = 256`` request headers.
MAX_REQUEST_HEADERS = 256
#: reqwest's default redirect policy follows at most 10 redirects.
MAX_REDIRECTS = 10

Resolver = Callable[[str, int], Sequence[str]]
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressError(PhatError):
    """The request produced no HTTP response; ``kind`` is pink's :class:`HttpRequestError`."""

    def __init__(self, kind: HttpRequestError, message: str) -> None:
        super().__init__(f"{pink_name(kind)}: {message}")
        self.kind = kind
        self.message = message


class Egress(Protocol):
    """Where contract HTTP requests go. One method; implementations must be thread-safe."""

    def send(self, request: HttpRequest, timeout_s: float) -> HttpResponse:
        """Perform ``request`` within ``timeout_s`` seconds; see the module docstring."""
        ...


def pink_name(kind: HttpRequestError) -> str:
    """``HttpRequestError.TOO_MANY_HEADERS`` → ``"TooManyHeaders"`` (pink's variant name)."""
    return "".join(part.capitalize() for part in kind.name.split("_"))


# --- pink's request checks (http crate / url crate rules) ---------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# http::HeaderValue::from_str: every byte >= 0x20 except DEL, or HTAB (UTF-8 bytes are >= 0x80).
_BAD_HEADER_VALUE = re.compile(r"[^\t\x20-\x7e\x80-\U0010ffff]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_FORBIDDEN_HOST = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")


def check_request(request: HttpRequest) -> httpx.URL:
    """pink's checks, in pink's order: URL, method, header count, header names and values."""
    url = parse_url(request.url)
    if not _TOKEN.match(request.method):
        raise EgressError(HttpRequestError.INVALID_METHOD, f"{request.method!r} is not an HTTP method token")
    if len(request.headers) > MAX_REQUEST_HEADERS:
        raise EgressError(
            HttpRequestError.TOO_MANY_HEADERS,
            f"{len(request.headers)} request headers; at most {MAX_REQUEST_HEADERS} are allowed",
        )
    for name, value in request.headers:
        if not _TOKEN.match(name):
            raise EgressError(HttpRequestError.INVALID_HEADER_NAME, f"{name!r} is not a header name")
        if _BAD_HEADER_VALUE.search(value):
            raise EgressError(HttpRequestError.INVALID_HEADER_VALUE, f"header {name!r} has a control character")
    return url


def parse_url(raw: str) -> httpx.URL:
    """An absolute URL, WHATWG-style for http(s) (scheme://host[:port]); else InvalidUrl."""
    text = raw.strip(_C0_OR_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    if not _SCHEME.match(text):
        raise EgressError(HttpRequestError.INVALID_URL, f"{raw!r} is not an absolute URL")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise EgressError(HttpRequestError.INVALID_URL, f"{raw!r}: {exc}") from None
    if url.scheme in ("http", "https"):
        host = url.host
        bad_host = not host or (":" not in host and _FORBIDDEN_HOST.search(host) is not None)
        if not text[len(url.scheme) + 1 :].startswith("//") or bad_host:
            raise EgressError(HttpRequestError.INVALID_URL, f"{raw!r} has no valid host")
        if url.port is not None and url.port > 65535:
            raise EgressError(HttpRequestError.INVALID_URL, f"{raw!r}: port {url.port} is out of range")
    return url


# --- the operator's policy -------------------------------------------------------------------------


def _nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba).
METADATA = _nets("169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32")
LINK_LOCAL = _nets("169.254.0.0/16", "fe80::/10")
LOOPBACK = _nets("127.0.0.0/8", "::1/128")
PRIVATE = _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
#: Never a destination: "this host", multicast, reserved/broadcast.
NON_ROUTABLE = _nets("0.0.0.0/8", "::/128", "224.0.0.0/4", "240.0.0.0/4", "ff00::/8")
#: IANA special-purpose ranges that are not globally reachable, named for error messages. Python's
#: ``is_global`` (also checked) covers most of them, but its table differs between Python
#: versions, so these are listed explicitly; refused unless ``allow_non_global``.
SPECIAL_PURPOSE: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(cidr), name) for cidr, name in (
        ("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24)"),
        ("192.0.2.0/24", "TEST-NET-1, reserved for documentation"),
        ("198.51.100.0/24", "TEST-NET-2, reserved for documentation"),
        ("203.0.113.0/24", "TEST-NET-3, reserved for documentation"),
        ("198.18.0.0/15", "the benchmarking range (198.18.0.0/15)"),
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast range"),
        ("2001:db8::/32", "reserved for documentation (2001:db8::/32)"),
        ("3fff::/20", "reserved for documentation (3fff::/20)"),
        ("2001::/32", "a Teredo tunnel address (2001::/32)"),
        ("2001::/23", "an IETF protocol assignment (2001::/23)"),
        ("100::/64", "the discard-only prefix (100::/64)"),
        ("64:ff9b:1::/48", "a local-use NAT64 prefix (64:ff9b:1::/48)"),
        ("fec0::/10", "a deprecated site-local address (fec0::/10)"),
        ("5f00::/16", "an SRv6 segment identifier (5f00::/16)"),
    )
)
#: Inside those ranges, IANA marks these globally reachable (PCP and TURN anycast, AMT, AS112,
#: ORCHIDv2, …); Python 3.11's ``is_global`` does not know it.
GLOBAL_EXCEPTIONS = _nets(
    "192.0.0.9/32", "192.0.0.10/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128",
    "2001:3::/32", "2001:4:112::/48", "2001:20::/28", "2001:30::/28",
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _in(address: _Address, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


@dataclass(frozen=True)
class EgressPolicy:
    """Which destinations contract HTTP may reach. The default refuses everything but the
    public internet over http/https; see docs/egress.md. Checked on resolved addresses, on
    every redirect hop."""

    allow_loopback: bool = False  # 127.0.0.0/8, ::1
    allow_private: bool = False  # 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7
    allow_link_local: bool = False  # 169.254/16, fe80::/10 — metadata endpoints stay refused
    #: Everything else that is not globally routable: TEST-NETs, benchmarking, documentation,
    #: Teredo, … (:data:`SPECIAL_PURPOSE` and whatever ``ipaddress`` says is not ``is_global``).
    allow_non_global: bool = False
    #: CIDRs allowed whatever the categories say (the only way to reach a metadata address).
    allow_networks: tuple[str, ...] = ()
    #: CIDRs refused whatever else says; checked first.
    deny_networks: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ("http", "https")
    max_redirects: int = MAX_REDIRECTS
    _allow: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    _deny: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "_allow", _nets(*self.allow_networks))
            object.__setattr__(self, "_deny", _nets(*self.deny_networks))
        except ValueError as exc:
            raise ConfigError(f"EgressPolicy: bad network: {exc}") from None
        if self.max_redirects < 0:
            raise ConfigError("EgressPolicy: max_redirects must be >= 0")

    def refusal(self, address: str) -> str | None:
        """Why ``address`` (an IP literal) is refused, or None if it may be connected to."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None and (why := self.refusal(str(embedded))):
            return f"{address} embeds {embedded}: {why}"
        if _in(ip, self._deny):
            return f"{address} is in the policy's deny_networks"
        if _in(ip, self._allow):
            return None
        for networks, allowed, what in (
            (METADATA, False, "a cloud metadata endpoint"),
            (NON_ROUTABLE, False, "not a routable unicast address"),
            (LINK_LOCAL, self.allow_link_local, "link-local"),
            (LOOPBACK, self.allow_loopback, "loopback"),
            (PRIVATE, self.allow_private, "a private address"),
        ):
            if _in(ip, networks):
                return None if allowed else f"{address} is {what}, which this worker's egress policy refuses"
        if embedded is not None or self.allow_non_global or _in(ip, GLOBAL_EXCEPTIONS):
            return None  # an embedding address goes where its IPv4 goes, judged above
        for network, name in SPECIAL_PURPOSE:
            if ip.version == network.version and ip in network:
                return f"{address} is {name}, not globally routable; this worker's egress policy refuses it"
        if not ip.is_global:
            return f"{address} is not globally routable (IANA special-purpose); this worker's egress policy refuses it"
        return None


def _embedded_ipv4(ip: _Address) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


# --- deadline: one per request, enforced on every socket operation ------------------------------

_deadline = threading.local()


def _clip(timeout: float | None, expired: type[Exception]) -> float | None:
    """The socket timeout to use now: the smaller of httpcore's and what the deadline leaves."""
    at: float | None = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _GuardedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clip(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clip(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _clip(timeout, httpcore.ConnectTimeout))
        return _GuardedStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def system_resolver(host: str, port: int) -> list[str]:
    """The OS resolver: every address of ``host``, in the OS's order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _resolve(resolver: Resolver, host: str, port: int, timeout: float | None) -> list[str]:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    # getaddrinfo cannot be cancelled: run it aside so a slow resolver cannot outlive the deadline.
    box: list[Sequence[str] | BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            box.append(resolver(host, port))
        except BaseException as exc:  # handed to the caller below
            box.append(exc)
        done.set()

    threading.Thread(target=lookup, name="phat-egress-dns", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"resolving {host} did not finish in time")
    result = box[0]
    if isinstance(result, BaseException):
        raise httpcore.ConnectError(f"could not resolve {host}: {result}")
    return list(result)


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens every socket of the pool: resolve once, check every address, connect to a checked one."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._sync = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(self._resolver, host, port, _clip(timeout, httpcore.ConnectTimeout))
        refusals = [(a, self._policy.refusal(a)) for a in addresses]
        allowed = [a for a, why in refusals if why is None]
        if not allowed:
            why = "; ".join(w for _, w in refusals if w) or "no address"
            raise EgressError(HttpRequestError.NOT_ALLOWED, why if addresses == [host] else f"{host} resolves to {why}")
        error: Exception | None = None
        for address in allowed:
            try:
                stream = self._sync.connect_tcp(
                    address, port, _clip(timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
                return _GuardedStream(stream)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        raise EgressError(HttpRequestError.NOT_ALLOWED, "unix sockets are not an egress destination")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Stream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _GuardedTransport(httpx.BaseTransport):
    """httpx → httpcore over a pool whose sockets all come from :class:`_GuardedBackend`."""

    def __init__(self, backend: _GuardedBackend, ssl_context: ssl.SSLContext, max_connections: int) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            response.status, headers=response.headers, stream=_Stream(response.stream), extensions=response.extensions
        )

    def close(self) -> None:
        self._pool.close()


# --- the product egress ---------------------------------------------------------------------------

_TIMEOUTS = (httpx.TimeoutException, httpcore.TimeoutException)
_FAILURES = (
    httpx.HTTPError, httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
    httpcore.ProxyError, OSError,
)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# reqwest drops these when a redirect leaves the host (or port), and the body headers on 301-303.
_SENSITIVE = frozenset({"authorization", "cookie", "cookie2", "proxy-authorization", "www-authenticate"})
_BODY_HEADERS = frozenset({"transfer-encoding", "content-encoding", "content-type", "content-length"})
# Headers httpx would add that reqwest (pink) does not send.
_NOT_SENT_BY_PINK = ("User-Agent", "Accept-Encoding", "Connection")


class HttpxEgress:
    """The product :class:`Egress`: one shared ``httpx.Client`` (no environment proxies, no
    automatic redirects or decompression) over a policy-guarded connection pool."""

    def __init__(
        self,
        policy: EgressPolicy | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver | None = None,
        max_connections: int = 64,
    ) -> None:
        self.policy = policy or EgressPolicy()
        backend = _GuardedBackend(self.policy, resolver or system_resolver)
        context = ssl_context or httpx.create_ssl_context(trust_env=False)
        self._client = httpx.Client(
            transport=_GuardedTransport(backend, context, max_connections),
            trust_env=False,
            follow_redirects=False,
        )
        for name in _NOT_SENT_BY_PINK:
            del self._client.headers[name]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpxEgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, request: HttpRequest, timeout_s: float) -> HttpResponse:
        """Perform ``request``, following up to ``policy.max_redirects`` redirects, all within
        ``timeout_s`` seconds (see the module docstring for outcomes)."""
        if timeout_s <= 0:
            raise EgressError(HttpRequestError.TIMEOUT, "no time left for the request")
        url = check_request(request)
        if self._client.is_closed:
            raise EgressError(HttpRequestError.FAILED_TO_CREATE_CLIENT, "the HTTP egress has been closed")
        outer: float | None = getattr(_deadline, "at", None)
        deadline = time.monotonic() + timeout_s
        _deadline.at = deadline if outer is None else min(outer, deadline)
        try:
            return self._send(request, url)
        finally:
            _deadline.at = outer

    def _send(self, request: HttpRequest, url: httpx.URL) -> HttpResponse:
        method, body, headers = request.method, request.body, _outgoing_headers(request.headers)
        hops = 0
        while True:
            if url.scheme not in self.policy.schemes:
                raise EgressError(
                    HttpRequestError.NOT_ALLOWED,
                    f"{url.scheme}:// is not allowed (allowed: {', '.join(self.policy.schemes)})",
                )
            response = self._open(method, url, headers, body)
            if isinstance(response, HttpResponse):
                return response
            target = _redirect_target(response, url)
            if target is None:
                return self._read(response, bodyless=method == "HEAD" or response.status_code in (204, 304))
            response.close()
            if hops >= self.policy.max_redirects:
                return unreachable(url, f"too many redirects (more than {self.policy.max_redirects})")
            hops += 1
            if response.status_code in (301, 302, 303):
                body = b""
                headers = [(n, v) for n, v in headers if n.lower() not in _BODY_HEADERS]
                method = method if method in ("GET", "HEAD") else "GET"
            if (target.host, target.port or _PORTS.get(target.scheme)) != (url.host, url.port or _PORTS.get(url.scheme)):
                headers = [(n, v) for n, v in headers if n.lower() not in _SENSITIVE]
            url = target

    def _open(self, method: str, url: httpx.URL, headers: Headers, body: bytes) -> httpx.Response | HttpResponse:
        try:
            left = _clip(None, httpcore.ConnectTimeout)
            built = self._client.build_request(
                method, url, headers=headers, content=body or None, timeout=httpx.Timeout(left)
            )
            return self._client.send(built, stream=True)
        except EgressError:
            raise
        except _TIMEOUTS as exc:
            raise EgressError(HttpRequestError.TIMEOUT, f"{url} did not answer in time") from exc
        except RuntimeError as exc:  # httpx: "the client has been closed" (closed while in use)
            raise EgressError(HttpRequestError.FAILED_TO_CREATE_CLIENT, str(exc)) from exc
        except _FAILURES as exc:
            return unreachable(url, f"{type(exc).__name__}: {exc}")

    def _read(self, response: httpx.Response, bodyless: bool) -> HttpResponse:
        """Stream the body, stopping as soon as it exceeds :data:`MAX_BODY_SIZE`."""
        body = bytearray()
        try:
            declared = response.headers.get("content-length", "")
            if not bodyless and declared.isdigit() and int(declared) > MAX_BODY_SIZE:
                raise EgressError(
                    HttpRequestError.RESPONSE_TOO_LARGE,
                    f"the response declares {declared} bytes; at most {MAX_BODY_SIZE} are read",
                )
            for chunk in response.iter_raw():
                if len(body) + len(chunk) > MAX_BODY_SIZE:
                    raise EgressError(
                        HttpRequestError.RESPONSE_TOO_LARGE, f"the response body exceeds {MAX_BODY_SIZE} bytes"
                    )
                body += chunk
        except _TIMEOUTS as exc:
            raise EgressError(HttpRequestError.TIMEOUT, "the response body did not arrive in time") from exc
        except _FAILURES as exc:
            raise EgressError(HttpRequestError.NETWORK_ERROR, f"reading the response body failed: {exc}") from exc
        finally:
            response.close()
        return wire_response(response.status_code, response.headers.raw, bytes(body))


_PORTS = {"http": 80, "https": 443}


def _outgoing_headers(headers: Headers) -> Headers:
    # pink builds a HeaderMap with insert(): a repeated name keeps its last value. OWS around a
    # value is not part of it (RFC 9110 §5.5); h11 refuses to send it, hyper would.
    merged: dict[str, tuple[str, str]] = {}
    for name, value in headers:
        merged[name.lower()] = (name, value.strip(" \t"))
    return list(merged.values())


def _redirect_target(response: httpx.Response, url: httpx.URL) -> httpx.URL | None:
    location = response.headers.get("location")
    if response.status_code not in _REDIRECT_STATUSES or location is None:
        return None
    try:
        return parse_url(str(url.join(location)))
    except (EgressError, httpx.InvalidURL, ValueError):
        return None  # reqwest hands back the 3xx itself when Location is unusable


def unreachable(url: object, detail: str) -> HttpResponse:
    """pink's answer when a request could not be sent: 523 "Unreachable" with the error text."""
    return HttpResponse(523, "Unreachable", [], f"could not send the request to {url}: {detail}".encode())


def _header_text(value: bytes) -> str:
    # http::HeaderValue::to_str: visible ASCII and HTAB only, else pink returns "".
    if all(b == 9 or 32 <= b < 127 for b in value):
        return value.decode("ascii")
    return ""


def wire_response(status: int, raw_headers: Iterable[tuple[bytes, bytes]], body: bytes) -> HttpResponse:
    """The HttpResponse pink builds: canonical reason, lower-case names, string values."""
    headers = [(name.decode("latin-1").lower(), _header_text(value)) for name, value in raw_headers]
    return HttpResponse(status, REASON_PHRASES.get(status, ""), headers, body)


#: ``http::StatusCode::canonical_reason`` (http 0.2, what pink's reqwest uses); others → "".
REASON_PHRASES = {
    int(line[:3]): line[4:]
    for line in """\
100 Continue|101 Switching Protocols|102 Processing|200 OK|201 Created|202 Accepted
203 Non Authoritative Information|204 No Content|205 Reset Content|206 Partial Content
207 Multi-Status|208 Already Reported|226 IM Used|300 Multiple Choices|301 Moved Permanently
302 Found|303 See Other|304 Not Modified|305 Use Proxy|307 Temporary Redirect
308 Permanent Redirect|400 Bad Request|401 Unauthorized|402 Payment Required|403 Forbidden
404 Not Found|405 Method Not Allowed|406 Not Acceptable|407 Proxy Authentication Required
408 Request Timeout|409 Conflict|410 Gone|411 Length Required|412 Precondition Failed
413 Payload Too Large|414 URI Too Long|415 Unsupported Media Type|416 Range Not Satisfiable
417 Expectation Failed|418 I'm a teapot|421 Misdirected Request|422 Unprocessable Entity
423 Locked|424 Failed Dependency|426 Upgrade Required|428 Precondition Required
429 Too Many Requests|431 Request Header Fields Too Large|451 Unavailable For Legal Reasons
500 Internal Server Error|501 Not Implemented|502 Bad Gateway|503 Service Unavailable
504 Gateway Timeout|505 HTTP Version Not Supported|506 Variant Also Negotiates
507 Insufficient Storage|508 Loop Detected|510 Not Extended|511 Network Authentication Required\
""".replace("\n", "|").split("|")
}
