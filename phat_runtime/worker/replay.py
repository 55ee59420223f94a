"""The query replay guard shared by every process of one worker.

A worker that answers queries from several processes (``--query-processes``) must still accept
each (origin, nonce) once: a client — or an attacker replaying a captured frame — chooses which
connection, and so which process, a request lands on. :class:`SharedNonceGuard` keeps the
accepted requests in one table in shared memory (a ``memfd``: anonymous memory, never a file on
disk, handed to the query processes as an inherited descriptor) under a cross-process lock, with
the same rules as :class:`~phat_runtime.worker.guards.NonceGuard`: a request is remembered until
its deadline, deadlines lie at most ``MAX_DEADLINE_AHEAD_MS`` ahead.

Layout: ``buckets`` buckets of :data:`SLOTS` slots; a bucket is ``SLOTS`` deadlines (u64 LE,
0 = free) then ``SLOTS`` 16-byte fingerprints. A request's fingerprint is keyed BLAKE2b of
origin ‖ nonce (the key is random per worker start and never leaves the worker's processes, so
a client cannot aim two requests at one fingerprint); it may live in either of two buckets
chosen by the fingerprint, and an expired slot is free. When both buckets are full of live
requests the query is refused with ``pool_full`` (retry shortly; its nonce was not used) — the
table holds ``buckets × SLOTS`` requests at once, ample for the deadlines clients use.

The lock is ``flock`` on the process's own open file description of the memfd (exclusion
between processes) plus a thread lock (exclusion between the threads of one process).

Must not: hold anything secret (fingerprints and deadlines only).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading

from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.guards import NonceGuard

#: Slots per bucket.
SLOTS = 16
_FP = 16
_BUCKET = SLOTS * 8 + SLOTS * _FP
_DEADLINES = struct.Struct(f"<{SLOTS}Q")
_HEADER = struct.Struct("<8sI28s")  # magic, bucket count, fingerprint key (28 bytes)
_MAGIC = b"phatrpl1"
#: Default buckets: 32,768 × 16 = 524,288 requests in flight (12 MiB of shared memory).
DEFAULT_BUCKETS = 1 << 15


class SharedNonceGuard(NonceGuard):
    """A :class:`NonceGuard` whose table lives in shared memory (see the module docstring).

    Make one with :meth:`create` in the worker's main process, hand :attr:`fd` to each query
    process (``pass_fds``), which attaches with :meth:`attach`."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        # Our own open file description: flock excludes between descriptions, not within one.
        self.fd = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
        size = os.fstat(self.fd).st_size
        self._map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        magic, self.buckets, key = _HEADER.unpack_from(self._map, 0)
        if magic != _MAGIC or self.buckets < 2 or self.buckets & (self.buckets - 1):
            raise ValueError("descriptor is not a shared replay table")
        self._key = key
        self._thread_lock = threading.Lock()

    @classmethod
    def create(cls, buckets: int = DEFAULT_BUCKETS) -> SharedNonceGuard:
        if buckets < 2 or buckets & (buckets - 1):
            raise ValueError("buckets is a power of two, at least 2")
        fd = os.memfd_create("phat-replay", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, _HEADER.size + buckets * _BUCKET)
            os.pwrite(fd, _HEADER.pack(_MAGIC, buckets, os.urandom(28)), 0)
            guard = cls(fd)
        finally:
            os.close(fd)
        return guard

    @classmethod
    def attach(cls, fd: int) -> SharedNonceGuard:
        """The table whose memfd this process inherited as ``fd`` (closed after attaching)."""
        try:
            return cls(fd)
        finally:
            os.close(fd)

    @property
    def capacity(self) -> int:
        return self.buckets * SLOTS

    def admit(self, origin: bytes, nonce: bytes, deadline_ms: int, now_ms: int) -> None:
        """Accept (origin, nonce) once across every process; ``expired``, ``replayed_nonce``
        or ``pool_full`` (the table is full of live requests) otherwise."""
        self.check_deadline(deadline_ms, now_ms)
        fp = hashlib.blake2b(bytes(origin) + bytes(nonce), digest_size=_FP, key=self._key).digest()
        mask = self.buckets - 1
        first = int.from_bytes(fp[:4], "little") & mask
        second = int.from_bytes(fp[4:8], "little") & mask
        if second == first:
            second = first ^ 1
        with self._thread_lock:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                free: tuple[int, int] | None = None
                for bucket in (first, second):
                    base = _HEADER.size + bucket * _BUCKET
                    deadlines = _DEADLINES.unpack_from(self._map, base)
                    prints = self._map[base + SLOTS * 8: base + _BUCKET]
                    at = prints.find(fp)
                    while at >= 0:
                        if at % _FP == 0 and deadlines[at // _FP] > now_ms:
                            raise RpcError("replayed_nonce", "this nonce was already used by this "
                                           "origin; use a fresh random nonce")
                        at = prints.find(fp, at + 1)
                    if free is None:
                        for slot, deadline in enumerate(deadlines):
                            if deadline <= now_ms:
                                free = (base, slot)
                                break
                if free is None:
                    raise RpcError("pool_full", f"{self.capacity} queries are remembered for replay "
                                   "protection until their deadlines; retry shortly (this nonce was "
                                   "not used)")
                base, slot = free
                self._map[base + SLOTS * 8 + slot * _FP: base + SLOTS * 8 + (slot + 1) * _FP] = fp
                struct.pack_into("<Q", self._map, base + slot * 8, deadline_ms)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)

    def __len__(self) -> int:
        """Requests remembered right now (a full scan: for tests and metrics)."""
        now = _now_ms()
        live = 0
        for bucket in range(self.buckets):
            base = _HEADER.size + bucket * _BUCKET
            live += sum(1 for d in _DEADLINES.unpack_from(self._map, base) if d > now)
        return live

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
