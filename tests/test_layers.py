"""Imports point down the layers of ARCHITECTURE.md; this test fails on an upward import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "phat_runtime"

# Top to bottom. A package may import itself and anything *below* it, never above.
LAYERS = ["cli", "rpc", "worker", "chain", "runtime", "wasm", "pink", "state", "tee", "crypto", "codec"]
BASE = {"errors", "types"}  # importable by everyone
# Pairs that must never meet even though one is "below" the other (ARCHITECTURE.md table).
FORBIDDEN = {
    ("wasm", "state"), ("wasm", "pink"), ("wasm", "runtime"),
    ("pink", "wasm"), ("chain", "runtime"),
}
# Packages allowed at the bottom regardless of order: pure helpers.
PURE = {"crypto", "codec"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "phat_runtime" and len(parts) > 1:
                found.add(parts[1])
    return found


def _package(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _violations() -> list[str]:
    problems = []
    for path in sorted(PKG.rglob("*.py")):
        pkg = _package(path)
        for target in _imports(path):
            if target == pkg or target in BASE:
                continue
            if pkg == "testing":
                continue  # test doubles may use anything
            if target == "testing":
                problems.append(f"{path.relative_to(PKG)}: product code imports testing/")
                continue
            if pkg in BASE or pkg == "__init__":
                if pkg in BASE:
                    problems.append(f"{path.relative_to(PKG)}: {pkg} must not import {target}")
                continue
            if (pkg, target) in FORBIDDEN:
                problems.append(f"{path.relative_to(PKG)}: {pkg}/ must not import {target}/")
                continue
            upward = pkg in LAYERS and target in LAYERS and LAYERS.index(target) < LAYERS.index(pkg)
            if upward and not (pkg in PURE and target in PURE):
                problems.append(f"{path.relative_to(PKG)}: {pkg}/ imports {target}/ (upward)")
    return problems


def test_no_upward_imports() -> None:
    assert _violations() == []


def test_detector_catches_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check itself must be able to fail: plant a state/ module importing runtime/.
    fake = tmp_path / "phat_runtime"
    (fake / "state").mkdir(parents=True)
    (fake / "state" / "bad.py").write_text("from phat_runtime.runtime import cluster\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    assert any("upward" in p for p in _violations())


def test_client_side_modules_do_not_pull_wasmtime() -> None:
    import subprocess
    import sys

    code = ("import phat_runtime, phat_runtime.errors, phat_runtime.types, phat_runtime.rpc.client, sys; "
            "print('wasmtime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
