"""Finding and reading a contract's files: the only file-system access in ``codec/``.

Owns: turning one path into ``(metadata JSON, code or None)`` — a ``.contract`` bundle (code
inside, ``source.wasm``), a metadata ``.json`` (code from a sibling ``.wasm`` of the same stem,
if present and not already embedded), or a ``.wasm`` (metadata from its sibling ``.json``,
which must exist).
Must not: read anything but the given path and its same-stem sibling, interpret the metadata
(that is :mod:`.ink_spec`), or touch the network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import MetadataError

EXPECTED_FILES = (
    "a .contract bundle, an ink! metadata .json, or a .wasm with a .json of the same name"
)


def read_contract_files(path: str | os.PathLike[str]) -> tuple[Any, bytes | None]:
    """The decoded metadata JSON at or beside ``path``, and the code when a file holds it."""
    p = Path(path)
    if p.suffix.lower() == ".wasm":
        wasm = read_bytes(p, "contract code")
        meta_path = p.with_suffix(".json")
        if not meta_path.is_file():
            raise MetadataError(f"no metadata for {p}: expected {meta_path} next to it")
        return read_json(meta_path), wasm
    data = read_json(p)
    source = data.get("source") if isinstance(data, Mapping) else None
    embedded = isinstance(source, Mapping) and bool(source.get("wasm"))
    wasm_path = p.with_suffix(".wasm")
    if p.suffix.lower() == ".json" and not embedded and wasm_path.is_file():
        return data, read_bytes(wasm_path, "contract code")
    return data, None


def read_bytes(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise MetadataError(f"{what} not found: {path} (expected {EXPECTED_FILES})")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MetadataError(f"cannot read {what} {path}: {exc}") from exc


def read_json(path: Path) -> Any:
    raw = read_bytes(path, "metadata file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"metadata file {path} is not UTF-8 text: {exc.reason}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetadataError(f"metadata file {path} is not valid JSON: {exc}") from exc
