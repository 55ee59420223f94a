"""Compiled-module cache: memory hits, disk hits across engines and processes, corruption
and wasmtime-version invalidation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.wasm import modules as cache_module
from phat_runtime.wasm.engine import Engine, EngineConfig

WAT = """(module (import "seal0" "seal_return" (func $r (param i32 i32 i32)))
  (import "env" "memory" (memory 1 1)) (func (export "deploy"))
  (func (export "call") (call $r (i32.const 0) (i32.const 0) (i32.const 4))))"""
WASM = wasmtime.wat2wasm(WAT)
HASH = blake2_256(WASM)


def engine(tmp_path: Path) -> Engine:
    return Engine(EngineConfig(cache_dir=tmp_path))


def test_memory_then_disk_hits(tmp_path: Path) -> None:
    first = engine(tmp_path)
    first.modules.get(HASH, WASM)
    first.modules.get(HASH, WASM)
    assert first.modules.stats["compiles"] == 1
    assert first.modules.stats["memory_hits"] == 1
    files = list(tmp_path.rglob("*.cwasm"))
    assert [f.name for f in files] == [HASH.hex() + ".cwasm"]

    second = engine(tmp_path)  # a new engine (as in a new process) reads the disk entry
    compiled = second.modules.get(HASH, WASM)
    assert second.modules.stats == {"memory_hits": 0, "disk_hits": 1, "compiles": 0, "disk_rejects": 0}
    assert next((i.module, i.name) for i in compiled.module.imports) == ("seal0", "seal_return")


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_entries_are_recompiled(tmp_path: Path, damage: str) -> None:
    engine(tmp_path).modules.get(HASH, WASM)
    (path,) = tmp_path.rglob("*.cwasm")
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    elif damage == "truncate":
        del blob[len(blob) // 2 :]
    else:
        blob = bytearray(b"not a module at all")
    path.write_bytes(bytes(blob))

    fresh = engine(tmp_path)
    fresh.modules.get(HASH, WASM)
    assert fresh.modules.stats["disk_rejects"] == 1
    assert fresh.modules.stats["compiles"] == 1
    # ...and the entry was rewritten, good for the next process.
    again = engine(tmp_path)
    again.modules.get(HASH, WASM)
    assert again.modules.stats["disk_hits"] == 1


def test_new_wasmtime_version_does_not_reuse_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine(tmp_path).modules.get(HASH, WASM)
    monkeypatch.setattr(cache_module.importlib.metadata, "version", lambda name: "999.0.0")
    upgraded = engine(tmp_path)
    upgraded.modules.get(HASH, WASM)
    assert upgraded.modules.stats["disk_hits"] == 0
    assert upgraded.modules.stats["compiles"] == 1
    assert len({p.parent.name for p in tmp_path.rglob("*.cwasm")}) == 2


def test_concurrent_processes_share_the_directory(tmp_path: Path) -> None:
    script = (
        "import sys, wasmtime\n"
        "from phat_runtime.wasm.engine import Engine, EngineConfig\n"
        "from phat_runtime.crypto.hashing import blake2_256\n"
        f"wasm = wasmtime.wat2wasm({WAT!r})\n"
        "e = Engine(EngineConfig(cache_dir=sys.argv[1]))\n"
        "for _ in range(20):\n"
        "    e.modules._memory.clear(); e.modules.get(blake2_256(wasm), wasm)\n"
        "print(e.modules.stats['disk_rejects'])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outputs == ["0", "0", "0"]  # never saw a half-written file
    assert not list(tmp_path.rglob(".tmp-*"))
