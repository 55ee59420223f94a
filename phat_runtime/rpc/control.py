"""The control channel between a worker's main process and one of its query processes: a Unix
socket pair, length-prefixed msgpack messages (``u32 LE length ‖ msgpack``).

Messages (lists, the first item names them):

- main → query process, once at start: the :class:`~phat_runtime.worker.query_process.
  QueryHandover` (raw bytes: the secrets travel only over this private socket pair);
- main → query process, whenever the state keys of a chain cluster member change (its state
  opened once the cluster key arrived; a key epoch was added — rotation, or the handover of an
  older epoch): ``["keys", seq, [[epoch, secret], ...]]`` — every key epoch the worker's state
  can read, epoch 0's being the cluster secret (only over this socket pair, like the
  handover); answered ``["keys-held", seq]`` once the query process reads with them, so the
  main process commits no value sealed under a new epoch before its query processes can read it;
- query process → main: ``["ready"]``; ``["publish", session_id, client_pk, expires_at]``
  (answered ``["ok"]``) and ``["lookup", session_id]`` (answered ``["session", client_pk,
  expires_at]`` or ``["none"]``) — sessions shared between processes (``rpc/sessions.py``);
  ``["log", contract, level, message, mode, block]`` — a query's log record, for the worker's
  log store (no answer).

A query process sends at most one request at a time (a lock), so an answer always belongs to
the request before it; a thread of its own reads the channel (:meth:`Channel.dispatch`), handing
``keys`` to their handler and every other message to the request waiting for it.
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from typing import Any

import msgpack

from phat_runtime.errors import PhatError

log = logging.getLogger(__name__)

#: Set by a query process on every request it forwards to the main process: the address of the
#: client that sent it (anything a client sent under this name is dropped first), so the main
#: process sees the real client, not its private socket (``rpc/hosting.py``).
CLIENT_HEADER = b"x-phat-client"

_LEN = struct.Struct("<I")
#: Largest message (a log record of a 1 MiB log buffer fits).
MAX_MESSAGE = 4 * 1024 * 1024


class ControlClosed(PhatError):
    """The other end of a control channel went away."""


class Channel:
    """One end of a control channel. ``send`` is thread-safe; ``request`` sends and waits for
    the answer (one at a time)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()
        self._request_lock = threading.Lock()
        self._answers: queue.SimpleQueue[list[Any] | None] | None = None  # set by dispatch()

    def send_raw(self, payload: bytes) -> None:
        with self._send_lock:
            try:
                self.sock.sendall(_LEN.pack(len(payload)) + payload)
            except OSError as exc:
                raise ControlClosed(f"control channel closed: {exc}") from None

    def recv_raw(self) -> bytes:
        head = self._exactly(_LEN.size)
        (length,) = _LEN.unpack(head)
        if length > MAX_MESSAGE:
            raise ControlClosed(f"control message of {length} bytes exceeds {MAX_MESSAGE}")
        return self._exactly(length)

    def send(self, message: list[Any]) -> None:
        self.send_raw(bytes(msgpack.packb(message, use_bin_type=True)))

    def recv(self) -> list[Any]:
        message = msgpack.unpackb(self.recv_raw(), raw=False)
        if not isinstance(message, list) or not message or not isinstance(message[0], str):
            raise ControlClosed("malformed control message")
        return message

    def request(self, message: list[Any]) -> list[Any]:
        with self._request_lock:
            self.send(message)
            if self._answers is None:
                return self.recv()
            answer = self._answers.get()
            if answer is None:
                self._answers.put(None)  # for the next request too
                raise ControlClosed("control channel closed")
            return answer

    def dispatch(self, notices: Mapping[str, Callable[[list[Any]], None]]) -> threading.Thread:
        """From now on read every message on a thread of its own: one named in ``notices`` goes
        to its handler (on that thread; an exception is logged, the channel keeps going), any
        other is the answer to the :meth:`request` waiting for it. Returns the (daemon) thread."""
        answers: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        self._answers = answers

        def read() -> None:
            try:
                while True:
                    message = self.recv()
                    handle = notices.get(message[0])
                    if handle is None:
                        answers.put(message)
                        continue
                    try:
                        handle(message)
                    except ControlClosed:
                        raise
                    except Exception:
                        log.exception("handling the control message %r failed", message[0])
            except ControlClosed:
                pass
            finally:
                answers.put(None)  # a request waiting now, or made later, sees the channel closed

        thread = threading.Thread(target=read, name="phat-control-reader", daemon=True)
        thread.start()
        return thread

    def _exactly(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except OSError as exc:
                raise ControlClosed(f"control channel closed: {exc}") from None
            if not chunk:
                raise ControlClosed("control channel closed")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
