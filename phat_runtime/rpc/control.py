"""The control channel between a worker's main process and one of its query processes: a Unix
socket pair, length-prefixed msgpack messages (``u32 LE length ‖ msgpack``).

Messages (lists, the first item names them):

- main → query process, once at start: the :class:`~phat_runtime.worker.query_process.
  QueryHandover` (raw bytes: the secrets travel only over this private socket pair);
- query process → main: ``["ready"]``; ``["publish", session_id, client_pk, expires_at]``
  (answered ``["ok"]``) and ``["lookup", session_id]`` (answered ``["session", client_pk,
  expires_at]`` or ``["none"]``) — sessions shared between processes (``rpc/sessions.py``);
  ``["log", contract, level, message, mode, block]`` — a query's log record, for the worker's
  log store (no answer).

A query process sends at most one request at a time (a lock), so an answer always belongs to
the request before it.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

import msgpack

from phat_runtime.errors import PhatError

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
            return self.recv()

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
