"""The wasmtime engine: fuel (gas), epoch interruption (wall clock), store limits.

One :class:`Engine` per process is the usual shape; it owns the wasmtime ``Engine``, a daemon
thread that advances the epoch every :data:`EPOCH_TICK_MS`, the compiled-module cache and the
per-thread linkers that hold the host functions (``wasm/linker.py``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from phat_runtime.wasm.abi import MAX_MEMORY_PAGES

# Gas per unit of fuel and what host functions cost: wasm/schedule.py.
#: Default wall-clock budget of one execution (pink: 10 s per query).
DEFAULT_WALL_CLOCK_MS = 10_000
#: Default gas limit of one query (the pink worker gives queries 10·10¹²).
DEFAULT_QUERY_GAS = 10 * 10**12
#: Default gas limit of one transaction (pink caps transactions at 2.5·10¹²... we allow the same).
DEFAULT_TX_GAS = 2_500_000_000_000
#: How often the epoch advances; wall-clock budgets are rounded up to this.
EPOCH_TICK_MS = 5
#: Native stack wasm may use before a stack-overflow trap (deep recursion).
MAX_WASM_STACK = 1024 * 1024
#: Instances/tables a single store (one call frame) may create.
MAX_INSTANCES_PER_STORE = 4
MAX_TABLE_ELEMENTS = 1 << 16


@dataclass(frozen=True)
class EngineConfig:
    """Knobs of the execution engine. Defaults follow pink's limits."""

    wall_clock_ms: int = DEFAULT_WALL_CLOCK_MS
    max_memory_pages: int = MAX_MEMORY_PAGES
    max_wasm_stack: int = MAX_WASM_STACK
    cache_dir: Path | None = None  # on-disk compiled-module cache; None = memory only
    memory_cache_entries: int = 256


class _EpochTicker:
    """Advances the engine epoch from a daemon thread; started on first use."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.ticks = 0

    def ensure_running(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="phat-epoch", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        period = EPOCH_TICK_MS / 1000
        while True:
            time.sleep(period)
            self.ticks += 1
            self._engine.increment_epoch()


class Engine:
    """wasmtime engine configured for contracts, plus its epoch ticker."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        cfg.epoch_interruption = True
        cfg.max_wasm_stack = self.config.max_wasm_stack
        # Contracts are single-threaded; shared memories make no sense in a contract.
        cfg.wasm_threads = False
        self.wasmtime = wasmtime.Engine(cfg)
        self._ticker = _EpochTicker(self.wasmtime)
        # Imported lazily to keep module import order simple.
        from phat_runtime.wasm.linker import ThreadLinkers
        from phat_runtime.wasm.modules import ModuleCache

        self.modules = ModuleCache(self, self.config.cache_dir, self.config.memory_cache_entries)
        #: Host functions defined once per thread on a wasmtime Linker.
        self.linkers = ThreadLinkers(self.wasmtime)

    def deadline_ticks(self, wall_clock_ms: int) -> int:
        """Epoch ticks for a budget, rounded up, at least one."""
        self._ticker.ensure_running()
        return max(1, -(-wall_clock_ms // EPOCH_TICK_MS))

    @property
    def epoch(self) -> int:
        return self._ticker.ticks

    def new_store(self, fuel: int, deadline_ticks: int) -> wasmtime.Store:
        store = wasmtime.Store(self.wasmtime)
        store.set_fuel(max(0, fuel))
        store.set_epoch_deadline(max(1, deadline_ticks))
        store.set_limits(
            memory_size=self.config.max_memory_pages * 65536,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=MAX_INSTANCES_PER_STORE,
            memories=1,
        )
        return store
