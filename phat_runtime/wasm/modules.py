"""Compiled-module cache keyed by code hash: in memory (LRU) and serialized on disk.

Disk entries live under ``<cache_dir>/<wasmtime version>-<config tag>/<code hash>.cwasm``, so a
wasmtime upgrade or an engine-config change never loads an incompatible artifact. Each file
carries a blake2 digest of its payload, checked before ``Module.deserialize`` (which trusts its
input); a bad or foreign file is recompiled and overwritten. Writes go to a temporary file and
``os.replace`` — atomic, so several processes can share the directory safely.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import wasmtime

from phat_runtime.errors import MalformedModule
from phat_runtime.wasm.abi import MAX_MEMORY_PAGES

if TYPE_CHECKING:
    from phat_runtime.wasm.engine import Engine

_MAGIC = b"PHATCW1\0"
_DIGEST_LEN = 32


@dataclass(frozen=True)
class CompiledModule:
    """A compiled contract plus what instantiation needs to know about its imports."""

    code_hash: bytes
    module: wasmtime.Module
    imports: tuple[tuple[str, str], ...]  # function imports in order
    memory_min: int
    memory_max: int | None
    #: The type of the ``env.memory`` each instance gets: the import's limits, at most
    #: MAX_MEMORY_PAGES when the module declares no maximum. None: no memory import.
    memory_type: wasmtime.MemoryType | None


def _describe(code_hash: bytes, module: wasmtime.Module) -> CompiledModule:
    funcs: list[tuple[str, str]] = []
    mem_min, mem_max, has_memory = 0, None, False
    for imp in module.imports:
        ty = imp.type
        if isinstance(ty, wasmtime.MemoryType):
            mem_min, mem_max, has_memory = ty.limits.min, ty.limits.max, True
        elif isinstance(ty, wasmtime.FuncType):
            funcs.append((imp.module, imp.name or ""))
    memory_type = None
    if has_memory:
        maximum = mem_max if mem_max is not None else MAX_MEMORY_PAGES
        memory_type = wasmtime.MemoryType(wasmtime.Limits(mem_min, maximum))
    return CompiledModule(code_hash, module, tuple(funcs), mem_min, mem_max, memory_type)


def _engine_tag(engine: Engine) -> str:
    version = importlib.metadata.version("wasmtime")
    cfg = engine.config
    fingerprint = hashlib.blake2b(
        f"fuel,epoch,stack={cfg.max_wasm_stack},threads=0".encode(), digest_size=4
    ).hexdigest()
    return f"wasmtime-{version}-{fingerprint}"


class ModuleCache:
    """Compile once per code hash; reuse across executions and processes."""

    def __init__(self, engine: Engine, cache_dir: Path | None, entries: int) -> None:
        self._engine = engine
        self._entries = entries
        self._memory: OrderedDict[bytes, CompiledModule] = OrderedDict()
        self._lock = threading.Lock()
        self._dir = Path(cache_dir) / _engine_tag(engine) if cache_dir else None
        self.stats = {"memory_hits": 0, "disk_hits": 0, "compiles": 0, "disk_rejects": 0}

    def cached(self, code_hash: bytes) -> CompiledModule | None:
        """The module if it is in memory already (no wasm needed, nothing compiled)."""
        with self._lock:
            hit = self._memory.get(code_hash)
            if hit is not None:
                self._memory.move_to_end(code_hash)
                self.stats["memory_hits"] += 1
            return hit

    def get(self, code_hash: bytes, wasm: bytes) -> CompiledModule:
        with self._lock:
            hit = self._memory.get(code_hash)
            if hit is not None:
                self._memory.move_to_end(code_hash)
                self.stats["memory_hits"] += 1
                return hit
        module = self._load_disk(code_hash)
        if module is None:
            module = self._compile(wasm)
            self._store_disk(code_hash, module)
        compiled = _describe(code_hash, module)
        with self._lock:
            self._memory[code_hash] = compiled
            while len(self._memory) > self._entries:
                self._memory.popitem(last=False)
        return compiled

    def _compile(self, wasm: bytes) -> wasmtime.Module:
        self.stats["compiles"] += 1
        try:
            return wasmtime.Module(self._engine.wasmtime, wasm)
        except wasmtime.WasmtimeError as exc:
            raise MalformedModule(f"wasm does not compile: {exc}") from exc

    def _path(self, code_hash: bytes) -> Path | None:
        return self._dir / f"{code_hash.hex()}.cwasm" if self._dir else None

    def _load_disk(self, code_hash: bytes) -> wasmtime.Module | None:
        path = self._path(code_hash)
        if path is None or not path.exists():
            return None
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        head = len(_MAGIC) + _DIGEST_LEN
        payload = blob[head:]
        ok = (
            blob.startswith(_MAGIC)
            and hashlib.blake2b(payload, digest_size=_DIGEST_LEN).digest() == blob[len(_MAGIC) : head]
        )
        if ok:
            try:
                module = wasmtime.Module.deserialize(self._engine.wasmtime, payload)
            except wasmtime.WasmtimeError:
                ok = False
        if not ok:
            self.stats["disk_rejects"] += 1
            return None
        self.stats["disk_hits"] += 1
        return module

    def _store_disk(self, code_hash: bytes, module: wasmtime.Module) -> None:
        path = self._path(code_hash)
        if path is None:
            return
        payload = bytes(module.serialize())
        blob = _MAGIC + hashlib.blake2b(payload, digest_size=_DIGEST_LEN).digest() + payload
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, path)
        except OSError:
            # A read-only or full disk only costs a recompile next time.
            return
