"""A query process (``rpc/processes.py`` starts these; not a command of its own).

``python -m phat_runtime.rpc.query_host --control-fd C --listen-fd L --replay-fd R
--parent-pid P --private NAME``: descriptors inherited from the worker's main process, no
secret on the command line or in the environment — the secrets arrive as the first message on
the control channel. It then opens the store read-only, builds a
:class:`~phat_runtime.worker.query_process.QueryService` and serves, on the shared listening
socket (a chain cluster member's query process that got no cluster key yet serves at once,
answering queries ``unavailable``, and opens the store when the keys arrive — :class:`QueryState`): ``/v2/session`` and ``/v2/query`` (the lean routes of ``rpc/fastpath.py``) and
``/health``; every other request is forwarded unchanged to the main process's private socket
(``/v2/tx``, ``/v2/logs``, ``/v1/*``, ``/metrics``, ``/docs``).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from phat_runtime.pink.cache import LocalCache
from phat_runtime.pink.services import PinkServices
from phat_runtime.rpc.control import CLIENT_HEADER, Channel, ControlClosed
from phat_runtime.rpc.fastpath import MAX_TX_BODY, FastPath, RpcLimits, RpcMetrics, _read_body
from phat_runtime.runtime.cluster import Cluster
from phat_runtime.state.store import EncryptedStore
from phat_runtime.state.views import StoreReader
from phat_runtime.tee.identity import WorkerIdentity
from phat_runtime.wasm.engine import Engine, EngineConfig
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.guards import QueryPool
from phat_runtime.worker.query_process import NOT_READY, ForwardedLogs, QueryHandover, QueryService
from phat_runtime.worker.replay import SharedNonceGuard

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: ``/health`` of a query process reports a block number at most this old.
HEALTH_BLOCK_TTL_S = 1.0
#: Hop-by-hop headers a proxy does not pass on.
_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade",
        b"proxy-connection", b"te", b"trailer"}


class ControlPeers:
    """Sessions shared with the other processes through the main process (``SessionPeers``)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def publish(self, session_id: bytes, client_pk: bytes, expires_at: float) -> None:
        self.channel.request(["publish", session_id, client_pk, expires_at])

    def lookup(self, session_id: bytes) -> tuple[bytes, float] | None:
        answer = self.channel.request(["lookup", session_id])
        return (bytes(answer[1]), float(answer[2])) if answer[0] == "session" else None


class Forward:
    """ASGI: ``/health`` answered here, everything else forwarded to the main process."""

    def __init__(self, private: str, health: ASGIApp) -> None:
        self.private = "\0" + private
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            await self.health(scope, receive, send)
            return
        try:
            body = await _read_body(scope, receive, MAX_TX_BODY)
            status, headers, answer = await self._exchange(scope, body)
        except RpcError as exc:
            status, headers, answer = exc.status, [(b"content-type", b"application/json")], \
                _json(exc.to_json())
        except OSError:
            err = RpcError("unavailable", "the worker's main process is not answering; retry shortly")
            status, headers, answer = err.status, [(b"content-type", b"application/json")], _json(err.to_json())
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    async def _exchange(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        reader, writer = await asyncio.open_unix_connection(self.private)
        try:
            target = scope["raw_path"] or scope["path"].encode()
            if scope.get("query_string"):
                target += b"?" + scope["query_string"]
            head = [scope["method"].encode() + b" " + target + b" HTTP/1.0"]
            head += [name + b": " + value for name, value in scope["headers"]
                     if name.lower() not in _HOP and name.lower() != CLIENT_HEADER]
            client = scope.get("client")
            if client:
                head.append(CLIENT_HEADER + b": " + str(client[0]).encode())
            head += [b"content-length: " + str(len(body)).encode(), b"connection: close"]
            writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        header, _, answer = raw.partition(b"\r\n\r\n")
        lines = header.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                length = int(value)
            elif name not in _HOP:
                headers.append((name, value))
        return status, headers, answer if length is None else answer[:length]


def _json(doc: Any) -> bytes:
    import json

    return json.dumps(doc).encode()


class QueryState:
    """This process's read-only view of the worker's state. Opened at start with the handover's
    keys — or, for a chain cluster member that holds no cluster key yet, when the main process
    sends them (``["keys", seq, pairs]``, ``rpc/control.py``); key epochs added later (rotation,
    handover) are added to the open reader. Until it opens the query service refuses every
    query ``unavailable``, as the main process does."""

    def __init__(self, handover: QueryHandover, service: QueryService, engine: Engine,
                 services: PinkServices, channel: Channel) -> None:
        self.handover = handover
        self.service = service
        self.engine = engine
        self.services = services
        self.channel = channel
        self.reader: StoreReader | None = None
        if handover.cluster_secret:
            self.open(handover.cluster_secret, handover.epoch_secrets)

    def open(self, cluster_secret: bytes, epoch_secrets: dict[int, bytes] | None) -> None:
        reader = EncryptedStore.open_reader(self.handover.state_path, cluster_secret, epoch_secrets)
        self.services.cluster_secret = cluster_secret
        with reader.reader() as view:
            cluster = Cluster(view, cluster_id=self.handover.cluster_id, engine=self.engine,
                              services=self.services)
        self.service.cluster, self.service.store = cluster, reader
        self.reader = reader

    def on_keys(self, message: list[Any]) -> None:
        """``["keys", seq, [[epoch, secret], ...]]``: open the state with them, or add the
        epochs it lacks; confirm with ``["keys-held", seq]``. A process that cannot use them
        exits (the supervisor starts it again, with the keys in its handover)."""
        _, seq, pairs = message
        ring = {int(epoch): bytes(secret) for epoch, secret in pairs}
        try:
            if self.reader is None:
                self.open(ring[0], ring)
            else:
                for epoch, secret in ring.items():
                    if epoch > 0:
                        self.reader.add_epoch_secret(epoch, secret)
        except Exception as exc:  # never the keys themselves: only what failed
            log.error("cannot read the state with the cluster keys of epochs %s (%s); exiting to "
                      "be started again", sorted(ring), type(exc).__name__)
            os._exit(1)
        self.channel.send(["keys-held", int(seq)])

    @property
    def block(self) -> int:
        checkpoint = self.reader.checkpoint if self.reader is not None else None
        return checkpoint.number if checkpoint else 0


def build(handover: QueryHandover, channel: Channel, replay_fd: int, private: str) -> tuple[FastPath, QueryService]:
    identity = WorkerIdentity(handover.identity_secret)
    quote = handover.quote
    services = PinkServices(cluster_secret=handover.cluster_secret or None, worker_pubkey=identity.public_key,
                            cache=LocalCache(), logs=ForwardedLogs(channel.send), egress=_egress(handover),
                            quote_provider=(lambda: quote) if quote else None)
    engine = Engine(EngineConfig(wall_clock_ms=handover.wall_clock_ms, cache_dir=Path(handover.module_cache)))
    # Contract weights (worker/scheduler.py) read from this process's own view of the state.
    pool = QueryPool(handover.max_in_flight, handover.backlog, weight_of=lambda c: service.contract_weight(c))
    service = QueryService(identity, NOT_READY, NOT_READY, wall_clock_ms=handover.wall_clock_ms,
                           nonces=SharedNonceGuard.attach(replay_fd), pool=pool)
    state = QueryState(handover, service, engine, services, channel)
    channel.dispatch({"keys": state.on_keys})
    health_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    seen = [0.0, 0]  # when the block number was last read, and it

    @health_app.get("/health")
    async def health() -> dict[str, Any]:
        # As cheap as the main process's /health: the block is re-read (a WAL read view and a
        # checkpoint decryption) at most once a second, not on every probe.
        now = time.monotonic()
        if now - seen[0] >= HEALTH_BLOCK_TTL_S:
            seen[:] = [now, state.block]
        return {"ok": True, "block": seen[1]}

    limits = RpcLimits(max_sessions=handover.max_sessions, session_lifetime_s=handover.session_lifetime_s)
    app = FastPath(service, Forward(private, health_app), limits, RpcMetrics(), peers=ControlPeers(channel))
    return app, service


def _egress(handover: QueryHandover) -> Any:
    try:
        from phat_runtime.pink.egress import EgressPolicy, HttpxEgress
    except ImportError:
        return None
    allow = handover.allow_loopback_egress
    return HttpxEgress(EgressPolicy(allow_loopback=True, allow_private=True) if allow else EgressPolicy())


def _die_with(parent: int) -> None:
    """Die when the main process does: the kernel's parent-death signal, and a watch for the
    case that it died before that was set."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=watch, name="phat-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a worker's query process (started by phat serve)")
    for name in ("--control-fd", "--listen-fd", "--replay-fd", "--parent-pid"):
        parser.add_argument(name, type=int, required=True)
    parser.add_argument("--private", required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    _die_with(args.parent_pid)
    logging.basicConfig(level=args.log_level.upper(), format="query process: %(levelname)s %(message)s")
    channel = Channel(socket.socket(fileno=args.control_fd))
    try:
        handover = QueryHandover.decode(channel.recv_raw())
    except ControlClosed:
        return 1
    app, _ = build(handover, channel, args.replay_fd, args.private)
    app.index = handover.index
    listen = socket.socket(fileno=args.listen_fd)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=False, lifespan="off"))
    channel.send(["ready"])
    try:
        server.run(sockets=[listen])
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
