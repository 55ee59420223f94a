"""The client turns every transport failure into a typed PhatError with a one-line message."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from phat_runtime.errors import PhatError
from phat_runtime.rpc.client import (
    WorkerClient,
    WorkerError,
    WorkerTimeout,
    WorkerUnreachable,
    development_policy,
)
from phat_runtime.rpc.hosting import free_port


def test_nothing_listening_is_worker_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = WorkerClient(url, policy=development_policy())
    with pytest.raises(WorkerUnreachable) as caught:
        client.attest()
    assert isinstance(caught.value, PhatError)
    message = str(caught.value)
    assert url in message and "phat serve" in message and "\n" not in message
    client.close()


def test_a_silent_worker_is_a_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = WorkerClient(url, policy=development_policy(), timeout_s=0.5)
        with pytest.raises(WorkerTimeout) as caught:
            client.info()
        assert isinstance(caught.value, WorkerUnreachable)
        assert "did not answer within 0.5 s" in str(caught.value)
        client.close()


class _NotAWorker(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"hello": "world"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_is_not_a_worker() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotAWorker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = WorkerClient(f"http://127.0.0.1:{server.server_address[1]}", policy=development_policy())
        with pytest.raises(WorkerError) as caught:
            client.info()
        assert caught.value.code == "bad_response" and "/v1/info" in str(caught.value)
        client.close()
    finally:
        server.shutdown()
        server.server_close()
