"""Docs stay true: every host function is in the coverage table."""

from __future__ import annotations

from pathlib import Path

from phat_runtime.wasm.abi import HOST_FUNCTIONS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_host_function_is_documented() -> None:
    text = (DOCS / "host-abi.md").read_text()
    missing = []
    for (module, name), spec in HOST_FUNCTIONS.items():
        base = spec.impl.split("_", 1)[1]
        if f"`{module}.{base}`" not in text or (name != base and f"`{name}`" not in text):
            missing.append(f"{module}.{name}")
    assert missing == []


def test_every_rpc_error_code_is_documented() -> None:
    from phat_runtime.worker.error_codes import ERROR_CODES

    text = (DOCS / "rpc.md").read_text()
    assert [code for code in ERROR_CODES if f"`{code}`" not in text] == []
