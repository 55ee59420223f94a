"""Running the worker's ASGI app with uvicorn: in the foreground (``phat serve``) or on a
background thread (``phat demo``, tests)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from phat_runtime.rpc.control import CLIENT_HEADER
from phat_runtime.rpc.fastpath import FastPath
from phat_runtime.rpc.processes import QueryProcesses, private_socket, public_socket
from phat_runtime.rpc.server import RpcLimits, create_app
from phat_runtime.worker.service import Worker


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class ForwardedClient:
    """ASGI, for the main process's private socket only: a request a query process forwarded
    carries its client's address (``CLIENT_HEADER``); the app sees that client, as it would
    without query processes (the dashboard shows logs to loopback browsers only). Only local
    processes can reach the private socket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            forwarded = [value for name, value in headers if name == CLIENT_HEADER]
            if forwarded:
                scope = {**scope, "client": (forwarded[-1].decode("latin-1"), 0),
                         "headers": [(n, v) for n, v in headers if n != CLIENT_HEADER]}
        await self.app(scope, receive, send)


def _server(app: FastPath, host: str, port: int, log_level: str) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                         access_log=False, lifespan="off"))


def serve(worker: Worker, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
          limits: RpcLimits | None = None, *, query_processes: int = 0,
          allow_loopback_egress: bool = False) -> None:
    """Serve until interrupted; starts and stops the worker around it. ``query_processes`` > 0:
    that many query processes answer on ``host:port`` and this process applies blocks and
    serves the rest behind them (``rpc/processes.py``)."""
    worker.start()
    limits = limits or RpcLimits()
    app = create_app(worker, limits)
    try:
        if query_processes <= 0:
            _server(app, host, port, log_level).run()
            return
        listen = public_socket(host, port)
        private, address = private_socket()
        try:
            with QueryProcesses(worker, app, listen, address, query_processes, limits,
                                allow_loopback_egress=allow_loopback_egress, log_level=log_level):
                uvicorn.Server(uvicorn.Config(ForwardedClient(app), log_level=log_level, access_log=False,
                                              lifespan="off")).run(sockets=[private])
        finally:
            listen.close()
            private.close()
    finally:
        app.close()
        worker.stop()


class ServerThread:
    """The worker's API on a background thread: ``with ServerThread(worker) as url: ...``.
    ``query_processes`` > 0 starts that many query processes in front (``rpc/processes.py``)."""

    def __init__(self, worker: Worker, host: str = "127.0.0.1", port: int | None = None,
                 limits: RpcLimits | None = None, *, query_processes: int = 0) -> None:
        self.worker = worker
        self.host = host
        self.port = port or free_port(host)
        self.limits = limits or RpcLimits()
        self.app = create_app(worker, self.limits)
        self.processes: QueryProcesses | None = None
        self._sockets: list[socket.socket] = []
        if query_processes > 0:
            listen = public_socket(self.host, self.port)
            private, address = private_socket()
            self._sockets = [listen, private]
            self.processes = QueryProcesses(worker, self.app, listen, address, query_processes, self.limits)
            self.server = uvicorn.Server(uvicorn.Config(ForwardedClient(self.app), log_level="warning",
                                                        access_log=False, lifespan="off"))
            target: Any = lambda: self.server.run(sockets=[private])  # noqa: E731
        else:
            self.server = _server(self.app, self.host, self.port, "warning")
            target = self.server.run
        self.thread = threading.Thread(target=target, name="phat-rpc", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self.worker.start()
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the RPC server did not start on {self.url}")
            time.sleep(0.02)
        if self.processes is not None:
            self.processes.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        if self.processes is not None:
            self.processes.stop()
        self.server.should_exit = True
        self.thread.join(timeout=20)
        for sock in self._sockets:
            sock.close()
        self.app.close()
        self.worker.stop()
