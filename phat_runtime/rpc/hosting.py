"""Running the worker's ASGI app with uvicorn: in the foreground (``phat serve``) or on a
background thread (``phat demo``, tests)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from phat_runtime.rpc.fastpath import FastPath
from phat_runtime.rpc.server import RpcLimits, create_app
from phat_runtime.worker.service import Worker


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _server(app: FastPath, host: str, port: int, log_level: str) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                         access_log=False, lifespan="off"))


def serve(worker: Worker, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
          limits: RpcLimits | None = None) -> None:
    """Serve until interrupted; starts and stops the worker around it."""
    worker.start()
    app = create_app(worker, limits)
    try:
        _server(app, host, port, log_level).run()
    finally:
        app.close()
        worker.stop()


class ServerThread:
    """The worker's API on a background thread: ``with ServerThread(worker) as url: ...``."""

    def __init__(self, worker: Worker, host: str = "127.0.0.1", port: int | None = None,
                 limits: RpcLimits | None = None) -> None:
        self.worker = worker
        self.host = host
        self.port = port or free_port(host)
        self.app = create_app(worker, limits)
        self.server = _server(self.app, self.host, self.port, "warning")
        self.thread = threading.Thread(target=self.server.run, name="phat-rpc", daemon=True)

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
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.app.close()
        self.worker.stop()
