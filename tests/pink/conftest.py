"""Local HTTP servers for the egress tests: real sockets on 127.0.0.1, one thread per connection.

Routes (any method):
    /echo                 200, JSON of what arrived (method, path, headers, body) + X-Echo headers
    /status/<code>        that status, empty body
    /slow/<ms>            waits <ms> before answering 200 "slow"
    /slowbody/<ms>        sends the headers and half the body, waits <ms>, sends the rest
    /trickle/<ms>/<n>     sends <n> body bytes one at a time, <ms> apart
    /bytes/<n>            <n> bytes with Content-Length;  /chunked/<n>: the same, chunked
    /huge-head            for HEAD: announces a 1 GiB body (and sends none)
    /redirect?to=&code=   a redirect (302 by default);  /loop: redirects to itself forever
    /cut                  promises 100 bytes, sends 10 and closes the connection
Every request is recorded in ``server.seen`` (method, path, headers, body).

And the contract side: :func:`http_contract` (a straight-line WAT contract that passes its input
to one chain-extension function and returns ``status u32 ‖ output``) and :class:`HttpHarness`.
Straight-line on purpose: wasmtime checks the epoch (wall clock) only at function entries and
loop headers, so a contract whose HTTP call used up the query's time still returns what it got.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.pink.egress import EgressPolicy, HttpxEgress
from phat_runtime.pink.extension import ExtensionEnv
from phat_runtime.pink.services import PinkServices
from phat_runtime.pink.structs import HttpRequest, HttpRequestError, HttpResponse
from phat_runtime.runtime.cluster import ExecResult
from phat_runtime.testing.harness import ALICE, WatHarness, wat
from phat_runtime.types import AccountId, ExecutionMode

#: The longest any handler sleeps, so a forgotten slow request cannot hold a test run.
MAX_SLEEP_S = 3.0


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class LocalServer:
    base: str
    host: str
    port: int
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every method, extension methods included
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.state.seen.append(Seen(self.command, self.path, list(self.headers.items()), body))
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        route, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if route == "echo":
            payload = {"method": self.command, "path": self.path, "headers": list(self.headers.items()),
                       "body": body.decode("latin-1")}
            self._send(200, json.dumps(payload).encode(), [("Content-Type", "application/json"),
                       ("X-Echo", "yes"), ("X-Echo", "twice"), ("X-Latin", "caf\xe9")])
        elif route == "status":
            self._send(int(arg), b"")
        elif route == "slow":
            time.sleep(min(int(arg) / 1000, MAX_SLEEP_S))
            self._send(200, b"slow")
        elif route == "slowbody":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"12345")
            self.wfile.flush()
            time.sleep(min(int(arg) / 1000, MAX_SLEEP_S))
            self.wfile.write(b"67890")
        elif route == "trickle":
            count = int(parts[2])
            self.send_response(200)
            self.send_header("Content-Length", str(count))
            self.end_headers()
            for _ in range(count):
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(min(int(arg) / 1000, MAX_SLEEP_S))
        elif route == "bytes":
            self._send(200, b"x" * int(arg))
        elif route == "huge-head":  # HEAD: headers only, however long the body would be
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
        elif route == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            remaining = int(arg)
            while remaining:
                piece = min(remaining, 256 * 1024)
                self.wfile.write(b"%x\r\n%s\r\n" % (piece, b"y" * piece))
                remaining -= piece
            self.wfile.write(b"0\r\n\r\n")
        elif route == "redirect":
            self._send(int(query.get("code", "302")), b"", [("Location", query["to"])])
        elif route == "loop":
            self._send(302, b"", [("Location", "/loop")])
        elif route == "cut":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        else:
            self._send(404, b"no such route")

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    state: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout, body limit) is expected here


@pytest.fixture(scope="session")
def _running_server() -> Iterator[LocalServer]:
    # http.server refuses more than 100 request headers; pink allows 256.
    saved, http.client._MAXHEADERS = http.client._MAXHEADERS, 1000  # type: ignore[attr-defined]
    httpd = _Server(("127.0.0.1", 0), _Handler)
    host, port = "127.0.0.1", int(httpd.server_address[1])
    httpd.state = LocalServer(f"http://{host}:{port}", host, port)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()
    http.client._MAXHEADERS = saved  # type: ignore[attr-defined]


@pytest.fixture()
def server(_running_server: LocalServer) -> LocalServer:
    """The shared local server with an empty request log."""
    _running_server.seen.clear()
    return _running_server


@pytest.fixture()
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the contract side --------------------------------------------------------------------------

HTTP_REQUEST, BATCH_HTTP_REQUEST = 1, 22
#: A test-only chain-extension function: sleeps until the query's wall clock is used up.
BURN_CLOCK = 0xF0
IN_LEN, IN, IN_CAP, OUT_LEN, RES = 0x0, 0x100, 0x10000, 0x10100, 0x10200
MEMORY_PAGES = 64  # the engine's maximum: room for a 2 MiB body and its headers
BIG_CAP = MEMORY_PAGES * 0x10000 - RES - 4
INK_CAP = 16 * 1024  # ink! 4's static buffer
DETERMINISTIC = [ExecutionMode.TRANSACTION, ExecutionMode.ESTIMATE]


def http_contract(func_id: int, capacity: int = BIG_CAP, burn_clock: bool = False) -> str:
    """``call``: input → ``call_chain_extension(func_id)`` → ``seal_return(status ‖ output)``.
    With ``burn_clock`` it first calls :data:`BURN_CLOCK`, so no wall-clock time is left."""
    burn = (
        f"(i32.store (i32.const {OUT_LEN}) (i32.const 0))"
        f"(drop (call $seal0.call_chain_extension (i32.const {BURN_CLOCK}) (i32.const {IN}) (i32.const 0) "
        f"(i32.const {RES + 4}) (i32.const {OUT_LEN})))"
    )
    return wat(
        f"(i32.store (i32.const {IN_LEN}) (i32.const {IN_CAP}))"
        f"(call $seal0.input (i32.const {IN}) (i32.const {IN_LEN}))"
        + (burn if burn_clock else "")
        + f"(i32.store (i32.const {OUT_LEN}) (i32.const {capacity}))"
        f"(i32.store (i32.const {RES}) (call $seal0.call_chain_extension (i32.const {func_id}) "
        f"(i32.const {IN}) (i32.load (i32.const {IN_LEN})) (i32.const {RES + 4}) (i32.const {OUT_LEN})))"
        f"(call $seal0.seal_return (i32.const 0) (i32.const {RES}) "
        f"(i32.add (i32.const 4) (i32.load (i32.const {OUT_LEN}))))",
        memory=f"(memory {MEMORY_PAGES} {MEMORY_PAGES})",
    )


def encode_request(request: HttpRequest) -> bytes:
    return request.write(Writer()).finish()


def encode_batch(requests: list[HttpRequest], timeout_ms: int) -> bytes:
    return Writer().vec(requests, lambda w, r: r.write(w)).u64(timeout_ms).finish()


Outcome = HttpResponse | HttpRequestError


def decode_outcomes(output: bytes) -> list[Outcome]:
    def one(r: Reader) -> Outcome:
        return HttpResponse.read(r) if r.u8() == 0 else HttpRequestError(r.u8())

    reader = Reader(output)
    outcomes = reader.vec(one)
    reader.end()
    return outcomes


def _burn_clock(env: ExtensionEnv, _input: bytes) -> tuple[int, bytes]:
    while env.remaining_ms() > 0:
        time.sleep(0.002)
    return 0, b""


class HttpHarness:
    """A cluster whose pink services hold ``egress``; runs the HTTP functions through wasm."""

    def __init__(self, egress: object) -> None:
        self.h = WatHarness()
        self.h.cluster.services = PinkServices(egress=egress)
        self.h.cluster.extensions[ExecutionMode.QUERY].register(BURN_CLOCK, _burn_clock)
        self._contracts: dict[tuple[int, int, bool], AccountId] = {}

    def run(
        self,
        func_id: int,
        payload: bytes,
        mode: ExecutionMode = ExecutionMode.QUERY,
        *,
        capacity: int = BIG_CAP,
        burn_clock: bool = False,
        wall_clock_ms: int | None = None,
    ) -> ExecResult:
        key = (func_id, capacity, burn_clock)
        if key not in self._contracts:
            self._contracts[key] = self.h.deploy(http_contract(func_id, capacity, burn_clock))
        return self.h.cluster.call(
            ALICE, self._contracts[key], payload, mode=mode, block=self.h.block, wall_clock_ms=wall_clock_ms
        )

    def status_output(self, result: ExecResult) -> tuple[int, bytes]:
        assert result.error is None, result.error
        return int.from_bytes(result.data[:4], "little"), result.data[4:]

    def request(self, request: HttpRequest, mode: ExecutionMode = ExecutionMode.QUERY, **kw: Any) -> HttpResponse:
        """id 1 that must succeed: the decoded HttpResponse (status is always 0)."""
        status, output = self.status_output(self.run(HTTP_REQUEST, encode_request(request), mode, **kw))
        assert status == 0
        reader = Reader(output)
        response = HttpResponse.read(reader)
        reader.end()
        return response

    def failure(self, request: HttpRequest, **kw: Any) -> ExecResult:
        """id 1 that must fail the contract call."""
        result = self.run(HTTP_REQUEST, encode_request(request), **kw)
        assert result.error is not None, f"expected the call to fail, got 0x{result.data.hex()}"
        return result

    def batch(
        self, requests: list[HttpRequest], timeout_ms: int, mode: ExecutionMode = ExecutionMode.QUERY, **kw: Any
    ) -> tuple[int, list[Outcome] | bytes]:
        """id 22: (status, decoded outcomes) for status 0, else (status, raw output)."""
        status, output = self.status_output(self.run(BATCH_HTTP_REQUEST, encode_batch(requests, timeout_ms), mode, **kw))
        return (status, decode_outcomes(output)) if status == 0 else (status, output)


LOOPBACK_ONLY = EgressPolicy(allow_loopback=True)


@pytest.fixture(scope="session")
def _shared_egress() -> Iterator[HttpxEgress]:
    with HttpxEgress(LOOPBACK_ONLY) as egress:
        yield egress


@pytest.fixture()
def egress(_shared_egress: HttpxEgress) -> HttpxEgress:
    """The product egress with a policy that admits loopback (where the test servers live)."""
    return _shared_egress


@pytest.fixture()
def hh(egress: HttpxEgress) -> HttpHarness:
    return HttpHarness(egress)
