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


def _describe(code_hash: bytes, module: wasmtime.Module) -> CompiledModule:
    funcs: list[tuple[str, str]] = []
    mem_min, mem_max = 0, None
    for imp in module.imports:
        ty = imp.type
        if isinstance(ty, wasmtime.MemoryType):
            mem_min, mem_max = ty.limits.min, ty.limits.max
        elif isinstance(ty, wasmtime.FuncType):
            funcs.append((imp.module, imp.name or ""))
    return CompiledModule(code_hash, module, tuple(funcs), mem_min, mem_max)


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
