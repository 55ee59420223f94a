"""pink chain-extension functions: the local cache (ids 6–9; HOST-ABI §3.4) and its store.

:class:`LocalCache` is the worker's in-memory, non-persistent key-value cache, one namespace
per contract. Contracts share one quota (20 MB by default; an item costs len(key) +
len(value)); an item lives 7 days unless told otherwise; expired items are invisible at once
and removed lazily (when met), every :data:`GC_INTERVAL` writes, and before a write is refused
for lack of room. Thread-safe: queries run concurrently.

Values differ between workers, so the cache is readable only in queries. In transactions the
writes are emitted as ``PinkEvent::CacheOp`` events; the runtime applies them after the
transaction commits (``pink.events``), never if it reverts, and not at all for estimates.
Queries write directly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from phat_runtime.codec.scale import Reader
from phat_runtime.pink.extension import ChainExtensionRegistry, ExtensionEnv, decode
from phat_runtime.pink.misc import OK, Handler, encode_option_bytes
from phat_runtime.pink.structs import PINK_EVENT_TOPIC, CacheOpKind, cache_op_event
from phat_runtime.types import ExecutionMode

CACHE_SET, CACHE_SET_EXPIRATION, CACHE_GET, CACHE_REMOVE = 6, 7, 8, 9

#: Room shared by all contracts of a worker (pink docs: 20 MB).
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: Lifetime of an item that was never given an expiration (pink: one week).
DEFAULT_LIFETIME_S = 7 * 24 * 3600
#: Writes between two sweeps of every namespace (pink: 1000).
GC_INTERVAL = 1000
#: ``cache_set``'s ``Err(StorageQuotaExceeded)`` as a status code.
STORAGE_QUOTA_EXCEEDED = 1


@dataclass
class _Item:
    value: bytes
    expire_at: float


class LocalCache:
    """Per-contract key → value with expiry, sharing one size quota. ``clock`` returns seconds."""

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        default_lifetime_s: float = DEFAULT_LIFETIME_S,
        gc_interval: int = GC_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.default_lifetime_s = default_lifetime_s
        self.gc_interval = gc_interval
        self.clock = clock
        self._stores: dict[bytes, dict[bytes, _Item]] = {}
        self._size = 0
        self._writes_since_gc = 0
        self._lock = threading.Lock()

    # --- reads ---------------------------------------------------------------------------------
    def get(self, contract: bytes, key: bytes) -> bytes | None:
        with self._lock:
            item = self._live(contract, key)
            return item.value if item else None

    @property
    def size(self) -> int:
        """Bytes held (keys + values), expired items not yet collected included."""
        with self._lock:
            return self._size

    def __len__(self) -> int:
        with self._lock:
            return sum(len(store) for store in self._stores.values())

    # --- writes --------------------------------------------------------------------------------
    def set(self, contract: bytes, key: bytes, value: bytes) -> bool:
        """Store ``value`` for the default lifetime; False (nothing changed) if it does not fit."""
        with self._lock:
            self._tick()
            store = self._stores.get(contract, {})
            old = store.get(key)
            growth = len(key) + len(value) - (len(key) + len(old.value) if old else 0)
            if self._size + growth > self.max_bytes:
                self._collect()
                old = store.get(key)
                growth = len(key) + len(value) - (len(key) + len(old.value) if old else 0)
                if self._size + growth > self.max_bytes:
                    return False
            self._stores.setdefault(contract, store)[key] = _Item(value, self.clock() + self.default_lifetime_s)
            self._size += growth
            return True

    def set_expiration(self, contract: bytes, key: bytes, expire_s: int) -> None:
        """Let ``key`` live ``expire_s`` more seconds; 0 removes it. Unknown keys: nothing."""
        with self._lock:
            self._tick()
            if expire_s == 0:
                self._remove(contract, key)
                return
            item = self._live(contract, key)
            if item is not None:
                item.expire_at = self.clock() + expire_s

    def remove(self, contract: bytes, key: bytes) -> bytes | None:
        """Remove ``key``; its value if it was there and alive."""
        with self._lock:
            self._tick()
            item = self._live(contract, key)
            self._remove(contract, key)
            return item.value if item else None

    def collect(self) -> int:
        """Drop every expired item now; returns how many went."""
        with self._lock:
            return self._collect()

    # --- internals (lock held) -----------------------------------------------------------------
    def _live(self, contract: bytes, key: bytes) -> _Item | None:
        item = self._stores.get(contract, {}).get(key)
        if item is not None and item.expire_at <= self.clock():
            self._remove(contract, key)  # lazy GC
            return None
        return item

    def _remove(self, contract: bytes, key: bytes) -> None:
        store = self._stores.get(contract)
        if store is None or key not in store:
            return
        item = store.pop(key)
        self._size -= len(key) + len(item.value)
        if not store:
            del self._stores[contract]

    def _tick(self) -> None:
        self._writes_since_gc += 1
        if self._writes_since_gc >= self.gc_interval:
            self._collect()

    def _collect(self) -> int:
        self._writes_since_gc = 0
        now = self.clock()
        expired = [(c, k) for c, store in self._stores.items() for k, item in store.items() if item.expire_at <= now]
        for contract, key in expired:
            self._remove(contract, key)
        return len(expired)


def apply_cache_op(cache: LocalCache, contract: bytes, kind: CacheOpKind, key: bytes,
                   value: bytes = b"", expiration: int = 0) -> None:
    """Apply one ``CacheOp`` a committed transaction emitted (a failed set is dropped, as pink)."""
    if kind is CacheOpKind.SET:
        cache.set(contract, key, value)
    elif kind is CacheOpKind.SET_EXPIRATION:
        cache.set_expiration(contract, key, expiration)
    else:
        cache.remove(contract, key)


def _cache(env: ExtensionEnv) -> LocalCache | None:
    cache = env.services.cache
    return cache if isinstance(cache, LocalCache) else None


def _emit(env: ExtensionEnv, event: bytes) -> None:
    env.deposit_event([PINK_EVENT_TOPIC], event)


# --- handlers: queries touch the cache -----------------------------------------------------------


def cache_set_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``cache_set(key, value) -> Result<(), StorageQuotaExceeded>`` (handle_status: 0 Ok,
    1 StorageQuotaExceeded; empty output). No cache on this worker counts as no room.

    Availability: query | transaction
    """
    key, value = decode(data, "cache_set(key, value)", lambda r: (r.blob(), r.blob()))
    cache = _cache(env)
    stored = cache is not None and cache.set(env.contract, key, value)
    return (OK if stored else STORAGE_QUOTA_EXCEEDED), b""


def cache_set_expiration_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``cache_set_expiration(key, expire: u64 seconds)``; 0 removes the item.

    Availability: query | transaction
    """
    key, expire = decode(data, "cache_set_expiration(key, expire)", lambda r: (r.blob(), r.u64()))
    cache = _cache(env)
    if cache is not None:
        cache.set_expiration(env.contract, key, expire)
    return OK, b""


def cache_get_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``cache_get(key) -> Option<Vec<u8>>``.

    Availability: query only (always None in transactions)
    """
    key = decode(data, "cache_get(key)", Reader.blob)
    cache = _cache(env)
    return OK, encode_option_bytes(cache.get(env.contract, key) if cache is not None else None)


def cache_remove_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``cache_remove(key) -> Option<Vec<u8>>``: the removed value.

    Availability: query | transaction (returns None in transactions)
    """
    key = decode(data, "cache_remove(key)", Reader.blob)
    cache = _cache(env)
    return OK, encode_option_bytes(cache.remove(env.contract, key) if cache is not None else None)


# --- handlers: transactions emit CacheOp events ----------------------------------------------------


def cache_set_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``cache_set`` in a transaction: emits ``CacheOp::Set``, answers Ok.

    Availability: query | transaction
    """
    key, value = decode(data, "cache_set(key, value)", lambda r: (r.blob(), r.blob()))
    _emit(env, cache_op_event(CacheOpKind.SET, key, value=value))
    return OK, b""


def cache_set_expiration_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``cache_set_expiration`` in a transaction: emits ``CacheOp::SetExpiration``.

    Availability: query | transaction
    """
    key, expire = decode(data, "cache_set_expiration(key, expire)", lambda r: (r.blob(), r.u64()))
    _emit(env, cache_op_event(CacheOpKind.SET_EXPIRATION, key, expiration=expire))
    return OK, b""


def cache_get_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``cache_get`` in a transaction: always None (the cache differs between workers).

    Availability: query only (always None in transactions)
    """
    decode(data, "cache_get(key)", Reader.blob)
    return OK, encode_option_bytes(None)


def cache_remove_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``cache_remove`` in a transaction: emits ``CacheOp::Remove``, answers None.

    Availability: query | transaction (returns None in transactions)
    """
    key = decode(data, "cache_remove(key)", Reader.blob)
    _emit(env, cache_op_event(CacheOpKind.REMOVE, key))
    return OK, encode_option_bytes(None)


def register(registry: ChainExtensionRegistry, mode: ExecutionMode) -> None:
    """Register this module's functions with the behaviour of ``mode``."""
    handlers: dict[int, Handler]
    if mode.deterministic:
        handlers = {
            CACHE_SET: cache_set_deterministic,
            CACHE_SET_EXPIRATION: cache_set_expiration_deterministic,
            CACHE_GET: cache_get_deterministic,
            CACHE_REMOVE: cache_remove_deterministic,
        }
    else:
        handlers = {
            CACHE_SET: cache_set_query,
            CACHE_SET_EXPIRATION: cache_set_expiration_query,
            CACHE_GET: cache_get_query,
            CACHE_REMOVE: cache_remove_query,
        }
    for func, handler in handlers.items():
        registry.register(func, handler)
