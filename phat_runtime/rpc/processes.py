"""Query processes: a worker answering queries on every core (``phat serve --query-processes N``).

The main process owns the worker (data directory lock, the writable store, the block pipeline,
``/v2/tx``, logs). It binds the public socket and hands it to ``N`` query processes
(``rpc/query_host.py``), which all accept on it; the main process itself serves the full API
on a private Unix socket (abstract namespace) that query processes forward every route but
``/v2/session``, ``/v2/query`` and ``/health`` to. Each query process opens the encrypted store
read-only (WAL views of the last committed block: a query sees every block the main process
committed before it started), compiles modules through the shared on-disk module cache, and
signs receipts with the worker identity — the secrets reach it over a private socket pair at
start (:class:`~phat_runtime.worker.query_process.QueryHandover`), never through a file, argv
or the environment. A chain cluster member receives its cluster key while it runs: its query
processes start without one and answer ``unavailable`` until its state opens; then, and
whenever a key epoch is added (rotation, handover), the main process sends every live query
process the keys over the same socket pair (``["keys", …]``, ``Worker.add_key_observer``) and
waits — a bounded time — until each holds them, so no block sealed under a new epoch is
committed before the query processes can read it; one started later gets them in its
handover. Replay protection of query nonces is one table in shared memory for all
processes (``worker/replay.py``); sessions are shared over the control channel
(``rpc/control.py``, ``rpc/sessions.py``).

Lifecycle: query processes run in their own session (a terminal's Ctrl-C reaches only the main
process, which stops them), die with the main process (``PR_SET_PDEATHSIG`` and a parent
watch), and one that dies otherwise — even ``kill -9`` — is started again by the supervisor
thread (after a pause if it keeps dying at start).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from phat_runtime.pink.logs import LogLevel, LogStore
from phat_runtime.rpc.control import Channel, ControlClosed
from phat_runtime.rpc.fastpath import FastPath, RpcLimits
from phat_runtime.tee.platform import KIND_SIMULATED
from phat_runtime.types import ExecutionMode
from phat_runtime.worker.query_process import QueryHandover
from phat_runtime.worker.replay import SharedNonceGuard
from phat_runtime.worker.service import STATE_FILE, Worker

log = logging.getLogger(__name__)

#: How long a query process may take to start (imports, store, identity) before it is killed.
START_TIMEOUT_S = 120
#: A process that dies sooner than this after its start waits before it is started again.
FAST_DEATH_S = 10
#: How long the thread that added a key epoch waits for the query processes to hold it.
KEYS_TIMEOUT_S = 10.0


def default_query_processes() -> int:
    """One query process per core."""
    return os.cpu_count() or 1


@dataclass
class _Child:
    index: int
    proc: subprocess.Popen[bytes]
    channel: Channel
    started: float = field(default_factory=time.monotonic)
    ready: threading.Event = field(default_factory=threading.Event)
    keys_held: int = 0  # the last ["keys", seq, …] it confirmed
    keys_changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_keys(self, seq: int, timeout_s: float) -> bool:
        """Wait until this process confirmed keys message ``seq`` (False: timed out or it died)."""
        deadline = time.monotonic() + timeout_s
        with self.keys_changed:
            while self.keys_held < seq:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False
                self.keys_changed.wait(min(left, 0.2))
        return True


class QueryProcesses:
    """``count`` query processes for ``worker``, accepting on ``listen``; ``app`` is the main
    process's API (served on ``private_address``), whose session table the children share."""

    def __init__(self, worker: Worker, app: FastPath, listen: socket.socket, private_address: str,
                 count: int, limits: RpcLimits, *, allow_loopback_egress: bool = False,
                 log_level: str = "warning") -> None:
        if count < 1:
            raise ValueError("at least one query process")
        self.worker = worker
        self.app = app
        self.listen = listen
        self.private_address = private_address
        self.count = count
        self.limits = limits
        self.allow_loopback_egress = allow_loopback_egress
        self.log_level = log_level
        self.replay = SharedNonceGuard.create()
        # Queries (in the children) and log reads (here) share one replay table.
        worker.nonces = worker.queries.nonces = self.replay
        self.children: list[_Child | None] = [None] * count
        self.restarts = 0
        self._stopping = threading.Event()
        # Held while a keys message goes out and while a process is started, so every process
        # gets each key epoch: in its handover or in a keys message.
        self._keys_lock = threading.Lock()
        self._keys_seq = 0
        self._supervisor = threading.Thread(target=self._supervise, name="phat-query-supervisor", daemon=True)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every query process and wait until each is ready."""
        if self.worker.state_keys() is not None:  # a chain member: its keys change while it runs
            self.worker.add_key_observer(self._keys_changed)
        with self._keys_lock:
            for index in range(self.count):
                self.children[index] = self._spawn(index)
        for child in self.children:
            assert child is not None
            if not child.ready.wait(START_TIMEOUT_S):
                self.stop()
                raise RuntimeError(f"query process {child.index} did not start within {START_TIMEOUT_S} s "
                                   "(see its log output above)")
        self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        for child in self.children:
            if child is not None and child.proc.poll() is None:
                child.proc.terminate()
        for child in self.children:
            if child is None:
                continue
            try:
                child.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            child.channel.close()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=5)
        self.replay.close()

    def __enter__(self) -> QueryProcesses:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.children if c is not None]

    def _handover(self, index: int) -> QueryHandover:
        worker = self.worker
        quote = worker.quote.raw if worker.quote.kind != KIND_SIMULATED else b""
        ring = worker.state_keys()
        return QueryHandover(
            identity_secret=worker.identity.secret_bytes(),
            cluster_secret=worker._cluster_secret if ring is None else ring.get(0, b""),
            epoch_secrets=ring,
            cluster_id=worker.cluster_id,
            state_path=str(worker.config.data_dir / STATE_FILE),
            module_cache=str(worker.config.data_dir / "module-cache"),
            wall_clock_ms=worker.config.query_wall_clock_ms,
            max_in_flight=worker.pool.max_in_flight,
            backlog=worker.pool.backlog,
            max_sessions=self.limits.max_sessions,
            session_lifetime_s=self.limits.session_lifetime_s,
            quote=quote,
            allow_loopback_egress=self.allow_loopback_egress,
            index=index,
        )

    def _spawn(self, index: int) -> _Child:
        """Start query process ``index`` (the caller holds ``_keys_lock``)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds = (theirs.fileno(), self.listen.fileno(), self.replay.fd)
        command = [sys.executable, "-m", "phat_runtime.rpc.query_host",
                   "--control-fd", str(fds[0]), "--listen-fd", str(fds[1]), "--replay-fd", str(fds[2]),
                   "--parent-pid", str(os.getpid()), "--private", self.private_address.lstrip("\0"),
                   "--log-level", self.log_level]
        try:
            # Own session: a terminal's Ctrl-C stops the main process, which stops these.
            proc = subprocess.Popen(command, pass_fds=fds, start_new_session=True, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        channel = Channel(ours)
        child = _Child(index, proc, channel)
        try:
            channel.send_raw(self._handover(index).encode())
        except ControlClosed:
            pass  # it died at once: the supervisor sees it
        threading.Thread(target=self._serve_child, args=(child,), name=f"phat-query-control-{index}",
                         daemon=True).start()
        return child

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            for index, child in enumerate(self.children):
                if child is None or child.proc.poll() is None or self._stopping.is_set():
                    continue
                lived = time.monotonic() - child.started
                log.warning("query process %d (pid %d) exited with %s after %.1f s; starting it again",
                            index, child.proc.pid, child.proc.returncode, lived)
                child.channel.close()
                if lived < FAST_DEATH_S and self._stopping.wait(min(30.0, 1.0 + self.restarts)):
                    return
                self.restarts += 1
                with self._keys_lock:
                    self.children[index] = self._spawn(index)

    def _keys_changed(self, ring: dict[int, bytes]) -> None:
        """The worker's state keys changed (``Worker.add_key_observer``): send them to every
        live query process and wait until each holds them (one started meanwhile has them in
        its handover)."""
        if self._stopping.is_set():
            return
        pairs = [[epoch, secret] for epoch, secret in sorted(ring.items())]
        with self._keys_lock:
            self._keys_seq += 1
            seq = self._keys_seq
            sent = []
            for child in self.children:
                if child is None or child.proc.poll() is not None:
                    continue  # the supervisor starts it again, with these keys in its handover
                try:
                    child.channel.send(["keys", seq, pairs])
                    sent.append(child)
                except ControlClosed:
                    pass
        deadline = time.monotonic() + KEYS_TIMEOUT_S
        for child in sent:
            if not child.wait_keys(seq, deadline - time.monotonic()) and not self._stopping.is_set():
                log.warning("query process %d (pid %d) did not confirm key epochs %s within %.0f s",
                            child.index, child.proc.pid, sorted(ring), KEYS_TIMEOUT_S)

    # --- the control channel, main side --------------------------------------------------------------
    def _serve_child(self, child: _Child) -> None:
        sessions = self.app.sessions
        logs = self.worker.services.logs
        while True:
            try:
                message = child.channel.recv()
            except ControlClosed:
                return
            kind = message[0]
            try:
                if kind == "ready":
                    child.ready.set()
                elif kind == "keys-held":
                    with child.keys_changed:
                        child.keys_held = max(child.keys_held, int(message[1]))
                        child.keys_changed.notify_all()
                elif kind == "publish":
                    _, session_id, client_pk, expires_at = message
                    sessions.adopt_remote(bytes(session_id), bytes(client_pk), float(expires_at))
                    child.channel.send(["ok"])
                elif kind == "lookup":
                    found = sessions.peek(bytes(message[1]))
                    child.channel.send(["none"] if found is None else ["session", found[0], found[1]])
                elif kind == "log" and isinstance(logs, LogStore):
                    _, contract, level, text, mode, block = message
                    logs.append(bytes(contract), LogLevel.from_wire(level), str(text),
                                mode=ExecutionMode(mode), block_number=block)
            except ControlClosed:
                return
            except Exception:  # a malformed message from our own child: log it, keep serving
                log.exception("query process %d sent a bad control message (%s)", child.index, kind)
                if kind in ("publish", "lookup"):
                    try:
                        child.channel.send(["none"])
                    except ControlClosed:
                        return


def private_socket() -> tuple[socket.socket, str]:
    """A listening Unix socket in the abstract namespace for the main process's API."""
    address = f"\0phat-worker-{os.getpid()}-{os.urandom(6).hex()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(128)
    return sock, address


def public_socket(host: str, port: int) -> socket.socket:
    """The listening socket every query process accepts on (uvicorn's settings: SO_REUSEADDR)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
