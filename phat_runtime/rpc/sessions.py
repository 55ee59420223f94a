"""The worker's table of RPC sessions (wire format v2, ``crypto/e2e.py``).

A session costs the worker one X25519 agreement at its start instead of one per request. The
table is bounded: at most ``max_sessions`` live at once (opening one more evicts the least
recently used) and each lives at most ``lifetime_s`` from its start; a client whose session
is gone gets ``unknown_session`` and opens a new one (its request was not used).

Replays: each session accepts each request counter once. Counters must increase, with an
RFC 4303-style window of :data:`REPLAY_WINDOW` so that requests sent concurrently on one
session may arrive out of order; a counter already seen, or older than the window, is refused
(``replayed_counter``). The signed request inside keeps its own (origin, nonce) guard, so even
a request re-sealed in a new session is accepted once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from phat_runtime.crypto.e2e import SessionKeys, new_session_id
from phat_runtime.rpc.bodies import confirm_tag
from phat_runtime.worker.error_codes import RpcError

#: Sessions alive at once; the least recently used is evicted beyond it.
DEFAULT_MAX_SESSIONS = 4096
#: Longest life of a session, from its start.
DEFAULT_SESSION_LIFETIME_S = 3600
#: How far behind the highest counter seen a counter may arrive (reordering of concurrent requests).
REPLAY_WINDOW = 1024


@dataclass
class ReplayWindow:
    """Counters seen: ``top`` is the highest; bit i of ``seen`` stands for ``top - i``."""

    top: int = 0
    seen: int = 0

    def accept(self, counter: int) -> bool:
        if counter > self.top:
            shift = counter - self.top
            self.seen = ((self.seen << shift) | 1) & ((1 << REPLAY_WINDOW) - 1) if shift < REPLAY_WINDOW else 1
            self.top = counter
            return True
        behind = self.top - counter
        if behind >= REPLAY_WINDOW or (self.seen >> behind) & 1:
            return False
        self.seen |= 1 << behind
        return True


@dataclass
class RpcSession:
    id: bytes
    keys: SessionKeys = field(repr=False)
    expires_at: float
    client_pk: bytes = b""
    window: ReplayWindow = field(default_factory=ReplayWindow)


class SessionPeers(Protocol):
    """The other processes of the same worker (``rpc/processes.py``): a session opened in one
    process is published to the others' table, and a process that does not know a session id
    asks them before answering ``unknown_session``."""

    def publish(self, session_id: bytes, client_pk: bytes, expires_at: float) -> None: ...

    def lookup(self, session_id: bytes) -> tuple[bytes, float] | None:
        """(client key, expiry on the monotonic clock) of a live session, or None."""
        ...


class SessionTable:
    """``derive(client_pk, session_id)`` gives the session's keys (the worker's X25519).

    With ``peers``, sessions are shared by the worker's processes: each process keeps its own
    replay window per session (a frame replayed to another process opens there once more, and
    its signed request is then refused by the replay guard all processes share:
    ``worker/replay.py``)."""

    def __init__(self, derive: Callable[[bytes, bytes], SessionKeys], *,
                 max_sessions: int = DEFAULT_MAX_SESSIONS, lifetime_s: int = DEFAULT_SESSION_LIFETIME_S,
                 clock: Callable[[], float] = time.monotonic, peers: SessionPeers | None = None) -> None:
        if max_sessions < 1 or lifetime_s < 1:
            raise ValueError("a session table needs room for one session and a lifetime of 1 s or more")
        self._derive = derive
        self.max_sessions = max_sessions
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._sessions: OrderedDict[bytes, RpcSession] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0
        self.peers = peers

    def open(self, client_pk: bytes) -> tuple[RpcSession, bytes]:
        """A new session for ``client_pk`` and its key confirmation (EnvelopeError for an
        unusable key)."""
        session_id = new_session_id()
        keys = self._derive(client_pk, session_id)
        session = RpcSession(session_id, keys, self._clock() + self.lifetime_s, client_pk)
        self.adopt(session)
        if self.peers is not None:  # before the client learns the id: any process knows it
            self.peers.publish(session_id, client_pk, session.expires_at)
        return session, confirm_tag(keys, session_id)

    def adopt(self, session: RpcSession) -> None:
        """Keep a session (opened here, or by another process of this worker)."""
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
                self.evicted += 1

    def adopt_remote(self, session_id: bytes, client_pk: bytes, expires_at: float) -> None:
        """Keep a session another process of this worker opened (its keys derived here: one
        X25519 per session and process; EnvelopeError for an unusable key)."""
        self.adopt(RpcSession(session_id, self._derive(client_pk, session_id), expires_at, client_pk))

    def peek(self, session_id: bytes) -> tuple[bytes, float] | None:
        """(client key, expiry) of the live session with this id, or None (for peers)."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.expires_at <= self._clock():
                return None
            return session.client_pk, session.expires_at

    def get(self, session_id: bytes) -> RpcSession:
        with self._lock:
            known = session_id in self._sessions
        if not known and self.peers is not None:
            found = self.peers.lookup(session_id)
            if found is not None:
                self.adopt_remote(session_id, *found)
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= self._clock():
                del self._sessions[session_id]
                session = None
            if session is None:
                raise RpcError("unknown_session", "no such session (expired, evicted, or the worker "
                               "restarted); open a new one with POST /v2/session and send again")
            self._sessions.move_to_end(session_id)
            return session

    def admit(self, session: RpcSession, counter: int) -> None:
        """Accept ``counter`` once per session (after its frame opened)."""
        with self._lock:
            if not session.window.accept(counter):
                raise RpcError("replayed_counter", f"message {counter} of this session was already "
                               f"received or is more than {REPLAY_WINDOW} behind; seal it again with a new counter")

    def __len__(self) -> int:
        return len(self._sessions)
