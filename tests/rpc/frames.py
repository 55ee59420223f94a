"""Helpers for tests that speak wire format v2 by hand (to send what the client never would)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import replace
from typing import Any

import httpx

from phat_runtime.codec.messages import RequestKind, SignedRequest
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc import bodies
from phat_runtime.rpc.bodies import Route
from phat_runtime.rpc.client import WorkerClient

ROUTES = {"/v2/query": Route.QUERY, "/v2/tx": Route.TX, "/v2/logs": Route.LOGS}
BINARY = {"content-type": bodies.CONTENT_TYPE}


def make_request(client: WorkerClient, signer: Signer, contract: bytes, payload: bytes, **over: Any) -> SignedRequest:
    """A QUERY to ``contract`` signed by ``signer`` after applying ``over`` (unless ``over``
    sets the signature itself)."""
    info = client.info()
    req = SignedRequest(RequestKind.QUERY, info.identity, contract, bytes(32), payload, b"", 0, 0,
                        os.urandom(32), int((time.time() + 60) * 1000), signer.scheme, signer.public_key)
    return replace(req, **over).signed_by(signer) if over.get("signature") is None else replace(req, **over)


def seal(client: WorkerClient, request: SignedRequest | bytes, path: str = "/v2/query",
         route: Route | None = None) -> bytes:
    """A frame in the client's session under the next counter (``route`` may differ from the path's)."""
    session = client.session()
    plaintext = request if isinstance(request, bytes) else request.encode()
    return bodies.seal_request(session.keys, session.id, session.next_counter(),
                               ROUTES[path] if route is None else route, plaintext)


def post(client: WorkerClient, request: SignedRequest | bytes, path: str = "/v2/query") -> httpx.Response:
    return client.http.post(path, content=seal(client, request, path), headers=BINARY)


def post_raw(client: WorkerClient, body: bytes, path: str = "/v2/query") -> httpx.Response:
    return client.http.post(path, content=body, headers=BINARY)


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def exchange(url: str, requests: list[bytes]) -> list[tuple[int, bytes]]:
    """Send each raw HTTP request on one TCP connection, in turn; (status, body) of each answer."""
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


def http_post(path: str, body: bytes, content_type: str = bodies.CONTENT_TYPE) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


HEALTH = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
